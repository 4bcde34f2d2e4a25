package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
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

// `make run` listens on loopback unless LISTEN_HOST says otherwise; serve on every interface (a
// platform routes PORT to it).
func TestDevListensOnLoopback(t *testing.T) {
	t.Parallel()
	dev := func(extra map[string]string) config.Getenv {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			for _, kv := range devDefaults {
				if kv[0] == k {
					return kv[1]
				}
			}
			return ""
		}
	}
	cfg, err := config.Load(dev(nil))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", cfg.ListenAddr(cfg.Port))
	cfg, err = config.Load(dev(map[string]string{"LISTEN_HOST": "0.0.0.0", "PORT": "9000"}))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0:9000", cfg.ListenAddr(cfg.Port))
	cfg, err = config.Load(func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, ":8080", cfg.ListenAddr(cfg.Port))
}

// The Procfile runs as-is on a Go buildpack, which installs the main package as bin/<last
// element of the module path>, and the README builds the binary to that same path.
func TestProcfileRunsTheBuildpackBinary(t *testing.T) {
	t.Parallel()
	mod, err := os.ReadFile("go.mod")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^module\s+(\S+)$`).FindSubmatch(mod)
	require.NotNil(t, m)
	bin := "bin/" + path.Base(string(m[1]))
	proc, err := os.ReadFile("Procfile")
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(proc)), "\n") {
		kind, cmd, ok := strings.Cut(line, ":")
		require.True(t, ok, line)
		fields := strings.Fields(cmd)
		require.Len(t, fields, 2, line)
		require.Equal(t, bin, fields[0], "Procfile line %q runs the buildpack's binary", line)
		_, known := commands()[fields[1]]
		require.True(t, known, "Procfile line %q runs a subcommand", line)
		kinds[kind] = true
	}
	require.Equal(t, map[string]bool{"web": true, "worker": true, "release": true}, kinds)
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), "go build -o "+bin+" .")
}
