package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every subcommand answers -h with its usage, without doing anything.
func TestEverySubcommandHasHelp(t *testing.T) {
	t.Parallel()
	for name := range commands() {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{name, "-h"}, &out, &errOut)
		if err != nil {
			require.True(t, errors.Is(err, flag.ErrHelp), "%s -h: %v", name, err)
		}
		require.NotEmpty(t, errOut.String(), "%s -h prints its usage", name)
		require.Contains(t, strings.ToLower(errOut.String()), "usage", name)
	}
}

func TestUsageAndUnknownSubcommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.Error(t, run(context.Background(), nil, &out, &errOut))
	for name := range commands() {
		require.Contains(t, errOut.String(), name)
	}
	errOut.Reset()
	err := run(context.Background(), []string{"frobnicate"}, &out, &errOut)
	require.ErrorContains(t, err, `unknown subcommand "frobnicate"`)
}

// serve refuses to start without what it needs, naming the variable.
func TestServeNamesMissingConfiguration(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("RACHEL_KEYRING", "")
	err := run(context.Background(), []string{"serve"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, "DATABASE_URL")
	require.ErrorContains(t, err, "RACHEL_KEYRING")
}
