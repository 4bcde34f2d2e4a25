package hcloudsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Duration is a time.Duration written in JSON as a Go duration string ("5s", "1m30s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("parse duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration must be a string like \"5s\" or a number of seconds: %w", err)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Faults switches on the misbehaviour the app must survive. The zero value is a well-behaved
// API. Route fields name a route as "METHOD /path/template" (for example "POST /servers" or
// "GET /actions"); an empty Route matches every API route.
type Faults struct {
	// Errors answers matching requests with a 5xx instead of handling them.
	Errors []ErrorFault `json:"errors,omitempty"`
	// RateLimitStorm answers the next N API requests with 429 rate_limit_exceeded whatever
	// the bucket holds; it counts down as requests arrive.
	RateLimitStorm int `json:"rate_limit_storm,omitempty"`
	// Slow delays matching responses (real time, not scaled), to exercise client timeouts.
	Slow []SlowFault `json:"slow,omitempty"`
	// ActionFailures makes server actions end in status error.
	ActionFailures []ActionFailure `json:"action_failures,omitempty"`
	// ActionStalls keeps power actions running (their server locked) until the fault is lifted.
	ActionStalls []ActionStall `json:"action_stalls,omitempty"`
	// Servers sets faults of the simulated machines, matched by server name.
	Servers []ServerFault `json:"servers,omitempty"`
	// Capacity makes POST /servers fail for lack of capacity in a location.
	Capacity []CapacityFault `json:"capacity,omitempty"`
	// Seed, when set, reseeds the PRNG that decides probabilistic faults.
	Seed *uint64 `json:"seed,omitempty"`
}

// ErrorFault answers requests of Route with Status (500, 502, 503 or 504).
type ErrorFault struct {
	Route  string `json:"route,omitempty"`
	Status int    `json:"status"`
	// Probability of answering with the error; 0 means always.
	Probability float64 `json:"probability,omitempty"`
	// Count of errors to inject before the fault switches itself off; 0 means unlimited.
	Count int `json:"count,omitempty"`
}

// ActionStall keeps the power actions of Command ("stop_server", "shutdown_server",
// "reboot_server", "reset_server", "start_server" of a power-on) running while the fault is set,
// on the server named Server (empty: every server): Hetzner's actions take as long as they take,
// and a server stays locked (423) while one runs. Lifting the fault lets them finish within one
// more action duration.
type ActionStall struct {
	Command string `json:"command"`
	Server  string `json:"server,omitempty"`
}

// SlowFault delays requests of Route by Delay.
type SlowFault struct {
	Route       string   `json:"route,omitempty"`
	Delay       Duration `json:"delay"`
	Probability float64  `json:"probability,omitempty"`
	Count       int      `json:"count,omitempty"`
}

// ActionFailure makes actions with Command ("create_server", "start_server",
// "delete_server") fail with Code (default resource_unavailable).
type ActionFailure struct {
	Command string `json:"command"`
	// Server restricts the fault to one server name; empty means every server.
	Server  string `json:"server,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Count   int    `json:"count,omitempty"`
}

// CapacityFault answers POST /servers for Location (and ServerType, if set) with Code:
// resource_unavailable (412, the default) or placement_error (422) — what Hetzner answers when a
// location has no room for a type right now.
type CapacityFault struct {
	Location   string `json:"location"`
	ServerType string `json:"server_type,omitempty"`
	Code       string `json:"code,omitempty"`
	// Count of refusals before the fault switches itself off; 0 means unlimited.
	Count int `json:"count,omitempty"`
}

// ServerFault configures the simulated VPS of servers named Server (empty: every server). It
// is read when the machine starts, so set it before the server reaches running.
type ServerFault struct {
	Server string `json:"server,omitempty"`
	// LoseCallback: cloud-init never sends the phone_home callback.
	LoseCallback bool `json:"lose_callback,omitempty"`
	// SSHDelay: sshd starts accepting this much simulated time late.
	SSHDelay Duration `json:"ssh_delay,omitempty"`
	// SwapHostKey: sshd presents a different host key than the seeded one.
	SwapHostKey bool `json:"swap_host_key,omitempty"`
	// NeverBoot: the VPS's operating system does not boot (on a real VPS its init on the disk is
	// damaged, so every power-on fails); the server goes `off` right after reaching running, and
	// nothing answers at its address.
	NeverBoot bool `json:"never_boot,omitempty"`
}

func routeMatches(faultRoute, route string) bool {
	return faultRoute == "" || strings.EqualFold(faultRoute, route)
}

// validate rejects faults that cannot be injected, so a typo in /_sim/faults is not silently
// a well-behaved simulator.
func (f Faults) validate() error {
	for _, e := range f.Errors {
		if _, ok := statusCodes[e.Status]; !ok || e.Status == 429 {
			return fmt.Errorf("error fault status %d: want 500, 502, 503 or 504", e.Status)
		}
		if e.Probability < 0 || e.Probability > 1 {
			return fmt.Errorf("error fault probability %v: want 0..1", e.Probability)
		}
	}
	for _, a := range f.ActionFailures {
		switch a.Command {
		case "create_server", "start_server", "delete_server", "stop_server", "shutdown_server", "reboot_server", "reset_server":
		default:
			return fmt.Errorf("action failure command %q: want create_server, start_server, delete_server, stop_server, shutdown_server, reboot_server or reset_server", a.Command)
		}
	}
	for _, a := range f.ActionStalls {
		switch a.Command {
		case "start_server", "stop_server", "shutdown_server", "reboot_server", "reset_server":
		default:
			return fmt.Errorf("action stall command %q: want start_server, stop_server, shutdown_server, reboot_server or reset_server", a.Command)
		}
	}
	for _, c := range f.Capacity {
		if c.Location == "" {
			return fmt.Errorf("capacity fault: location is required")
		}
		if c.Code != "" && c.Code != string(hcloud.ErrorCodeResourceUnavailable) && c.Code != string(hcloud.ErrorCodePlacementError) {
			return fmt.Errorf("capacity fault code %q: want resource_unavailable or placement_error", c.Code)
		}
	}
	if f.RateLimitStorm < 0 {
		return fmt.Errorf("rate_limit_storm %d: want >= 0", f.RateLimitStorm)
	}
	return nil
}
