package billing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/billing"
)

// TestInvalidReportsAreRefusedAndStoreNothing: the billing system gets a status and a message it
// can act on; nothing is stored, so the corrected request may reuse its Idempotency-Key.
func TestInvalidReportsAreRefusedAndStoreNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tok := b.token(t)
	id := b.readySubscription(t, "active")
	for _, tc := range []struct {
		key, body string
		status    int
		msg       string
	}{
		{"", fmt.Sprintf(`{"subscription_id": %d, "billing_status": "canceled"}`, id), 400, "Idempotency-Key header of 1 to 200 characters"},
		{strings.Repeat("k", 201), fmt.Sprintf(`{"subscription_id": %d, "billing_status": "canceled"}`, id), 400, "Idempotency-Key"},
		{"k\xff", fmt.Sprintf(`{"subscription_id": %d, "billing_status": "canceled"}`, id), 400, "Idempotency-Key"},
		{"k1", `not json`, 400, "the body must be JSON"},
		{"k1", fmt.Sprintf(`{"subscription_id": %d, "billing_status": "canceled", "plan": "pro"}`, id), 400, "the body must be JSON"},
		{"k1", fmt.Sprintf(`{"subscription_id": %d, "billing_status": "canceled"} {}`, id), 400, "the body must be JSON"},
		{"k1", `{"subscription_id": "42", "billing_status": "canceled"}`, 400, "the body must be JSON"},
		{"k1", `{"subscription_id": 0, "billing_status": "canceled"}`, 422, "subscription_id must be a positive integer"},
		{"k1", `{"billing_status": "canceled"}`, 422, "subscription_id must be a positive integer"},
		{"k1", fmt.Sprintf(`{"subscription_id": %d, "billing_status": "Canceled"}`, id), 422, "billing_status must be one of trialing, active, past_due, canceled"},
		{"k1", fmt.Sprintf(`{"subscription_id": %d}`, id), 422, "billing_status must be one of"},
		{"k1", `{"subscription_id": 999999999, "billing_status": "canceled"}`, 404, "no subscription 999999999"},
	} {
		resp, err := b.svc.Report(ctx, tok, tc.key, []byte(tc.body), "192.0.2.1")
		require.NoError(t, err)
		require.Equal(t, tc.status, resp.Status, tc.body)
		var e map[string]string
		require.NoError(t, json.Unmarshal(resp.Body, &e), string(resp.Body))
		require.Contains(t, e["error"], tc.msg, tc.body)
		require.False(t, resp.Replayed)
	}
	require.Equal(t, "active", b.billingStatus(t, id))
	require.Zero(t, b.auditCount(t, "billing.status", "api-token:%"))

	// The key of the 404 was not used up: the corrected report goes through with it.
	resp := b.report(t, tok, "k1", id, "past_due")
	require.Equal(t, http.StatusOK, resp.Status, string(resp.Body))
	var ans billing.StatusAnswer
	require.NoError(t, json.Unmarshal(resp.Body, &ans))
	require.Equal(t, billing.StatusAnswer{SubscriptionID: id, BillingStatus: "past_due", Changed: true}, ans,
		"the policy is off: no destroy date")
	require.Equal(t, "past_due", b.billingStatus(t, id))
	require.Equal(t, 1, b.auditCount(t, "billing.status", "api-token:billing system"))
}

func TestReplaysAndUnchangedReports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.svc.SetPolicy(ctx, billing.PolicyForm{Enabled: true, CanceledDays: 2, PastDueDays: 7}, owner))
	tok := b.token(t)
	id := b.readySubscription(t, "active")

	first := b.report(t, tok, "evt-1", id, "past_due")
	require.Equal(t, http.StatusOK, first.Status)
	var ans billing.StatusAnswer
	require.NoError(t, json.Unmarshal(first.Body, &ans))
	require.NotNil(t, ans.DestroyAfter)
	require.WithinDuration(t, b.clock.Now().Add(7*24*time.Hour), *ans.DestroyAfter, time.Second, "past due has its own grace")

	// The same key and body: the first answer again, nothing applied twice.
	b.clock.Advance(time.Hour)
	again := b.report(t, tok, "evt-1", id, "past_due")
	require.True(t, again.Replayed)
	require.Equal(t, first.Status, again.Status)
	require.JSONEq(t, string(first.Body), string(again.Body))
	require.Equal(t, 1, b.auditCount(t, "billing.status", "api-token:%"))

	// The same key with another body is refused, and changes nothing.
	other := b.report(t, tok, "evt-1", id, "canceled")
	require.Equal(t, http.StatusUnprocessableEntity, other.Status)
	require.Contains(t, string(other.Body), "this Idempotency-Key was used with a different request")
	require.Equal(t, "past_due", b.billingStatus(t, id))

	// A new key with the status the subscription already has: accepted, unchanged, not audited.
	same := b.report(t, tok, "evt-2", id, "past_due")
	require.Equal(t, http.StatusOK, same.Status)
	ans = billing.StatusAnswer{}
	require.NoError(t, json.Unmarshal(same.Body, &ans))
	require.False(t, ans.Changed)
	require.Nil(t, ans.DestroyAfter)
	require.Equal(t, 1, b.auditCount(t, "billing.status", "api-token:%"))

	// Keys are per token: another billing token may use the same key for its own report.
	tok2 := b.token(t)
	resp := b.report(t, tok2, "evt-1", id, "active")
	require.Equal(t, http.StatusOK, resp.Status)
	require.False(t, resp.Replayed)
	require.Equal(t, "active", b.billingStatus(t, id))
}

func TestTokensAndPolicyForms(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, name := range []string{"", "   ", strings.Repeat("n", 101), "bad\xffname"} {
		_, _, err := b.svc.CreateToken(ctx, name, owner)
		require.ErrorIs(t, err, billing.ErrInvalid, "%q", name)
	}
	tok, row, err := b.svc.CreateToken(ctx, "  stripe  ", owner)
	require.NoError(t, err)
	require.Equal(t, "stripe", row.Name, "trimmed")
	require.Equal(t, tok[:10], row.Prefix, "the listed prefix is the token's start")
	require.Equal(t, billing.ScopeBilling, row.Scope)

	// Another scope's token is refused for billing.
	_, err = b.svc.Authenticate(ctx, "Bearer "+tok, "metrics", "192.0.2.1")
	require.ErrorIs(t, err, billing.ErrUnauthorized)

	// Revoking an unknown token or twice changes nothing and audits once.
	require.NoError(t, b.svc.RevokeToken(ctx, row.ID+1000, owner))
	require.NoError(t, b.svc.RevokeToken(ctx, row.ID, owner))
	require.NoError(t, b.svc.RevokeToken(ctx, row.ID, owner))
	require.Equal(t, 1, b.auditCount(t, "api_token.revoke", owner.Email))
	list, err := b.svc.Tokens(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.NotNil(t, list[0].RevokedAt)

	for _, f := range []billing.PolicyForm{{CanceledDays: -1}, {PastDueDays: 366}, {Enabled: true, CanceledDays: 400, PastDueDays: -3}} {
		require.NotEmpty(t, f.Validate(), "%+v", f)
		require.ErrorIs(t, b.svc.SetPolicy(ctx, f, owner), billing.ErrInvalid)
	}
	require.Len(t, billing.PolicyForm{CanceledDays: -1, PastDueDays: 366}.Validate(), 2, "both fields named")
	require.Empty(t, billing.PolicyForm{CanceledDays: 0, PastDueDays: 365}.Validate())
	require.NoError(t, b.svc.SetPolicy(ctx, billing.PolicyForm{Enabled: true, CanceledDays: 0, PastDueDays: 365}, owner))
	pol, err := b.svc.Policy(ctx)
	require.NoError(t, err)
	require.True(t, pol.Enabled)
	require.Zero(t, pol.CanceledGrace)
	require.Equal(t, 365*24*time.Hour, pol.PastDueGrace)
	require.Equal(t, owner.Email, pol.UpdatedBy)
	require.Equal(t, 1, b.auditCount(t, "billing.policy", owner.Email), "refused forms are not audited")
}

func (b *bundle) billingStatus(t *testing.T, id int64) string {
	t.Helper()
	var st string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT billing_status FROM subscriptions WHERE id = $1`, id).Scan(&st))
	return st
}
