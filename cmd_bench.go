package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rachelcloud/admin/internal/bench"
)

// The worker subprocess of a benchmark run is this binary; it profiles itself between two
// SIGUSR1s when the run asks it to.
func init() {
	if path := os.Getenv(bench.EnvCPUProfile); path != "" {
		bench.ProfileOnSignal(path)
	}
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "Runs the benchmarks on this machine: a private PostgreSQL, the Hetzner simulator with\n"+
		"Hetzner's timings scaled by -time-scale, the web app, and the worker as a subprocess. Writes\n"+
		"the Markdown report to -out and the JSON report to stdout; progress goes to stderr.", stderr)
	timeScale := fs.Float64("time-scale", 1, "multiplies the simulated Hetzner durations (1 = create 10 s, start 5 s, cloud-init 60 s, delete 5 s)")
	bursts := fs.String("n", "1,10,100", "provisioning and destroy bursts, comma-separated (empty: skip)")
	subs := fs.Int("subscriptions", 100000, "subscriptions in the database for the page load runs (0: skip)")
	inFlight := fs.Int("in-flight", 1000, "provisionings in flight for the worker-memory phase (0: skip)")
	projectsN := fs.Int("projects-n", 300, "provisionings of the several-projects burst (0: skip)")
	projects := fs.Int("projects", 3, "simulated Hetzner projects of the several-projects burst")
	projectLimit := fs.Int("projects-limit", 100, "server limit of each project in the several-projects burst")
	loadScale := fs.Float64("load-scale", 1, "multiplies the page load runs' request counts")
	out := fs.String("out", "docs/benchmarks.md", "where the Markdown report goes (empty: nowhere)")
	profile := fs.Bool("profile", true, "CPU-profile the worker during the largest burst")
	webProfile := fs.String("web-profile", "", "CPU-profile this process (web app and load generator) during the fragment run at 64 clients into this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var ns []int
	for f := range strings.SplitSeq(*bursts, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return fmt.Errorf("-n: %q is not a positive number", f)
		}
		ns = append(ns, n)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary for the worker subprocess: %w", err)
	}
	dir, err := os.MkdirTemp("", "rachel-bench-")
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: logs and profiles are kept in %s\n", dir)

	report, err := bench.Run(ctx, bench.Options{
		TimeScale: *timeScale, Bursts: ns, Subscriptions: *subs, InFlight: *inFlight, LoadScale: *loadScale,
		ProjectsBurst: *projectsN, Projects: *projects, ProjectLimit: *projectLimit,
		WorkerCommand: func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, exe, "work") },
		Profile:       *profile, WebProfile: *webProfile, Dir: dir, Log: stderr,
	})
	_ = os.RemoveAll(filepath.Join(dir, "pg"))
	if err != nil {
		return fmt.Errorf("bench: %w (logs in %s)", err, dir)
	}
	report.Commit = gitCommit(ctx)
	js, err := report.JSON()
	if err != nil {
		return err
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report.Markdown()), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *out, err)
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", *out)
	}
	_, err = stdout.Write(js)
	return err
}

// gitCommit names the checked-out commit, marked dirty when the tree has uncommitted changes.
func gitCommit(ctx context.Context) string {
	b, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
