package provision

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rachelcloud/admin/internal/db"
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

// attentionScan bounds how many subscriptions of one in-flight state are checked for being stuck.
const attentionScan = 200

// Attention lists failed provisionings, then stuck ones (longest stuck first), at most limit
// of each, for the dashboard. It reads a bounded page of each in-flight state through the status
// index.
func (s *Service) Attention(ctx context.Context, limit int) ([]Attention, error) {
	if limit <= 0 {
		limit = 20
	}
	failed, err := s.q.SubscriptionList(ctx, s.pool, db.SubscriptionListParams{
		Status: string(db.ProvisioningStatusFailed), Sort: "updated", Lim: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list failed subscriptions: %w", err)
	}
	out := make([]Attention, 0, len(failed))
	for _, r := range failed {
		a := attentionOf(r)
		if r.FailedStep != nil {
			a.FailedStep = string(*r.FailedStep)
		}
		a.Since = &r.UpdatedAt
		out = append(out, a)
	}

	now := time.Now()
	var stuck []Attention
	for _, st := range []db.ProvisioningStatus{db.ProvisioningStatusPending, db.ProvisioningStatusCreating,
		db.ProvisioningStatusCloudInit, db.ProvisioningStatusInjectingSecrets, db.ProvisioningStatusDestroying} {
		rows, err := s.q.SubscriptionList(ctx, s.pool, db.SubscriptionListParams{Status: string(st), Lim: attentionScan})
		if err != nil {
			return nil, fmt.Errorf("list %s subscriptions: %w", st, err)
		}
		for _, r := range rows {
			e := expected[st]
			if r.StepStartedAt == nil {
				continue
			}
			if over := now.Sub(*r.StepStartedAt) - e.d; over > 0 {
				a := attentionOf(r)
				a.Stuck = &Stuck{Over: over.Round(time.Second), Hint: e.hint}
				a.Since = r.StepStartedAt
				stuck = append(stuck, a)
			}
		}
	}
	sort.Slice(stuck, func(i, j int) bool { return stuck[i].Stuck.Over > stuck[j].Stuck.Over })
	if len(stuck) > limit {
		stuck = stuck[:limit]
	}
	return append(out, stuck...), nil
}

func attentionOf(r db.SubscriptionListRow) Attention {
	a := Attention{SubscriptionID: r.ID, CustomerEmail: r.CustomerEmail, CustomerName: r.CustomerName}
	if r.ProvisioningStatus != nil {
		a.State = string(*r.ProvisioningStatus)
	}
	return a
}
