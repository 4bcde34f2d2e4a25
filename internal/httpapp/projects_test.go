package httpapp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestDashboardShowsEveryProject: with several Hetzner projects the dashboard lists each one's
// servers against its learnt limit and its own request budget; the status page and the list
// name a subscription's project; no token is shown.
func TestDashboardShowsEveryProject(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.env["HCLOUD_TOKEN"] = "secret-token-default"
		o.env["HCLOUD_PROJECTS"] = "eu-2=secret-token-eu2"
	})
	tok := b.signIn(t)
	ctx := context.Background()
	q := db.New()
	id := b.createCustomer(t, tok, customerForm("projects@example.com"))
	sid := itoa(id)
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'ready', hetzner_server_id = 4712,
		vps_ip_address = '203.0.113.10', vps_hostname = 'rachel-sub-`+sid+`', provisioned_at = now(), hetzner_project = 'eu-2' WHERE id = $1`, id)
	require.NoError(t, err)
	require.NoError(t, q.ProvisionSetServerFacts(ctx, b.pool, db.ProvisionSetServerFactsParams{ID: id, ServerType: "cx23", ServerLocation: "hel1", ServerImage: "debian-12"}))
	require.NoError(t, q.ProjectLimitPut(ctx, b.pool, db.ProjectLimitPutParams{Project: "eu-2", ServerLimit: 10}))
	require.NoError(t, q.RateLimitPut(ctx, b.pool, db.RateLimitPutParams{Project: "default", Lim: 3600, Remaining: 3500, ResetAt: time.Now().Add(time.Minute)}))
	require.NoError(t, q.RateLimitPut(ctx, b.pool, db.RateLimitPutParams{Project: "eu-2", Lim: 3600, Remaining: 1234, ResetAt: time.Now().Add(time.Hour)}))

	var rows map[string]string
	// The budgets come from the database through a cache refreshed in the background.
	testkit.Eventually(t, "the dashboard to show eu-2's budget", func() bool {
		_, body, _ := b.get(t, "/")
		require.NotContains(t, body, "secret-token")
		rows = map[string]string{}
		doc(t, body).Find("#projects tbody tr").Each(func(_ int, s *goquery.Selection) {
			rows[s.AttrOr("data-project", "")] = strings.Join(strings.Fields(s.Text()), " ")
		})
		return strings.Contains(rows["eu-2"], "1234 of 3600")
	})
	require.Len(t, rows, 2)
	require.Contains(t, rows["default"], "0 /")
	require.Contains(t, rows["default"], "3500 of 3600")
	require.Contains(t, rows["eu-2"], "1 / 10")
	require.Contains(t, rows["eu-2"], "1234 of 3600")

	_, body, _ := b.get(t, "/subscriptions/"+sid)
	require.Equal(t, "eu-2", strings.TrimSpace(doc(t, body).Find("#server-project").Text()))
	_, body, _ = b.get(t, "/subscriptions")
	require.Contains(t, doc(t, body).Find(".server-project").Text(), "eu-2")
}
