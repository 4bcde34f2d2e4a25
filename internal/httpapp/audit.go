package httpapp

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/views"
)

const auditPerPage = 50

// auditList shows the audit log, newest first, optionally for one subscription. It reads the
// log through its sqlc queries directly: there is nothing to decide, only to page.
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
	ctx, q := c.Request().Context(), db.New()
	total, err := q.AuditCount(ctx, a.Pool, sub)
	if err != nil {
		return err
	}
	rows, err := q.AuditList(ctx, a.Pool, db.AuditListParams{SubscriptionID: sub, Lim: auditPerPage, Off: int32((v.Page - 1) * auditPerPage)})
	if err != nil {
		return err
	}
	v.Rows, v.Total = rows, total
	v.TotalPages = max(1, int((total+auditPerPage-1)/auditPerPage))
	return render(c, http.StatusOK, views.Audit(a.page(c, "Audit log", "audit"), v))
}
