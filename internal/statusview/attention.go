package statusview

import (
	"context"
	"fmt"
	"sort"
	"time"

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
	now := time.Now()
	before := make([]time.Time, len(state.Working))
	for i, st := range state.Working {
		before[i] = now.Add(-provision.ExpectedDuration(st))
	}
	rows, err := s.q.SubscriptionAttention(ctx, s.pool, db.SubscriptionAttentionParams{
		Failed: string(db.ProvisioningStatusFailed), States: state.Strings(state.Working), StartedBefore: before, Lim: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list failed and stuck subscriptions: %w", err)
	}
	var out, stuck []Attention
	for _, r := range rows {
		a := Attention{SubscriptionID: r.ID, CustomerEmail: r.CustomerEmail, CustomerName: r.CustomerName, Since: &r.Since}
		if r.ProvisioningStatus != nil {
			a.State = string(*r.ProvisioningStatus)
		}
		if r.ProvisioningStatus == nil || *r.ProvisioningStatus == db.ProvisioningStatusFailed {
			if r.FailedStep != nil {
				a.FailedStep = string(*r.FailedStep)
			}
			out = append(out, a)
			continue
		}
		st := *r.ProvisioningStatus
		a.Stuck = &Stuck{Over: (now.Sub(r.Since) - provision.ExpectedDuration(st)).Round(time.Second), Hint: stuckHints[st]}
		stuck = append(stuck, a)
	}
	sort.SliceStable(stuck, func(i, j int) bool { return stuck[i].Stuck.Over > stuck[j].Stuck.Over })
	if len(stuck) > limit {
		stuck = stuck[:limit]
	}
	return append(out, stuck...), nil
}
