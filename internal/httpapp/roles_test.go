package httpapp_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/httpapp"
)

// routeTable is every signed-in route with the least role it needs. The router must hold exactly
// these routes, and each is tried with every role.
var routeTable = []struct {
	route string
	least auth.Role
}{
	{"POST /signout", auth.RoleViewer},
	{"GET /", auth.RoleViewer},
	{"GET /subscriptions", auth.RoleViewer},
	{"GET /subscriptions.csv", auth.RoleViewer},
	{"POST /subscriptions/bulk", auth.RoleOperator},
	{"GET /customers/new", auth.RoleOperator},
	{"POST /customers", auth.RoleOperator},
	{"GET /customers/:id/edit", auth.RoleOperator},
	{"POST /customers/:id", auth.RoleOperator},
	{"GET /subscriptions/:id", auth.RoleViewer},
	{"GET /subscriptions/:id/status", auth.RoleViewer},
	{"POST /subscriptions/:id/provision", auth.RoleOperator},
	{"POST /subscriptions/:id/retry", auth.RoleOperator},
	{"POST /subscriptions/:id/reinject", auth.RoleOperator},
	{"POST /subscriptions/:id/reboot", auth.RoleOperator},
	{"POST /subscriptions/:id/destroy", auth.RoleOwner},
	{"GET /reconcile", auth.RoleViewer},
	{"POST /reconcile/run", auth.RoleOwner},
	{"POST /reconcile/:id/destroy", auth.RoleOwner},
	{"POST /reconcile/:id/gone", auth.RoleOwner},
	{"GET /audit", auth.RoleViewer},
	{"GET /admins", auth.RoleOwner},
	{"POST /admins", auth.RoleOwner},
	{"POST /admins/:id/role", auth.RoleOwner},
	{"POST /admins/:id/disable", auth.RoleOwner},
	{"POST /admins/:id/enable", auth.RoleOwner},
	{"GET /account/password", auth.RoleViewer},
	{"POST /account/password", auth.RoleViewer},
	{"GET /settings/notifications", auth.RoleOwner},
	{"POST /settings/notifications/test", auth.RoleOwner},
	{"GET /signin/2fa", auth.RoleViewer},
	{"POST /signin/2fa", auth.RoleViewer},
	{"GET /account/2fa", auth.RoleViewer},
	{"GET /account/2fa/qr.png", auth.RoleViewer},
	{"POST /account/2fa", auth.RoleViewer},
	{"POST /admins/:id/reset-2fa", auth.RoleOwner},
	{"GET /assistants", auth.RoleViewer},
	{"GET /settings/billing", auth.RoleOwner},
	{"POST /settings/billing", auth.RoleOwner},
	{"GET /settings/api-tokens", auth.RoleOwner},
	{"POST /settings/api-tokens", auth.RoleOwner},
	{"POST /settings/api-tokens/:id/revoke", auth.RoleOwner},
	{"POST /subscriptions/:id/billing/hold", auth.RoleOperator},
	{"POST /subscriptions/:id/billing/release", auth.RoleOwner},
}

// as returns a bundle whose client is signed in as a new admin with role.
func (b *testBundle) as(t *testing.T, role auth.Role) (*testBundle, string) {
	t.Helper()
	email := string(role) + "-" + auth.RandomToken(4) + "@example.com"
	email = strings.ToLower(email)
	_, err := auth.NewService(b.pool, time.Hour, time.Hour).CreateAdminWithRole(context.Background(), email, adminPassword, role)
	require.NoError(t, err)
	c := *b
	jar, _ := cookiejar.New(nil)
	c.client = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: b.client.CheckRedirect}
	return &c, c.signInWith(t, email, adminPassword)
}

// signInWith signs the bundle's client in and returns the CSRF token of its session.
func (b *testBundle) signInWith(t *testing.T, email, password string) string {
	t.Helper()
	_, _, tok := b.get(t, "/signin")
	require.NotEmpty(t, tok)
	resp, body := b.post(t, "/signin", url.Values{"_csrf": {tok}, "email": {email}, "password": {password}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	_, _, tok = b.get(t, "/account/password")
	if tok == "" { // REQUIRE_2FA: enrolment first
		_, _, tok = b.get(t, "/account/2fa")
	}
	require.NotEmpty(t, tok)
	return tok
}

// TestRouteTableLeastRoles: the router holds exactly the table's routes, the app agrees on each
// one's least role, and every route answers 403 to each role below it (a forged but CSRF-valid
// POST included) and something else to the roles at or above it.
func TestRouteTableLeastRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	public := httpapp.PublicRoutes()
	tokenRoutes := httpapp.TokenRoutes() // API token instead of a session (app_test.go checks them)
	var registered, table []string
	for _, r := range b.echo.Routes() {
		if _, api := tokenRoutes[r.Method+" "+r.Path]; api {
			continue
		}
		if key := r.Method + " " + r.Path; !public[key] && r.Method != echo.RouteNotFound {
			registered = append(registered, key)
		}
	}
	want := map[string]auth.Role{}
	for _, r := range routeTable {
		table = append(table, r.route)
		want[r.route] = r.least
	}
	sort.Strings(registered)
	sort.Strings(table)
	require.Equal(t, table, registered, "the route table lists every signed-in route")
	require.Equal(t, want, httpapp.RouteRoles(), "the app's least roles are the table's")

	for _, role := range auth.Roles {
		c, tok := b.as(t, role)
		var last []string // signing out ends the session: last
		try := func(key string) {
			method, path, _ := strings.Cut(key, " ")
			path = strings.NewReplacer(":id", "1").Replace(path)
			var status int
			if method == http.MethodGet {
				status, _, _ = c.get(t, path)
			} else {
				resp, _ := c.post(t, path, url.Values{"_csrf": {tok}})
				status = resp.StatusCode
			}
			if role.AtLeast(want[key]) {
				require.NotEqual(t, http.StatusForbidden, status, "%s as %s", key, role)
			} else {
				require.Equal(t, http.StatusForbidden, status, "%s as %s", key, role)
			}
		}
		for _, r := range routeTable {
			if r.route == "POST /signout" {
				last = append(last, r.route)
				continue
			}
			try(r.route)
		}
		for _, key := range last {
			try(key)
		}
	}
}

// TestViewsHideWhatTheRoleMayNotUse: a viewer sees no action buttons, an operator no Destroy.
func TestViewsHideWhatTheRoleMayNotUse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.createCustomer(t, b.signIn(t), customerForm("roles@example.com"))
	path := "/subscriptions/" + itoa(id)

	_, body, _ := b.get(t, path)
	d := doc(t, body)
	require.Equal(t, 1, d.Find(`form[action$="/provision"]`).Length(), "an owner sees Provision")
	require.Equal(t, 1, d.Find(`a[href="/admins"]`).Length(), "an owner sees Admins")

	viewer, vtok := b.as(t, auth.RoleViewer)
	for _, p := range []string{path, path + "/status", "/subscriptions", "/reconcile", "/"} {
		status, body, _ := viewer.get(t, p)
		require.True(t, status == http.StatusOK || status == 286, "%s: %d", p, status)
		d := doc(t, body)
		require.Zero(t, d.Find(`main form[method="post"]`).Length(), "a viewer sees no action form on %s", p)
		require.Zero(t, d.Find(`a[href="/customers/new"], a[href$="/edit"], a[href="/admins"]`).Length(), p)
	}
	resp, _ := viewer.post(t, path+"/provision", url.Values{"_csrf": {vtok}})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a forged POST from a viewer")
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM subscriptions WHERE provisioning_status IS NOT NULL`).Scan(&n))
	require.Zero(t, n, "nothing was provisioned")

	operator, _ := b.as(t, auth.RoleOperator)
	_, body, _ = operator.get(t, path)
	d = doc(t, body)
	require.Equal(t, 1, d.Find(`form[action$="/provision"]`).Length(), "an operator sees Provision")
	require.Zero(t, d.Find(`a[href="/admins"]`).Length())
}
