package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/metrics"
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

// METRICS_PORT serves /metrics and /healthz on a listener of its own (bound to LISTEN_HOST);
// with METRICS_TOKEN set, /metrics there needs the token too.
func TestMetricsPortNeedsTheToken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"LISTEN_HOST": "127.0.0.1", "METRICS_PORT": strconv.Itoa(port), "METRICS_TOKEN": "scrape-token-0123456789"}[k]
	})
	require.NoError(t, err)
	stop, err := serveMetrics(cfg, metrics.New(nil, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer stop()
	base := "http://" + cfg.ListenAddr(port)
	get := func(path, auth string) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get("/healthz", ""))
	require.Equal(t, http.StatusUnauthorized, get("/metrics", ""))
	require.Equal(t, http.StatusUnauthorized, get("/metrics", "Bearer nope"))
	require.Equal(t, http.StatusOK, get("/metrics", "Bearer scrape-token-0123456789"))
}

// preflight prints every reason, one a line, and fails; the default configuration passes against
// the simulator.
func TestPreflightSubcommand(t *testing.T) {
	sim, err := hcloudsim.New(hcloudsim.Config{Token: "t"})
	require.NoError(t, err)
	require.NoError(t, sim.Start())
	t.Cleanup(func() { _ = sim.Close() })
	t.Setenv("DATABASE_URL", "")
	t.Setenv("HCLOUD_TOKEN", "t")
	t.Setenv("HCLOUD_ENDPOINT", sim.Endpoint())
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"preflight"}, &out, &bytes.Buffer{}))
	require.Equal(t, "preflight passed\n", out.String())

	t.Setenv("HCLOUD_SERVER_TYPE", "cx22")
	t.Setenv("HCLOUD_PLAN_PRO", "cx23 fsn1,sin")
	out.Reset()
	err = run(context.Background(), []string{"preflight"}, &out, &bytes.Buffer{})
	require.ErrorContains(t, err, "preflight failed")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, out.String())
	require.True(t, strings.HasPrefix(lines[0], "HCLOUD_SERVER_TYPE: "), lines[0])
	require.Equal(t, "HCLOUD_PLAN_PRO: server type cx23 is not offered in sin", lines[1])
}
