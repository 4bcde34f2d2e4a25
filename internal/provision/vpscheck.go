package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rachelcloud/admin/internal/cloudinit"
)

// cloudInitCommand asks cloud-init for its own result, waiting until it has finished. It needs
// no root: status.json and result.json under /run/cloud-init are world-readable.
const cloudInitCommand = "cloud-init status --wait --format json"

// cloudInitResult is the part of `cloud-init status --format json` the worker reads
// (cloudinit/cmd/status.py: status is "not run", "running", "done", "error" or "disabled";
// errors are the modules' own messages).
type cloudInitResult struct {
	Status string   `json:"status"`
	Detail string   `json:"detail"`
	Errors []string `json:"errors"`
}

// cloudInitStatus reads cloud-init's result on the VPS. cloud-init exits 1 when its status is
// error, so the output is parsed whatever the exit status.
func cloudInitStatus(ctx context.Context, c *vpsConn) (cloudInitResult, error) {
	out, runErr := c.Run(ctx, cloudInitCommand, nil)
	var res cloudInitResult
	if i := bytes.IndexByte(out, '{'); i >= 0 {
		if err := json.Unmarshal(out[i:], &res); err == nil && res.Status != "" {
			return res, nil
		}
	}
	if runErr != nil {
		return res, runErr
	}
	return res, fmt.Errorf("cloud-init status printed no result: %.200q", out)
}

// message renders cloud-init's errors for the event log and status page.
func (r cloudInitResult) message() string {
	if len(r.Errors) > 0 {
		return strings.Join(r.Errors, "; ")
	}
	if r.Detail != "" {
		return r.Detail
	}
	return "status: " + r.Status
}

// unitState is what `systemctl show` reports about the assistant's unit ([cloudinit.UnitProperties]).
type unitState struct {
	Active, Sub, Result string
	ExecMainStatus      int
	NRestarts           int
	EnteredMonotonic    string // ActiveEnterTimestampMonotonic: changes with every start
}

func parseUnitState(out []byte) (unitState, error) {
	props := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			props[k] = v
		}
	}
	for _, p := range cloudinit.UnitProperties {
		if _, ok := props[p]; !ok {
			return unitState{}, fmt.Errorf("systemctl show printed no %s", p)
		}
	}
	st := unitState{Active: props["ActiveState"], Sub: props["SubState"], Result: props["Result"],
		EnteredMonotonic: props["ActiveEnterTimestampMonotonic"]}
	var err1, err2 error
	st.ExecMainStatus, err1 = strconv.Atoi(props["ExecMainStatus"])
	st.NRestarts, err2 = strconv.Atoi(props["NRestarts"])
	if err1 != nil || err2 != nil {
		return unitState{}, fmt.Errorf("systemctl show: ExecMainStatus %q, NRestarts %q are not numbers", props["ExecMainStatus"], props["NRestarts"])
	}
	return st, nil
}

// failing reports whether systemd shows the unit failed or waiting to be restarted.
func (s unitState) failing() bool {
	return s.Active == "failed" || s.Sub == "auto-restart" || s.Sub == "failed"
}

func (s unitState) running() bool { return s.Active == "active" && s.Sub == "running" }

// describe says what systemd says, in its own terms.
func (s unitState) describe() string {
	msg := fmt.Sprintf("%s is %s (%s), result %s", cloudinit.UnitName, s.Active, s.Sub, s.Result)
	if s.ExecMainStatus != 0 {
		msg += fmt.Sprintf(", main process exited with status %d", s.ExecMainStatus)
		if name, ok := systemdExitStatus[s.ExecMainStatus]; ok {
			msg += "/" + name
		}
	}
	if s.NRestarts > 0 {
		msg += fmt.Sprintf(", restarted %d times", s.NRestarts)
	}
	return msg
}

// systemdExitStatus names the exit statuses systemd itself uses when it cannot start a
// program (systemd's src/basic/exit-status.c), as `systemctl status` prints them.
var systemdExitStatus = map[int]string{
	200: "CHDIR", 201: "NICE", 202: "FDS", 203: "EXEC", 204: "MEMORY", 205: "LIMITS", 206: "OOM_ADJUST",
	207: "SIGNAL_MASK", 208: "STDIN", 209: "STDOUT", 210: "CHROOT", 211: "IOPRIO", 212: "TIMERSLACK",
	213: "SECUREBITS", 214: "SETSCHEDULER", 215: "CPUAFFINITY", 216: "GROUP", 217: "USER",
	218: "CAPABILITIES", 219: "CGROUP", 220: "SETSID", 221: "CONFIRM", 222: "STDERR", 224: "PAM",
	225: "NETWORK", 226: "NAMESPACE", 227: "NO_NEW_PRIVILEGES", 228: "SECCOMP", 229: "SELINUX_CONTEXT",
	230: "PERSONALITY", 231: "APPARMOR_PROFILE", 232: "ADDRESS_FAMILIES", 233: "RUNTIME_DIRECTORY",
	235: "CHOWN", 236: "SMACK_PROCESS_LABEL", 237: "KEYRING", 238: "STATE_DIRECTORY",
	239: "CACHE_DIRECTORY", 240: "LOGS_DIRECTORY", 241: "CONFIGURATION_DIRECTORY", 242: "NUMA_POLICY",
	243: "CREDENTIALS", 245: "BPF",
}

// errUnitFailed wraps systemd's account of a unit that does not stay up.
type errUnitFailed struct{ state unitState }

func (e *errUnitFailed) Error() string { return e.state.describe() }

// waitUnitStable polls the unit after a restart until it has been running, in one and the same
// start and without an automatic restart, for stable. It returns *errUnitFailed when systemd
// shows it failed or restarting, and another error when it is not up within a bound (or SSH
// fails).
func waitUnitStable(ctx context.Context, c *vpsConn, stable time.Duration) error {
	show := "sudo " + cloudinit.ShowCommand
	poll := max(stable/5, 10*time.Millisecond)
	giveUp := time.Now().Add(3 * stable)
	var since time.Time
	var seen unitState
	for {
		out, err := c.Run(ctx, show, nil)
		if err != nil {
			return err
		}
		st, err := parseUnitState(out)
		if err != nil {
			return err
		}
		switch {
		case st.failing(), st.Active == "inactive":
			// After a restart an inactive unit exited (or a Condition= failed): it does not run.
			return &errUnitFailed{st}
		case st.running() && !since.IsZero() && (st.EnteredMonotonic != seen.EnteredMonotonic || st.NRestarts != seen.NRestarts):
			// It went down and came back between two looks: a crash loop faster than the poll.
			return &errUnitFailed{st}
		case st.running() && since.IsZero():
			since, seen = time.Now(), st
		case st.running() && time.Since(since) >= stable:
			return nil
		case !st.running():
			since = time.Time{}
		}
		if time.Now().After(giveUp) {
			return fmt.Errorf("%s is not up for %s yet: %s", cloudinit.UnitName, stable, st.describe())
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
