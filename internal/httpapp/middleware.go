package httpapp

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/views"
)

const (
	sessionCookie = "rachel_session"
	preCSRFCookie = "rachel_csrf"  // double-submit token for the sign-in form (no session yet)
	flashCookie   = "rachel_flash" // one-time message after a redirect
	ctxSession    = "session"
	ctxCSRF       = "csrf"
	ctxFlash      = "flash"
	maxBodyBytes  = 64 << 10
)

// requestID gives every request an ID, echoed in X-Request-ID and on every log line.
// The ID rides in the request's context, so the services' log lines and the jobs they start
// carry it too.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := auth.RandomToken(9)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		r := c.Request()
		c.SetRequest(r.WithContext(logging.With(r.Context(), slog.String("request_id", id))))
		return next(c)
	}
}

// logRequests writes one line per request. The callback path is logged without its token.
func (a *App) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		path := c.Path()
		if path == "" {
			path = "(unmatched)"
		}
		status := c.Response().Status
		if a.Metrics != nil {
			a.Metrics.Requests.WithLabelValues(path, strconv.Itoa(status)).Inc()
		}
		a.Log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
			slog.String("method", c.Request().Method),
			slog.String("route", path), slog.Int("status", status),
			slog.Duration("duration", time.Since(start)), slog.String("ip", c.RealIP()))
		return nil
	}
}

// securityHeaders sets a strict CSP (no inline script), frame denial and no sniffing.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		return next(c)
	}
}

// limitBody refuses request bodies larger than any form the app has.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().ContentLength > maxBodyBytes {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The request is too large.")
		}
		c.Request().Body = http.MaxBytesReader(c.Response(), c.Request().Body, maxBodyBytes)
		return next(c)
	}
}

// loadSession attaches the signed-in admin, if any, and the CSRF token forms must carry.
func (a *App) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
			s, err := a.sessions.lookup(c.Request().Context(), ck.Value, a.Auth.Lookup)
			switch {
			case err == nil:
				c.Set(ctxSession, s)
				c.Set(ctxCSRF, s.CSRFToken)
			case errors.Is(err, auth.ErrNoSession):
				a.clearCookie(c, sessionCookie)
			default:
				return err
			}
		}
		if session(c) == nil {
			// Before sign-in: a double-submit token in a cookie of its own.
			tok := ""
			if ck, err := c.Cookie(preCSRFCookie); err == nil && len(ck.Value) == 43 {
				tok = ck.Value
			} else {
				tok = auth.RandomToken(32)
				a.setCookie(c, preCSRFCookie, tok, 0)
			}
			c.Set(ctxCSRF, tok)
		}
		return next(c)
	}
}

// requireSession sends requests without a session to the sign-in page.
func requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if session(c) != nil {
			return next(c)
		}
		if c.Request().Header.Get("HX-Request") == "true" {
			c.Response().Header().Set("HX-Redirect", "/signin")
			return c.NoContent(http.StatusUnauthorized)
		}
		next := "/"
		if c.Request().Method == http.MethodGet {
			next = c.Request().URL.RequestURI()
		}
		return c.Redirect(http.StatusSeeOther, "/signin?next="+url.QueryEscape(next))
	}
}

// authorize refuses a request whose admin's role is below the route's least role (routeRoles),
// with 403. It runs after checkCSRF, so a forged form is refused whatever the role.
func authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		least := leastRole(c.Request().Method, c.Path())
		if s := session(c); s == nil || !s.Role.AtLeast(least) {
			return echo.NewHTTPError(http.StatusForbidden, "Your role does not allow this; it needs "+string(least)+".")
		}
		return next(c)
	}
}

// gateRoutes are what an admin with an unfinished sign-in may still reach, by what is unfinished.
var gateRoutes = map[string]map[string]bool{
	"/signin/2fa":       {"GET /signin/2fa": true, "POST /signin/2fa": true, "POST /signout": true},
	"/account/password": {"GET /account/password": true, "POST /account/password": true, "POST /signout": true},
	"/account/2fa":      {"GET /account/2fa": true, "GET /account/2fa/qr.png": true, "POST /account/2fa": true, "POST /signout": true},
}

// gate keeps an admin whose sign-in is unfinished on the page that finishes it, in this order:
// the second-factor code after a right password; an invitation's one-time password to replace;
// with REQUIRE_2FA, the enrolment of a second factor.
func (a *App) gate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s := session(c)
		to := ""
		switch {
		case s.SecondFactorPending:
			to = "/signin/2fa"
		case s.MustChangePassword:
			to = "/account/password"
		case a.Config.Require2FA && !s.SecondFactor:
			to = "/account/2fa"
		}
		if to == "" || gateRoutes[to][c.Request().Method+" "+c.Path()] {
			return next(c)
		}
		if c.Request().Header.Get("HX-Request") == "true" {
			c.Response().Header().Set("HX-Redirect", to)
			return c.NoContent(http.StatusUnauthorized)
		}
		return c.Redirect(http.StatusSeeOther, to)
	}
}

// checkCSRF refuses unsafe requests whose token (form field _csrf or header X-CSRF-Token) does not
// match the session's (or, before sign-in, the double-submit cookie's).
func checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		want := csrfToken(c)
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("_csrf")
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "The form has expired. Reload the page and try again.")
		}
		return next(c)
	}
}

func session(c echo.Context) *auth.Session {
	s, _ := c.Get(ctxSession).(*auth.Session)
	return s
}

func csrfToken(c echo.Context) string {
	s, _ := c.Get(ctxCSRF).(string)
	return s
}

func (a *App) setCookie(c echo.Context, name, value string, maxAge time.Duration) {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: a.Config.SecureCookies, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		ck.MaxAge = int(maxAge.Seconds())
	}
	c.SetCookie(ck)
}

func (a *App) clearCookie(c echo.Context, name string) {
	c.SetCookie(&http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.Config.SecureCookies, SameSite: http.SameSiteLaxMode})
}

// setFlash keeps a message for the next page the admin sees.
func (a *App) setFlash(c echo.Context, kind, message string) {
	a.setCookie(c, flashCookie, url.QueryEscape(kind+"|"+message), time.Minute)
}

// takeFlash reads and clears the flash message.
func takeFlash(c echo.Context) *views.Flash {
	if f, ok := c.Get(ctxFlash).(*views.Flash); ok {
		return f
	}
	ck, err := c.Cookie(flashCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.SetCookie(&http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	raw, err := url.QueryUnescape(ck.Value)
	if err != nil {
		return nil
	}
	kind, msg, ok := strings.Cut(raw, "|")
	if !ok || (kind != "ok" && kind != "error") || len(msg) > 300 {
		return nil
	}
	f := &views.Flash{Kind: kind, Message: msg}
	c.Set(ctxFlash, f)
	return f
}
