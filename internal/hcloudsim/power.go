package hcloudsim

import (
	"net/http"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// powerDuration is how long a power action other than poweron takes (simulated time).
const powerDuration = 3 * time.Second

// powerCommands maps POST /servers/{id}/actions/X to the command of the action it answers, as
// the spec's examples name them.
var powerCommands = map[string]string{
	"poweron": "start_server", "poweroff": "stop_server", "shutdown": "shutdown_server",
	"reboot": "reboot_server", "reset": "reset_server",
}

// powerAction answers the power actions with a 201 and their action, changing the status the
// way the spec describes them:
//   - poweron: off → starting → running (the VPS boots its kept disk; a running server stays
//     running);
//   - poweroff (cut the power) and shutdown (ACPI): running → stopping → off, the VPS goes down;
//   - reboot (ACPI) and reset (power cycle): the server stays running; the simulated VPS is kept
//     as it is (a reboot does not re-run cloud-init's per-instance modules on a real VPS either).
//
// A server in a transition (initializing, starting, stopping, deleting) is locked (423), as
// Hetzner locks a server while an action runs on it. ActionFailure faults apply to the commands.
func (s *Simulator) powerAction(kind string) apiHandler {
	command := powerCommands[kind]
	return func(w http.ResponseWriter, r *http.Request) *apiError {
		id, aerr := pathID(r, "id", "server")
		if aerr != nil {
			return aerr
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		sv, ok := s.servers[id]
		if !ok {
			return errNotFound("server")
		}
		if sv.status != hcloud.ServerStatusRunning && sv.status != hcloud.ServerStatusOff {
			return &apiError{status: http.StatusLocked, code: hcloud.ErrorCodeLocked, message: "server is locked by a running action (status " + string(sv.status) + ")"}
		}
		d := powerDuration
		if kind == "poweron" {
			d = s.cfg.StartDuration
		}
		a := s.newAction(command, d, serverRef(sv.id))
		was := sv.status
		switch {
		case kind == "poweron" && was == hcloud.ServerStatusOff:
			sv.status = hcloud.ServerStatusStarting
			s.afterUnstalled(d, a, sv, func() { s.startDone(sv, a) })
		case (kind == "poweroff" || kind == "shutdown") && was == hcloud.ServerStatusRunning:
			sv.status = hcloud.ServerStatusStopping
			// The power goes; a real VPS's disk stays for the next power-on.
			s.stopMachine(sv)
			s.afterUnstalled(d, a, sv, func() { s.powerDone(sv, a, hcloud.ServerStatusOff) })
		default:
			// Nothing to change (already in the wanted state, or a reboot/reset): the action runs
			// its course and the status stays.
			s.afterUnstalled(d, a, sv, func() { s.powerDone(sv, a, "") })
		}
		writeJSON(w, http.StatusCreated, struct {
			Action schema.Action `json:"action"`
		}{a.wire()})
		return nil
	}
}

// afterUnstalled runs done after the simulated duration d, or, while an ActionStall fault holds
// the action's command on sv, looks again every d; mu must be held.
func (s *Simulator) afterUnstalled(d time.Duration, a *action, sv *server, done func()) {
	s.after(d, func() {
		s.mu.Lock()
		stalled := !sv.gone && s.actionStalled(a.Command, sv.name)
		if stalled {
			s.afterUnstalled(d, a, sv, done)
		}
		s.mu.Unlock()
		if !stalled {
			done()
		}
	})
}

// powerDone ends a power action; status, when set, is the server's new status.
func (s *Simulator) powerDone(sv *server, a *action, status hcloud.ServerStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv.gone {
		s.finish(a, "server_error", "server was deleted")
		return
	}
	if code, msg := s.actionFailure(a.Command, sv.name); code != "" {
		s.finish(a, code, msg)
		if status != "" {
			sv.status = hcloud.ServerStatusOff // a failed stop leaves the machine down already
		}
		return
	}
	s.finish(a, "", "")
	if status != "" {
		sv.status = status
	}
}
