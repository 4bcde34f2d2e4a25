package httpapp

import (
	"encoding/csv"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/db"
)

// exportHeader names the CSV columns: what the list shows, never a secret or key.
var exportHeader = []string{"subscription_id", "customer_name", "customer_email", "plan", "billing_status",
	"provisioning_status", "failed_step", "server_name", "ipv4", "hetzner_server_id", "updated_at"}

// subscriptionExport streams the filtered subscriptions list (the list page's q and status; in
// subscription ID order) as CSV. Audited; bad filters are answered 422 before anything is written.
func (a *App) subscriptionExport(c echo.Context) error {
	p := customer.ListParams{Search: c.QueryParam("q"), Status: c.QueryParam("status"), Sort: c.QueryParam("sort")}
	ctx := c.Request().Context()
	// Validate first, so a bad filter gets a 422 rather than a broken download.
	if err := a.Customers.Export(ctx, p, func(db.SubscriptionExportPageRow) error { return errStopExport }); err != nil && !errors.Is(err, errStopExport) {
		var fe customer.FieldErrors
		if errors.As(err, &fe) {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, "The filter is not valid: "+strings.Join(fieldMessages(fe), " "))
		}
		return err
	}
	if err := audit.Record(ctx, a.Pool, actor(c), audit.Entry{Action: "subscriptions_export",
		Detail: fmt.Sprintf("CSV; search %q, status %q", p.Search, p.Status)}); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="subscriptions-`+time.Now().UTC().Format("20060102-150405")+`.csv"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	if err := w.Write(exportHeader); err != nil {
		return nil // the client went away
	}
	n := 0
	err := a.Customers.Export(ctx, p, func(r db.SubscriptionExportPageRow) error {
		if err := w.Write(exportRow(r)); err != nil {
			return err
		}
		if n++; n%200 == 0 { // stream: a page at a time reaches the client
			w.Flush()
			c.Response().Flush()
		}
		return w.Error()
	})
	w.Flush()
	if err != nil {
		// The status is sent; the truncated download is all the client can be told.
		a.Log.LogAttrs(ctx, slog.LevelError, "subscriptions export failed", slog.Int("rows", n), slog.String("error", err.Error()))
	}
	return nil
}

// errStopExport ends the validating first pass of an export at its first row.
var errStopExport = errors.New("stop export")

// exportRow is one subscription as CSV cells, each safe to open in a spreadsheet.
func exportRow(r db.SubscriptionExportPageRow) []string {
	opt := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	status, failed, ip, server := "", "", "", ""
	if r.ProvisioningStatus != nil {
		status = string(*r.ProvisioningStatus)
	}
	if r.FailedStep != nil {
		failed = string(*r.FailedStep)
	}
	if r.VpsIpAddress != nil {
		ip = r.VpsIpAddress.String()
	}
	if r.HetznerServerID != nil {
		server = strconv.FormatInt(*r.HetznerServerID, 10)
	}
	row := []string{strconv.FormatInt(r.ID, 10), r.CustomerName, r.CustomerEmail, r.Plan, r.BillingStatus,
		status, failed, opt(r.VpsHostname), ip, server, r.UpdatedAt.UTC().Format(time.RFC3339)}
	for i := range row {
		row[i] = csvSafe(row[i])
	}
	return row
}

// csvSafe defuses CSV injection (OWASP): a cell a spreadsheet would read as a formula — starting
// with = + - @, or a tab or carriage return — is prefixed with a single quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func fieldMessages(fe customer.FieldErrors) []string {
	out := make([]string, 0, len(fe))
	for _, k := range []string{"q", "status", "sort"} {
		if m, ok := fe[k]; ok {
			out = append(out, m)
		}
	}
	return out
}
