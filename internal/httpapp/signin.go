package httpapp

import (
	"errors"
	"net/http"
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
		return render(c, status, views.SignIn(a.page(c, "Sign in", ""), views.SignInForm{Email: auth.NormalizeEmail(email), Error: msg, Next: next}))
	}
	a.setCookie(c, sessionCookie, token, a.Config.SessionMaxAge)
	a.clearCookie(c, preCSRFCookie)
	c.Set(ctxSession, sess)
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

// safeNext keeps a post-sign-in redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") || len(next) > 500 {
		return "/"
	}
	return next
}
