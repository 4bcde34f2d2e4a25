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
