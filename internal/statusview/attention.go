package statusview

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// Attention is a provisioning an admin should look at: failed, or stuck in a step.
type Attention struct {
	SubscriptionID int64
	CustomerEmail  string
	CustomerName   string
	State          string
	FailedStep     string     // when failed
	Stuck          *Stuck     // when stuck
	Since          *time.Time // when the current step started (or the failure happened)
}

// Attention lists failed provisionings (most recently failed first), then stuck ones (longest
// stuck first), at most limit of each, for the dashboard. Each part is read through an index in
// the order shown, so the cost does not grow with the number of subscriptions.
func (s *Reader) Attention(ctx context.Context, limit int) ([]Attention, error) {
	if limit <= 0 {
		limit = 20
	}
	failed, err := s.q.SubscriptionList(ctx, database.PlanPerCall(s.pool), db.SubscriptionListParams{
		Status: string(db.ProvisioningStatusFailed), Sort: "updated", Lim: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list failed subscriptions: %w", err)
	}
	out := make([]Attention, 0, len(failed))
	for _, r := range failed {
		a := Attention{SubscriptionID: r.ID, CustomerEmail: r.CustomerEmail, CustomerName: r.CustomerName}
		if r.ProvisioningStatus != nil {
			a.State = string(*r.ProvisioningStatus)
		}
		if r.FailedStep != nil {
			a.FailedStep = string(*r.FailedStep)
		}
		a.Since = &r.UpdatedAt
		out = append(out, a)
	}

	now := time.Now()
	var stuck []Attention
	for _, st := range state.Working {
		d := provision.ExpectedDuration(st)
		rows, err := s.q.SubscriptionStuck(ctx, s.pool, db.SubscriptionStuckParams{
			Status: st, StartedBefore: now.Add(-d), Lim: int32(limit)})
		if err != nil {
			return nil, fmt.Errorf("list stuck %s subscriptions: %w", st, err)
		}
		for _, r := range rows {
			started := *r.StepStartedAt
			stuck = append(stuck, Attention{
				SubscriptionID: r.ID, CustomerEmail: r.CustomerEmail, CustomerName: r.CustomerName, State: string(st),
				Stuck: &Stuck{Over: (now.Sub(started) - d).Round(time.Second), Hint: stuckHints[st]}, Since: &started,
			})
		}
	}
	sort.SliceStable(stuck, func(i, j int) bool { return stuck[i].Stuck.Over > stuck[j].Stuck.Over })
	if len(stuck) > limit {
		stuck = stuck[:limit]
	}
	return append(out, stuck...), nil
}
