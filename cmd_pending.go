package main

import (
	"context"
	"errors"
	"io"
)

// These subcommands are wired as their packages land.

func runWork(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("work: the provisioning worker is not built yet")
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("bench: the benchmarks are not built yet")
}
