package httpapp_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
)

// createCustomer posts the new-customer form and returns the subscription ID it redirected to.
func (b *testBundle) createCustomer(t *testing.T, tok string, form url.Values) int64 {
	t.Helper()
	form.Set("_csrf", tok)
	resp, body := b.post(t, "/customers", form)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	loc := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(loc, "/subscriptions/"), loc)
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT max(id) FROM subscriptions`).Scan(&id))
	require.Equal(t, "/subscriptions/"+itoa(id), loc)
	return id
}

func customerForm(email string) url.Values {
	return url.Values{
		"email": {email}, "name": {"Ann Example"}, "plan": {"personal"}, "billing_status": {"active"},
		"claude_access_token": {"sk-ant-oat01-access-token"}, "claude_refresh_token": {"sk-ant-ort01-refresh-token"},
		"telegram_bot_token": {"123456789:AAEhBP0av28bottokenvalue0123456789"}, "owner_telegram_user_id": {"4242"},
	}
}

func doc(t *testing.T, body string) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	require.NoError(t, err)
	return d
}

func TestStatusPageAndFragment(t *testing.T) {
	t.Parallel()
	b := setup(t) // no worker: the state stays where the actions put it
	tok := b.signIn(t)
	id := b.createCustomer(t, tok, customerForm("ann@example.com"))
	sid := itoa(id)

	// Never provisioned: only Provision is offered; the fragment is final (286, no polling).
	status, body, _ := b.get(t, "/subscriptions/"+sid)
	require.Equal(t, http.StatusOK, status)
	d := doc(t, body)
	require.Equal(t, "none", d.Find("#live").AttrOr("data-state", ""))
	require.Zero(t, d.Find("#live[hx-trigger]").Length(), "no polling while nothing runs")
	require.Equal(t, 1, d.Find(`form[action="/subscriptions/`+sid+`/provision"] button`).Length())
	require.Zero(t, d.Find(`form[action="/subscriptions/`+sid+`/destroy"]`).Length())
	require.Equal(t, "Customer created.", strings.TrimSpace(d.Find(".flash-ok").Text()))
	status, _, _ = b.get(t, "/subscriptions/"+sid+"/status")
	require.Equal(t, 286, status)

	// Provision twice (a double click): one transition, one audit row, one job.
	for range 2 {
		resp, _ := b.post(t, "/subscriptions/"+sid+"/provision", url.Values{"_csrf": {tok}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, "/subscriptions/"+sid, resp.Header.Get("Location"))
	}
	var audits, events int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'vps.provision' AND subscription_id = $1`, id).Scan(&audits))
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM provisioning_events WHERE subscription_id = $1`, id).Scan(&events))
	require.Equal(t, 1, audits)
	require.Equal(t, 1, events)

	// Pending: the page polls its fragment every 2 s, and offers only Destroy.
	status, body, _ = b.get(t, "/subscriptions/"+sid)
	require.Equal(t, http.StatusOK, status)
	d = doc(t, body)
	live := d.Find("#live")
	require.Equal(t, "pending", live.AttrOr("data-state", ""))
	require.Equal(t, "every 2s", live.AttrOr("hx-trigger", ""))
	require.Equal(t, "/subscriptions/"+sid+"/status", live.AttrOr("hx-get", ""))
	require.Equal(t, "outerHTML", live.AttrOr("hx-swap", ""))
	require.Zero(t, d.Find(`form[action="/subscriptions/`+sid+`/provision"]`).Length())
	require.Equal(t, 1, d.Find(`form[action="/subscriptions/`+sid+`/destroy"] input[name="confirm_name"]`).Length())
	require.Equal(t, "Provisioning started.", strings.TrimSpace(d.Find(".flash-ok").Text()))
	require.Contains(t, d.Find(".timeline .step-current").Text(), "pending")

	resp, err := b.client.Get(b.server.URL + "/subscriptions/" + sid + "/status")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "still polling")
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	// Retry is not valid while pending: explained, nothing changes.
	resp, _ = b.post(t, "/subscriptions/"+sid+"/retry", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body, _ = b.get(t, "/subscriptions/"+sid)
	require.Contains(t, doc(t, body).Find(".flash-error").Text(), "not possible in the subscription's current state")

	// Destroy with a wrong name: 422, message on the field, nothing changes.
	name := serverName(t, b.pool, id)
	for _, wrong := range []string{"", "rachel-sub-999999", strings.ToUpper(name)} {
		resp, body := b.post(t, "/subscriptions/"+sid+"/destroy", url.Values{"_csrf": {tok}, "confirm_name": {wrong}})
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, wrong)
		d := doc(t, body)
		require.Contains(t, d.Find("#confirm_name-error").Text(), name)
		require.Equal(t, "true", d.Find("#confirm_name").AttrOr("aria-invalid", ""))
		require.Equal(t, 1, d.Find("details#destroy-box[open]").Length())
	}
	sub, err := db.New().SubscriptionGet(context.Background(), b.pool, id)
	require.NoError(t, err)
	require.Equal(t, db.ProvisioningStatusPending, *sub.ProvisioningStatus)

	// The right name destroys (twice: the second press does nothing more).
	for range 2 {
		resp, _ = b.post(t, "/subscriptions/"+sid+"/destroy", url.Values{"_csrf": {tok}, "confirm_name": {" " + name + " "}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	}
	sub, err = db.New().SubscriptionGet(context.Background(), b.pool, id)
	require.NoError(t, err)
	require.Equal(t, db.ProvisioningStatusDestroying, *sub.ProvisioningStatus)
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'vps.destroy'`).Scan(&audits))
	require.Equal(t, 1, audits)

	// Unknown subscriptions are friendly 404s, from the page and the fragment.
	for _, p := range []string{"/subscriptions/999999", "/subscriptions/999999/status", "/subscriptions/abc"} {
		status, body, _ := b.get(t, p)
		require.Equal(t, http.StatusNotFound, status, p)
		require.NotContains(t, body, "ErrNotFound", p)
	}
	resp, _ = b.post(t, "/subscriptions/999999/provision", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// htmx requests get the fragment's status too, and an action answers HX-Redirect.
	req, _ := http.NewRequest(http.MethodPost, b.server.URL+"/subscriptions/"+sid+"/destroy", strings.NewReader(url.Values{"confirm_name": {serverName(t, b.pool, id)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	req.Header.Set("X-CSRF-Token", tok)
	resp, err = b.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "/subscriptions/"+sid, resp.Header.Get("HX-Redirect"))
}

func TestCallbackRoute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// No session, no CSRF token: the route answers, and a wrong token is a bare 404.
	for _, token := range []string{"x", strings.Repeat("A", 43)} {
		resp, err := b.client.PostForm(b.server.URL+"/callback/"+token, url.Values{"instance_id": {"1"}, "pub_key_ed25519": {"ssh-ed25519 AAAA"}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, token)
	}
}

func TestAuditPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.signIn(t)
	id := b.createCustomer(t, tok, customerForm("audit@example.com"))
	resp, _ := b.post(t, "/subscriptions/"+itoa(id)+"/provision", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	status, body, _ := b.get(t, "/audit?subscription="+itoa(id))
	require.Equal(t, http.StatusOK, status)
	rows := doc(t, body).Find("#audit tbody tr")
	require.Equal(t, 2, rows.Length())
	first := rows.First().Text()
	require.Contains(t, first, "vps.provision")
	require.Contains(t, first, adminEmail)
	require.Contains(t, first, "127.0.0.1")
	require.Contains(t, rows.Last().Text(), "customer_create")

	status, body, _ = b.get(t, "/audit")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "sign_in")
	status, _, _ = b.get(t, "/audit?subscription=abc")
	require.Equal(t, http.StatusUnprocessableEntity, status)
}

func TestReconcilePage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.signIn(t)
	ctx := context.Background()
	q := db.New()
	created := time.Now().Add(-49 * time.Hour)
	orphan, err := q.FindingUpsert(ctx, b.pool, db.FindingUpsertParams{Kind: "orphan", HetznerServerID: 4242, ServerName: "rachel-sub-77",
		ServerCreatedAt: &created, ServerType: "cx22"})
	require.NoError(t, err)
	ghost, err := q.FindingUpsert(ctx, b.pool, db.FindingUpsertParams{Kind: "ghost", HetznerServerID: 4343, ServerName: "rachel-sub-78"})
	require.NoError(t, err)

	status, body, _ := b.get(t, "/reconcile")
	require.Equal(t, http.StatusOK, status)
	d := doc(t, body)
	require.Equal(t, 2, d.Find("#findings tbody tr").Length())
	row := d.Find("#finding-" + itoa(orphan.ID)).Text()
	require.Contains(t, row, "rachel-sub-77 (4242)")
	require.Contains(t, row, "created 2 days ago")
	require.Contains(t, row, "cx22: about €4.59/month")

	// A wrong confirmation is a 422 with the message at that finding; nothing changes.
	resp, body := b.post(t, "/reconcile/"+itoa(orphan.ID)+"/destroy", url.Values{"_csrf": {tok}, "confirm_name": {"rachel-sub-78"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, doc(t, body).Find("#confirm-"+itoa(orphan.ID)+"-error").Text(), "Type rachel-sub-77 exactly")
	// The action must match the finding's kind.
	resp, _ = b.post(t, "/reconcile/"+itoa(orphan.ID)+"/gone", url.Values{"_csrf": {tok}, "confirm_name": {"rachel-sub-77"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	fs, err := b.prov.Findings(ctx)
	require.NoError(t, err)
	require.Len(t, fs, 2)

	// Confirmed: both resolved and audited; a second press only says so.
	for range 2 {
		resp, _ = b.post(t, "/reconcile/"+itoa(orphan.ID)+"/destroy", url.Values{"_csrf": {tok}, "confirm_name": {"rachel-sub-77"}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	}
	resp, _ = b.post(t, "/reconcile/"+itoa(ghost.ID)+"/gone", url.Values{"_csrf": {tok}, "confirm_name": {"rachel-sub-78"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	fs, err = b.prov.Findings(ctx)
	require.NoError(t, err)
	require.Empty(t, fs)
	var n int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action IN ('orphan.destroy', 'ghost.mark_gone')`).Scan(&n))
	require.Equal(t, 2, n)
	_, body, _ = b.get(t, "/reconcile")
	require.Equal(t, 1, doc(t, body).Find("#no-findings").Length())

	resp, _ = b.post(t, "/reconcile/run", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'reconcile.run'`).Scan(&n))
	require.Equal(t, 1, n)
}

// TestNoSecretInAnyPage provisions with recognisable secrets and searches every page the app
// renders along the way for them (and for any private key).
func TestNoSecretInAnyPage(t *testing.T) {
	t.Parallel()
	b := setupStack(t, hcloudsim.Config{})
	tok := b.signIn(t)
	secretValues := []string{
		"sk-ant-oat01-SECRETACCESSxq7", "sk-ant-ort01-SECRETREFRESHzp4",
		"987654321:AAEhBP0av28SECRETBOTTOKENkw9vb3", "8675309421",
	}
	form := customerForm("secret@example.com")
	form.Set("claude_access_token", secretValues[0])
	form.Set("claude_refresh_token", secretValues[1])
	form.Set("telegram_bot_token", secretValues[2])
	form.Set("owner_telegram_user_id", secretValues[3])
	form.Set("claude_token_expires_at", "2031-02-03T04:05")
	id := b.createCustomer(t, tok, form)
	sid := itoa(id)
	var custID int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT customer_id FROM subscriptions WHERE id = $1`, id).Scan(&custID))

	pages := 0
	check := func(path, body string) {
		t.Helper()
		pages++
		for _, s := range secretValues {
			require.NotContains(t, body, s, path)
		}
		require.NotContains(t, body, "PRIVATE KEY", path)
		require.NotContains(t, body, "2031-02-03", path, "the token expiry is a secret too")
	}
	visit := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			status, body, _ := b.get(t, p)
			require.Less(t, status, 500, p)
			check(p, body)
		}
	}
	all := []string{"/", "/subscriptions", "/subscriptions?q=secret", "/subscriptions?status=ready", "/subscriptions/" + sid,
		"/subscriptions/" + sid + "/status", "/customers/" + itoa(custID) + "/edit", "/audit", "/audit?subscription=" + sid,
		"/reconcile", "/customers/new", "/nowhere"}
	visit(all...)

	resp, body := b.post(t, "/subscriptions/"+sid+"/provision", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	check("provision", body)
	visit("/subscriptions/"+sid, "/subscriptions/"+sid+"/status", "/")
	b.waitState(t, id, db.ProvisioningStatusReady)
	visit(all...)

	// The ready page shows the server's facts and the receipt, not what was written.
	status, body, _ := b.get(t, "/subscriptions/"+sid)
	require.Equal(t, http.StatusOK, status)
	d := doc(t, body)
	require.Equal(t, "ready", d.Find("#live").AttrOr("data-state", ""))
	facts := d.Find("dl.facts").Text()
	require.Contains(t, facts, serverName(t, b.pool, id))
	require.Contains(t, facts, "SHA256:")
	require.Contains(t, facts, "/etc/rachel/telegram.env")
	require.Equal(t, 5, d.Find(".timeline .step-done").Length())
	status, _, _ = b.get(t, "/subscriptions/"+sid+"/status")
	require.Equal(t, 286, status)

	// Re-inject, and a wrong then a right destroy confirmation.
	resp, body = b.post(t, "/subscriptions/"+sid+"/reinject", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	check("reinject", body)
	b.waitState(t, id, db.ProvisioningStatusReady)
	visit("/subscriptions/" + sid)
	resp, body = b.post(t, "/subscriptions/"+sid+"/destroy", url.Values{"_csrf": {tok}, "confirm_name": {"nope"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	check("destroy 422", body)
	resp, _ = b.post(t, "/subscriptions/"+sid+"/destroy", url.Values{"_csrf": {tok}, "confirm_name": {serverName(t, b.pool, id)}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	b.waitState(t, id, db.ProvisioningStatusDestroyed)
	visit(all...)
	require.Greater(t, pages, 40)

	// The dashboard saw Hetzner's rate-limit headers through the shared tracker.
	_, body, _ = b.get(t, "/")
	require.Contains(t, doc(t, body).Find("#rate-limit").Text(), "requests left")
}

func TestDashboard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.signIn(t)
	ctx := context.Background()
	failed := b.createCustomer(t, tok, customerForm("failed@example.com"))
	stuck := b.createCustomer(t, tok, customerForm("stuck@example.com"))
	b.createCustomer(t, tok, customerForm("idle@example.com"))
	for _, id := range []int64{failed, stuck} {
		resp, _ := b.post(t, "/subscriptions/"+itoa(id)+"/provision", url.Values{"_csrf": {tok}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	}
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'failed', failed_step = 'cloud_init', provisioning_error = 'no callback' WHERE id = $1`, failed)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET step_started_at = now() - interval '12 minutes' WHERE id = $1`, stuck)
	require.NoError(t, err)
	_, err = db.New().FindingUpsert(ctx, b.pool, db.FindingUpsertParams{Kind: "orphan", HetznerServerID: 5151, ServerName: "rachel-sub-5151", ServerType: "cx22"})
	require.NoError(t, err)

	status, body, _ := b.get(t, "/")
	require.Equal(t, http.StatusOK, status)
	d := doc(t, body)
	rows := d.Find("#attention tbody tr")
	require.Equal(t, 2, rows.Length())
	require.Contains(t, rows.Eq(0).Text(), "failed at cloud-init")
	require.Equal(t, "/subscriptions/"+itoa(failed), rows.Eq(0).Find("a").AttrOr("href", ""))
	require.Contains(t, rows.Eq(1).Text(), "stuck for 11 min in pending")
	counts := d.Find("ul.counts").Text()
	require.Contains(t, counts, "not provisioned")
	require.Equal(t, 1, d.Find(`ul.counts a[href="/subscriptions?status=failed"]`).Length())
	require.Contains(t, d.Find("#findings-h").Parent().Text(), "rachel-sub-5151 (5151)")
	require.Contains(t, d.Find("#rate-limit").Text(), "No Hetzner response seen yet")

	// The stuck subscription's own page says so, with what to do.
	_, body, _ = b.get(t, "/subscriptions/"+itoa(stuck))
	stuckBox := doc(t, body).Find("#stuck").Text()
	require.Contains(t, stuckBox, "Stuck for 11 min")
	require.Contains(t, stuckBox, "worker")
}

// TestServerErrorLeaksNothing: a failure deep down answers a friendly 500 page without details.
func TestServerErrorLeaksNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.signIn(t)
	_, err := b.pool.Exec(context.Background(), `ALTER TABLE reconcile_findings RENAME TO reconcile_findings_gone`)
	require.NoError(t, err)
	status, body, _ := b.get(t, "/reconcile")
	require.Equal(t, http.StatusInternalServerError, status)
	require.Contains(t, body, "Something went wrong on our side.")
	for _, leak := range []string{"reconcile_findings", "SQLSTATE", "relation", "list findings"} {
		require.NotContains(t, body, leak)
	}
}
