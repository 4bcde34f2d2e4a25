package httpapp

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/views"
)

// notificationsShow shows the channels (never their secrets), the open incidents and the recent
// deliveries with their outcome.
func (a *App) notificationsShow(c echo.Context) error {
	ctx := c.Request().Context()
	deliveries, err := a.Notify.Recent(ctx, 50)
	if err != nil {
		return err
	}
	incidents, err := a.Notify.OpenIncidents(ctx, 50)
	if err != nil {
		return err
	}
	v := views.NotificationsView{Channels: a.Notify.Channels(), Deliveries: deliveries, Incidents: incidents, Now: time.Now()}
	return render(c, http.StatusOK, views.Notifications(a.page(c, "Notifications", "settings"), v))
}

// notificationsTest sends a test message to every channel.
func (a *App) notificationsTest(c echo.Context) error {
	err := a.Notify.SendTest(c.Request().Context(), actor(c))
	switch {
	case errors.Is(err, notify.ErrNoChannel):
		a.setFlash(c, "error", "No notification channel is configured.")
	case err != nil:
		return err
	default:
		a.setFlash(c, "ok", "A test message is queued for every channel; its outcome shows below in a moment.")
	}
	return redirect(c, "/settings/notifications")
}
