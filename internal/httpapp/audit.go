package httpapp

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/views"
)

const auditPerPage = 50

// auditList shows the audit log, newest first, optionally for one subscription.
func (a *App) auditList(c echo.Context) error {
	v := views.AuditView{Page: 1}
	if s := strings.TrimSpace(c.QueryParam("subscription")); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, "The subscription ID must be a positive number.")
		}
		v.SubscriptionID = id
	}
	if p, err := strconv.Atoi(c.QueryParam("page")); err == nil && p > 1 && p < 1_000_000 {
		v.Page = p
	}
	var sub *int64
	if v.SubscriptionID > 0 {
		sub = &v.SubscriptionID
	}
	page, err := audit.List(c.Request().Context(), a.Pool, sub, v.Page, auditPerPage)
	if err != nil {
		return err
	}
	v.Rows, v.Total, v.TotalPages = page.Rows, page.Total, page.TotalPages
	return render(c, http.StatusOK, views.Audit(a.page(c, "Audit log", "audit"), v))
}
