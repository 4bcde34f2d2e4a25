package httpapp_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
)

// TestSubscriptionBulk: one confirmation for the selection, then each subscription through the
// single action's service method and state guard, with every row's outcome and one audit entry
// per action run.
func TestSubscriptionBulk(t *testing.T) {
	t.Parallel()
	b := setup(t)
	owner := b.signIn(t)
	failed := b.createCustomer(t, owner, customerForm("bulk-failed@example.com"))
	ready := b.createCustomer(t, owner, customerForm("bulk-ready@example.com"))
	fresh := b.createCustomer(t, owner, customerForm("bulk-fresh@example.com"))
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'failed', provisioning_error = 'boom', failed_step = 'creating' WHERE id = $1`, failed)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', hetzner_server_id = 4242, vps_ip_address = '192.0.2.10', provisioned_at = now() WHERE id = $1`, ready)
	require.NoError(t, err)

	op, tok := b.as(t, auth.RoleOperator)
	_, body, _ := op.get(t, "/subscriptions")
	d := doc(t, body)
	require.Equal(t, 3, d.Find(`input[type=checkbox][name=id][form=bulk-form]`).Length())
	require.Equal(t, 1, d.Find(`form#bulk-form button[value=retry]`).Length())

	// Bad selections: 422, nothing run.
	for _, bad := range []url.Values{
		{"action": {"destroy"}, "id": {itoa(failed)}},
		{"action": {"retry"}, "id": {"abc"}},
		{"action": {"retry"}},
		{"action": {"retry"}, "id": {"-3"}},
	} {
		bad.Set("_csrf", tok)
		bad.Set("confirm", "yes")
		resp, _ := op.post(t, "/subscriptions/bulk", bad)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, bad.Encode())
	}
	many := url.Values{"_csrf": {tok}, "action": {"retry"}, "confirm": {"yes"}}
	for i := range 201 {
		many.Add("id", itoa(int64(i+1)))
	}
	resp, _ := op.post(t, "/subscriptions/bulk", many)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	// The confirmation lists the selection and changes nothing.
	sel := url.Values{"_csrf": {tok}, "action": {"retry"}, "id": {itoa(failed), itoa(fresh), "999999", itoa(failed)}}
	resp, body = op.post(t, "/subscriptions/bulk", sel)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	d = doc(t, body)
	require.Equal(t, 3, d.Find(`#bulk-items tbody tr`).Length(), "deduplicated")
	require.Equal(t, 3, d.Find(`form[action="/subscriptions/bulk"] input[name=id]`).Length())
	require.Equal(t, "yes", d.Find(`form[action="/subscriptions/bulk"] input[name=confirm]`).AttrOr("value", ""))
	require.Equal(t, "failed", b.state(t, failed))

	// Confirmed: each row's own outcome.
	sel.Set("confirm", "yes")
	resp, body = op.post(t, "/subscriptions/bulk", sel)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	d = doc(t, body)
	require.Equal(t, "true", d.Find("#bulk-"+itoa(failed)).AttrOr("data-ok", ""))
	require.Contains(t, d.Find("#bulk-"+itoa(failed)).Text(), "Retry started.")
	require.Contains(t, d.Find("#bulk-"+itoa(fresh)).Text(), "Not possible in its current state")
	require.Contains(t, d.Find("#bulk-999999").Text(), "Not found")
	require.Equal(t, "creating", b.state(t, failed))
	require.Equal(t, "", b.state(t, fresh))

	// Re-inject: only the ready one qualifies.
	resp, body = op.post(t, "/subscriptions/bulk", url.Values{"_csrf": {tok}, "action": {"reinject"}, "confirm": {"yes"},
		"id": {itoa(ready), itoa(fresh)}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	d = doc(t, body)
	require.Equal(t, "true", d.Find("#bulk-"+itoa(ready)).AttrOr("data-ok", ""))
	require.Equal(t, "false", d.Find("#bulk-"+itoa(fresh)).AttrOr("data-ok", ""))
	require.Equal(t, "injecting_secrets", b.state(t, ready))

	var retries, reinjects int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE action = 'vps.retry'), count(*) FILTER (WHERE action = 'vps.reinject') FROM audit_log`).Scan(&retries, &reinjects))
	require.Equal(t, 1, retries)
	require.Equal(t, 1, reinjects)
}

// state is a subscription's provisioning status ("" when never provisioned).
func (b *testBundle) state(t *testing.T, id int64) string {
	t.Helper()
	var s *string
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT provisioning_status::text FROM subscriptions WHERE id = $1`, id).Scan(&s))
	if s == nil {
		return ""
	}
	return *s
}

// TestSubscriptionExportCSV: the filtered list, every page, streamed as CSV with no secret and
// every formula-like cell defused.
func TestSubscriptionExportCSV(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.signIn(t)
	for i, name := range []string{"=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "Plain Name"} {
		f := customerForm("csv" + itoa(int64(i)) + "@example.com")
		f.Set("name", name)
		b.createCustomer(t, tok, f)
	}
	ctx := context.Background()
	// 1,100 more, so the export spans several of its pages (500 rows each) and the list's window.
	_, err := b.pool.Exec(ctx, `WITH c AS (
		INSERT INTO customers (email, name) SELECT 'bulk' || g || '@example.org', 'Bulk ' || g FROM generate_series(1, 1100) g RETURNING id)
		INSERT INTO subscriptions (customer_id, plan, billing_status) SELECT id, 'personal', 'active' FROM c`)
	require.NoError(t, err)

	resp, err := b.client.Get(b.server.URL + "/subscriptions.csv?sort=email")
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="subscriptions-`))
	require.NotContains(t, string(raw), "sk-ant", "no secret")
	require.NotContains(t, string(raw), "AAEhBP0av28")
	rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+1105)
	require.Equal(t, "subscription_id", rows[0][0])
	names := map[string]bool{}
	for _, r := range rows[1:] {
		names[r[1]] = true
		for _, cell := range r {
			require.False(t, cell != "" && strings.ContainsRune("=+-@", rune(cell[0])), "cell %q", cell)
		}
	}
	for _, want := range []string{`'=HYPERLINK("http://x")`, "'+1+1", "'-2", "'@SUM(A1)", "Plain Name", "Bulk 1100"} {
		require.True(t, names[want], want)
	}

	// Filtered like the list.
	resp, err = b.client.Get(b.server.URL + "/subscriptions.csv?q=csv4")
	require.NoError(t, err)
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	rows, err = csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, "Plain Name", rows[1][1])
	status, _, _ := b.get(t, "/subscriptions.csv?status=bogus")
	require.Equal(t, http.StatusUnprocessableEntity, status)

	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'subscriptions_export'`).Scan(&n))
	require.Equal(t, 2, n)
	_, body, _ := b.get(t, "/subscriptions?status=none&q=csv")
	require.Contains(t, body, `href="/subscriptions.csv?q=csv&amp;status=none"`)
}

// TestAuditFilters: by admin, action and time range; bad input is answered 422.
func TestAuditFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `INSERT INTO audit_log (occurred_at, admin_email, action, detail) VALUES
		('2026-01-10 12:00Z', 'a@example.com', 'vps.retry', 'old retry'),
		('2026-02-10 12:00Z', 'a@example.com', 'vps.destroy', 'feb destroy'),
		('2026-02-11 08:00Z', 'b@example.com', 'vps.retry', 'b retry')`)
	require.NoError(t, err)
	count := func(q string) (int, string) {
		t.Helper()
		status, body, _ := b.get(t, "/audit?"+q)
		require.Equal(t, http.StatusOK, status, q)
		return doc(t, body).Find("#audit tbody tr").Length(), body
	}
	n, body := count("admin=A@example.com")
	require.Equal(t, 2, n)
	require.Contains(t, body, `<option value="vps.destroy">`)
	n, _ = count("action=vps.retry")
	require.Equal(t, 2, n)
	n, body = count("action=vps.retry&from=2026-02-01&to=2026-02-11")
	require.Equal(t, 1, n, "the to-day is included")
	require.Contains(t, body, "b retry")
	n, _ = count("from=2026-02-10T12:00&to=2026-02-10T12:01&admin=a@example.com")
	require.Equal(t, 1, n)
	n, _ = count("admin=nobody@example.com")
	require.Zero(t, n)

	for q, msg := range map[string]string{
		"from=yesterday":                    "Enter a date like 2026-12-01",
		"from=2026-03-01&to=2026-02-01":     "The end must be after the start.",
		"action=DROP%20TABLE":               "Choose an action from the list.",
		"subscription=-1":                   "positive number",
		"admin=" + strings.Repeat("x", 300): "at most 254",
	} {
		status, body, _ := b.get(t, "/audit?"+q)
		require.Equal(t, http.StatusUnprocessableEntity, status, q)
		require.Contains(t, body, msg, q)
		require.Zero(t, doc(t, body).Find("#audit tbody tr").Length())
	}
}
