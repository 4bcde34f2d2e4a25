package httpapp

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/views"
)

// adminList shows every admin with their role, second factor and state (owners only).
func (a *App) adminList(c echo.Context) error {
	return a.renderAdmins(c, http.StatusOK, views.AdminsView{InviteRole: string(auth.RoleViewer)})
}

func (a *App) renderAdmins(c echo.Context, code int, v views.AdminsView) error {
	list, err := a.Auth.ListAdmins(c.Request().Context())
	if err != nil {
		return err
	}
	v.Admins, v.SelfID = list, session(c).AdminID
	return render(c, code, views.Admins(a.page(c, "Admins", "admins"), v))
}

// adminInvite creates an admin with a one-time password, shown on this answer only.
func (a *App) adminInvite(c echo.Context) error {
	email, roleName := auth.NormalizeEmail(c.FormValue("email")), c.FormValue("role")
	v := views.AdminsView{InviteEmail: email, InviteRole: roleName, InviteErrors: map[string]string{}}
	r, err := auth.ParseRole(roleName)
	if err != nil {
		v.InviteErrors["role"] = "Choose viewer, operator or owner."
	}
	if len(email) > 254 || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t\r\n") || !validText(email) {
		v.InviteErrors["email"] = "Enter an email address like name@example.com."
		v.InviteEmail = ""
	}
	if len(v.InviteErrors) > 0 {
		return a.renderAdmins(c, http.StatusUnprocessableEntity, v)
	}
	created, password, err := a.Auth.Invite(c.Request().Context(), actor(c), email, r)
	if errors.Is(err, auth.ErrAdminExists) {
		v.InviteErrors["email"] = "An admin with this email address already exists."
		return a.renderAdmins(c, http.StatusUnprocessableEntity, v)
	}
	if err != nil {
		return err
	}
	// The answer carries a password: no cache may keep it.
	c.Response().Header().Set("Cache-Control", "no-store")
	return a.renderAdmins(c, http.StatusOK, views.AdminsView{InviteRole: string(auth.RoleViewer),
		Invited: &views.Invitation{Email: created.Email, Role: string(created.Role), Password: password}})
}

// adminSetRole changes an admin's role; the last owner keeps theirs.
func (a *App) adminSetRole(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	r, err := auth.ParseRole(c.FormValue("role"))
	if err != nil {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "Choose viewer, operator or owner.")
	}
	return a.adminChanged(c, a.Auth.SetRole(c.Request().Context(), actor(c), id, r), "Role changed to "+string(r)+".")
}

// adminDisable disables an admin and ends their sessions; the last owner stays enabled.
func (a *App) adminDisable(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	return a.adminChanged(c, a.Auth.SetDisabled(c.Request().Context(), actor(c), id, true), "Admin disabled; their sessions ended.")
}

// adminEnable lets a disabled admin sign in again.
func (a *App) adminEnable(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	return a.adminChanged(c, a.Auth.SetDisabled(c.Request().Context(), actor(c), id, false), "Admin enabled.")
}

// adminChanged answers a change on the admins page: back to it with what happened.
func (a *App) adminChanged(c echo.Context, err error, done string) error {
	switch {
	case errors.Is(err, auth.ErrLastOwner):
		a.setFlash(c, "error", "That would leave no owner: make someone else an owner first. Nothing changed.")
	case err != nil:
		return err
	default:
		// Sessions looked up before the change must not keep their old role or life here.
		a.sessions.clear()
		a.setFlash(c, "ok", done)
	}
	return redirect(c, "/admins")
}

// passwordShow renders the password change form.
func (a *App) passwordShow(c echo.Context) error {
	return render(c, http.StatusOK, views.Password(a.page(c, "Change password", ""), views.PasswordView{Forced: session(c).MustChangePassword}))
}

// passwordChange replaces the admin's password (the current one is required) and ends their other
// sessions.
func (a *App) passwordChange(c echo.Context) error {
	current, next, confirm := c.FormValue("current_password"), c.FormValue("new_password"), c.FormValue("confirm_password")
	errs := map[string]string{}
	if err := auth.ValidatePassword(next); err != nil {
		errs["new_password"] = "Choose a password of 12 to 1024 characters."
	} else if next != confirm {
		errs["confirm_password"] = "The two new passwords differ."
	} else if next == current {
		errs["new_password"] = "Choose a password different from the current one."
	}
	if current == "" {
		errs["current_password"] = "Enter your current password."
	}
	if len(errs) == 0 {
		token := ""
		if ck, err := c.Cookie(sessionCookie); err == nil {
			token = ck.Value
		}
		err := a.Auth.ChangePassword(c.Request().Context(), actor(c), token, current, next)
		switch {
		case errors.Is(err, auth.ErrWrongPassword):
			errs["current_password"] = "The current password is wrong."
		case err != nil:
			return err
		default:
			a.sessions.clear()
			a.setFlash(c, "ok", "Password changed; your other sessions were ended.")
			return redirect(c, "/")
		}
	}
	return render(c, http.StatusUnprocessableEntity, views.Password(a.page(c, "Change password", ""),
		views.PasswordView{Errors: errs, Forced: session(c).MustChangePassword}))
}

// validText reports whether s is valid UTF-8 without control characters (PostgreSQL refuses NUL).
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}
