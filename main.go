// Command rachel-admin is the Rachel Cloud operator service: the admin web app, the provisioning
// worker, migrations, the Hetzner simulator and the benchmarks, as subcommands of one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/rachelcloud/admin/internal/hcloudsim"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":     {"run the web app (the Procfile's web)", runServe},
		"work":      {"run the provisioning worker (the Procfile's worker)", runWork},
		"migrate":   {"apply database migrations and exit (the Procfile's release)", runMigrate},
		"dev":       {"run everything in one process: private PostgreSQL, simulator, web and worker", runDev},
		"sim":       {"run the Hetzner Cloud API simulator standalone", hcloudsim.Main},
		"admin":     {"create an admin (password from stdin, or generated and printed once)", runAdmin},
		"rekey":     {"re-encrypt every stored secret under the keyring's primary key", runRekey},
		"bench":     {"run the benchmarks and write docs/benchmarks.md", runBench},
		"preflight": {"check the configuration against Hetzner as it is today (non-zero exit and every reason, one a line)", runPreflight},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h printed the usage
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return errors.New("no subcommand given")
		}
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: rachel-admin <subcommand> [flags]\n\nsubcommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-9s %s\n", n, cmds[n].summary)
	}
	b.WriteString("\nConfiguration comes from the environment; see README.md. `rachel-admin <subcommand> -h` for flags.\n")
	_, _ = io.WriteString(w, b.String())
}
