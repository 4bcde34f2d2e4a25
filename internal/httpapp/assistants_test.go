package httpapp_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/health"
	"github.com/rachelcloud/admin/internal/notify"
)

// A ready VPS whose assistant crashed is flagged down after two checks, with when it was last seen,
// and notified; Re-inject brings it back and resolves the incident. Claude tokens about to expire
// are listed.
func TestAssistantDownAndExpiringTokens(t *testing.T) {
	t.Parallel()
	b := setupStack(t, hcloudsim.Config{})
	ctx := context.Background()
	csrf := b.signIn(t)
	id := b.createCustomer(t, csrf, customerForm("health@example.com"))
	resp, _ := b.post(t, "/subscriptions/"+itoa(id)+"/provision", url.Values{"_csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	b.waitState(t, id, db.ProvisioningStatusReady)

	n, err := notify.New(b.pool, b.cfg, notify.Options{})
	require.NoError(t, err)
	checker := health.New(b.pool, b.cfg, health.Options{Notify: n, Timeout: 10 * time.Second})
	res, err := checker.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Up: 1}, res)
	_, body, _ := b.get(t, "/assistants")
	require.Contains(t, body, `id="no-down"`)

	sub, err := db.New().SubscriptionGet(ctx, b.pool, id)
	require.NoError(t, err)
	// The assistant stops (as root on the VPS would stop it).
	_, stderr, status := b.sim.Machine(*sub.HetznerServerID).RunAs("root", "systemctl stop "+cloudinit.UnitName, nil)
	require.Zero(t, status, stderr)
	res, err = checker.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Failing: 1}, res, "one failure is not yet down")
	res, err = checker.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Failing: 1, Down: 1}, res)

	open, err := n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, string(notify.KindAssistantDown), open[0].Kind)
	require.Contains(t, open[0].Summary, "Last seen running 20")

	_, body, _ = b.get(t, "/assistants")
	d := doc(t, body)
	row := d.Find("#down-" + itoa(id))
	require.Equal(t, 1, row.Length())
	require.Contains(t, row.Text(), `rachel-assistant.service is inactive (dead)`)
	require.Equal(t, 1, row.Find(`form[action="/subscriptions/`+itoa(id)+`/reinject"]`).Length())
	_, body, _ = b.get(t, "/subscriptions/"+itoa(id))
	require.Contains(t, body, `id="assistant-down"`)

	// Re-inject restarts the unit: up again, the incident resolved.
	resp, _ = b.post(t, "/subscriptions/"+itoa(id)+"/reinject", url.Values{"_csrf": {csrf}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	b.waitState(t, id, db.ProvisioningStatusReady)
	res, err = checker.CheckAll(ctx)
	require.NoError(t, err)
	require.Equal(t, health.Result{Checked: 1, Up: 1}, res)
	open, err = n.OpenIncidents(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, open)

	// A token expiring in two days is listed with Update and Re-inject; one in a year is not.
	soon := customerForm("soon@example.com")
	soon.Set("claude_token_expires_at", time.Now().UTC().Add(48*time.Hour).Format("2006-01-02T15:04"))
	soonID := b.createCustomer(t, csrf, soon)
	later := customerForm("later@example.com")
	later.Set("claude_token_expires_at", time.Now().UTC().Add(365*24*time.Hour).Format("2006-01-02T15:04"))
	b.createCustomer(t, csrf, later)
	_, body, _ = b.get(t, "/assistants")
	d = doc(t, body)
	require.Equal(t, 1, d.Find("#expiring-tokens tbody tr").Length(), body)
	var custID int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT customer_id FROM subscriptions WHERE id = $1`, soonID).Scan(&custID))
	require.Equal(t, 1, d.Find(`#expiring-`+itoa(custID)+` a[href="/customers/`+itoa(custID)+`/edit"]`).Length())
}
