package vps

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// cmdCloudInit simulates `cloud-init status [--wait] [--long] [--format json|tabular]` as
// cloud-init 22.4's cmd/status.py prints it: exit status 1 when the status is error.
func cmdCloudInit(p *proc, args []string) int {
	if len(args) == 0 || args[0] != "status" {
		p.errf("cloud-init: only `cloud-init status` is simulated")
		return 2
	}
	opts, rest, err := parseFlags("cloud-init status", args[1:], map[string]string{"--format": "format"},
		map[string]string{"-w": "wait", "--wait": "wait", "-l": "long", "--long": "long"})
	if err != nil || len(rest) > 0 {
		p.errf("usage: cloud-init status [-h] [--format {json,tabular,yaml}] [-l] [-w]")
		return 2
	}
	if opts["wait"] != "" {
		select {
		case <-p.m.finalDone:
		case <-p.ctx.Done():
			return 1
		}
	}
	m := p.m
	m.mu.Lock()
	st := m.state
	errs := slices.Clone(st.CloudInitErrors)
	m.mu.Unlock()
	// As cloud-init 22.4 prints it (cloudinit/cmd/status.py): last_update is the latest stage
	// event; the detail is the datasource once known, or the errors.
	status, detail := "running", "Running in stage: modules-final"
	last := st.StartedAt.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	if st.CloudInitDone {
		status, detail = "done", "DataSourceHetzner"
		last = st.CloudInitDoneAt.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	}
	if len(errs) > 0 {
		status, detail = "error", strings.Join(errs, "\n")
	}
	if errs == nil {
		errs = []string{}
	}
	switch opts["format"] {
	case "json":
		out := map[string]any{"boot_status_code": "enabled-by-generator", "datasource": "hetzner",
			"detail": detail, "errors": errs, "last_update": last, "status": status}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(p.stdout, string(b))
	case "", "tabular":
		fmt.Fprintf(p.stdout, "status: %s\n", status)
		if opts["long"] != "" {
			fmt.Fprintf(p.stdout, "boot_status_code: enabled-by-generator\nlast_update: %s\ndetail:\n%s\n", last, detail)
		}
	default:
		p.errf("cloud-init status: --format %s is not simulated", opts["format"])
		return 2
	}
	if status == "error" {
		return 1
	}
	return 0
}
