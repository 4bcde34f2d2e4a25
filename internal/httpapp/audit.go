package httpapp

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/views"
)

const auditPerPage = 50

// auditActionRe is the shape of every action the app records ("sign_in", "vps.retry", …).
var auditActionRe = regexp.MustCompile(`^[a-z0-9_.:-]{1,64}$`)

// auditFilterForm is the audit log's filter as typed (query parameters).
type auditFilterForm struct {
	Subscription, Admin, Action, From, To string
}

// Validate turns the form into a filter, or says per field what is wrong.
func (f auditFilterForm) Validate() (audit.Filter, map[string]string) {
	var out audit.Filter
	errs := map[string]string{}
	if f.Subscription != "" {
		id, err := strconv.ParseInt(f.Subscription, 10, 64)
		if err != nil || id <= 0 {
			errs["subscription"] = "The subscription ID must be a positive number."
		} else {
			out.SubscriptionID = &id
		}
	}
	if f.Admin != "" {
		if len(f.Admin) > 254 || !validText(f.Admin) {
			errs["admin"] = "Enter an admin's email address (at most 254 characters)."
		} else {
			email := strings.ToLower(f.Admin)
			out.AdminEmail = &email
		}
	}
	if f.Action != "" {
		if !auditActionRe.MatchString(f.Action) {
			errs["action"] = "Choose an action from the list."
		} else {
			out.Action = &f.Action
		}
	}
	if f.From != "" {
		t, _, ok := parseAuditTime(f.From)
		if !ok {
			errs["from"] = "Enter a date like 2026-12-01 or a time like 2026-12-01T14:30 (UTC)."
		} else {
			out.Since = &t
		}
	}
	if f.To != "" {
		t, dateOnly, ok := parseAuditTime(f.To)
		if !ok {
			errs["to"] = "Enter a date like 2026-12-01 or a time like 2026-12-01T14:30 (UTC)."
		} else {
			if dateOnly {
				t = t.AddDate(0, 0, 1) // the whole day
			}
			out.Until = &t
		}
	}
	if out.Since != nil && out.Until != nil && !out.Since.Before(*out.Until) {
		errs["to"] = "The end must be after the start."
	}
	if len(errs) > 0 {
		return audit.Filter{}, errs
	}
	return out, nil
}

// parseAuditTime reads a date, a datetime-local value or RFC 3339, in UTC.
func parseAuditTime(s string) (t time.Time, dateOnly, ok bool) {
	if len(s) > 40 {
		return time.Time{}, false, false
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.UTC); err == nil {
		return t, true, t.Year() >= 2000 && t.Year() < 10000
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), false, t.Year() >= 2000 && t.Year() < 10000
		}
	}
	return time.Time{}, false, false
}

// auditList shows the audit log, newest first, filtered by subscription, admin, action and time
// range; bad filter input is answered 422 with what is wrong.
func (a *App) auditList(c echo.Context) error {
	f := auditFilterForm{
		Subscription: strings.TrimSpace(c.QueryParam("subscription")), Admin: strings.TrimSpace(c.QueryParam("admin")),
		Action: strings.TrimSpace(c.QueryParam("action")), From: strings.TrimSpace(c.QueryParam("from")), To: strings.TrimSpace(c.QueryParam("to")),
	}
	v := views.AuditView{Page: 1, Admin: f.Admin, Action: f.Action, From: f.From, To: f.To}
	actions, err := audit.Actions(c.Request().Context(), a.Pool)
	if err != nil {
		return err
	}
	v.Actions = actions
	filter, errs := f.Validate()
	if errs != nil {
		v.Errors = errs
		return render(c, http.StatusUnprocessableEntity, views.Audit(a.page(c, "Audit log", "audit"), v))
	}
	if filter.SubscriptionID != nil {
		v.SubscriptionID = *filter.SubscriptionID
	}
	if p, err := strconv.Atoi(c.QueryParam("page")); err == nil && p > 1 && p < 1_000_000 {
		v.Page = p
	}
	page, err := audit.List(c.Request().Context(), a.Pool, filter, v.Page, auditPerPage)
	if err != nil {
		return err
	}
	v.Rows, v.Total, v.TotalPages, v.Page = page.Rows, page.Total, page.TotalPages, page.Page
	v.Estimated, v.AtLeast, v.Truncated = page.Estimated, page.AtLeast, page.Truncated
	return render(c, http.StatusOK, views.Audit(a.page(c, "Audit log", "audit"), v))
}
