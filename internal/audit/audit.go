// Package audit records admin actions in the audit log, inside the caller's transaction.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/db"
)

// Actor is the admin behind an action and where the request came from.
type Actor struct {
	AdminID int64
	Email   string
	IP      string
}

// Entry is one audited action.
type Entry struct {
	Action         string
	CustomerID     *int64
	SubscriptionID *int64
	Detail         string
}

// Record writes e for actor using dbtx (pass the transaction that makes the change).
func Record(ctx context.Context, dbtx db.DBTX, actor Actor, e Entry) error {
	var adminID *int64
	if actor.AdminID != 0 {
		adminID = &actor.AdminID
	}
	err := db.New().AuditInsert(ctx, dbtx, db.AuditInsertParams{
		AdminID: adminID, AdminEmail: actor.Email, Action: e.Action,
		CustomerID: e.CustomerID, SubscriptionID: e.SubscriptionID, Ip: actor.IP, Detail: e.Detail,
	})
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// Page is one page of the audit log, newest first.
type Page struct {
	Rows []db.AuditLog
	// Total is how many entries there are: exact up to MaxRows; beyond it an estimate of the whole
	// log (Estimated) or, for one subscription, a lower bound (AtLeast).
	Total      int64
	Estimated  bool
	AtLeast    bool
	Page       int
	TotalPages int
	// Truncated is set when there are more entries than the pages reach.
	Truncated bool
}

// Filter selects audit entries; each set field narrows the selection.
type Filter struct {
	SubscriptionID *int64
	AdminEmail     *string    // the email recorded with the entry (admins, "policy:…" actors)
	Action         *string    // e.g. "vps.retry", "sign_in"
	Since, Until   *time.Time // occurred_at in [Since, Until)
}

func (f Filter) empty() bool {
	return f.SubscriptionID == nil && f.AdminEmail == nil && f.Action == nil && f.Since == nil && f.Until == nil
}

// MaxRows bounds how deep the audit log pages (reading a page costs the entries before it), and
// how far entries are counted: the page costs the same however long the log grows.
const MaxRows = 2000

// List returns page (from 1) of the audit log entries f selects, newest first. A page past the
// last is shown as the last.
func List(ctx context.Context, dbtx db.DBTX, f Filter, page, perPage int) (*Page, error) {
	q := db.New()
	planned := database.PlanPerCall(dbtx)
	n, err := q.AuditCountUpTo(ctx, planned, db.AuditCountUpToParams{SubscriptionID: f.SubscriptionID, AdminEmail: f.AdminEmail,
		Action: f.Action, Since: f.Since, Until: f.Until, Cap: MaxRows + 1})
	if err != nil {
		return nil, fmt.Errorf("count audit log: %w", err)
	}
	out := &Page{Total: n}
	if n > MaxRows {
		out.Truncated = true
		out.Total, out.AtLeast = MaxRows, true
		if f.empty() {
			est, err := q.AuditEstimate(ctx, dbtx)
			if err != nil {
				return nil, fmt.Errorf("estimate audit log: %w", err)
			}
			if est > MaxRows {
				out.Total, out.AtLeast, out.Estimated = est, false, true
			}
		}
	}
	reachable := min(n, MaxRows)
	out.TotalPages = max(1, int((reachable+int64(perPage)-1)/int64(perPage)))
	out.Page = min(max(page, 1), out.TotalPages)
	rows, err := q.AuditList(ctx, planned, db.AuditListParams{SubscriptionID: f.SubscriptionID, AdminEmail: f.AdminEmail,
		Action: f.Action, Since: f.Since, Until: f.Until, Lim: int32(perPage), Off: int32((out.Page - 1) * perPage)})
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	out.Rows = rows
	return out, nil
}

// Actions lists the actions recorded so far (the audit filter's choices).
func Actions(ctx context.Context, dbtx db.DBTX) ([]string, error) {
	a, err := db.New().AuditActions(ctx, dbtx)
	if err != nil {
		return nil, fmt.Errorf("list audit actions: %w", err)
	}
	return a, nil
}
