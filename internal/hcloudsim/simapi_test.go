package hcloudsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
)

// TestFaultsAreValidated: a fault that cannot be injected is refused with the reason, and the
// faults in force stay as they were (a typo must not leave a well-behaved simulator).
func TestFaultsAreValidated(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	require.NoError(t, b.sim.SetFaults(Faults{RateLimitStorm: 2}))
	for body, want := range map[string]string{
		`{"errors":[{"status":429}]}`:                            "error fault status 429: want 500, 502, 503 or 504",
		`{"errors":[{"status":503,"probability":1.5}]}`:          "probability 1.5: want 0..1",
		`{"action_failures":[{"command":"rebuild_server"}]}`:     `action failure command "rebuild_server"`,
		`{"capacity":[{"code":"resource_unavailable"}]}`:         "capacity fault: location is required",
		`{"capacity":[{"location":"fsn1","code":"sold_out"}]}`:   `capacity fault code "sold_out"`,
		`{"rate_limit_storm":-1}`:                                "rate_limit_storm -1: want >= 0",
		`{"servers":[{"server":"x","ssh_delay":"soon"}]}`:        `parse duration "soon"`,
		`{"servers":[{"server":"x","ssh_delay":{"seconds":5}}]}`: "a number of seconds",
	} {
		r := b.do(t, "PUT", "/_sim/faults", body)
		if strings.Contains(want, "duration") || strings.Contains(want, "seconds") {
			require.Equal(t, http.StatusBadRequest, r.status, body)
			require.Equal(t, "json_error", r.errorCode(t))
		} else {
			require.Equal(t, http.StatusUnprocessableEntity, r.status, body)
			require.Equal(t, "invalid_input", r.errorCode(t))
		}
		require.Contains(t, r.body["error"].(map[string]any)["message"], want, body)
		require.Equal(t, 2, b.sim.Faults().RateLimitStorm, "unchanged after %s", body)
	}

	// A duration may be given in seconds; POST is PUT's synonym; GET shows what is in force.
	r := b.do(t, "POST", "/_sim/faults", `{"servers":[{"server":"web-1","ssh_delay":1.5,"lose_callback":true}]}`)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, Duration(1500*time.Millisecond), b.sim.Faults().Servers[0].SSHDelay)
	r = b.do(t, "GET", "/_sim/faults", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "1.5s", r.body["servers"].([]any)[0].(map[string]any)["ssh_delay"], "written as a Go duration")

	// UpdateFaults edits under the lock and refuses what SetFaults refuses.
	require.NoError(t, b.sim.UpdateFaults(func(f *Faults) { f.RateLimitStorm = 1 }))
	require.Equal(t, 1, b.sim.Faults().RateLimitStorm)
	require.Len(t, b.sim.Faults().Servers, 1, "the rest is kept")
	err := b.sim.UpdateFaults(func(f *Faults) { f.Errors = append(f.Errors, ErrorFault{Status: 418}) })
	require.ErrorContains(t, err, "update faults: error fault status 418")
	require.Empty(t, b.sim.Faults().Errors)
}

func TestSimClockLimitsAndServers(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PUT", "/_sim/clock", `{}`, 422, "Missing data for required field."},
		{"PUT", "/_sim/clock", `{"now": "yesterday"}`, 400, "json_error"},
		{"PUT", "/_sim/limits", `{"servers": -1}`, 422, "must be 0 (no limit) or more"},
		{"PUT", "/_sim/limits", `[1]`, 422, "invalid_input"},
		{"PUT", "/_sim/rate_limit", `{"remaining": "all"}`, 422, "invalid_input"},
		{"GET", "/_sim/servers/999", "", 404, "not_found"},
		{"POST", "/_sim/servers/999/delete_behind_back", "", 404, "not_found"},
		{"GET", "/_sim/nothing", "", 404, "simulator endpoints: GET|DELETE /_sim/stats"},
	} {
		r := b.do(t, tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, r.status, "%s %s: %s", tc.method, tc.path, r.raw)
		require.Contains(t, r.raw, tc.want, "%s %s", tc.method, tc.path)
	}

	r := b.do(t, "PUT", "/_sim/clock", `{"now": "2025-11-01T00:00:00Z"}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body["now"], "2025-11-01T00:00:0", "the clock runs on from the time set")
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "dated", StartAfterCreate: hcloud.Ptr(false)})
	require.WithinDuration(t, time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), res.Server.Created, time.Minute, "timestamps follow the clock")
	r = b.do(t, "GET", "/_sim/clock", "")
	require.Contains(t, r.body["now"], "2025-11-01T00:0")

	r = b.do(t, "PUT", "/_sim/limits", `{"servers": 1}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, map[string]any{"servers": 1.0, "servers_used": 1.0}, r.body)
	_, _, err := b.client.Server.Create(t.Context(), hcloud.ServerCreateOpts{Name: "second", ServerType: &hcloud.ServerType{Name: "cx23"},
		Image: &hcloud.Image{Name: "debian-12"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceLimitExceeded), "got %v", err)

	r = b.do(t, "GET", fmt.Sprintf("/_sim/servers/%d", res.Server.ID), "")
	require.Equal(t, http.StatusOK, r.status)
	view := r.body["server"].(map[string]any)
	require.Equal(t, "dated", view["name"])
	r = b.do(t, "POST", fmt.Sprintf("/_sim/servers/%d/delete_behind_back", res.Server.ID), "")
	require.Equal(t, http.StatusNoContent, r.status)
	got, _, err := b.client.Server.GetByID(t.Context(), res.Server.ID)
	require.NoError(t, err)
	require.Nil(t, got, "gone from the API too")
	r = b.do(t, "GET", "/_sim/limits", "")
	require.Equal(t, map[string]any{"servers": 1.0, "servers_used": 0.0}, r.body, "the slot is free again")

	fw, _, err := b.client.Firewall.Create(t.Context(), hcloud.FirewallCreateOpts{Name: "fw"})
	require.NoError(t, err)
	r = b.do(t, "GET", "/_sim/firewalls", "")
	raw, err := json.Marshal(r.body["firewalls"])
	require.NoError(t, err)
	require.Contains(t, string(raw), fmt.Sprint(fw.Firewall.ID))
	r = b.do(t, "DELETE", "/_sim/stats", "")
	require.Equal(t, http.StatusNoContent, r.status)
	require.Zero(t, b.sim.RequestCount("", 0))
}
