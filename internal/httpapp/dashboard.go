package httpapp

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/views"
)

// dashboard shows counts per provisioning status.
func (a *App) dashboard(c echo.Context) error {
	counts, err := a.Customers.CountByStatus(c.Request().Context())
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Dashboard(a.page(c, "Dashboard", "dashboard"), views.DashboardView{Counts: counts}))
}
