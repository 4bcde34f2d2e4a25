package httpapp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/views"
)

// signInShow renders the sign-in form (or goes home when already signed in).
func (a *App) signInShow(c echo.Context) error {
	if session(c) != nil {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	return render(c, http.StatusOK, views.SignIn(a.page(c, "Sign in", ""), views.SignInForm{Next: safeNext(c.QueryParam("next"))}))
}

// signIn checks the credentials, replaces any session cookie with a new one and goes on.
func (a *App) signIn(c echo.Context) error {
	email, password := c.FormValue("email"), c.FormValue("password")
	next := safeNext(c.FormValue("next"))
	token, sess, err := a.Auth.SignIn(c.Request().Context(), email, password, c.RealIP(), c.Request().UserAgent())
	if err != nil {
		status, msg := http.StatusUnauthorized, "The email or password is wrong."
		switch {
		case errors.Is(err, auth.ErrThrottled):
			status, msg = http.StatusTooManyRequests, "Too many failed sign-ins. Wait 15 minutes and try again."
		case !errors.Is(err, auth.ErrBadCredentials):
			return err
		}
		// The email field is not filled in again: what was typed there may be a password.
		return render(c, status, views.SignIn(a.page(c, "Sign in", ""), views.SignInForm{Error: msg, Next: next}))
	}
	a.setCookie(c, sessionCookie, token, a.Config.SessionMaxAge)
	a.clearCookie(c, preCSRFCookie)
	c.Set(ctxSession, sess)
	if sess.SecondFactorPending {
		return c.Redirect(http.StatusSeeOther, "/signin/2fa?next="+url.QueryEscape(next))
	}
	return c.Redirect(http.StatusSeeOther, next)
}

// signOut ends the session.
func (a *App) signOut(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		a.sessions.forget(ck.Value)
		if err := a.Auth.SignOut(c.Request().Context(), ck.Value, session(c), c.RealIP()); err != nil {
			return err
		}
	}
	a.clearCookie(c, sessionCookie)
	return c.Redirect(http.StatusSeeOther, "/signin")
}

// safeNext keeps a post-sign-in redirect on this site: it accepts only an absolute path on this
// host (with an optional query), and answers "/" for anything else. Browsers are lenient with
// Location: they drop tabs and newlines (`/\t/evil.example` is read as `//evil.example`), treat
// `\` as `/`, and resolve `//host` and `scheme:` against another site. So next must be printable
// ASCII without a backslash, parse as a URL without scheme, host, user or fragment, and its path
// must start with exactly one slash; the answer is rebuilt from the parsed parts.
func safeNext(next string) string {
	if next == "" || len(next) > 500 || next[0] != '/' {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Opaque != "" || u.Host != "" || u.User != nil || u.Fragment != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") ||
		strings.IndexFunc(u.Path, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }) >= 0 {
		return "/"
	}
	out := (&url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}).String()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\") {
		return "/"
	}
	return out
}
