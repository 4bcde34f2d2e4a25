package httpapp_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/browsertest"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/httpapp"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/testenv"
	"github.com/rachelcloud/admin/internal/teststack"
)

func TestMain(m *testing.M) {
	code := dbtest.Main(m)
	browsertest.Close()
	os.Exit(code)
}

const (
	adminEmail    = "ops@example.com"
	adminPassword = "a long enough password"
)

type testBundle struct {
	pool   *pgxpool.Pool
	echo   *echo.Echo
	server *httptest.Server
	client *http.Client // keeps cookies, does not follow redirects
	sim    *hcloudsim.Simulator
	prov   *provision.Service
	cfg    *config.Config
}

// setupOpts changes what setup builds.
type setupOpts struct {
	env map[string]string
	log *slog.Logger
}

// setup runs the web app without a simulator or worker (teststack, NoSim), with an admin.
func setup(t *testing.T, mods ...func(*setupOpts)) *testBundle {
	t.Helper()
	o := setupOpts{env: map[string]string{}, log: discardLogger()}
	for _, m := range mods {
		m(&o)
	}
	return newBundle(t, teststack.New(t, teststack.Options{
		Options: testenv.Options{NoSim: true, Env: o.env, Log: o.log}, NoWorker: true, Metrics: true}))
}

// newBundle creates the admin on the stack and a client that keeps cookies and does not follow
// redirects.
func newBundle(t *testing.T, s *teststack.Stack) *testBundle {
	t.Helper()
	_, err := s.Deps.Auth.CreateAdmin(context.Background(), adminEmail, adminPassword)
	require.NoError(t, err)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testBundle{pool: s.Pool, echo: s.Web, server: s.Server, client: client, sim: s.Sim, prov: s.Service, cfg: s.Config}
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// get fetches a page and returns status, body and the CSRF token found in it.
func (b *testBundle) get(t *testing.T, path string) (int, string, string) {
	t.Helper()
	resp, err := b.client.Get(b.server.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	tok := ""
	if m := csrfRe.FindSubmatch(body); m != nil {
		tok = string(m[1])
	}
	return resp.StatusCode, string(body), tok
}

func (b *testBundle) post(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := b.client.PostForm(b.server.URL+path, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *testBundle) signIn(t *testing.T) string {
	t.Helper()
	_, _, tok := b.get(t, "/signin")
	require.NotEmpty(t, tok)
	resp, _ := b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {adminPassword}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, _, tok = b.get(t, "/")
	require.NotEmpty(t, tok)
	return tok
}

func TestEveryAdminRouteNeedsASessionAndCSRF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	public := httpapp.PublicRoutes()
	tokenRoutes := httpapp.TokenRoutes()
	routes := b.echo.Routes()
	require.NotEmpty(t, routes)
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if public[key] || r.Method == echo.RouteNotFound {
			continue
		}
		if _, ok := tokenRoutes[key]; ok {
			// API routes take a scoped bearer token instead of a session: without one, 401.
			req, err := http.NewRequest(r.Method, b.server.URL+r.Path, strings.NewReader(`{}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := b.client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, key)
			continue
		}
		path := strings.NewReplacer(":id", "1", ":token", "x", "*", "x").Replace(r.Path)
		req, err := http.NewRequest(r.Method, b.server.URL+path, strings.NewReader(""))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		if r.Method == http.MethodPost {
			// Without a session (and so without a CSRF token) an unsafe request is refused before
			// anything else looks at it.
			require.Equal(t, http.StatusForbidden, resp.StatusCode, key)
		} else {
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, key)
			require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/signin"), key)
		}
	}

	// Signed in, a POST without the token or with a wrong one is refused too.
	tok := b.signIn(t)
	for _, r := range routes {
		if r.Method != http.MethodPost || public[r.Method+" "+r.Path] || r.Method == echo.RouteNotFound {
			continue
		}
		if _, ok := tokenRoutes[r.Method+" "+r.Path]; ok {
			continue
		}
		path := strings.NewReplacer(":id", "1", ":token", "x").Replace(r.Path)
		for _, bad := range []string{"", tok + "x"} {
			resp, _ := b.post(t, path, url.Values{"_csrf": {bad}})
			require.Equal(t, http.StatusForbidden, resp.StatusCode, r.Path)
		}
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, body, tok := b.get(t, "/signin")
	require.Contains(t, body, `<form method="post" action="/signin"`)

	resp, _ := b.post(t, "/signin", url.Values{"email": {adminEmail}, "password": {adminPassword}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "CSRF token missing")

	resp, body = b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {"wrong password!!"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, body, "The email or password is wrong.")
	require.NotContains(t, body, "wrong password!!")

	resp, _ = b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {adminPassword}, "next": {"//evil.example"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/", resp.Header.Get("Location"), "open redirect refused")
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "rachel_session" {
			sess = c
		}
	}
	require.NotNil(t, sess)
	require.True(t, sess.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, sess.SameSite)

	status, body, tok := b.get(t, "/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, adminEmail)

	resp, _ = b.post(t, "/signout", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	status, _, _ = b.get(t, "/")
	require.Equal(t, http.StatusSeeOther, status)
}

func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, _, tok := b.get(t, "/signin")
	for i := 0; i < auth.MaxFailsAccount; i++ {
		b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {"wrong password!!"}})
	}
	resp, body := b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {adminEmail}, "password": {adminPassword}})
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Contains(t, body, "Too many failed sign-ins")
}

func TestCustomerForms(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.signIn(t)
	const access, bot = "sk-ant-oat01-RECOGNISABLE-ACCESS", "123456789:AAEhBP0av28RECOGNISABLEbotTOKENvalue1"
	form := url.Values{
		"_csrf": {tok}, "email": {"ann@example.com"}, "name": {"Ann <b>Example</b>"}, "plan": {"personal"}, "billing_status": {"active"},
		"claude_access_token": {access}, "claude_refresh_token": {"sk-ant-ort01-RECOGNISABLE-REFRESH"},
		"telegram_bot_token": {bot}, "owner_telegram_user_id": {"4242"},
	}

	// Invalid: 422, messages per field, secrets not echoed, nothing written.
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("email", "not-an-email")
	bad.Set("telegram_bot_token", "RECOGNISABLE-but-invalid")
	resp, body := b.post(t, "/customers", bad)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "Enter an email address like name@example.com.")
	require.Contains(t, body, `aria-invalid="true"`)
	require.NotContains(t, body, "RECOGNISABLE")
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM customers`).Scan(&n))
	require.Zero(t, n)

	// Valid: stored, redirected, secrets never rendered, markup escaped.
	resp, _ = b.post(t, "/customers", form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT id FROM customers`).Scan(&id))
	for _, path := range []string{"/subscriptions", "/subscriptions?q=ann", "/customers/" + itoa(id) + "/edit", "/"} {
		status, body, _ := b.get(t, path)
		require.Equal(t, http.StatusOK, status, path)
		require.NotContains(t, body, "RECOGNISABLE", path)
		require.NotContains(t, body, "<b>Example</b>", path)
	}
	_, body, _ = b.get(t, "/customers/"+itoa(id)+"/edit")
	require.Contains(t, body, "set, updated")

	// Edit with blank secrets keeps them; an invalid edit is refused with 422.
	form.Set("claude_access_token", "")
	form.Set("name", "Ann Renamed")
	resp, _ = b.post(t, "/customers/"+itoa(id), form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	form.Set("plan", "gold")
	resp, body = b.post(t, "/customers/"+itoa(id), form)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "Choose a plan.")

	status, _, _ := b.get(t, "/customers/999999/edit")
	require.Equal(t, http.StatusNotFound, status)
	status, _, _ = b.get(t, "/customers/abc/edit")
	require.Equal(t, http.StatusNotFound, status)
	status, _, _ = b.get(t, "/subscriptions?status=bogus")
	require.Equal(t, http.StatusUnprocessableEntity, status)
}

func TestHealthAndHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		status, _, _ := b.get(t, p)
		require.Equal(t, http.StatusOK, status, p)
	}
	resp, err := b.client.Get(b.server.URL + "/signin")
	require.NoError(t, err)
	resp.Body.Close()
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	resp, err = b.client.Get(b.server.URL + "/static/htmx.min.js")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Cache-Control"))
}
