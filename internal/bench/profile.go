package bench

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// EnvCPUProfile names the variable that makes a process profile its CPU between two SIGUSR1s
// (see [ProfileOnSignal]). The run sets it for the worker subprocess.
const EnvCPUProfile = "RACHEL_BENCH_CPUPROFILE"

// ProfileOnSignal toggles a CPU profile on each SIGUSR1: the first starts it, the second stops it
// and writes path. The main package calls it when EnvCPUProfile is set, so the worker subprocess
// (the same binary) is profiled over exactly one phase of the run.
func ProfileOnSignal(path string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		var f *os.File
		for range ch {
			if f == nil {
				var err error
				if f, err = os.Create(path + ".tmp"); err != nil {
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					f = nil
				}
				continue
			}
			pprof.StopCPUProfile()
			if f.Close() == nil {
				_ = os.Rename(path+".tmp", path) // whoever waits for path sees a whole profile
			}
			f = nil
		}
	}()
}

// topOfProfile waits for the profile at path and summarises it with `go tool pprof -top`; without
// a Go toolchain it only records where the profile is.
func topOfProfile(ctx context.Context, path, phase string) *Profile {
	p := &Profile{Phase: phase, Path: path}
	_ = waitFor(ctx, nil, 30*time.Second, 100*time.Millisecond, "profile", func() (bool, error) {
		_, err := os.Stat(path)
		return err == nil, nil
	})
	goBin, err := exec.LookPath("go")
	if err != nil {
		p.Top = []string{"(no go toolchain on PATH to summarise the profile; it is at " + path + ")"}
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-cum", "-nodecount=22", path)
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		p.Top = []string{"(go tool pprof failed: " + err.Error() + "; the profile is at " + path + ")"}
		return p
	}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		p.Top = append(p.Top, line)
		if f := strings.Fields(line); len(f) == 6 && f[5] == "crypto/rsa.GenerateKey" {
			p.KeyGenShare = f[4]
		}
	}
	return p
}

// startCPUProfile profiles this process into path until the returned function is called.
func startCPUProfile(path string) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
