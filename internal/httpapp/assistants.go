package httpapp

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/views"
)

// assistantsShow lists the ready VPSes whose assistant is down and the Claude tokens expired or
// expiring soon, with what to do about each.
func (a *App) assistantsShow(c echo.Context) error {
	ctx := c.Request().Context()
	down, err := a.Health.Down(ctx, 200)
	if err != nil {
		return err
	}
	expiring, err := a.Health.ExpiringTokens(ctx, a.Config.ClaudeTokenWarn)
	if err != nil {
		return err
	}
	v := views.AssistantsView{Down: down, Expiring: expiring, Warn: a.Config.ClaudeTokenWarn,
		Every: a.Config.HealthCheckInterval, Now: time.Now()}
	return render(c, http.StatusOK, views.Assistants(a.page(c, "Assistants", "assistants"), v))
}
