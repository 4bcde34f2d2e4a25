package hcloudsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
)

func createOpts(name, location string) hcloud.ServerCreateOpts {
	o := hcloud.ServerCreateOpts{Name: name, ServerType: &hcloud.ServerType{Name: "cx23"},
		Image: &hcloud.Image{Name: "debian-12"}, StartAfterCreate: hcloud.Ptr(false)}
	if location != "" {
		o.Location = &hcloud.Location{Name: location}
	}
	return o
}

func TestServerLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.ServerLimit = 2 })
	ctx := context.Background()
	var made []*hcloud.Server
	for _, n := range []string{"a", "b"} {
		res, _, err := b.client.Server.Create(ctx, createOpts(n, ""))
		require.NoError(t, err)
		made = append(made, res.Server)
	}
	_, _, err := b.client.Server.Create(ctx, createOpts("c", ""))
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceLimitExceeded), "%v", err)
	var herr hcloud.Error
	require.ErrorAs(t, err, &herr)
	require.Equal(t, http.StatusForbidden, herr.Response().StatusCode)
	limit, used := b.sim.ServerLimit()
	require.Equal(t, 2, limit)
	require.Equal(t, 2, used)

	// A server being deleted still counts; once it is gone there is room again.
	del, _, err := b.client.Server.DeleteWithResult(ctx, made[0])
	require.NoError(t, err)
	require.NoError(t, b.client.Action.WaitFor(ctx, del.Action))
	_, _, err = b.client.Server.Create(ctx, createOpts("c", ""))
	require.NoError(t, err)

	b.sim.SetServerLimit(0)
	_, _, err = b.client.Server.Create(ctx, createOpts("d", ""))
	require.NoError(t, err)
}

func TestCapacityFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Faults.Capacity = []CapacityFault{{Location: "fsn1", Code: "placement_error", Count: 1}, {Location: "nbg1"}}
	})
	ctx := context.Background()
	_, _, err := b.client.Server.Create(ctx, createOpts("a", "fsn1"))
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodePlacementError), "%v", err)
	_, _, err = b.client.Server.Create(ctx, createOpts("a", "nbg1"))
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable), "%v", err)
	_, _, err = b.client.Server.Create(ctx, createOpts("a", "fsn1"))
	require.NoError(t, err, "the fault was used up")
	require.Error(t, b.sim.SetFaults(Faults{Capacity: []CapacityFault{{Location: "fsn1", Code: "full"}}}))
}

func TestPowerActions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	res, _, err := b.client.Server.Create(ctx, createOpts("p", ""))
	require.NoError(t, err)
	require.NoError(t, b.client.Action.WaitFor(ctx, res.Action))
	status := func() hcloud.ServerStatus {
		s, _, err := b.client.Server.GetByID(ctx, res.Server.ID)
		require.NoError(t, err)
		return s.Status
	}
	require.Equal(t, hcloud.ServerStatusOff, status())

	a, _, err := b.client.Server.Poweron(ctx, res.Server)
	require.NoError(t, err)
	require.Equal(t, "start_server", a.Command)
	require.NoError(t, b.client.Action.WaitFor(ctx, a))
	require.Equal(t, hcloud.ServerStatusRunning, status())

	for _, act := range []func(context.Context, *hcloud.Server) (*hcloud.Action, *hcloud.Response, error){
		b.client.Server.Reboot, b.client.Server.Reset,
	} {
		a, _, err = act(ctx, res.Server)
		require.NoError(t, err)
		require.NoError(t, b.client.Action.WaitFor(ctx, a))
		require.Equal(t, hcloud.ServerStatusRunning, status())
	}
	a, _, err = b.client.Server.Shutdown(ctx, res.Server)
	require.NoError(t, err)
	require.Equal(t, "shutdown_server", a.Command)
	require.NoError(t, b.client.Action.WaitFor(ctx, a))
	require.Equal(t, hcloud.ServerStatusOff, status())

	a, _, err = b.client.Server.Poweron(ctx, res.Server)
	require.NoError(t, err)
	require.NoError(t, b.client.Action.WaitFor(ctx, a))
	a, _, err = b.client.Server.Poweroff(ctx, res.Server)
	require.NoError(t, err)
	require.Equal(t, "stop_server", a.Command)
	require.NoError(t, b.client.Action.WaitFor(ctx, a))
	require.Equal(t, hcloud.ServerStatusOff, status())

	require.NoError(t, b.sim.SetFaults(Faults{ActionFailures: []ActionFailure{{Command: "reboot_server", Count: 1}}}))
	a, _, err = b.client.Server.Reboot(ctx, res.Server)
	require.NoError(t, err)
	require.Error(t, b.client.Action.WaitFor(ctx, a))
}

func TestReadOnlyToken(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.ReadOnlyToken = "ro" })
	ro := hcloud.NewClient(hcloud.WithToken("ro"), hcloud.WithEndpoint(b.url+"/v1"))
	ctx := context.Background()
	_, err := ro.Server.All(ctx)
	require.NoError(t, err)
	_, _, err = ro.Server.Create(ctx, createOpts("x", ""))
	require.True(t, hcloud.IsError(err, codeTokenReadonly), "%v", err)
	require.Empty(t, b.sim.Servers())
}

func TestActionListHasNoMetaAndForgetsActions(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	res, _, err := b.client.Server.Create(ctx, createOpts("f", ""))
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, b.url+"/v1/actions?id=1&id="+jsonNum(res.Action.ID), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var body map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &body))
	require.NotContains(t, body, "meta")
	var acts []map[string]any
	require.NoError(t, json.Unmarshal(body["actions"], &acts))
	require.Len(t, acts, 1, "unknown ID 1 is left out")

	require.True(t, b.sim.ForgetAction(res.Action.ID))
	err = b.client.Action.WaitFor(ctx, res.Action)
	require.ErrorContains(t, err, "actions not found")
}

func jsonNum(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestActionStalls: a stalled power action keeps running and its server locked (423) for as
// long as the fault is set, only on the named server; lifting it lets the action finish. An
// unknown command is refused.
func TestActionStalls(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	var servers []*hcloud.Server
	for _, name := range []string{"held", "free"} {
		res, _, err := b.client.Server.Create(ctx, createOpts(name, ""))
		require.NoError(t, err)
		require.NoError(t, b.client.Action.WaitFor(ctx, res.Action))
		a, _, err := b.client.Server.Poweron(ctx, res.Server)
		require.NoError(t, err)
		require.NoError(t, b.client.Action.WaitFor(ctx, a))
		servers = append(servers, res.Server)
	}
	require.ErrorContains(t, b.sim.SetFaults(Faults{ActionStalls: []ActionStall{{Command: "create_server"}}}), "action stall command")
	require.NoError(t, b.sim.SetFaults(Faults{ActionStalls: []ActionStall{{Command: "shutdown_server", Server: "held"}}}))
	held, _, err := b.client.Server.Shutdown(ctx, servers[0])
	require.NoError(t, err)
	free, _, err := b.client.Server.Shutdown(ctx, servers[1])
	require.NoError(t, err)
	require.NoError(t, b.client.Action.WaitFor(ctx, free), "the other server's shutdown is not held")
	// Held: however often it is looked at, the action runs and the server is locked.
	for range 3 {
		a, _, err := b.client.Action.GetByID(ctx, held.ID)
		require.NoError(t, err)
		require.Equal(t, hcloud.ActionStatusRunning, a.Status)
		_, _, err = b.client.Server.Reset(ctx, servers[0])
		require.True(t, hcloud.IsError(err, hcloud.ErrorCodeLocked), "%v", err)
	}
	require.NoError(t, b.sim.SetFaults(Faults{}))
	require.NoError(t, b.client.Action.WaitFor(ctx, held))
	s, _, err := b.client.Server.GetByID(ctx, servers[0].ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusOff, s.Status)
}
