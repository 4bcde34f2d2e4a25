// Package audit records admin actions in the audit log, inside the caller's transaction.
package audit

import (
	"context"
	"fmt"
	"time"

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
	Rows       []db.AuditLog
	Total      int64
	Page       int
	TotalPages int
}

// Filter selects audit entries; each set field narrows the selection.
type Filter struct {
	SubscriptionID *int64
	AdminEmail     *string    // the email recorded with the entry (admins, "policy:…" actors)
	Action         *string    // e.g. "vps.retry", "sign_in"
	Since, Until   *time.Time // occurred_at in [Since, Until)
}

// List returns page (from 1) of the audit log entries f selects, newest first.
func List(ctx context.Context, dbtx db.DBTX, f Filter, page, perPage int) (*Page, error) {
	q := db.New()
	total, err := q.AuditCount(ctx, dbtx, db.AuditCountParams{SubscriptionID: f.SubscriptionID, AdminEmail: f.AdminEmail,
		Action: f.Action, Since: f.Since, Until: f.Until})
	if err != nil {
		return nil, fmt.Errorf("count audit log: %w", err)
	}
	page = max(page, 1)
	rows, err := q.AuditList(ctx, dbtx, db.AuditListParams{SubscriptionID: f.SubscriptionID, AdminEmail: f.AdminEmail,
		Action: f.Action, Since: f.Since, Until: f.Until, Lim: int32(perPage), Off: int32((page - 1) * perPage)})
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return &Page{Rows: rows, Total: total, Page: page, TotalPages: max(1, int((total+int64(perPage)-1)/int64(perPage)))}, nil
}

// Actions lists the actions recorded so far (the audit filter's choices).
func Actions(ctx context.Context, dbtx db.DBTX) ([]string, error) {
	a, err := db.New().AuditActions(ctx, dbtx)
	if err != nil {
		return nil, fmt.Errorf("list audit actions: %w", err)
	}
	return a, nil
}
