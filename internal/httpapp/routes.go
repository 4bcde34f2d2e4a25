package httpapp

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/billing"
	"github.com/rachelcloud/admin/internal/metrics"
	"github.com/rachelcloud/admin/web"
)

// routes registers every route in one place. Public routes are listed in publicRoutes; every
// other route requires a session, and every unsafe method a CSRF token.
func (a *App) routes(e *echo.Echo) {
	e.Use(requestID, a.logRequests, securityHeaders, limitBody)

	// Public, no session, no CSRF: health, assets, the VPS callback.
	e.GET("/healthz", a.healthz)
	e.GET("/readyz", a.readyz)
	static := http.StripPrefix("/static/", http.FileServer(http.FS(web.Static)))
	e.GET("/static/*", echo.WrapHandler(cacheStatic(static)))
	// /metrics is on the public port only behind METRICS_TOKEN; otherwise it is served only on
	// METRICS_PORT (see cmd_work.go's serveMetrics).
	if a.Metrics != nil && !a.Config.MetricsToken.IsZero() {
		e.GET("/metrics", echo.WrapHandler(metrics.Protect(a.Metrics.Handler(), a.Config.MetricsToken.Reveal())))
	}
	// The VPS's phone_home: guarded by its single-use token, the only unauthenticated write, and
	// rate-limited per address so a flood of guesses cannot load the database.
	e.POST("/callback/:token", a.callback, callbackRateLimit())
	// The billing system's API: no session or CSRF, a scoped bearer token instead (tokenRoutes),
	// with its own rate limit.
	e.POST("/api/billing/status", a.billingReport, billingRateLimit(a.Config.BillingAPIRate))

	// Pages.
	pages := e.Group("", a.loadSession, checkCSRF)
	pages.GET("/signin", a.signInShow)
	pages.POST("/signin", a.signIn)

	// Every signed-in route passes the gate (an admin with an unfinished sign-in sees only what
	// finishes it) and then needs at least the role routeRoles names for it.
	admin := pages.Group("", requireSession, a.gate, authorize)
	admin.POST("/signout", a.signOut)
	admin.GET("/", a.dashboard)
	admin.GET("/subscriptions", a.subscriptionList)
	admin.GET("/subscriptions.csv", a.subscriptionExport)
	admin.POST("/subscriptions/bulk", a.subscriptionBulk)
	admin.GET("/customers/new", a.customerNew)
	admin.POST("/customers", a.customerCreate)
	admin.GET("/customers/:id/edit", a.customerEdit)
	admin.POST("/customers/:id", a.customerUpdate)
	admin.GET("/subscriptions/:id", a.subscriptionShow)
	admin.GET("/subscriptions/:id/status", a.subscriptionStatus)
	admin.POST("/subscriptions/:id/provision", a.subscriptionProvision)
	admin.POST("/subscriptions/:id/retry", a.subscriptionRetry)
	admin.POST("/subscriptions/:id/reinject", a.subscriptionReinject)
	admin.POST("/subscriptions/:id/reboot", a.subscriptionReboot)
	admin.POST("/subscriptions/:id/destroy", a.subscriptionDestroy)
	admin.GET("/reconcile", a.reconcileShow)
	admin.POST("/reconcile/run", a.reconcileRun)
	admin.POST("/reconcile/:id/destroy", a.findingDestroy)
	admin.POST("/reconcile/:id/gone", a.findingGone)
	admin.GET("/audit", a.auditList)
	admin.GET("/assistants", a.assistantsShow)
	admin.GET("/settings/notifications", a.notificationsShow)
	admin.POST("/settings/notifications/test", a.notificationsTest)
	admin.GET("/settings/billing", a.billingSettingsShow)
	admin.POST("/settings/billing", a.billingSettingsSave)
	admin.GET("/settings/api-tokens", a.apiTokensShow)
	admin.POST("/settings/api-tokens", a.apiTokenCreate)
	admin.POST("/settings/api-tokens/:id/revoke", a.apiTokenRevoke)
	admin.POST("/subscriptions/:id/billing/hold", a.billingHold)
	admin.POST("/subscriptions/:id/billing/release", a.billingRelease)
	admin.GET("/admins", a.adminList)
	admin.POST("/admins", a.adminInvite)
	admin.POST("/admins/:id/role", a.adminSetRole)
	admin.POST("/admins/:id/disable", a.adminDisable)
	admin.POST("/admins/:id/enable", a.adminEnable)
	admin.GET("/account/password", a.passwordShow)
	admin.POST("/account/password", a.passwordChange)
	admin.GET("/signin/2fa", a.secondFactorShow)
	admin.POST("/signin/2fa", a.secondFactorCheck)
	admin.GET("/account/2fa", a.enrolShow)
	admin.GET("/account/2fa/qr.png", a.enrolQR)
	admin.POST("/account/2fa", a.enrolConfirm)
	admin.POST("/admins/:id/reset-2fa", a.adminResetSecondFactor)
}

// routeRoles is the least role each signed-in route needs, keyed "METHOD /path" as registered.
// A signed-in route missing here needs owner: a new route is closed until someone decides.
var routeRoles = map[string]auth.Role{
	"POST /signout":                     auth.RoleViewer,
	"GET /":                             auth.RoleViewer,
	"GET /subscriptions":                auth.RoleViewer,
	"GET /subscriptions.csv":            auth.RoleViewer,
	"POST /subscriptions/bulk":          auth.RoleOperator,
	"GET /customers/new":                auth.RoleOperator,
	"POST /customers":                   auth.RoleOperator,
	"GET /customers/:id/edit":           auth.RoleOperator,
	"POST /customers/:id":               auth.RoleOperator,
	"GET /subscriptions/:id":            auth.RoleViewer,
	"GET /subscriptions/:id/status":     auth.RoleViewer,
	"POST /subscriptions/:id/provision": auth.RoleOperator,
	"POST /subscriptions/:id/retry":     auth.RoleOperator,
	"POST /subscriptions/:id/reinject":  auth.RoleOperator,
	"POST /subscriptions/:id/reboot":    auth.RoleOperator,
	"POST /subscriptions/:id/destroy":   auth.RoleOwner,
	"GET /reconcile":                    auth.RoleViewer,
	"POST /reconcile/run":               auth.RoleOwner,
	"POST /reconcile/:id/destroy":       auth.RoleOwner,
	"POST /reconcile/:id/gone":          auth.RoleOwner,
	"GET /audit":                        auth.RoleViewer,
	"GET /admins":                       auth.RoleOwner,
	"POST /admins":                      auth.RoleOwner,
	"POST /admins/:id/role":             auth.RoleOwner,
	"POST /admins/:id/disable":          auth.RoleOwner,
	"POST /admins/:id/enable":           auth.RoleOwner,
	"GET /account/password":             auth.RoleViewer,
	"POST /account/password":            auth.RoleViewer,
	"GET /assistants":                   auth.RoleViewer,
	// Settings: notification channels, policies and API tokens are the owner's.
	"GET /settings/notifications":          auth.RoleOwner,
	"POST /settings/notifications/test":    auth.RoleOwner,
	"GET /signin/2fa":                      auth.RoleViewer,
	"POST /signin/2fa":                     auth.RoleViewer,
	"GET /account/2fa":                     auth.RoleViewer,
	"GET /account/2fa/qr.png":              auth.RoleViewer,
	"POST /account/2fa":                    auth.RoleViewer,
	"POST /admins/:id/reset-2fa":           auth.RoleOwner,
	"GET /settings/billing":                auth.RoleOwner,
	"POST /settings/billing":               auth.RoleOwner,
	"GET /settings/api-tokens":             auth.RoleOwner,
	"POST /settings/api-tokens":            auth.RoleOwner,
	"POST /settings/api-tokens/:id/revoke": auth.RoleOwner,
	// A hold only keeps a server; releasing it lets the policy destroy, which is the owner's.
	"POST /subscriptions/:id/billing/hold":    auth.RoleOperator,
	"POST /subscriptions/:id/billing/release": auth.RoleOwner,
}

// tokenRoutes are reached with an API token of the named scope instead of a session: no CSRF
// (no cookie is involved), 401 without a valid token.
var tokenRoutes = map[string]string{
	"POST /api/billing/status": billing.ScopeBilling,
}

// TokenRoutes returns the token-authenticated routes with their scope, as "METHOD /path".
func TokenRoutes() map[string]string {
	out := make(map[string]string, len(tokenRoutes))
	for k, v := range tokenRoutes {
		out[k] = v
	}
	return out
}

// leastRole is the role a signed-in route needs (owner when routeRoles does not name it).
func leastRole(method, path string) auth.Role {
	if r, ok := routeRoles[method+" "+path]; ok {
		return r
	}
	return auth.RoleOwner
}

// RouteRoles returns the least role of every signed-in route, as "METHOD /path".
func RouteRoles() map[string]auth.Role {
	out := make(map[string]auth.Role, len(routeRoles))
	for k, v := range routeRoles {
		out[k] = v
	}
	return out
}

// publicRoutes are the only routes reachable without a session (tests hold the router to it).
var publicRoutes = map[string]bool{
	"GET /healthz":  true,
	"GET /readyz":   true,
	"GET /metrics":  true, // bearer token (METRICS_TOKEN), no session
	"GET /static/*": true,
	"GET /signin":   true,
	"POST /signin":  true,
	// The only unauthenticated POST.
	"POST /callback/:token": true,
}

// cacheStatic lets browsers keep assets: their URLs carry the assets' hash.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == web.Hash {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=3600")
		}
		h.ServeHTTP(w, r)
	})
}

// PublicRoutes returns the routes reachable without a session, as "METHOD /path".
func PublicRoutes() map[string]bool {
	out := make(map[string]bool, len(publicRoutes))
	for k, v := range publicRoutes {
		out[k] = v
	}
	return out
}

// callbackRateLimit allows each address 10 callbacks a second with bursts of 100: far more than
// a VPS (which calls once) or a burst of VPSes behind one NAT needs, far less than a guessing run.
func callbackRateLimit() echo.MiddlewareFunc {
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: 10, Burst: 100, ExpiresIn: 3 * time.Minute,
		}),
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		ErrorHandler: func(echo.Context, error) error {
			return echo.NewHTTPError(http.StatusForbidden, "forbidden")
		},
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			return c.String(http.StatusTooManyRequests, "too many requests\n")
		},
	})
}
