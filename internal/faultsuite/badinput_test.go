package faultsuite

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testkit"
)

// snap is the state bad input must not change: row counts and fingerprints of the rows an admin
// or a VPS can write (sign-in attempts are recorded by design and left out), and apart from them
// the number of audit entries (a refused sign-in is audited by design).
type snap struct {
	rows  string
	audit int64
}

func snapshot(t testing.TB, pool *pgxpool.Pool) snap {
	t.Helper()
	var counts [6]int64
	var audit int64
	var subs, custs, secrets string
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM customers), (SELECT count(*) FROM customer_secrets), (SELECT count(*) FROM subscriptions),
		(SELECT count(*) FROM provisioning_events), 0, (SELECT count(*) FROM admins),
		(SELECT count(*) FROM audit_log),
		(SELECT coalesce(md5(string_agg(concat_ws(':', id, provisioning_status, updated_at, callback_received_at, callback_token_hash), ',' ORDER BY id)), '') FROM subscriptions),
		(SELECT coalesce(md5(string_agg(concat_ws(':', id, email, name, telegram_user_id, updated_at), ',' ORDER BY id)), '') FROM customers),
		(SELECT coalesce(md5(string_agg(concat_ws(':', customer_id, updated_at), ',' ORDER BY customer_id)), '') FROM customer_secrets)`).
		Scan(&counts[0], &counts[1], &counts[2], &counts[3], &counts[4], &counts[5], &audit, &subs, &custs, &secrets)
	require.NoError(t, err)
	// River's jobs counted by River's driver.
	jobs, err := riverpgxv5.New(pool).GetExecutor().JobCountByAllStates(context.Background(), &riverdriver.JobCountByAllStatesParams{})
	require.NoError(t, err)
	for _, n := range jobs {
		counts[4] += int64(n)
	}
	return snap{audit: audit, rows: fmt.Sprintf("customers=%d secrets=%d subscriptions=%d events=%d jobs=%d admins=%d subs#%s customers#%s secrets#%s",
		counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], subs, custs, secrets)}
}

// badCase is one bad request and the answer it must get.
type badCase struct {
	name        string
	method      string
	path        string
	contentType string
	body        string
	length      int64 // Content-Length to announce; -1: the body's, -2: none (chunked)
	csrfHeader  bool
	want        []int  // acceptable status codes
	mustSay     string // text the answer must contain (the clear error)
	mustNotSay  string // text the answer must not contain (echoed markup or secrets)
	// audited: the refusal itself is written to the audit log (a failed sign-in), nothing else.
	audited bool
}

// TestBadInput sends bad input to every place it enters the running web process — forms, the
// VPS callback — and starts the binary with bad configuration. Each gets a clear error, changes
// nothing, and the process keeps answering.
func TestBadInput(t *testing.T) {
	t.Parallel()
	// Every VPS loses its callback and its sshd stays down (so the worker cannot see cloud-init
	// finish either): subscriptions wait in cloud_init for the callback tests.
	s := newStack(t, stackOpts{webs: 1, workers: 1, dbURL: dbtest.URL(t),
		sim: hcloudsim.Config{Faults: hcloudsim.Faults{Servers: []hcloudsim.ServerFault{{LoseCallback: true, SSHDelay: hcloudsim.Duration(24 * time.Hour)}}}},
		env: map[string]string{"CALLBACK_DEADLINE": "10m"}})
	a := signIn(t, s.baseURL)
	subA, subB := a.createCustomer(t, 1), a.createCustomer(t, 2)
	a.press(t, subA, "provision")
	a.press(t, subB, "provision")
	testkit.Eventually(t, "both subscriptions to wait for their callback", func() error {
		subs, err := readSubs(context.Background(), s.pool)
		if err != nil {
			return err
		}
		if subs[subA].Status != "cloud_init" || subs[subB].Status != "cloud_init" {
			return fmt.Errorf("they are %s and %s", subs[subA].Status, subs[subB].Status)
		}
		return nil
	})
	// Nothing else may write while the bad input arrives: stop the worker.
	s.workers[0].stop()
	web := s.webs[0]

	t.Run("forms", func(t *testing.T) { badForms(t, s, a, subA) })
	t.Run("callback", func(t *testing.T) { badCallbacks(t, s, subA, subB) })
	t.Run("config", func(t *testing.T) { badConfig(t, s) })
	require.False(t, web.exited(), "the web process is still running")
	require.NotContains(t, web.output(), "panic", "the web process logged no panic")
}

func (s *stack) requireUnchanged(t *testing.T, before snap, what string) {
	t.Helper()
	s.requireOnlyAudited(t, before, 0, what)
}

// requireOnlyAudited checks nothing changed but audit entries more.
func (s *stack) requireOnlyAudited(t *testing.T, before snap, audited int64, what string) {
	t.Helper()
	after := snapshot(t, s.pool)
	require.Equal(t, before.rows, after.rows, "%s changed the database", what)
	require.Equal(t, before.audit+audited, after.audit, "%s: audit entries", what)
	require.Equal(t, http.StatusOK, status(s.webURL(0)+"/healthz"), "the web process answers after %s", what)
}

func (s *stack) sendBad(t *testing.T, client *admin, c badCase) {
	t.Helper()
	before := snapshot(t, s.pool)
	var body io.Reader = strings.NewReader(c.body)
	length := int64(-1)
	switch c.length {
	case -2:
		body = io.MultiReader(strings.NewReader(c.body)) // unknown length: sent chunked
	case -1:
	default:
		length = c.length
	}
	req, err := http.NewRequest(c.method, client.base+c.path, body)
	require.NoError(t, err)
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.csrfHeader {
		req.Header.Set("X-CSRF-Token", client.csrf)
	}
	if length >= 0 {
		req.ContentLength = length
	}
	resp, err := client.http.Do(req)
	var got int
	var text string
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got, text = resp.StatusCode, string(b)
	} else {
		// A server may close the connection on a body it refuses before reading it all.
		t.Logf("%s: %v", c.name, err)
	}
	audited := int64(0)
	if c.audited {
		audited = 1
	}
	if err == nil {
		require.Contains(t, c.want, got, "%s: status (body %.300q)", c.name, text)
		if c.mustSay != "" {
			require.Contains(t, text, c.mustSay, c.name)
		}
		if c.mustNotSay != "" {
			require.NotContains(t, text, c.mustNotSay, c.name)
		}
	}
	s.requireOnlyAudited(t, before, audited, c.name)
}

func badForms(t *testing.T, s *stack, a *admin, subID int64) {
	valid := a.customerForm(99)
	with := func(kv ...string) string {
		f := url.Values{}
		for k, v := range valid {
			f[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f.Encode()
	}
	form := "application/x-www-form-urlencoded"
	const invalid = http.StatusUnprocessableEntity
	var customerID int64
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT customer_id FROM subscriptions WHERE id = $1`, subID).Scan(&customerID))
	big := strings.Repeat("A", 100<<10)
	cases := []badCase{
		{name: "oversized body", method: "POST", path: "/customers", contentType: form, body: with("name", big), want: []int{413}, mustSay: "too large"},
		{name: "oversized body, chunked", method: "POST", path: "/customers", contentType: form, body: with("name", big), length: -2, want: []int{400, 403, 413}},
		{name: "no CSRF token", method: "POST", path: "/customers", contentType: form, body: with("_csrf", ""), want: []int{403}, mustSay: "The form has expired"},
		{name: "wrong CSRF token", method: "POST", path: "/customers", contentType: form, body: with("_csrf", a.csrf+"x"), want: []int{403}},
		{name: "telegram id not a number", method: "POST", path: "/customers", contentType: form, body: with("telegram_user_id", "abc"), want: []int{invalid}, mustSay: "positive number"},
		{name: "telegram id overflows int64", method: "POST", path: "/customers", contentType: form, body: with("telegram_user_id", "99999999999999999999999"), want: []int{invalid}},
		{name: "negative owner id", method: "POST", path: "/customers", contentType: form, body: with("owner_telegram_user_id", "-5"), want: []int{invalid}},
		{name: "unknown plan", method: "POST", path: "/customers", contentType: form, body: with("plan", "gold"), want: []int{invalid}, mustSay: "Choose a plan."},
		{name: "unknown billing status", method: "POST", path: "/customers", contentType: form, body: with("billing_status", "free'--"), want: []int{invalid}},
		{name: "expiry not a date", method: "POST", path: "/customers", contentType: form, body: with("claude_token_expires_at", "yesterday"), want: []int{invalid}},
		{name: "SQL in email", method: "POST", path: "/customers", contentType: form, body: with("email", "x'); DROP TABLE customers;--@example.com"), want: []int{invalid}, mustSay: "Enter an email address"},
		{name: "markup in email", method: "POST", path: "/customers", contentType: form, body: with("email", "<script>alert(1)</script>@example.com"), want: []int{invalid}, mustNotSay: "<script>alert(1)"},
		{name: "NUL byte in name", method: "POST", path: "/customers", contentType: form, body: with("name", "Ann\x00Bob"), want: []int{invalid}, mustSay: "not allowed"},
		{name: "invalid UTF-8 in name", method: "POST", path: "/customers", contentType: form, body: with("name", "Ann\xff\xfeBob"), want: []int{invalid}},
		{name: "name too long", method: "POST", path: "/customers", contentType: form, body: with("name", strings.Repeat("é", 201)), want: []int{invalid}, mustSay: "at most 200"},
		{name: "email too long", method: "POST", path: "/customers", contentType: form, body: with("email", strings.Repeat("a", 300)+"@example.com"), want: []int{invalid}},
		{name: "token with spaces", method: "POST", path: "/customers", contentType: form, body: with("claude_access_token", "sk-ant oat01 RECOGNISABLE"), want: []int{invalid}, mustNotSay: "RECOGNISABLE"},
		{name: "markup as bot token", method: "POST", path: "/customers", contentType: form, body: with("telegram_bot_token", "<img src=x onerror=alert(1)>"), want: []int{invalid}, mustNotSay: "onerror"},
		{name: "JSON with wrong types", method: "POST", path: "/customers", contentType: "application/json", csrfHeader: true, body: `{"email": 5, "name": ["x"]}`, want: []int{400}, mustSay: "could not be read"},
		{name: "JSON that is not JSON", method: "POST", path: "/customers", contentType: "application/json", csrfHeader: true, body: `{"email": "a@`, want: []int{400}},
		{name: "XML body", method: "POST", path: "/customers", contentType: "application/xml", csrfHeader: true, body: `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`, want: []int{400, invalid}, mustNotSay: "root:"},
		{name: "edit with an invalid email", method: "POST", path: fmt.Sprintf("/customers/%d", customerID), contentType: form, body: with("email", "nope"), want: []int{invalid}},
		{name: "edit of a customer id that is not a number", method: "POST", path: "/customers/1%20OR%201=1", contentType: form, body: with(), want: []int{404}},
		{name: "provision id not a number", method: "POST", path: "/subscriptions/abc/provision", contentType: form, body: with(), want: []int{404}},
		{name: "provision id zero", method: "POST", path: "/subscriptions/0/provision", contentType: form, body: with(), want: []int{404}},
		{name: "provision id overflows", method: "POST", path: "/subscriptions/99999999999999999999/provision", contentType: form, body: with(), want: []int{404}},
		{name: "provision of a subscription that does not exist", method: "POST", path: "/subscriptions/987654/provision", contentType: form, body: with(), want: []int{404}},
		{name: "retry of a subscription that is not failed", method: "POST", path: fmt.Sprintf("/subscriptions/%d/retry", subID), contentType: form, body: with(), want: []int{303}},
		{name: "destroy with a wrong confirmation", method: "POST", path: fmt.Sprintf("/subscriptions/%d/destroy", subID), contentType: form,
			body: url.Values{"_csrf": {a.csrf}, "confirm_name": {"rachel-sub-1'; DROP TABLE subscriptions;--<script>"}}.Encode(), want: []int{invalid}, mustSay: "Nothing was destroyed", mustNotSay: "<script>"},
		{name: "finding id not a number", method: "POST", path: "/reconcile/x/destroy", contentType: form, body: with(), want: []int{404}},
		{name: "search with markup", method: "GET", path: "/subscriptions?q=" + url.QueryEscape("<script>alert(1)</script>"), want: []int{200}, mustNotSay: "<script>alert(1)"},
		{name: "search with a NUL byte", method: "GET", path: "/subscriptions?q=a%00b", want: []int{invalid}},
		{name: "search with invalid UTF-8", method: "GET", path: "/subscriptions?q=%ff%fe'", want: []int{invalid}},
		{name: "unknown status filter", method: "GET", path: "/subscriptions?status=bogus", want: []int{invalid}},
		{name: "status fragment of nothing", method: "GET", path: "/subscriptions/987654/status", want: []int{404}},
	}
	for _, c := range cases {
		if c.length == 0 {
			c.length = -1
		}
		s.sendBad(t, a, c)
	}
	// The flash of the refused retry says why; the state shows it did nothing.
	subs, err := readSubs(context.Background(), s.pool)
	require.NoError(t, err)
	require.Equal(t, "cloud_init", subs[subID].Status)

	// Sign-in: a fresh browser, no session.
	b := newBrowser(s.baseURL)
	_, _, tok := b.get(t, "/signin")
	require.NotEmpty(t, tok)
	for _, c := range []badCase{
		{name: "sign-in with SQL as email", method: "POST", path: "/signin", contentType: form,
			body: url.Values{"_csrf": {tok}, "email": {"' OR 1=1 --"}, "password": {"' OR ''='"}}.Encode(), want: []int{401}, mustSay: "The email or password is wrong.", audited: true},
		{name: "sign-in with a NUL byte and invalid UTF-8 in the email", method: "POST", path: "/signin", contentType: form,
			body: url.Values{"_csrf": {tok}, "email": {"ops\x00@exa\xffmple.com"}, "password": {"whatever password"}}.Encode(), want: []int{401}, mustSay: "The email or password is wrong."},
		{name: "sign-in with an oversized password", method: "POST", path: "/signin", contentType: form,
			body: url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {big}}.Encode(), want: []int{413}},
		{name: "sign-in to a redirect off the site", method: "POST", path: "/signin", contentType: form,
			body: url.Values{"_csrf": {tok}, "email": {"nobody@example.com"}, "password": {"x"}, "next": {"//evil.example/"}}.Encode(), want: []int{401}, mustNotSay: "evil.example", audited: true},
	} {
		c.length = -1
		s.sendBad(t, b, c)
	}
}

var callbackToken = regexp.MustCompile(`/callback/([A-Za-z0-9_-]{43})`)

// vpsCallback is what a subscription's VPS would post: its token and form.
func (s *stack) vpsCallback(t *testing.T, subID int64) (token string, form url.Values) {
	t.Helper()
	var serverID int64
	var hostKey string
	require.NoError(t, s.pool.QueryRow(context.Background(),
		`SELECT hetzner_server_id, ssh_host_key_public FROM subscriptions WHERE id = $1`, subID).Scan(&serverID, &hostKey))
	srv, ok := s.sim.Server(serverID)
	require.True(t, ok, "server %d exists", serverID)
	m := callbackToken.FindStringSubmatch(srv.UserData)
	require.NotNil(t, m, "the user data carries the callback URL")
	return m[1], url.Values{"instance_id": {fmt.Sprint(serverID)}, "pub_key_ed25519": {hostKey},
		"hostname": {s.serverName(subID)}, "fqdn": {s.serverName(subID)}}
}

func badCallbacks(t *testing.T, s *stack, subA, subB int64) {
	tokA, formA := s.vpsCallback(t, subA)
	tokB, formB := s.vpsCallback(t, subB)
	vps := newBrowser(s.webURL(0)) // the VPS talks to the web process directly, no cookies
	form := "application/x-www-form-urlencoded"
	with := func(f url.Values, kv ...string) string {
		g := url.Values{}
		for k, v := range f {
			g[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			g.Set(kv[i], kv[i+1])
		}
		return g.Encode()
	}
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	wrongToken := base64.RawURLEncoding.EncodeToString(random)
	rejected := []int{404}
	jsonA, _ := json.Marshal(map[string]string{"instance_id": formA.Get("instance_id"), "pub_key_ed25519": formA.Get("pub_key_ed25519")})
	cases := []badCase{
		{name: "unknown token", path: "/callback/" + wrongToken, body: formA.Encode(), want: rejected},
		{name: "short token", path: "/callback/abc", body: formA.Encode(), want: rejected},
		{name: "token with a NUL byte", path: "/callback/" + tokA[:42] + "%00", body: formA.Encode(), want: rejected},
		{name: "token of SQL", path: "/callback/" + url.PathEscape("' OR 1=1; --"), body: formA.Encode(), want: rejected},
		{name: "very long token", path: "/callback/" + strings.Repeat("A", 8000), body: formA.Encode(), want: rejected},
		{name: "no token", path: "/callback/", body: formA.Encode(), want: []int{403, 404, 405}},
		{name: "GET instead of POST", method: "GET", path: "/callback/" + tokA, want: []int{303, 404, 405}},
		{name: "another server's instance_id", path: "/callback/" + tokA, body: with(formA, "instance_id", formB.Get("instance_id")), want: rejected},
		{name: "instance_id not a number", path: "/callback/" + tokA, body: with(formA, "instance_id", "1 OR 1=1"), want: rejected},
		{name: "instance_id missing", path: "/callback/" + tokA, body: url.Values{"pub_key_ed25519": formA["pub_key_ed25519"]}.Encode(), want: rejected},
		{name: "another server's host key", path: "/callback/" + tokA, body: with(formA, "pub_key_ed25519", formB.Get("pub_key_ed25519")), want: rejected},
		{name: "host key that is not a key", path: "/callback/" + tokA, body: with(formA, "pub_key_ed25519", "ssh-ed25519 AAAA\x00\xff<script>"), want: rejected},
		{name: "host key N/A", path: "/callback/" + tokA, body: with(formA, "pub_key_ed25519", "N/A"), want: rejected},
		{name: "empty body", path: "/callback/" + tokA, want: rejected},
		{name: "form as JSON", path: "/callback/" + tokA, contentType: "application/json", body: string(jsonA), want: rejected},
		{name: "form as text/plain", path: "/callback/" + tokA, contentType: "text/plain", body: formA.Encode(), want: rejected},
		{name: "malformed form encoding", path: "/callback/" + tokA, body: "instance_id=%zz&pub_key_ed25519=%", want: []int{400, 404}},
		{name: "huge body", path: "/callback/" + tokA, body: formA.Encode() + "&pad=" + strings.Repeat("x", 1<<20), want: []int{413}},
		{name: "huge body, chunked", path: "/callback/" + tokA, body: formA.Encode() + "&pad=" + strings.Repeat("x", 1<<20), length: -2, want: []int{400, 413}},
	}
	run := func(cases []badCase) {
		for _, c := range cases {
			if c.method == "" {
				c.method = "POST"
			}
			if c.contentType == "" && c.method == "POST" {
				c.contentType = form
			}
			if c.length == 0 {
				c.length = -1
			}
			s.sendBad(t, vps, c)
		}
	}
	run(cases)

	// An expired token: the right server and key, too late.
	_, err := s.pool.Exec(context.Background(), `UPDATE subscriptions SET callback_expires_at = now() - interval '1 minute' WHERE id = $1`, subA)
	require.NoError(t, err)
	run([]badCase{{name: "expired token", path: "/callback/" + tokA, body: formA.Encode(), want: rejected}})

	// The right callback is accepted (so the refusals above were not an endpoint that refuses
	// everything), once: replaying it changes nothing.
	resp, body := vps.do(t, "POST", "/callback/"+tokB, form, strings.NewReader(formB.Encode()), -1)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	subs, err := readSubs(context.Background(), s.pool)
	require.NoError(t, err)
	require.Equal(t, "injecting_secrets", subs[subB].Status)
	run([]badCase{{name: "replayed token", path: "/callback/" + tokB, body: formB.Encode(), want: rejected}})
}

// badConfig starts the binary with one wrong variable at a time: it must exit non-zero at once,
// name the variable, and never echo a secret value.
func badConfig(t *testing.T, s *stack) {
	before := snapshot(t, s.pool)
	webPort := strings.TrimPrefix(s.webURL(0), "http://127.0.0.1:")
	const secretMark = "S3CRET-MARK"
	cases := []struct {
		name, cmd, variable string
		env                 map[string]string // "" deletes the variable
	}{
		{"keyring not a keyring", "serve", "RACHEL_KEYRING", map[string]string{"RACHEL_KEYRING": "not-a-keyring-" + secretMark}},
		{"keyring key too short", "serve", "RACHEL_KEYRING", map[string]string{"RACHEL_KEYRING": "1:" + base64.StdEncoding.EncodeToString([]byte("sixteen bytes!!!"))}},
		{"keyring key not base64", "work", "RACHEL_KEYRING", map[string]string{"RACHEL_KEYRING": "1:" + secretMark + "!!"}},
		{"keyring missing", "serve", "RACHEL_KEYRING", map[string]string{"RACHEL_KEYRING": ""}},
		{"database URL of another scheme", "serve", "DATABASE_URL", map[string]string{"DATABASE_URL": "mysql://root@127.0.0.1/rachel"}},
		{"database URL missing", "work", "DATABASE_URL", map[string]string{"DATABASE_URL": ""}},
		// Well-formed but nothing listens: the message says so (it does not name DATABASE_URL).
		{"database unreachable", "serve", "connect to database", map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/rachel?connect_timeout=5"}},
		{"database URL not a URL", "migrate", "DATABASE_URL", map[string]string{"DATABASE_URL": "postgres://%zz"}},
		{"public base URL not http", "serve", "PUBLIC_BASE_URL", map[string]string{"PUBLIC_BASE_URL": "ftp://example.com"}},
		{"public base URL with a query", "work", "PUBLIC_BASE_URL", map[string]string{"PUBLIC_BASE_URL": "https://example.com/?a=b"}},
		{"public base URL not a URL", "serve", "PUBLIC_BASE_URL", map[string]string{"PUBLIC_BASE_URL": "not a url"}},
		{"Hetzner endpoint not http", "work", "HCLOUD_ENDPOINT", map[string]string{"HCLOUD_ENDPOINT": "file:///etc/passwd"}},
		{"Hetzner endpoint not a URL", "work", "HCLOUD_ENDPOINT", map[string]string{"HCLOUD_ENDPOINT": "::nonsense"}},
		{"Hetzner token missing", "work", "HCLOUD_TOKEN", map[string]string{"HCLOUD_TOKEN": ""}},
		{"Hetzner token with white space", "work", "HCLOUD_TOKEN", map[string]string{"HCLOUD_TOKEN": "abc " + secretMark}},
		{"Hetzner token file missing", "work", "HCLOUD_TOKEN_FILE", map[string]string{"HCLOUD_TOKEN": "", "HCLOUD_TOKEN_FILE": "/nonexistent/token"}},
		{"port not a number", "serve", "PORT", map[string]string{"PORT": "http"}},
		{"port out of range", "serve", "PORT", map[string]string{"PORT": "70000"}},
		{"port zero", "serve", "PORT", map[string]string{"PORT": "0"}},
		{"port in use", "serve", "PORT", map[string]string{"PORT": webPort}},
		{"VPS SSH port not a port", "work", "VPS_SSH_PORT", map[string]string{"VPS_SSH_PORT": "22x"}},
		{"metrics port out of range", "work", "METRICS_PORT", map[string]string{"METRICS_PORT": "99999"}},
		{"callback deadline not a duration", "work", "CALLBACK_DEADLINE", map[string]string{"CALLBACK_DEADLINE": "soon"}},
		{"inject deadline negative", "work", "INJECT_DEADLINE", map[string]string{"INJECT_DEADLINE": "-5m"}},
		{"SSH key algorithm unknown", "work", "SSH_KEY_ALGORITHM", map[string]string{"SSH_KEY_ALGORITHM": "dsa"}},
		{"SSH sources not CIDRs", "work", "SSH_ALLOWED_SOURCES", map[string]string{"SSH_ALLOWED_SOURCES": "everyone"}},
		{"server type with markup", "work", "HCLOUD_SERVER_TYPE", map[string]string{"HCLOUD_SERVER_TYPE": "<cx22>"}},
		{"cookie flag not a boolean", "serve", "COOKIE_SECURE", map[string]string{"COOKIE_SECURE": "maybe"}},
		{"session idle longer than max age", "serve", "SESSION_IDLE_TIMEOUT", map[string]string{"SESSION_IDLE_TIMEOUT": "48h"}},
		{"log format unknown", "serve", "LOG_FORMAT", map[string]string{"LOG_FORMAT": "xml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := s.with(nil)
			env["PORT"] = fmt.Sprint(freePort(t))
			for k, v := range c.env {
				if v == "" {
					delete(env, k)
				} else {
					env[k] = v
				}
			}
			out, err := run(t, env, "", c.cmd)
			require.Error(t, err, "%s must refuse to start; output:\n%s", c.cmd, out)
			require.NotContains(t, err.Error(), "did not finish", "%s must exit at once", c.cmd)
			require.Contains(t, out, c.variable, "the message names the variable")
			require.NotContains(t, out, secretMark, "a secret value is not echoed")
			require.NotContains(t, out, "panic")
		})
	}
	t.Cleanup(func() { s.requireUnchanged(t, before, "bad configuration") })
}
