package hcloudsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/testkit"
)

// apiResponse is one raw answer of the simulator, for what hcloud-go's typed calls hide.
type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (b *testBundle) do(t *testing.T, method, path, body string) apiResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := apiResponse{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out.body), "%s %s: %s", method, path, raw)
	}
	return out
}

// errorCode checks Hetzner's error envelope {"error": {"code", "message", "details"}} and
// returns the code.
func (r apiResponse) errorCode(t *testing.T) string {
	t.Helper()
	e, ok := r.body["error"].(map[string]any)
	require.True(t, ok, "error envelope: %s", r.raw)
	require.Contains(t, e, "details", "details is always present (null when empty)")
	msg, _ := e["message"].(string)
	require.NotEmpty(t, msg, r.raw)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	code, _ := e["code"].(string)
	return code
}

// fieldNames returns the names in error.details.fields.
func (r apiResponse) fieldNames(t *testing.T) []string {
	t.Helper()
	e := r.body["error"].(map[string]any)
	d, ok := e["details"].(map[string]any)
	require.True(t, ok, "details with fields: %s", r.raw)
	var out []string
	for _, f := range d["fields"].([]any) {
		out = append(out, f.(map[string]any)["name"].(string))
	}
	return out
}

func (r apiResponse) pagination(t *testing.T) map[string]any {
	t.Helper()
	meta, ok := r.body["meta"].(map[string]any)
	require.True(t, ok, r.raw)
	return meta["pagination"].(map[string]any)
}

// TestErrorsFollowTheSpecsTable: the status and code pairs of the spec's error table, in
// Hetzner's envelope, for every kind of bad request the simulator answers.
func TestErrorsFollowTheSpecsTable(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/v1/servers/999", "", 404, "not_found"},
		{"GET", "/v1/servers/abc", "", 404, "not_found"},
		{"GET", "/v1/servers/-1", "", 404, "not_found"},
		{"GET", "/v1/ssh_keys/0", "", 404, "not_found"},
		{"PUT", "/v1/ssh_keys/999", `{"name":"x"}`, 404, "not_found"},
		{"DELETE", "/v1/ssh_keys/999", "", 404, "not_found"},
		{"PUT", "/v1/servers/999", `{"name":"x"}`, 404, "not_found"},
		{"GET", "/v1/firewalls/999", "", 404, "not_found"},
		{"DELETE", "/v1/firewalls/999", "", 404, "not_found"},
		{"POST", "/v1/firewalls/999/actions/set_rules", `{"rules":[]}`, 404, "not_found"},
		{"GET", "/v1/actions/999", "", 404, "not_found"},
		{"GET", "/v1/servers/actions/999", "", 404, "not_found"},
		{"GET", "/v1/servers/1/actions/999", "", 404, "not_found"},
		{"POST", "/v1/servers/999/actions/poweron", "", 404, "not_found"},
		{"GET", "/v1/server_types/999999", "", 404, "not_found"},
		{"GET", "/v1/images/999999999", "", 404, "not_found"},
		{"GET", "/v1/locations/999", "", 404, "not_found"},
		// Removed after 2026-10-01 (see datacentersEndpointRemoved): gone, whatever the ID.
		{"GET", "/v1/datacenters/999", "", 410, "deprecated_api_endpoint"},
		{"GET", "/v1/volumes", "", 404, "not_found"},
		{"POST", "/v1/ssh_keys", `{"name":`, 400, "json_error"},
		{"POST", "/v1/firewalls", `[]`, 422, "invalid_input"},
		{"POST", "/v1/ssh_keys", `{"name": 1, "public_key": "x"}`, 422, "invalid_input"},
		{"GET", "/v1/actions", "", 422, "invalid_input"},
		{"GET", "/v1/actions?id=x", "", 422, "invalid_input"},
		{"GET", "/v1/servers/actions?id=0", "", 422, "invalid_input"},
		{"GET", "/v1/servers?page=0", "", 422, "invalid_input"},
		{"GET", "/v1/ssh_keys?per_page=many", "", 422, "invalid_input"},
		{"GET", "/v1/firewalls?label_selector=a%20in%20(b", "", 422, "invalid_input"},
		{"GET", "/v1/ssh_keys?label_selector=!", "", 422, "invalid_input"},
	} {
		r := b.do(t, tc.method, tc.path, tc.body)
		require.Equal(t, tc.status, r.status, "%s %s: %s", tc.method, tc.path, r.raw)
		require.Equal(t, tc.code, r.errorCode(t), "%s %s", tc.method, tc.path)
	}
	// Errors are rate limited like every request.
	r := b.do(t, "GET", "/v1/servers/999", "")
	require.NotEmpty(t, r.header.Get("RateLimit-Remaining"))
	// Paths answer with and without the /v1 prefix.
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/servers", "").status)
	require.Equal(t, http.StatusOK, b.do(t, "GET", "/v1/servers", "").status)
}

// TestRateLimitHeaders: every answer says the bucket's size, what is left and when it is full
// again (RateLimit-Reset is a Unix timestamp, cloud.spec.json "Rate Limiting").
func TestRateLimitHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.RateLimit = 5; c.RateLimitRefill = time.Hour })
	var remaining []int
	for range 5 {
		r := b.do(t, "GET", "/v1/ssh_keys", "")
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "5", r.header.Get("RateLimit-Limit"))
		n, err := strconv.Atoi(r.header.Get("RateLimit-Remaining"))
		require.NoError(t, err)
		remaining = append(remaining, n)
		reset, err := strconv.ParseInt(r.header.Get("RateLimit-Reset"), 10, 64)
		require.NoError(t, err)
		require.GreaterOrEqual(t, reset, time.Now().Add(-time.Minute).Unix(), "a Unix timestamp")
	}
	require.Equal(t, []int{4, 3, 2, 1, 0}, remaining)
	r := b.do(t, "GET", "/v1/ssh_keys", "")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "rate_limit_exceeded", r.errorCode(t))
	require.Equal(t, "0", r.header.Get("RateLimit-Remaining"))
	// hcloud-go sees the typed error.
	c := hcloud.NewClient(hcloud.WithToken(testToken), hcloud.WithEndpoint(b.url+"/v1"),
		hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	_, _, err := c.SSHKey.List(context.Background(), hcloud.SSHKeyListOpts{})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeRateLimitExceeded), "got %v", err)
}

// TestPaginationMeta: meta.pagination as the spec describes it, null where there is no page.
func TestPaginationMeta(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for i := range 7 {
		b.createKey(t, fmt.Sprintf("k%d", i))
	}
	r := b.do(t, "GET", "/v1/ssh_keys?per_page=3", "")
	require.Len(t, r.body["ssh_keys"], 3)
	require.Equal(t, map[string]any{"page": 1.0, "per_page": 3.0, "previous_page": nil, "next_page": 2.0, "last_page": 3.0,
		"total_entries": 7.0}, r.pagination(t))
	r = b.do(t, "GET", "/v1/ssh_keys?per_page=3&page=3", "")
	require.Len(t, r.body["ssh_keys"], 1)
	require.Equal(t, map[string]any{"page": 3.0, "per_page": 3.0, "previous_page": 2.0, "next_page": nil, "last_page": nil,
		"total_entries": 7.0}, r.pagination(t))
	// Past the end: an empty page that points back to the last one.
	r = b.do(t, "GET", "/v1/ssh_keys?per_page=3&page=9", "")
	require.Equal(t, []any{}, r.body["ssh_keys"])
	require.Equal(t, 3.0, r.pagination(t)["previous_page"])
	// No match: an empty list, not null, on page 1 of 1.
	r = b.do(t, "GET", "/v1/ssh_keys?name=nope", "")
	require.Equal(t, []any{}, r.body["ssh_keys"])
	require.Equal(t, map[string]any{"page": 1.0, "per_page": 25.0, "previous_page": nil, "next_page": nil, "last_page": nil,
		"total_entries": 0.0}, r.pagination(t))
	// Every list answers the same way.
	for _, path := range []string{"/v1/servers", "/v1/firewalls", "/v1/server_types", "/v1/images", "/v1/locations"} {
		r := b.do(t, "GET", path+"?per_page=1", "")
		require.Equal(t, http.StatusOK, r.status, path)
		p := r.pagination(t)
		require.Equal(t, 1.0, p["per_page"], path)
	}
}

func TestSSHKeyRulesAsHetzner(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	pub, signer := newPublicKey(t)
	k, _, err := b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "ops", PublicKey: pub, Labels: map[string]string{"team": "a"}})
	require.NoError(t, err)
	// The fingerprint is the MD5 one Hetzner shows (aa:bb:…), of the key's wire form.
	require.Equal(t, ssh.FingerprintLegacyMD5(signer.PublicKey()), k.Fingerprint)
	require.Len(t, strings.Split(k.Fingerprint, ":"), 16)
	require.Equal(t, strings.TrimSpace(pub), k.PublicKey)

	for _, tc := range []struct {
		body   string
		status int
		code   string
		field  string
	}{
		{`{"name": "ops", "public_key": "` + strings.TrimSpace(mustPub(t)) + `"}`, 409, "uniqueness_error", "name"},
		{`{"name": "other", "public_key": "` + strings.TrimSpace(pub) + `"}`, 409, "uniqueness_error", "public_key"},
		{`{"name": "bad", "public_key": "ssh-ed25519 notbase64"}`, 422, "invalid_input", "public_key"},
		{`{"name": "", "public_key": "` + strings.TrimSpace(mustPub(t)) + `"}`, 422, "invalid_input", "name"},
		{`{"name": "l", "public_key": "` + strings.TrimSpace(mustPub(t)) + `", "labels": {"hetzner.cloud/x": "y"}}`, 422, "invalid_input", "labels"},
	} {
		r := b.do(t, "POST", "/v1/ssh_keys", tc.body)
		require.Equal(t, tc.status, r.status, tc.body)
		require.Equal(t, tc.code, r.errorCode(t), tc.body)
		require.Contains(t, r.fieldNames(t), tc.field, tc.body)
	}
	require.Len(t, b.sim.SSHKeys(), 1, "refused requests create nothing")

	// Filters.
	byFP, _, err := b.client.SSHKey.GetByFingerprint(ctx, k.Fingerprint)
	require.NoError(t, err)
	require.Equal(t, k.ID, byFP.ID)
	two := b.createKey(t, "two")
	sel, err := b.client.SSHKey.AllWithOpts(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "team=a"}})
	require.NoError(t, err)
	require.Len(t, sel, 1)
	sel, err = b.client.SSHKey.AllWithOpts(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "!team"}})
	require.NoError(t, err)
	require.Len(t, sel, 1)
	require.Equal(t, two.ID, sel[0].ID)

	// Update: rename (not onto another key's name), relabel; labels replace, not merge.
	_, _, err = b.client.SSHKey.Update(ctx, two, hcloud.SSHKeyUpdateOpts{Name: "ops"})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUniquenessError), "got %v", err)
	_, _, err = b.client.SSHKey.Update(ctx, two, hcloud.SSHKeyUpdateOpts{Labels: map[string]string{"-bad": "x"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)
	up, _, err := b.client.SSHKey.Update(ctx, k, hcloud.SSHKeyUpdateOpts{Name: "ops-renamed", Labels: map[string]string{"team": "b"}})
	require.NoError(t, err)
	require.Equal(t, "ops-renamed", up.Name)
	require.Equal(t, map[string]string{"team": "b"}, up.Labels)
	up, _, err = b.client.SSHKey.Update(ctx, k, hcloud.SSHKeyUpdateOpts{Name: "ops-renamed"})
	require.NoError(t, err, "renaming to its own name is no conflict")
	require.Equal(t, map[string]string{"team": "b"}, up.Labels, "labels left out stay")
	got, _, err := b.client.SSHKey.GetByName(ctx, "ops")
	require.NoError(t, err)
	require.Nil(t, got, "the old name is gone")
}

func mustPub(t *testing.T) string {
	t.Helper()
	pub, _ := newPublicKey(t)
	return pub
}

func TestServerUpdateRulesAsHetzner(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	a := b.createServer(t, hcloud.ServerCreateOpts{Name: "a", Labels: map[string]string{"env": "prod"}, StartAfterCreate: hcloud.Ptr(false)})
	b.createServer(t, hcloud.ServerCreateOpts{Name: "b", StartAfterCreate: hcloud.Ptr(false)})

	_, _, err := b.client.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "a", ServerType: &hcloud.ServerType{Name: "cx23"},
		Image: &hcloud.Image{Name: "debian-12"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUniquenessError), "names are unique per project: %v", err)

	_, _, err = b.client.Server.Update(ctx, a.Server, hcloud.ServerUpdateOpts{Name: "b"})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUniquenessError), "got %v", err)
	_, _, err = b.client.Server.Update(ctx, a.Server, hcloud.ServerUpdateOpts{Name: "not_a_hostname"})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)
	_, _, err = b.client.Server.Update(ctx, a.Server, hcloud.ServerUpdateOpts{Labels: map[string]string{"k": "has space"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)

	up, _, err := b.client.Server.Update(ctx, a.Server, hcloud.ServerUpdateOpts{Name: "a2", Labels: map[string]string{"env": "dev"}})
	require.NoError(t, err)
	require.Equal(t, "a2", up.Name)
	require.Equal(t, map[string]string{"env": "dev"}, up.Labels)
	r := b.do(t, "PUT", "/v1/servers/"+strconv.FormatInt(a.Server.ID, 10), `{"name": 7}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)

	list, err := b.client.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "env=prod"}})
	require.NoError(t, err)
	require.Empty(t, list, "the selector sees the new labels")
	list, err = b.client.Server.AllWithOpts(ctx, hcloud.ServerListOpts{Status: []hcloud.ServerStatus{hcloud.ServerStatusRunning}})
	require.NoError(t, err)
	require.Empty(t, list, "created without start: none running")
}

func TestFirewallRulesValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	sv := b.createServer(t, hcloud.ServerCreateOpts{Name: "web", StartAfterCreate: hcloud.Ptr(false)})
	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"name": ""}`, []string{"name"}},
		{`{"name": "f", "labels": {"hetzner.cloud/x": "y"}}`, []string{"labels"}},
		{`{"name": "f", "rules": [{"direction": "sideways", "protocol": "icmp", "source_ips": ["0.0.0.0/0"]}]}`, []string{"rules[0].direction"}},
		{`{"name": "f", "rules": [{"direction": "in", "protocol": "sctp", "source_ips": ["0.0.0.0/0"]}]}`, []string{"rules[0].protocol"}},
		{`{"name": "f", "rules": [{"direction": "in", "protocol": "tcp", "source_ips": ["0.0.0.0/0"]}]}`, []string{"rules[0].port"}},
		{`{"name": "f", "rules": [{"direction": "in", "protocol": "tcp", "port": "22"}]}`, []string{"rules[0].source_ips"}},
		{`{"name": "f", "rules": [{"direction": "out", "protocol": "udp", "port": "53"}]}`, []string{"rules[0].destination_ips"}},
		{`{"name": "f", "apply_to": [{"type": "server", "server": {"id": 999}}]}`, []string{"apply_to[0].server"}},
		{`{"name": "f", "apply_to": [{"type": "label_selector", "label_selector": {"selector": "a in (b"}}]}`, []string{"apply_to[0].label_selector"}},
		{`{"name": "f", "apply_to": [{"type": "server"}]}`, []string{"apply_to[0].type"}},
		// Every problem at once.
		{`{"name": "", "rules": [{"direction": "in", "protocol": "tcp"}]}`, []string{"name", "rules[0].port", "rules[0].source_ips"}},
	} {
		r := b.do(t, "POST", "/v1/firewalls", tc.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, tc.body)
		require.Equal(t, "invalid_input", r.errorCode(t))
		require.Equal(t, tc.fields, r.fieldNames(t), tc.body)
	}
	var many []string
	for i := range maxFirewallRules + 1 {
		many = append(many, fmt.Sprintf(`{"direction": "in", "protocol": "tcp", "port": "%d", "source_ips": ["0.0.0.0/0"]}`, 1000+i))
	}
	r := b.do(t, "POST", "/v1/firewalls", `{"name": "many", "rules": [`+strings.Join(many, ",")+`]}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, []string{"rules"}, r.fieldNames(t))
	require.Empty(t, b.sim.Firewalls(), "nothing was created")

	// A valid one answers its actions: set_firewall_rules, and apply_firewall per server.
	res, _, err := b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "ssh",
		Rules: []hcloud.FirewallRule{{Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP,
			Port: hcloud.Ptr("22"), SourceIPs: mustCIDRs(t, "0.0.0.0/0", "::/0")}},
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: sv.Server.ID}}}})
	require.NoError(t, err)
	var commands []string
	for _, a := range res.Actions {
		commands = append(commands, a.Command)
		require.Equal(t, hcloud.ActionStatusSuccess, a.Status)
	}
	require.Equal(t, []string{"set_firewall_rules", "apply_firewall"}, commands)
	require.Equal(t, []hcloud.FirewallRule{{Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP,
		Port: hcloud.Ptr("22"), SourceIPs: mustCIDRs(t, "0.0.0.0/0", "::/0"), DestinationIPs: []netIPNet{}}}, res.Firewall.Rules)
	got, _, err := b.client.Server.GetByID(ctx, sv.Server.ID)
	require.NoError(t, err)
	require.Len(t, got.PublicNet.Firewalls, 1)
	require.Equal(t, res.Firewall.ID, got.PublicNet.Firewalls[0].Firewall.ID)

	// set_rules with an invalid rule changes nothing.
	r = b.do(t, "POST", fmt.Sprintf("/v1/firewalls/%d/actions/set_rules", res.Firewall.ID), `{"rules": [{"direction": "in", "protocol": "tcp"}]}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	fw, _, err := b.client.Firewall.GetByID(ctx, res.Firewall.ID)
	require.NoError(t, err)
	require.Len(t, fw.Rules, 1)
	// Directly applied: the firewall stays in use until the server is gone.
	_, err = b.client.Firewall.Delete(ctx, fw)
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceInUse), "got %v", err)
}

func TestPowerActionsLockAndStatus(t *testing.T) {
	t.Parallel()
	// Long simulated durations: the server stays in its transitions while the test looks.
	b := setup(t, func(c *Config) { c.TimeScale = 1; c.CreateDuration = time.Hour })
	ctx := context.Background()
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "busy"})
	require.Equal(t, hcloud.ServerStatusInitializing, res.Server.Status)
	// Hetzner locks a server while an action runs on it.
	for _, path := range []string{"poweron", "poweroff", "reboot", "reset", "shutdown"} {
		r := b.do(t, "POST", fmt.Sprintf("/v1/servers/%d/actions/%s", res.Server.ID, path), "")
		require.Equal(t, http.StatusLocked, r.status, path)
		require.Equal(t, "locked", r.errorCode(t), path)
	}
	// Deleting is allowed while initializing, and a second delete is locked.
	_, _, err := b.client.Server.DeleteWithResult(ctx, res.Server)
	require.NoError(t, err)
	_, _, err = b.client.Server.DeleteWithResult(ctx, res.Server)
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeLocked), "got %v", err)
	got, _, err := b.client.Server.GetByID(ctx, res.Server.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusDeleting, got.Status)

	// A reboot of an off server runs its course and leaves it off (a fast simulator).
	b = setup(t, nil)
	off := b.createServer(t, hcloud.ServerCreateOpts{Name: "off", StartAfterCreate: hcloud.Ptr(false)})
	testkit.Eventually(t, "created without start: off once the create action ends", func() bool {
		s, _, err := b.client.Server.GetByID(ctx, off.Server.ID)
		return err == nil && s.Status == hcloud.ServerStatusOff
	})
	r := b.do(t, "POST", fmt.Sprintf("/v1/servers/%d/actions/reboot", off.Server.ID), "")
	require.Equal(t, http.StatusCreated, r.status)
	action := r.body["action"].(map[string]any)
	require.Equal(t, "reboot_server", action["command"])
	require.Equal(t, "running", action["status"])
	require.Equal(t, []any{map[string]any{"id": float64(off.Server.ID), "type": "server"}}, action["resources"])
	s, _, err := b.client.Server.GetByID(ctx, off.Server.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusOff, s.Status, "a reboot does not switch an off server on")
}

func TestActionEndpointsAgree(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "acts"})
	require.NoError(t, b.client.Action.WaitFor(ctx, append([]*hcloud.Action{res.Action}, res.NextActions...)...))
	fw, _, err := b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "fw", Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolICMP, SourceIPs: mustCIDRs(t, "0.0.0.0/0")}}})
	require.NoError(t, err)
	fwAction := fw.Actions[0]

	sid, cid, nid := res.Server.ID, res.Action.ID, res.NextActions[0].ID
	// The same action under every path that may answer it.
	for _, path := range []string{
		fmt.Sprintf("/v1/actions/%d", cid),
		fmt.Sprintf("/v1/servers/actions/%d", cid),
		fmt.Sprintf("/v1/servers/%d/actions/%d", sid, cid),
	} {
		r := b.do(t, "GET", path, "")
		require.Equal(t, http.StatusOK, r.status, path)
		a := r.body["action"].(map[string]any)
		require.Equal(t, "create_server", a["command"], path)
		require.Equal(t, "success", a["status"], path)
		require.Equal(t, 100.0, a["progress"], path)
		require.NotNil(t, a["finished"], path)
		require.Nil(t, a["error"], path)
	}
	// Server action paths do not answer a firewall's action, nor another server's.
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", fmt.Sprintf("/v1/servers/actions/%d", fwAction.ID), "").status)
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", fmt.Sprintf("/v1/servers/%d/actions/%d", sid+1000, cid), "").status)
	require.Equal(t, http.StatusOK, b.do(t, "GET", fmt.Sprintf("/v1/actions/%d", fwAction.ID), "").status)

	// Lists by id: unknown IDs are left out; /servers/actions only lists server actions and
	// filters by status.
	r := b.do(t, "GET", fmt.Sprintf("/v1/actions?id=%d&id=%d&id=999999", nid, cid), "")
	ids := actionIDsOf(r)
	require.Equal(t, []int64{cid, nid}, ids, "ordered by ID")
	_, hasMeta := r.body["meta"]
	require.False(t, hasMeta, "GET /actions has no pagination since 2025-01-30")
	r = b.do(t, "GET", fmt.Sprintf("/v1/servers/actions?id=%d&id=%d", cid, fwAction.ID), "")
	require.Equal(t, []int64{cid}, actionIDsOf(r))
	r = b.do(t, "GET", fmt.Sprintf("/v1/servers/actions?id=%d&status=running", cid), "")
	require.Empty(t, actionIDsOf(r))
	r = b.do(t, "GET", fmt.Sprintf("/v1/servers/actions?id=%d&status=success", cid), "")
	require.Equal(t, []int64{cid}, actionIDsOf(r))

	// Forgotten actions are gone everywhere.
	require.True(t, b.sim.ForgetAction(cid))
	require.False(t, b.sim.ForgetAction(cid))
	require.Equal(t, http.StatusNotFound, b.do(t, "GET", fmt.Sprintf("/v1/actions/%d", cid), "").status)
	r = b.do(t, "GET", fmt.Sprintf("/v1/actions?id=%d", cid), "")
	require.Equal(t, []any{}, r.body["actions"])
}

func actionIDsOf(r apiResponse) []int64 {
	var out []int64
	for _, a := range r.body["actions"].([]any) {
		out = append(out, int64(a.(map[string]any)["id"].(float64)))
	}
	return out
}
