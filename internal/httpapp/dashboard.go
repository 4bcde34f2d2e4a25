package httpapp

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/views"
)

// dashboard shows what needs attention first (failed and stuck provisionings), then the counts per
// status, Hetzner's request budget and the reconciler's findings.
func (a *App) dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	counts, err := a.Customers.CountByStatus(ctx)
	if err != nil {
		return err
	}
	attention, err := a.Status.Attention(ctx, 20)
	if err != nil {
		return err
	}
	findings, err := a.Provision.Findings(ctx)
	if err != nil {
		return err
	}
	scheduled, err := a.Billing.Scheduled(ctx, 20)
	if err != nil {
		return err
	}
	fleet, err := a.Provision.Fleet(ctx)
	if err != nil {
		return err
	}
	pre, err := a.Provision.Preflight(ctx)
	if err != nil {
		return err
	}
	v := views.DashboardView{Counts: counts, Attention: attention, Findings: findings, Fleet: fleet, Preflight: pre, Now: time.Now(), Scheduled: scheduled}
	v.RateLimit.Remaining, v.RateLimit.Limit, v.RateLimit.Reset, v.RateLimit.Known = a.Provision.RateLimit()
	return render(c, http.StatusOK, views.Dashboard(a.page(c, "Dashboard", "dashboard"), v))
}
