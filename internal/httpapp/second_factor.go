package httpapp

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/views"
)

// secondFactorShow renders the code form of a sign-in whose password was right.
func (a *App) secondFactorShow(c echo.Context) error {
	if !session(c).SecondFactorPending {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	return render(c, http.StatusOK, views.SecondFactor(a.page(c, "Second factor", ""), views.SecondFactorForm{Next: safeNext(c.QueryParam("next"))}))
}

// secondFactorCheck completes the sign-in with a TOTP or recovery code, replacing the pending
// session's cookie with the new session's.
func (a *App) secondFactorCheck(c echo.Context) error {
	if !session(c).SecondFactorPending {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	next := safeNext(c.FormValue("next"))
	ck, err := c.Cookie(sessionCookie)
	if err != nil {
		return c.Redirect(http.StatusSeeOther, "/signin")
	}
	token, sess, err := a.Auth.VerifySecondFactor(c.Request().Context(), ck.Value, c.FormValue("code"), c.RealIP(), c.Request().UserAgent())
	if err != nil {
		status, msg := http.StatusUnauthorized, "The code is wrong or was already used."
		switch {
		case errors.Is(err, auth.ErrThrottled):
			status, msg = http.StatusTooManyRequests, "Too many failed sign-ins. Wait 15 minutes and try again."
		case errors.Is(err, auth.ErrNoSession):
			a.sessions.forget(ck.Value)
			return c.Redirect(http.StatusSeeOther, "/signin")
		case !errors.Is(err, auth.ErrBadCode):
			return err
		}
		return render(c, status, views.SecondFactor(a.page(c, "Second factor", ""), views.SecondFactorForm{Error: msg, Next: next}))
	}
	a.sessions.forget(ck.Value)
	a.setCookie(c, sessionCookie, token, a.Config.SessionMaxAge)
	c.Set(ctxSession, sess)
	return c.Redirect(http.StatusSeeOther, next)
}

// enrolShow shows the admin's second factor: on (with the recovery codes left), or the enrolment
// — a QR code (an image this app serves) and the same secret as text for manual entry.
func (a *App) enrolShow(c echo.Context) error {
	s := session(c)
	v := views.EnrolView{On: s.SecondFactor, Required: a.Config.Require2FA}
	if s.SecondFactor {
		n, err := a.Auth.RecoveryCodesLeft(c.Request().Context(), s.AdminID)
		if err != nil {
			return err
		}
		v.CodesLeft = n
	} else {
		e, err := a.Auth.BeginEnrolment(c.Request().Context(), s.AdminID)
		if err != nil {
			return err
		}
		v.Secret = e.Secret.Reveal()
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.Enrol(a.page(c, "Second factor", ""), v))
}

// enrolQR serves the pending enrolment's otpauth:// URI as a PNG QR code (an image from this
// app, so the strict CSP needs no exception and no script draws it).
func (a *App) enrolQR(c echo.Context) error {
	if session(c).SecondFactor {
		return echo.NewHTTPError(http.StatusNotFound, "The second factor is already on.")
	}
	e, err := a.Auth.BeginEnrolment(c.Request().Context(), session(c).AdminID)
	if err != nil {
		return err
	}
	png, err := qrcode.Encode(e.URI.Reveal(), qrcode.Medium, 256)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Stream(http.StatusOK, "image/png", bytes.NewReader(png))
}

// enrolConfirm turns the second factor on with a first code and shows the recovery codes, once.
func (a *App) enrolConfirm(c echo.Context) error {
	s := session(c)
	codes, err := a.Auth.ConfirmEnrolment(c.Request().Context(), actor(c), c.FormValue("code"))
	switch {
	case errors.Is(err, auth.ErrBadCode):
		e, err := a.Auth.BeginEnrolment(c.Request().Context(), s.AdminID)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return render(c, http.StatusUnprocessableEntity, views.Enrol(a.page(c, "Second factor", ""),
			views.EnrolView{Secret: e.Secret.Reveal(), Required: a.Config.Require2FA, Error: "The code is wrong. Type the code your app shows now."}))
	case errors.Is(err, auth.ErrSecondFactorOn), errors.Is(err, auth.ErrNoEnrolment):
		return c.Redirect(http.StatusSeeOther, "/account/2fa")
	case err != nil:
		return err
	}
	if ck, err := c.Cookie(sessionCookie); err == nil {
		a.sessions.forget(ck.Value) // the session now has a second factor
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return render(c, http.StatusOK, views.Enrol(a.page(c, "Second factor", ""), views.EnrolView{On: true, NewCodes: codes}))
}

// adminResetSecondFactor turns another admin's second factor off (lost device) and ends their
// sessions.
func (a *App) adminResetSecondFactor(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	return a.adminChanged(c, a.Auth.ResetSecondFactor(c.Request().Context(), actor(c), id), "Second factor reset; their sessions ended.")
}
