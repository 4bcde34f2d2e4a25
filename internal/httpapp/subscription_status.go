package httpapp

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/statusview"
	"github.com/rachelcloud/admin/views"
)

// statusStopPolling is htmx's "stop polling" status: the fragment is final.
const statusStopPolling = 286

// subscriptionShow renders a subscription's status page.
func (a *App) subscriptionShow(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	st, err := a.Status.Status(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return a.renderStatusPage(c, http.StatusOK, st, "")
}

// renderStatusPage renders the full status page, with a message for a wrong Destroy confirmation.
func (a *App) renderStatusPage(c echo.Context, code int, st *statusview.Status, confirmError string) error {
	v := a.statusView(c, st)
	v.ConfirmError = confirmError
	cd, err := a.Billing.CountdownOf(c.Request().Context(), st.SubscriptionID)
	if err != nil {
		return err
	}
	v.Billing = cd
	if v.Health, err = a.Health.Of(c.Request().Context(), st.SubscriptionID); err != nil {
		return err
	}
	title := st.CustomerName + " · subscription " + itoa64(st.SubscriptionID)
	return render(c, code, views.SubscriptionPage(a.page(c, title, "subscriptions"), v))
}

// subscriptionStatus renders the live part of the status page, which open pages poll every 2 s.
// A terminal state is answered 286 so htmx stops polling.
func (a *App) subscriptionStatus(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	st, err := a.pollStatus(c.Request().Context(), id)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if st.Terminal {
		code = statusStopPolling
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return render(c, code, views.StatusLive(a.statusView(c, st)))
}

// pollStatus reads a subscription's status for the fragment: from the service's memory while
// nothing changed, else from the database. Polls of the same subscription that arrive while its
// query runs share that query's answer (nothing older is ever served), so many pages watching one
// provisioning cost one query at a time.
func (a *App) pollStatus(ctx context.Context, id int64) (*statusview.Status, error) {
	v, err, _ := a.statusFlight.Do(strconv.FormatInt(id, 10), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return a.Status.PollStatus(ctx, id)
	})
	if err != nil {
		return nil, err
	}
	return v.(*statusview.Status), nil
}

func (a *App) statusView(c echo.Context, st *statusview.Status) views.StatusView {
	return views.StatusView{
		Status: st, CSRFToken: csrfToken(c), ServerName: st.ServerName,
		Location: strings.Join(a.Config.PlanFor(st.Plan).Locations, ","), ServerType: a.Config.PlanFor(st.Plan).ServerType, Now: time.Now(), Role: role(c),
	}
}
