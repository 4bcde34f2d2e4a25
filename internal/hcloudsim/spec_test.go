package hcloudsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
)

// findSpec locates Hetzner's OpenAPI description: $HETZNER_SPEC, or shared/hetzner/cloud.spec.json
// in the test's directory or one of its parents.
func findSpec(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HETZNER_SPEC"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		p := filepath.Join(dir, "shared", "hetzner", "cloud.spec.json")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("Hetzner's cloud.spec.json not found (set HETZNER_SPEC or put it in shared/hetzner/ above the repository); response schemas not checked")
		}
		dir = parent
	}
}

// recording is one API exchange captured for the schema check.
type recording struct {
	method, route string
	status        int
	body          []byte
}

type teeWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

// TestResponsesMatchSpec drives every route through hcloud-go, with successes and errors,
// and checks each recorded response body against the schema Hetzner publishes for it.
func TestResponsesMatchSpec(t *testing.T) {
	t.Parallel()
	specPath := findSpec(t)
	raw, err := os.ReadFile(specPath)
	require.NoError(t, err)
	var spec map[string]any
	require.NoError(t, json.Unmarshal(raw, &spec))

	sim, err := New(Config{Token: testToken, TimeScale: 0.001, SSHPort: freeHighPort(t), Seed: 3})
	require.NoError(t, err)
	// The spec copy describes the API of 2026-05-15: check the simulator as of that day (data
	// centers were removed since; TestCatalog and TestServerDatacenterProperty cover that).
	sim.SetNow(time.Date(2026, 5, 15, 0, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	var recs []recording
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe := r.Clone(r.Context())
		probe.URL.Path = strings.TrimPrefix(r.URL.Path, "/v1")
		_, pattern := sim.api.Handler(probe)
		tw := &teeWriter{ResponseWriter: w}
		sim.ServeHTTP(tw, r)
		mu.Lock()
		recs = append(recs, recording{method: r.Method, route: pattern, status: tw.status, body: tw.buf.Bytes()})
		mu.Unlock()
	}))
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, sim.Close())
	})
	c := hcloud.NewClient(hcloud.WithToken(testToken), hcloud.WithEndpoint(srv.URL+"/v1"),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(2 * time.Millisecond)}),
		hcloud.WithRetryOpts(hcloud.RetryOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond), MaxRetries: 3}))
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}

	pub, _ := newPublicKey(t)
	key, _, err := c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "k", PublicKey: pub, Labels: map[string]string{"a": "b"}})
	must(err)
	_, _, err = c.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "k", PublicKey: pub})
	require.Error(t, err)
	_, _, err = c.SSHKey.GetByID(ctx, key.ID)
	must(err)
	_, err = c.SSHKey.All(ctx)
	must(err)
	_, _, err = c.SSHKey.Update(ctx, key, hcloud.SSHKeyUpdateOpts{Labels: map[string]string{"c": "d"}})
	must(err)
	fw, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "fw", Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolICMP, SourceIPs: mustCIDRs(t, "0.0.0.0/0"),
	}}, ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeLabelSelector,
		LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: "app=x"}}}})
	must(err)
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "s1", ServerType: &hcloud.ServerType{Name: "cx23"},
		Image: &hcloud.Image{Name: "debian-12"}, SSHKeys: []*hcloud.SSHKey{key}, Labels: map[string]string{"app": "x"},
		Firewalls: []*hcloud.ServerCreateFirewall{{Firewall: *fw.Firewall}}})
	must(err)
	res2, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "s2", ServerType: &hcloud.ServerType{Name: "cpx22"},
		Image: &hcloud.Image{Name: "ubuntu-24.04"}})
	must(err)
	_, _, err = c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "bad_name", ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{Name: "debian-12"}})
	require.Error(t, err)
	must(c.Action.WaitFor(ctx, res.Action, res.NextActions[0], res2.Action))
	_, _, err = c.Server.GetByID(ctx, res.Server.ID)
	must(err)
	_, _, err = c.Server.Update(ctx, res.Server, hcloud.ServerUpdateOpts{Labels: map[string]string{"app": "x", "n": "1"}})
	must(err)
	_, err = c.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "app=x"}})
	must(err)
	_, _, err = c.Action.GetByID(ctx, res.Action.ID)
	must(err)
	_, _, err = c.Server.Action.GetByID(ctx, res.Action.ID)
	must(err)
	_, err = c.Server.Action.All(ctx, hcloud.ActionListOpts{ID: []int64{res.Action.ID}})
	must(err)
	_, _, err = c.Firewall.GetByID(ctx, fw.Firewall.ID)
	must(err)
	_, err = c.Firewall.All(ctx)
	must(err)
	_, err = c.Firewall.Delete(ctx, fw.Firewall)
	require.Error(t, err)
	for _, id := range []int64{22, 104, 116, 45} {
		_, _, err = c.ServerType.GetByID(ctx, id)
		must(err)
	}
	_, err = c.ServerType.All(ctx)
	must(err)
	_, _, err = c.Image.GetByID(ctx, 114690387)
	must(err)
	_, err = c.Image.All(ctx)
	must(err)
	_, _, err = c.Location.GetByID(ctx, 1)
	must(err)
	_, err = c.Location.All(ctx)
	must(err)
	//lint:ignore SA1019 tests the simulated deprecated /datacenters before their removal date
	_, _, err = c.Datacenter.GetByID(ctx, 4)
	must(err)
	//lint:ignore SA1019 tests the simulated deprecated /datacenters before their removal date
	_, err = c.Datacenter.All(ctx)
	must(err)
	// Power actions, and the refusals of Hetzner as it is today.
	pa, _, err := c.Server.Reboot(ctx, res.Server)
	must(err)
	must(c.Action.WaitFor(ctx, pa))
	pa, _, err = c.Server.Shutdown(ctx, res.Server)
	must(err)
	must(c.Action.WaitFor(ctx, pa))
	pa, _, err = c.Server.Poweron(ctx, res.Server)
	must(err)
	must(c.Action.WaitFor(ctx, pa))
	// The poweroff is held running (at this time scale it would end within milliseconds, before
	// the Reset arrives on a loaded machine), so the server is stopping when the Reset comes.
	require.NoError(t, sim.SetFaults(Faults{ActionStalls: []ActionStall{{Command: "stop_server", Server: "s1"}}}))
	pa, _, err = c.Server.Poweroff(ctx, res.Server)
	must(err)
	pa2, _, err := c.Server.Reset(ctx, res.Server) // locked while stopping
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeLocked), "%v %v", pa2, err)
	require.NoError(t, sim.SetFaults(Faults{}))
	must(c.Action.WaitFor(ctx, pa))
	_, _, err = c.ServerType.GetByID(ctx, 116)
	must(err)
	sim.SetServerLimit(1)
	_, _, err = c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "s3", ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{Name: "debian-12"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceLimitExceeded), "%v", err)
	sim.SetServerLimit(0)
	require.NoError(t, sim.SetFaults(Faults{Capacity: []CapacityFault{{Location: "nbg1", Code: "placement_error", Count: 1}, {Location: "hel1", Count: 1}}}))
	for _, loc := range []string{"nbg1", "hel1"} {
		_, _, err = c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "s3", ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{Name: "debian-12"}, Location: &hcloud.Location{Name: loc}})
		require.Error(t, err)
	}
	_, _, err = c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "s3", ServerType: &hcloud.ServerType{Name: "cx23"}, Image: &hcloud.Image{Name: "debian-12"}, Location: &hcloud.Location{Name: "ash"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable), "%v", err)
	del, _, err := c.Server.DeleteWithResult(ctx, res.Server)
	must(err)
	_, _, err = c.Server.GetByID(ctx, res.Server.ID) // deleting
	must(err)
	must(c.Action.WaitFor(ctx, del.Action))
	_, err = c.Firewall.Delete(ctx, fw.Firewall)
	must(err)
	_, err = c.SSHKey.Delete(ctx, key)
	must(err)
	_, _, err = c.Server.GetByID(ctx, 1) // 404
	must(err)
	require.NoError(t, sim.SetFaults(Faults{RateLimitStorm: 1, Errors: []ErrorFault{{Route: "GET /locations", Status: 502, Count: 1}}}))
	_, err = c.Location.All(ctx) // 429, then 502, then 200
	must(err)
	_, _, err = hcloud.NewClient(hcloud.WithToken("bad"), hcloud.WithEndpoint(srv.URL+"/v1")).Server.List(ctx, hcloud.ServerListOpts{})
	require.Error(t, err)

	mu.Lock()
	defer mu.Unlock()
	checked := map[string]bool{}
	for _, rec := range recs {
		path := strings.TrimPrefix(rec.route, rec.method+" ")
		op, ok := lookup(spec, "paths", path, strings.ToLower(rec.method)).(map[string]any)
		require.True(t, ok, "route %s is not in the spec", rec.route)
		responses := op["responses"].(map[string]any)
		resp, ok := responses[strconv.Itoa(rec.status)].(map[string]any)
		if !ok {
			resp, ok = responses[fmt.Sprintf("%dxx", rec.status/100)].(map[string]any)
		}
		require.True(t, ok, "%s answered %d, which the spec does not list", rec.route, rec.status)
		schema := lookup(resp, "content", "application/json", "schema")
		if schema == nil {
			require.Empty(t, bytes.TrimSpace(rec.body), "%s %d has no body in the spec", rec.route, rec.status)
			continue
		}
		var body any
		require.NoError(t, json.Unmarshal(rec.body, &body), "%s %d: %s", rec.route, rec.status, rec.body)
		v := &schemaValidator{spec: spec}
		v.validate(schema.(map[string]any), body, "$")
		require.Empty(t, v.errs, "%s %d does not match the spec:\n%s\nbody: %.2000s", rec.route, rec.status, strings.Join(v.errs, "\n"), rec.body)
		checked[fmt.Sprintf("%s %d", rec.route, rec.status)] = true
	}
	// Every route was exercised with at least one success.
	for _, route := range []string{"GET /ssh_keys 200", "POST /ssh_keys 201", "GET /ssh_keys/{id} 200", "PUT /ssh_keys/{id} 200",
		"POST /ssh_keys 409", "GET /servers 200", "POST /servers 201", "POST /servers 422", "GET /servers/{id} 200",
		"PUT /servers/{id} 200", "DELETE /servers/{id} 200", "GET /servers/{id} 404", "GET /actions 200", "GET /actions/{id} 200",
		"GET /servers/actions 200", "GET /servers/actions/{id} 200", "POST /firewalls 201", "GET /firewalls 200",
		"GET /firewalls/{id} 200", "DELETE /firewalls/{id} 409", "GET /server_types 200", "GET /server_types/{id} 200",
		"GET /images 200", "GET /images/{id} 200", "GET /locations 200", "GET /locations/{id} 200", "GET /locations 429",
		"GET /locations 502", "GET /datacenters 200", "GET /datacenters/{id} 200", "GET /servers 401"} {
		require.True(t, checked[route], "no %s response was checked; checked: %v", route, slices.Sorted(mapsKeys(checked)))
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// lookup walks nested JSON objects by key.
func lookup(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// schemaValidator is a small OpenAPI 3.0 schema checker: type, nullable, required, properties,
// additionalProperties, enum, items, $ref, allOf, oneOf and anyOf.
type schemaValidator struct {
	spec map[string]any
	errs []string
}

func (v *schemaValidator) fail(at, format string, args ...any) {
	v.errs = append(v.errs, at+": "+fmt.Sprintf(format, args...))
}

func (v *schemaValidator) resolve(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		target, _ := lookup(v.spec, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...).(map[string]any)
		if target == nil {
			v.fail(ref, "unresolvable $ref")
			return map[string]any{}
		}
		s = target
	}
}

// matches reports whether value matches s without recording errors.
func (v *schemaValidator) matches(s map[string]any, value any) bool {
	sub := &schemaValidator{spec: v.spec}
	sub.validate(s, value, "")
	return len(sub.errs) == 0
}

func (v *schemaValidator) validate(s map[string]any, value any, at string) {
	s = v.resolve(s)
	if value == nil {
		if s["nullable"] == true || len(s) == 0 {
			return
		}
		if _, typed := s["type"]; typed {
			v.fail(at, "null where the schema is not nullable")
			return
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			v.validate(sub.(map[string]any), value, at)
		}
	}
	for _, kw := range []string{"oneOf", "anyOf"} {
		if alts, ok := s[kw].([]any); ok {
			n := 0
			for _, sub := range alts {
				if v.matches(sub.(map[string]any), value) {
					n++
				}
			}
			if n == 0 || (kw == "oneOf" && n > 1) {
				v.fail(at, "%s: %d alternatives match", kw, n)
			}
		}
	}
	if enum, ok := s["enum"].([]any); ok && value != nil && !slices.Contains(enum, value) {
		v.fail(at, "%v is not one of %v", value, enum)
	}
	switch s["type"] {
	case "object":
		obj, ok := value.(map[string]any)
		if !ok {
			v.fail(at, "want an object, got %T", value)
			return
		}
		for _, r := range asList(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				v.fail(at, "required property %q is missing", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range obj {
			if ps, ok := props[k].(map[string]any); ok {
				v.validate(ps, val, at+"."+k)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					v.fail(at, "property %q is not allowed", k)
				}
			case map[string]any:
				v.validate(ap, val, at+"."+k)
			}
		}
	case "array":
		arr, ok := value.([]any)
		if !ok {
			v.fail(at, "want an array, got %T", value)
			return
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, it := range arr {
				v.validate(items, it, fmt.Sprintf("%s[%d]", at, i))
			}
		}
	case "string":
		if _, ok := value.(string); !ok {
			v.fail(at, "want a string, got %T", value)
		}
	case "integer":
		if n, ok := value.(float64); !ok || n != math.Trunc(n) {
			v.fail(at, "want an integer, got %v", value)
		}
	case "number":
		if _, ok := value.(float64); !ok {
			v.fail(at, "want a number, got %T", value)
		}
	case "boolean":
		if _, ok := value.(bool); !ok {
			v.fail(at, "want a boolean, got %T", value)
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestSchemaValidator(t *testing.T) {
	t.Parallel()
	spec := map[string]any{"components": map[string]any{"schemas": map[string]any{
		"Thing": map[string]any{"type": "object", "required": []any{"id", "name"}, "properties": map[string]any{
			"id":   map[string]any{"type": "integer"},
			"name": map[string]any{"type": "string", "nullable": true},
			"kind": map[string]any{"type": "string", "enum": []any{"a", "b"}},
			"tags": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		}, "additionalProperties": false},
	}}}
	ref := map[string]any{"$ref": "#/components/schemas/Thing"}
	check := func(doc string) []string {
		var body any
		require.NoError(t, json.Unmarshal([]byte(doc), &body))
		v := &schemaValidator{spec: spec}
		v.validate(ref, body, "$")
		return v.errs
	}
	require.Empty(t, check(`{"id": 1, "name": null, "kind": "a", "tags": ["x"]}`))
	require.NotEmpty(t, check(`{"id": 1.5, "name": "x"}`))
	require.NotEmpty(t, check(`{"name": "x"}`))
	require.NotEmpty(t, check(`{"id": 1, "name": "x", "kind": "c"}`))
	require.NotEmpty(t, check(`{"id": 1, "name": "x", "tags": [1]}`))
	require.NotEmpty(t, check(`{"id": 1, "name": "x", "extra": true}`))
	require.NotEmpty(t, check(`[]`))
}
