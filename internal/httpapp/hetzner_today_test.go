package httpapp_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// TestServerFactsPreflightAndReboot: the status page and the list show the server a subscription
// got (type, location, price), the dashboard the fleet's cost and a failed preflight, which
// refuses Provision with its reasons; Reboot is confirmed, audited and queued.
func TestServerFactsPreflightAndReboot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.signIn(t)
	ctx := context.Background()
	q := db.New()
	id := b.createCustomer(t, tok, customerForm("facts@example.com"))
	sid := itoa(id)
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', hetzner_server_id = 4711,
		vps_ip_address = '203.0.113.9', vps_hostname = 'rachel-sub-`+sid+`', provisioned_at = now() WHERE id = $1`, id)
	require.NoError(t, err)
	var price pgtype.Numeric
	require.NoError(t, price.Scan("3.9900"))
	require.NoError(t, q.ProvisionSetServerFacts(ctx, b.pool, db.ProvisionSetServerFactsParams{ID: id, ServerType: "cx23",
		ServerLocation: "nbg1", ServerImage: "debian-12", PriceMonthly: price}))

	_, body, _ := b.get(t, "/subscriptions/"+sid)
	d := doc(t, body)
	require.Equal(t, "cx23 in nbg1, debian-12", strings.TrimSpace(d.Find("#server-facts").Text()))
	require.Equal(t, "€3.99/month", strings.TrimSpace(d.Find("#server-price").Text()))
	require.Equal(t, 1, d.Find(`form[action="/subscriptions/`+sid+`/reboot"] button[name="confirm"][value="reboot"]`).Length())

	_, body, _ = b.get(t, "/subscriptions")
	require.Contains(t, doc(t, body).Find(".server-facts").Text(), "cx23 · nbg1 · €3.99/month")

	_, body, _ = b.get(t, "/")
	d = doc(t, body)
	require.Contains(t, d.Find("#fleet-cost").Text(), "1 servers · €3.99 a month")
	require.Contains(t, d.Find("#preflight").Text(), "No worker has run the preflight")

	// Reboot without the confirming button does nothing; with it, it is audited and queued.
	resp, _ := b.post(t, "/subscriptions/"+sid+"/reboot", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	count := func(sql string, args ...any) int {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	require.Zero(t, count(`SELECT count(*) FROM audit_log WHERE action = 'vps.reboot'`))
	resp, _ = b.post(t, "/subscriptions/"+sid+"/reboot", url.Values{"_csrf": {tok}, "confirm": {"reboot"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, 1, count(`SELECT count(*) FROM audit_log WHERE action = 'vps.reboot' AND subscription_id = $1`, id))
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{}) // insert-only: reads River's jobs
	require.NoError(t, err)
	jobs, err := rc.JobList(ctx, river.NewJobListParams().Kinds("provision_reboot"))
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 1)

	// A failed preflight: shown first on the dashboard, and Provision is refused with its reasons.
	require.NoError(t, q.PreflightPut(ctx, b.pool, []string{"HCLOUD_SERVER_TYPE: Hetzner offers no server type \"cx22\" today"}))
	_, body, _ = b.get(t, "/")
	pre := doc(t, body).Find("#preflight").Text()
	require.Contains(t, pre, "Preflight failed")
	require.Contains(t, pre, "HCLOUD_SERVER_TYPE")
	other := b.createCustomer(t, tok, customerForm("refused@example.com"))
	resp, _ = b.post(t, "/subscriptions/"+itoa(other)+"/provision", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body, _ = b.get(t, "/subscriptions/"+itoa(other))
	flash := doc(t, body).Find(".flash-error").Text()
	require.Contains(t, flash, "HCLOUD_SERVER_TYPE")
	require.Zero(t, count(`SELECT count(*) FROM audit_log WHERE action = 'vps.provision' AND subscription_id = $1`, other))
	sub, err := q.SubscriptionGet(ctx, b.pool, other)
	require.NoError(t, err)
	require.Nil(t, sub.ProvisioningStatus)

	// A provisioning waiting for Hetzner's server limit says so on its page.
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'creating', step_started_at = now(), limit_wait_since = now() WHERE id = $1`, other)
	require.NoError(t, err)
	_, err = q.ProvisioningEventInsert(ctx, b.pool, db.ProvisioningEventInsertParams{SubscriptionID: other, Step: db.ProvisioningStatusCreating,
		Kind: "info", Actor: "worker", Message: "Waiting for Hetzner's server limit: 25 of 25 used. Provisioning goes on, in request order, as servers are freed."})
	require.NoError(t, err)
	_, body, _ = b.get(t, "/subscriptions/"+itoa(other))
	require.Contains(t, doc(t, body).Find("#limit-wait").Text(), "25 of 25 used")
}
