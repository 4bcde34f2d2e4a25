package httpapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var tokenRe = regexp.MustCompile(`<code id="token-value">(rcb_[A-Za-z0-9_-]+)</code>`)

func (b *testBundle) billingPost(t *testing.T, token, key, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.server.URL+"/api/billing/status", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// The token page shows a new token once; the endpoint takes it, answers a repeat from memory,
// refuses it once revoked, and limits the rate.
func TestBillingAPIWithTokenFromThePage(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["BILLING_API_RATE"] = "4" })
	csrf := b.signIn(t)
	id := b.createCustomer(t, csrf, customerForm("billing@example.com"))

	resp, body := b.post(t, "/settings/api-tokens", url.Values{"_csrf": {csrf}, "name": {"billing system"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := tokenRe.FindStringSubmatch(body)
	require.NotNil(t, m, body)
	token := m[1]
	_, body, _ = b.get(t, "/settings/api-tokens")
	require.NotContains(t, body, token, "shown once")
	require.Contains(t, body, "billing system")

	payload := `{"subscription_id": ` + itoa(id) + `, "billing_status": "canceled"}`
	resp, body = b.billingPost(t, token, "evt-1", payload)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var ans struct {
		Changed       bool   `json:"changed"`
		BillingStatus string `json:"billing_status"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	require.True(t, ans.Changed)
	resp, again := b.billingPost(t, token, "evt-1", payload)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	require.JSONEq(t, body, again)

	resp, _ = b.billingPost(t, "rcb_wrong", "evt-2", payload)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	var tokID string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT id::text FROM api_tokens`).Scan(&tokID))
	resp, _ = b.post(t, "/settings/api-tokens/"+tokID+"/revoke", url.Values{"_csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = b.billingPost(t, token, "evt-3", payload)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// Four a minute: the fifth request is refused before anything looks at it.
	resp, _ = b.billingPost(t, token, "evt-4", payload)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)

	_, body, _ = b.get(t, "/audit")
	for _, action := range []string{"api_token.create", "api_token.revoke", "billing.status", "api.refused"} {
		require.Contains(t, body, action)
	}
}

// The policy page switches the policy on; the status page then shows the countdown with Hold.
func TestBillingPolicyPageAndCountdown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	csrf := b.signIn(t)
	id := b.createCustomer(t, csrf, customerForm("countdown@example.com"))

	resp, body := b.post(t, "/settings/billing", url.Values{"_csrf": {csrf}, "enabled": {"true"}, "canceled_grace_days": {"-1"}, "past_due_grace_days": {"7"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "canceled_grace_days-error")
	resp, _ = b.post(t, "/settings/billing", url.Values{"_csrf": {csrf}, "enabled": {"true"}, "canceled_grace_days": {"2"}, "past_due_grace_days": {"7"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	_, err := b.pool.Exec(context.Background(), `UPDATE subscriptions SET billing_status = 'canceled', provisioning_status = 'ready',
		hetzner_server_id = 4242, vps_ip_address = '192.0.2.44', provisioned_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	_, body, _ = b.get(t, "/subscriptions/"+itoa(id))
	require.Contains(t, body, `id="billing-countdown"`)
	require.Contains(t, body, "in 47 h")
	require.Contains(t, body, "/billing/hold")
	_, body, _ = b.get(t, "/")
	require.Contains(t, body, `id="scheduled-`+itoa(id)+`"`)

	resp, _ = b.post(t, "/subscriptions/"+itoa(id)+"/billing/hold", url.Values{"_csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body, _ = b.get(t, "/subscriptions/"+itoa(id))
	require.Contains(t, body, "holds it")
	require.Contains(t, body, "/billing/release")
}
