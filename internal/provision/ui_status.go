package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/db"
)

// LiveStatus returns the same view model as [Service.Status] from a single query. It is what the
// status fragment uses: every open status page polls it every 2 s, so it costs one round trip.
func (s *Service) LiveStatus(ctx context.Context, subscriptionID int64) (*Status, error) {
	row, err := s.q.UIStatusGet(ctx, s.pool, subscriptionID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("subscription %d: %w", subscriptionID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read status of subscription %d: %w", subscriptionID, err)
	}
	sub := db.Subscription{
		ID: row.ID, CustomerID: row.CustomerID, Plan: row.Plan, BillingStatus: row.BillingStatus,
		HetznerServerID: row.HetznerServerID, HetznerSshKeyID: row.HetznerSshKeyID, VpsIpAddress: row.VpsIpAddress,
		VpsHostname: row.VpsHostname, ProvisioningStatus: row.ProvisioningStatus, ProvisioningError: row.ProvisioningError,
		ProvisionedAt: row.ProvisionedAt, DeprovisionedAt: row.DeprovisionedAt, SshHostKeyPublic: row.SshHostKeyPublic,
		FailedStep: row.FailedStep, StepStartedAt: row.StepStartedAt,
	}
	st := &Status{
		SubscriptionID: sub.ID, CustomerID: sub.CustomerID, CustomerEmail: row.CustomerEmail,
		CustomerName: row.CustomerName, Plan: sub.Plan, BillingStatus: sub.BillingStatus,
		State: string(statusOf(sub)), StepStartedAt: sub.StepStartedAt, ServerID: sub.HetznerServerID,
		SSHKeyID: sub.HetznerSshKeyID, ProvisionedAt: sub.ProvisionedAt, DeprovisionedAt: sub.DeprovisionedAt,
	}
	if sub.FailedStep != nil {
		st.FailedStep = string(*sub.FailedStep)
	}
	if sub.ProvisioningError != nil {
		st.Error = *sub.ProvisioningError
	}
	if sub.VpsHostname != nil {
		st.Hostname = *sub.VpsHostname
	}
	if sub.VpsIpAddress != nil {
		st.IPv4 = sub.VpsIpAddress.String()
	}
	if sub.SshHostKeyPublic != nil {
		if pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*sub.SshHostKeyPublic)); err == nil {
			st.HostKeyFingerprint = ssh.FingerprintSHA256(pk)
		}
	}

	var events []struct {
		At      time.Time             `json:"at"`
		Step    db.ProvisioningStatus `json:"step"`
		Kind    string                `json:"kind"`
		Message string                `json:"message"`
		Actor   string                `json:"actor"`
	}
	if err := json.Unmarshal(row.Events, &events); err != nil {
		return nil, fmt.Errorf("decode events of subscription %d: %w", sub.ID, err)
	}
	dbEvents := make([]db.ProvisioningEvent, 0, len(events))
	for _, e := range events {
		st.Events = append(st.Events, EventView{At: e.At, Step: string(e.Step), Kind: e.Kind, Message: e.Message, Actor: e.Actor})
		dbEvents = append(dbEvents, db.ProvisioningEvent{SubscriptionID: sub.ID, OccurredAt: e.At, Step: e.Step, Kind: e.Kind, Message: e.Message, Actor: e.Actor})
	}
	now := time.Now()
	st.Steps = timeline(sub, dbEvents, now)

	var actions []struct {
		ID        int64     `json:"id"`
		Command   string    `json:"command"`
		Status    string    `json:"status"`
		Progress  int       `json:"progress"`
		Error     *string   `json:"error"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := json.Unmarshal(row.Actions, &actions); err != nil {
		return nil, fmt.Errorf("decode actions of subscription %d: %w", sub.ID, err)
	}
	for _, a := range actions {
		av := ActionView{ID: a.ID, Command: a.Command, Status: a.Status, Progress: a.Progress, Started: a.CreatedAt}
		if a.Error != nil {
			av.Error = *a.Error
		}
		st.Actions = append(st.Actions, av)
	}

	if len(row.Receipt) > 0 {
		var rc struct {
			WrittenAt time.Time     `json:"written_at"`
			Files     []ReceiptFile `json:"files"`
		}
		if err := json.Unmarshal(row.Receipt, &rc); err != nil {
			return nil, fmt.Errorf("decode receipt of subscription %d: %w", sub.ID, err)
		}
		st.Receipt = &Receipt{WrittenAt: rc.WrittenAt, Files: rc.Files}
	}

	deriveActions(st, sub, now)
	return st, nil
}

// deriveActions fills what the page may offer and whether it can stop polling, as [Service.Status]
// does.
func deriveActions(st *Status, sub db.Subscription, now time.Time) {
	state := statusOf(sub)
	st.Allowed = Allowed{
		Provision: state == "" || state == db.ProvisioningStatusDestroyed,
		Retry:     state == db.ProvisioningStatusFailed,
		Reinject:  state == db.ProvisioningStatusReady,
		Destroy:   state != "" && state != db.ProvisioningStatusDestroyed && state != db.ProvisioningStatusDestroying,
	}
	switch state {
	case "", db.ProvisioningStatusReady, db.ProvisioningStatusFailed, db.ProvisioningStatusDestroyed:
		st.Terminal = true
	}
	if e, ok := expected[state]; ok && sub.StepStartedAt != nil {
		if over := now.Sub(*sub.StepStartedAt) - e.d; over > 0 {
			st.Stuck = &Stuck{Over: over.Round(time.Second), Hint: e.hint}
		}
	}
}
