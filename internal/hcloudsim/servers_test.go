package hcloudsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/testkit"
)

func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	// A delete long enough (200 ms real) to observe the deleting status.
	b := setup(t, func(c *Config) { c.DeleteDuration = 200 * time.Second })
	ctx := context.Background()
	key := b.createKey(t, "rachel-key")
	fw, _, err := b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "ssh-only", Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: hcloud.Ptr("22"),
		SourceIPs: mustCIDRs(t, "0.0.0.0/0", "::/0"),
	}}})
	require.NoError(t, err)

	res := b.createServer(t, hcloud.ServerCreateOpts{
		Name: "rachel-1", SSHKeys: []*hcloud.SSHKey{key}, Location: &hcloud.Location{Name: "nbg1"},
		UserData: "#cloud-config\n", Labels: map[string]string{"app": "rachel", "subscription": "1"},
		Firewalls: []*hcloud.ServerCreateFirewall{{Firewall: *fw.Firewall}},
	})
	require.Empty(t, res.RootPassword, "no root password when a key is given")
	require.Equal(t, "create_server", res.Action.Command)
	require.Equal(t, hcloud.ActionStatusRunning, res.Action.Status)
	require.Len(t, res.NextActions, 1)
	require.Equal(t, "start_server", res.NextActions[0].Command)
	sv := res.Server
	require.Equal(t, hcloud.ServerStatusInitializing, sv.Status)
	require.Equal(t, "nbg1", sv.Location.Name)
	require.Equal(t, "cx23", sv.ServerType.Name)
	require.Equal(t, "debian-12", sv.Image.Name)
	ip := sv.PublicNet.IPv4.IP
	require.True(t, ip.IsLoopback(), "public IPv4 %s is the VPS's loopback address", ip)
	require.NotEqual(t, "127.0.0.1", ip.String())
	require.Len(t, sv.PublicNet.Firewalls, 1)
	require.Equal(t, fw.Firewall.ID, sv.PublicNet.Firewalls[0].Firewall.ID)

	require.NoError(t, b.client.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...))
	got, _, err := b.client.Server.GetByID(ctx, sv.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusRunning, got.Status)
	testkit.Eventually(t, "the VPS starts once the server runs", func() bool { return b.sim.Machine(sv.ID) != nil })
	started := b.startedConfigs()
	require.Len(t, started, 1)
	require.Equal(t, sv.ID, started[0].InstanceID)
	require.Equal(t, "rachel-1", started[0].Hostname)
	require.Equal(t, "#cloud-config\n", started[0].UserData)
	require.True(t, started[0].IP.Equal(ip))
	require.Equal(t, b.sim.cfg.SSHPort, started[0].SSHPort)
	require.Equal(t, b.sim.scale(DefaultCloudInitDuration), started[0].CloudInitDelay)

	// Actions are readable one by one, and through the server.
	a, _, err := b.client.Action.GetByID(ctx, res.Action.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ActionStatusSuccess, a.Status)
	require.Equal(t, 100, a.Progress)
	require.False(t, a.Finished.IsZero())
	a, _, err = b.client.Server.Action.GetByID(ctx, res.NextActions[0].ID)
	require.NoError(t, err)
	require.Equal(t, "start_server", a.Command)
	resp, err := http.Get(b.url + fmt.Sprintf("/v1/servers/%d/actions/%d", sv.ID, res.Action.ID))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The firewall protects the server, so it cannot be deleted yet.
	_, err = b.client.Firewall.Delete(ctx, fw.Firewall)
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceInUse), "got %v", err)
	f, _, err := b.client.Firewall.GetByID(ctx, fw.Firewall.ID)
	require.NoError(t, err)
	require.Len(t, f.AppliedTo, 1)
	require.Equal(t, sv.ID, f.AppliedTo[0].Server.ID)

	// Same name again: uniqueness_error (what makes a retried create safe).
	_, _, err = b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "rachel-1",
		ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{Name: "debian-12"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUniquenessError), "got %v", err)

	del, _, err := b.client.Server.DeleteWithResult(ctx, got)
	require.NoError(t, err)
	require.Equal(t, "delete_server", del.Action.Command)
	got, _, err = b.client.Server.GetByID(ctx, sv.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusDeleting, got.Status)
	require.Nil(t, b.sim.Machine(sv.ID), "the VPS goes down with the delete")
	require.NoError(t, b.client.Action.WaitFor(ctx, del.Action))
	got, _, err = b.client.Server.GetByID(ctx, sv.ID)
	require.NoError(t, err)
	require.Nil(t, got)
	_, err = b.client.Firewall.Delete(ctx, fw.Firewall)
	require.NoError(t, err)
}

func mustCIDRs(t *testing.T, cidrs ...string) []netIPNet {
	t.Helper()
	var out []netIPNet
	for _, c := range cidrs {
		_, n, err := parseCIDR(c)
		require.NoError(t, err)
		out = append(out, *n)
	}
	return out
}

func TestServerWithoutKeyGetsPasswordAndStaysOff(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "nokey", StartAfterCreate: hcloud.Ptr(false),
		ServerType: &hcloud.ServerType{ID: 117}, Image: &hcloud.Image{ID: 161547269}})
	require.NotEmpty(t, res.RootPassword)
	require.Empty(t, res.NextActions)
	require.Equal(t, "fsn1", res.Server.Location.Name, "Hetzner picks a location when none is given")
	require.NoError(t, b.client.Action.WaitFor(ctx, res.Action))
	got, _, err := b.client.Server.GetByID(ctx, res.Server.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusOff, got.Status)
	require.Nil(t, b.sim.Machine(res.Server.ID))
}

func TestServerList(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	for i := range 6 {
		env := []string{"prod", "staging", "dev"}[i%3]
		b.createServer(t, hcloud.ServerCreateOpts{Name: fmt.Sprintf("srv-%d", i), StartAfterCreate: hcloud.Ptr(false),
			Labels: map[string]string{"env": env}})
	}
	names := func(opts hcloud.ServerListOpts) []string {
		all, err := b.client.Server.AllWithOpts(ctx, opts)
		require.NoError(t, err)
		var out []string
		for _, s := range all {
			out = append(out, s.Name)
		}
		return out
	}
	require.Equal(t, []string{"srv-0", "srv-3"}, names(hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "env=prod"}}))
	require.Equal(t, []string{"srv-1", "srv-2", "srv-4", "srv-5"}, names(hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "env notin (prod)"}}))
	require.Equal(t, []string{"srv-4"}, names(hcloud.ServerListOpts{Name: "srv-4"}))
	require.Len(t, names(hcloud.ServerListOpts{Status: []hcloud.ServerStatus{hcloud.ServerStatusInitializing, hcloud.ServerStatusOff}}), 6)
	require.Empty(t, names(hcloud.ServerListOpts{Status: []hcloud.ServerStatus{hcloud.ServerStatusRunning}}))
	page, resp, err := b.client.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{Page: 2, PerPage: 4}})
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.Equal(t, 6, resp.Meta.Pagination.TotalEntries)
	_, _, err = b.client.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "env in (a"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)
}

// postRaw sends a body as the client would, to test what hcloud-go's typed options cannot send.
func postRaw(t *testing.T, b *testBundle, path, body string) (int, schema.ErrorResponse) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url+"/v1"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e schema.ErrorResponse
	if resp.StatusCode >= 400 {
		require.NoError(t, json.Unmarshal(raw, &e), string(raw))
	}
	return resp.StatusCode, e
}

func TestServerCreateValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	key := b.createKey(t, "k")
	invalid := func(opts hcloud.ServerCreateOpts, field string) {
		t.Helper()
		if opts.ServerType == nil {
			opts.ServerType = &hcloud.ServerType{Name: "cx23"}
		}
		if opts.Image == nil {
			opts.Image = &hcloud.Image{Name: "debian-12"}
		}
		_, _, err := b.client.Server.Create(ctx, opts)
		require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)
		var herr hcloud.Error
		require.ErrorAs(t, err, &herr)
		details, ok := herr.Details.(hcloud.ErrorDetailsInvalidInput)
		require.True(t, ok, "details %#v", herr.Details)
		var fields []string
		for _, f := range details.Fields {
			fields = append(fields, f.Name)
		}
		require.Contains(t, fields, field)
	}
	invalid(hcloud.ServerCreateOpts{Name: "under_score"}, "name")
	invalid(hcloud.ServerCreateOpts{Name: "ok", ServerType: &hcloud.ServerType{Name: "cx999"}}, "server_type")
	invalid(hcloud.ServerCreateOpts{Name: "ok", Image: &hcloud.Image{Name: "windows-95"}}, "image")
	invalid(hcloud.ServerCreateOpts{Name: "ok", Location: &hcloud.Location{Name: "mars1"}}, "location")
	invalid(hcloud.ServerCreateOpts{Name: "ok", UserData: strings.Repeat("x", 32*1024+1)}, "user_data")
	invalid(hcloud.ServerCreateOpts{Name: "ok", SSHKeys: []*hcloud.SSHKey{{ID: key.ID + 999}}}, "ssh_keys")
	invalid(hcloud.ServerCreateOpts{Name: "ok", Labels: map[string]string{"hetzner.cloud/x": "y"}}, "labels")
	invalid(hcloud.ServerCreateOpts{Name: "ok", Firewalls: []*hcloud.ServerCreateFirewall{{Firewall: hcloud.Firewall{ID: 5}}}}, "firewalls")
	require.Empty(t, b.sim.Servers(), "invalid requests create nothing")

	// Exactly 32 KiB is allowed.
	b.createServer(t, hcloud.ServerCreateOpts{Name: "big", UserData: strings.Repeat("x", 32*1024), StartAfterCreate: hcloud.Ptr(false)})

	status, e := postRaw(t, b, "/servers", `{"name": "x",`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "json_error", e.Error.Code)
	status, e = postRaw(t, b, "/servers", `{"name": 5, "server_type": "cx23", "image": "debian-12"}`)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Equal(t, "invalid_input", e.Error.Code)
	// The spec allows SSH keys by name; hcloud-go only sends IDs.
	status, e = postRaw(t, b, "/servers", `{"name": "by-name", "server_type": "cx23", "image": "debian-12", "ssh_keys": ["k"], "start_after_create": false}`)
	require.Equal(t, http.StatusCreated, status, "%+v", e)
	si := b.sim.Servers()
	require.Len(t, si, 2)
	require.Equal(t, []int64{key.ID}, si[1].SSHKeys)
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	st, _, err := b.client.ServerType.GetByName(ctx, "cx23")
	require.NoError(t, err)
	require.Equal(t, 2, st.Cores)
	require.Equal(t, float32(4), st.Memory)
	require.Equal(t, 40, st.Disk)
	require.Equal(t, hcloud.ArchitectureX86, st.Architecture)
	require.Len(t, st.Pricings, 3, "EU only")
	require.NotEmpty(t, st.Pricings[0].Monthly.Net)
	require.Len(t, st.Locations, 3)
	require.True(t, st.Locations[0].Available)
	require.True(t, st.Locations[0].Recommended)
	ax, _, err := b.client.ServerType.GetByName(ctx, "cax11")
	require.NoError(t, err)
	require.Equal(t, hcloud.ArchitectureARM, ax.Architecture)
	for _, arch := range []hcloud.Architecture{hcloud.ArchitectureX86, hcloud.ArchitectureARM} {
		for _, name := range []string{"debian-12", "debian-13", "ubuntu-24.04"} {
			im, _, err := b.client.Image.GetByNameAndArchitecture(ctx, name, arch)
			require.NoError(t, err)
			require.NotNil(t, im, "%s %s", name, arch)
			require.Equal(t, arch, im.Architecture)
		}
	}
	locs, err := b.client.Location.All(ctx)
	require.NoError(t, err)
	require.Len(t, locs, 6)
	l, _, err := b.client.Location.GetByName(ctx, "ash")
	require.NoError(t, err)
	require.Equal(t, hcloud.NetworkZoneUSEast, l.NetworkZone)
	// Data centers answer until their removal on 2026-10-01, then 410 deprecated_api_endpoint.
	b.sim.SetNow(time.Date(2026, 10, 1, 23, 59, 0, 0, time.UTC))
	//lint:ignore SA1019 tests the simulated deprecated /datacenters until their removal date
	dc, _, err := b.client.Datacenter.GetByName(ctx, "fsn1-dc14")
	require.NoError(t, err)
	require.Equal(t, "fsn1", dc.Location.Name)
	b.sim.SetNow(time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC))
	//lint:ignore SA1019 tests the simulated deprecated /datacenters until their removal date
	_, _, err = b.client.Datacenter.GetByID(ctx, dc.ID)
	require.True(t, hcloud.IsError(err, hcloud.ErrorDeprecatedAPIEndpoint), "%v", err)
	var herr hcloud.Error
	require.ErrorAs(t, err, &herr)
	require.Equal(t, http.StatusGone, herr.Response().StatusCode)
	require.Equal(t, hcloud.ErrorDetailsDeprecatedAPIEndpoint{Announcement: datacentersAnnouncement}, herr.Details)

	// Today (after 2025-12-31) the retired generation is not listed, cannot be ordered in the EU,
	// and is still answered by ID with its deprecation.
	b.sim.SetNow(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	names := func() []string {
		types, err := b.client.ServerType.All(ctx)
		require.NoError(t, err)
		var out []string
		for _, t := range types {
			out = append(out, t.Name)
		}
		return out
	}
	listed := names()
	require.Contains(t, listed, "cx23")
	require.NotContains(t, listed, "cx22")
	require.Contains(t, listed, "cpx11", "CPX Gen1 is still sold outside the EU")
	old, _, err := b.client.ServerType.GetByID(ctx, 104)
	require.NoError(t, err)
	require.Equal(t, "cx22", old.Name)
	require.True(t, old.IsDeprecated())
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), old.Locations[0].Deprecation.UnavailableAfter)
	cpx11, _, err := b.client.ServerType.GetByName(ctx, "cpx11")
	require.NoError(t, err)
	for _, l := range cpx11.Locations {
		require.NotContains(t, []string{"fsn1", "nbg1", "hel1"}, l.Location.Name, "retired EU locations are not listed")
	}
	_, _, err = b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "old", ServerType: &hcloud.ServerType{Name: "cx22"},
		Image: &hcloud.Image{Name: "debian-12"}, Location: &hcloud.Location{Name: "fsn1"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable), "%v", err)
	_, _, err = b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "us", ServerType: &hcloud.ServerType{Name: "cx23"},
		Image: &hcloud.Image{Name: "debian-12"}, Location: &hcloud.Location{Name: "ash"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable), "cx23 is EU only: %v", err)
	_, _, err = b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "arm", ServerType: &hcloud.ServerType{Name: "cax11"},
		Image: &hcloud.Image{ID: 114690387}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "an x86 image on an Arm type: %v", err)
	res, _, err := b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "arm2", ServerType: &hcloud.ServerType{Name: "cax11"},
		Image: &hcloud.Image{Name: "debian-13"}, StartAfterCreate: hcloud.Ptr(false)})
	require.NoError(t, err)
	require.Equal(t, hcloud.ArchitectureARM, res.Server.Image.Architecture)

	// Before the date, the retired generation is listed with its deprecation and can be ordered.
	b.sim.SetNow(time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC))
	require.Contains(t, names(), "cx22")
	_, _, err = b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "old", ServerType: &hcloud.ServerType{Name: "cx22"},
		Image: &hcloud.Image{Name: "debian-12"}, StartAfterCreate: hcloud.Ptr(false)})
	require.NoError(t, err)
}

func TestFirewalls(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "web-1", Labels: map[string]string{"role": "web"}, StartAfterCreate: hcloud.Ptr(false)})
	fw, _, err := b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "web", Labels: map[string]string{"app": "rachel"},
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeLabelSelector,
			LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: "role=web"}}}})
	require.NoError(t, err)
	require.Len(t, fw.Firewall.AppliedTo, 1)
	require.Len(t, fw.Firewall.AppliedTo[0].AppliedToResources, 1)
	require.Equal(t, res.Server.ID, fw.Firewall.AppliedTo[0].AppliedToResources[0].Server.ID)
	got, _, err := b.client.Server.GetByID(ctx, res.Server.ID)
	require.NoError(t, err)
	require.Len(t, got.PublicNet.Firewalls, 1)

	_, _, err = b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "web"})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUniquenessError), "got %v", err)
	_, _, err = b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "bad", Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP}}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)

	byName, _, err := b.client.Firewall.GetByName(ctx, "web")
	require.NoError(t, err)
	require.Equal(t, fw.Firewall.ID, byName.ID)
	all, err := b.client.Firewall.AllWithOpts(ctx, hcloud.FirewallListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "app=rachel"}})
	require.NoError(t, err)
	require.Len(t, all, 1)

	_, err = b.client.Firewall.Delete(ctx, fw.Firewall)
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceInUse), "got %v", err)
	require.True(t, b.sim.DeleteServerBehindBack(res.Server.ID))
	_, err = b.client.Firewall.Delete(ctx, fw.Firewall)
	require.NoError(t, err)
	require.Empty(t, b.sim.Firewalls())
}

type netIPNet = net.IPNet

func parseCIDR(s string) (net.IP, *net.IPNet, error) { return net.ParseCIDR(s) }

// TestServerDatacenterProperty: servers carry the `datacenter` property the spec copy requires
// until Hetzner removed it after 2026-07-01; from then on the property is gone.
func TestServerDatacenterProperty(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "dc", ServerType: &hcloud.ServerType{Name: "cx23"},
		Image: &hcloud.Image{Name: "debian-12"}, Location: &hcloud.Location{Name: "nbg1"}})
	get := func() map[string]any {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/servers/%d", b.url, res.Server.ID), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var body struct {
			Server map[string]any `json:"server"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return body.Server
	}
	b.sim.SetNow(time.Date(2026, 7, 1, 23, 59, 0, 0, time.UTC))
	dc, ok := get()["datacenter"].(map[string]any)
	require.True(t, ok, "datacenter is an object before the removal")
	require.Equal(t, "nbg1", dc["location"].(map[string]any)["name"])
	b.sim.SetNow(time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC))
	srv := get()
	require.NotContains(t, srv, "datacenter")
	require.Equal(t, "nbg1", srv["location"].(map[string]any)["name"], "the location stays")
}
