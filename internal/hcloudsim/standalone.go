package hcloudsim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Main runs the simulator standalone (the app's "sim" subcommand): it parses args, serves until
// ctx is cancelled and then shuts down. "-h" prints the flags to stderr and returns nil.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	listen := fs.String("listen", "127.0.0.1:8090", "address to serve the API on")
	fs.StringVar(&cfg.Token, "token", "", "bearer token clients must send (empty: any token)")
	fs.Float64Var(&cfg.TimeScale, "time-scale", 1, "factor applied to every simulated duration (0.01: 100x faster)")
	fs.DurationVar(&cfg.CreateDuration, "create", DefaultCreateDuration, "simulated duration of create_server")
	fs.DurationVar(&cfg.StartDuration, "start", DefaultStartDuration, "simulated duration of start_server")
	fs.DurationVar(&cfg.CloudInitDuration, "cloud-init", DefaultCloudInitDuration, "simulated time from running to the phone_home callback")
	fs.DurationVar(&cfg.DeleteDuration, "delete", DefaultDeleteDuration, "simulated duration of delete_server")
	fs.IntVar(&cfg.RateLimit, "rate-limit", 3600, "rate-limit bucket size (requests)")
	fs.DurationVar(&cfg.RateLimitRefill, "rate-refill", 0, "real time to earn one request back (default 1s)")
	fs.IntVar(&cfg.SSHPort, "ssh-port", DefaultSSHPort, "port of each simulated VPS's sshd on its own 127.x.y.z address")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the fault PRNG (0: random)")
	fs.StringVar(&cfg.ReadOnlyToken, "readonly-token", "", "a token with read permission only (writes answer 401 token_readonly)")
	fs.IntVar(&cfg.ServerLimit, "server-limit", 0, "servers the project may hold (0: no limit)")
	fs.StringVar(&cfg.Name, "name", "default", "name of the project of -token")
	fs.Func("project", "a further project `NAME=TOKEN[:SERVER_LIMIT]` (repeatable; needs -token): its own servers, keys, firewalls, rate limit and server limit", func(v string) error {
		p, err := ParseProjectFlag(v)
		if err != nil {
			return err
		}
		cfg.Projects = append(cfg.Projects, p)
		return nil
	})
	today := fs.String("now", "", "simulated today as RFC 3339 (default: the real clock), e.g. to see retired server types")
	faults := fs.String("faults", "", "initial faults as JSON, or @FILE (same shape as PUT /_sim/faults)")
	verbose := fs.Bool("v", false, "log every simulated VPS event at debug level")
	fs.StringVar(&cfg.VPS, "vps", VPSEmulated, "what runs behind a server: emulated (in-process imitation) or real (a Debian 12 container per server; needs root and systemd-container)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("parse simulator flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *faults != "" {
		raw := []byte(*faults)
		if name, ok := strings.CutPrefix(*faults, "@"); ok {
			b, err := os.ReadFile(name)
			if err != nil {
				return fmt.Errorf("read faults file: %w", err)
			}
			raw = b
		}
		if err := json.Unmarshal(raw, &cfg.Faults); err != nil {
			return fmt.Errorf("parse -faults: %w", err)
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	sim, err := New(cfg)
	if err != nil {
		return err
	}
	if *today != "" {
		t, err := time.Parse(time.RFC3339, *today)
		if err != nil {
			_ = sim.Close()
			return fmt.Errorf("parse -now: %w", err)
		}
		sim.SetNow(t)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	if err := sim.Serve(ln); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Hetzner Cloud API simulator listening: HCLOUD_ENDPOINT=%s\n", sim.Endpoint())
	if len(cfg.Projects) > 0 {
		names := []string{}
		for _, p := range sim.Projects() {
			names = append(names, p.Name())
		}
		fmt.Fprintf(stdout, "projects (one token each): %s\n", strings.Join(names, ", "))
	}
	<-ctx.Done()
	if err := sim.Close(); err != nil {
		return fmt.Errorf("close simulator: %w", err)
	}
	return nil
}

// ParseProjectFlag reads `NAME=TOKEN[:SERVER_LIMIT]`, the sim command's -project flag.
func ParseProjectFlag(v string) (ProjectConfig, error) {
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" || rest == "" {
		return ProjectConfig{}, errors.New("want NAME=TOKEN[:SERVER_LIMIT]")
	}
	p := ProjectConfig{Name: name, Token: rest}
	if tok, lim, ok := strings.Cut(rest, ":"); ok {
		n, err := strconv.Atoi(lim)
		if err != nil || n < 0 || tok == "" {
			return ProjectConfig{}, fmt.Errorf("project %s: want NAME=TOKEN[:SERVER_LIMIT] with a number of servers", name)
		}
		p.Token, p.ServerLimit = tok, n
	}
	return p, nil
}
