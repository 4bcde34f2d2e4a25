package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/provision"
)

// runPreflight checks the configuration against Hetzner as it is today and prints every reason
// it cannot work, one a line; the exit status is non-zero when there is one. With DATABASE_URL
// the result is also stored, as the worker stores it at start (the dashboard shows it, and
// Provision is refused while it failed).
func runPreflight(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("preflight", "Checks that provisioning can work: each Hetzner project's token works and may write; each plan's server\n"+
		"type exists, is not deprecated or unavailable in its locations and fits its image's architecture;\n"+
		"PUBLIC_BASE_URL is reachable from a VPS; the firewall admits SSH; VPS_SSH_PORT matches the\n"+
		"cloud-config. Prints every problem, one a line, and exits non-zero when there is one.", stderr,
		"HCLOUD_TOKEN", "HCLOUD_TOKEN_FILE", "HCLOUD_PROJECTS", "HCLOUD_PROJECTS_FILE", "HCLOUD_ENDPOINT", "PUBLIC_BASE_URL", "HCLOUD_SERVER_TYPE", "HCLOUD_IMAGE",
		"HCLOUD_LOCATION", "HCLOUD_PLAN_PERSONAL", "HCLOUD_PLAN_PLUS", "HCLOUD_PLAN_PRO", "SSH_ALLOWED_SOURCES", "VPS_SSH_PORT", "DATABASE_URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return err
	}
	if err := cfg.Need("HCLOUD_TOKEN"); err != nil {
		return err
	}
	// Every project's token is checked.
	var projects []provision.HCloudProject
	for _, p := range cfg.HCloudProjects() {
		hc, err := provision.NewHCloudClientFor(cfg, p, nil, nil)
		if err != nil {
			return err
		}
		projects = append(projects, provision.HCloudProject{Name: p.Name, Client: hc})
	}
	var reasons []string
	if cfg.DatabaseURL != "" {
		pool, err := database.Open(ctx, cfg.DatabaseURL, 2)
		if err != nil {
			return err
		}
		defer pool.Close()
		reasons, err = provision.RunPreflightProjects(ctx, pool, cfg, projects)
		if err != nil {
			return err
		}
	} else if reasons, err = provision.PreflightProjects(ctx, cfg, projects); err != nil {
		return fmt.Errorf("preflight incomplete: %w", err)
	}
	for _, r := range reasons {
		fmt.Fprintln(stdout, r)
	}
	if len(reasons) > 0 {
		return errors.New("preflight failed: provisioning cannot work with this configuration")
	}
	fmt.Fprintln(stdout, "preflight passed")
	return nil
}
