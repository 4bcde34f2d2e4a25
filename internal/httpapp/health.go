package httpapp

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// healthz says the process is up.
func (a *App) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

// readyz says the database answers and the schema is current.
func (a *App) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := a.Ready(ctx); err != nil {
		a.Log.WarnContext(ctx, "not ready", "error", err)
		return c.String(http.StatusServiceUnavailable, "not ready\n")
	}
	return c.String(http.StatusOK, "ready\n")
}
