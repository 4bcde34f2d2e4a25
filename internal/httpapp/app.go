// Package httpapp is the admin web app: Echo routes, middleware and thin handlers that parse
// input, call one service method and render a templ view.
package httpapp

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/a-h/templ"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/billing"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/health"
	"github.com/rachelcloud/admin/internal/metrics"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/statusview"
	"github.com/rachelcloud/admin/views"
	"github.com/rachelcloud/admin/web"
)

// Deps are what the handlers need.
type Deps struct {
	Pool      *pgxpool.Pool
	Config    *config.Config
	Auth      *auth.Service
	Customers *customer.Service
	Provision *provision.Service
	// Status is the status page's and dashboard's read model; nil: one without the change
	// listener, reading the database on every poll.
	Status  *statusview.Reader
	Notify  *notify.Notifier
	Billing *billing.Service
	Health  *health.Checker
	Metrics *metrics.Metrics // nil: no /metrics route, no request counter
	Log     *slog.Logger
}

// App holds the handlers' dependencies.
type App struct {
	Deps
	sessions *sessionCache
	// statusFlight coalesces concurrent polls of one subscription's status fragment.
	statusFlight singleflight.Group
}

// NewDeps assembles what every web process has from its database and configuration: sign-in
// (sessions and secrets under the keyring), customers, and the provisioning service it is given.
// The server, the benchmarks and the tests all start from it and add what they run besides
// (notifications, metrics, health, billing), so a new dependency is wired in one place.
func NewDeps(pool *pgxpool.Pool, cfg *config.Config, prov *provision.Service, log *slog.Logger) Deps {
	return Deps{
		Pool: pool, Config: cfg, Log: log, Provision: prov,
		Auth:      auth.NewService(pool, cfg.SessionIdle, cfg.SessionMaxAge, auth.WithKeyring(cfg.Keyring)),
		Customers: customer.NewService(pool, cfg.Keyring),
	}
}

// New builds the Echo server with every route registered.
func New(d Deps) *echo.Echo {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Notify == nil && d.Pool != nil {
		// Callers that do not care about notifications (benchmarks, older tests) get the
		// channels of the configuration.
		if n, err := notify.New(d.Pool, d.Config, notify.Options{Log: d.Log}); err == nil {
			d.Notify = n
		} else {
			d.Log.Error("notifications unavailable", "err", err)
		}
	}
	if d.Billing == nil && d.Pool != nil {
		d.Billing = billing.New(d.Pool, d.Provision, billing.Options{Notify: d.Notify, Log: d.Log})
	}
	if d.Status == nil && d.Pool != nil {
		d.Status = statusview.New(d.Pool, d.Provision, d.Log)
	}
	if d.Health == nil && d.Pool != nil {
		d.Health = health.New(d.Pool, d.Config, health.Options{Notify: d.Notify, Log: d.Log})
	}
	a := &App{Deps: d, sessions: newSessionCache()}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.errorHandler
	// The client's address (audit log, sign-in throttling, callback rate limit) comes from the
	// connection, unless the app runs behind a proxy it trusts with X-Forwarded-For.
	e.IPExtractor = echo.ExtractIPDirect()
	if d.Config.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	}
	a.routes(e)
	return e
}

// Ready reports whether the database answers and the schema is current (for /readyz).
func (a *App) Ready(ctx context.Context) error {
	if err := a.Pool.Ping(ctx); err != nil {
		return err
	}
	return database.Current(ctx, a.Pool)
}

// render writes a component into a buffer first, so a render error never leaves half a page.
func render(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// page is the layout's view model for the current request.
func (a *App) page(c echo.Context, title, nav string) views.Page {
	p := views.Page{Title: title, Nav: nav, AssetsHash: web.Hash, CSRFToken: csrfToken(c)}
	if s := session(c); s != nil {
		p.AdminEmail, p.Role, p.Pending = s.AdminEmail, s.Role, s.SecondFactorPending
	}
	p.Flash = takeFlash(c)
	return p
}

// role is the signed-in admin's role ("" when signed out, which may do nothing).
func role(c echo.Context) auth.Role {
	if s := session(c); s != nil {
		return s.Role
	}
	return ""
}

// actor is the signed-in admin making the request, for the audit log.
func actor(c echo.Context) audit.Actor {
	act := audit.Actor{IP: c.RealIP()}
	if s := session(c); s != nil {
		act.AdminID, act.Email = s.AdminID, s.AdminEmail
	}
	return act
}

// redirect answers a form POST: 303 to url, or an HX-Redirect for htmx requests.
func redirect(c echo.Context, url string) error {
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", url)
		return c.NoContent(http.StatusNoContent)
	}
	return c.Redirect(http.StatusSeeOther, url)
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
