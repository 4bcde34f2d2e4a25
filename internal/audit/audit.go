// Package audit records admin actions in the audit log, inside the caller's transaction.
package audit

import (
	"context"
	"fmt"

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

// List returns page (from 1) of the audit log, for one subscription when subscriptionID is set.
func List(ctx context.Context, dbtx db.DBTX, subscriptionID *int64, page, perPage int) (*Page, error) {
	q := db.New()
	total, err := q.AuditCount(ctx, dbtx, subscriptionID)
	if err != nil {
		return nil, fmt.Errorf("count audit log: %w", err)
	}
	page = max(page, 1)
	rows, err := q.AuditList(ctx, dbtx, db.AuditListParams{SubscriptionID: subscriptionID, Lim: int32(perPage), Off: int32((page - 1) * perPage)})
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return &Page{Rows: rows, Total: total, Page: page, TotalPages: max(1, int((total+int64(perPage)-1)/int64(perPage)))}, nil
}
