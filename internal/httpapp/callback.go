package httpapp

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/provision"
)

// callback receives cloud-init's phone_home from a new VPS. It is the only unauthenticated write:
// the single-use token in the URL and the server's identity in the form guard it. Anything wrong
// is answered 404, saying nothing about why (the service logs the reason).
func (a *App) callback(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return c.String(http.StatusBadRequest, "bad request\n")
	}
	err = a.Provision.HandleCallback(c.Request().Context(), c.Param("token"), form, c.RealIP())
	if errors.Is(err, provision.ErrCallbackRejected) {
		return c.String(http.StatusNotFound, "not found\n")
	}
	if err != nil {
		a.Log.ErrorContext(c.Request().Context(), "VPS callback failed", "error", err.Error())
		return c.String(http.StatusInternalServerError, "error\n")
	}
	return c.String(http.StatusOK, "ok\n")
}
