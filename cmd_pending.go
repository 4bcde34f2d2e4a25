package main

import (
	"context"
	"errors"
	"io"
)

// These subcommands are wired as their packages land.

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("bench: the benchmarks are not built yet")
}
