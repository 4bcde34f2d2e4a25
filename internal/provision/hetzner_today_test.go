package provision

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testkit"
)

// configWith loads the bundle's configuration with some variables changed.
func configWith(t *testing.T, b *bundle, env map[string]string) *config.Config {
	t.Helper()
	e := maps.Clone(b.env)
	maps.Copy(e, env)
	c, err := config.Load(func(k string) string { return e[k] })
	require.NoError(t, err)
	return c
}

func joined(reasons []string) string { return strings.Join(reasons, "\n") }

func TestPreflight(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true; o.sim.ReadOnlyToken = "read-only" })
	ctx := context.Background()

	reasons, err := Preflight(ctx, b.cfg, b.hc)
	require.NoError(t, err)
	require.Empty(t, reasons, "the default configuration works against the simulator")

	// Today the retired generation is not offered at all; an unknown type neither.
	for _, typ := range []string{"cx22", "cx99"} {
		reasons, err = Preflight(ctx, configWith(t, b, map[string]string{"HCLOUD_SERVER_TYPE": typ}), b.hc)
		require.NoError(t, err)
		require.Len(t, reasons, 1, joined(reasons))
		require.True(t, strings.HasPrefix(reasons[0], "HCLOUD_SERVER_TYPE: "), reasons[0])
		require.Contains(t, reasons[0], typ)
	}
	// A plan's own variable is named; a type not offered in a location and an image of the other
	// architecture are found.
	reasons, err = Preflight(ctx, configWith(t, b, map[string]string{"HCLOUD_PLAN_PRO": "cx23 fsn1,ash", "HCLOUD_PLAN_PLUS": "cax11 nbg1 debian-13"}), b.hc)
	require.NoError(t, err)
	require.Equal(t, []string{"HCLOUD_PLAN_PRO: server type cx23 is not offered in ash"}, reasons)
	reasons, err = Preflight(ctx, configWith(t, b, map[string]string{"HCLOUD_IMAGE": "debian-11"}), b.hc)
	require.NoError(t, err)
	require.Len(t, reasons, 1)
	require.Contains(t, reasons[0], "HCLOUD_IMAGE: Hetzner has no image \"debian-11\"")

	// A read-only token.
	ro := configWith(t, b, map[string]string{"HCLOUD_TOKEN": "read-only"})
	roClient, err := NewHCloudClient(ro, nil, nil)
	require.NoError(t, err)
	reasons, err = Preflight(ctx, ro, roClient)
	require.NoError(t, err)
	require.Len(t, reasons, 1)
	require.Contains(t, reasons[0], "HCLOUD_TOKEN: the token is read-only")
	require.Empty(t, b.sim.Firewalls(), "the write check creates nothing")

	// Before 2026 the retired types were still listed, deprecated: preflight says so.
	b.sim.SetNow(time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC))
	old := configWith(t, b, map[string]string{"HCLOUD_SERVER_TYPE": "cx22"})
	reasons, err = Preflight(ctx, old, b.hc)
	require.NoError(t, err)
	require.Contains(t, joined(reasons), "HCLOUD_SERVER_TYPE: server type cx22 is deprecated in fsn1 (unavailable after 2026-01-01)")

	// Stored, a failed preflight refuses Provision with its reasons and writes nothing.
	id := b.newSubscription(t)
	_, err = RunPreflight(ctx, b.pool, old, b.hc)
	require.NoError(t, err)
	err = b.svc.Provision(ctx, id, admin)
	require.ErrorIs(t, err, ErrPreflight)
	require.Contains(t, err.Error(), "HCLOUD_SERVER_TYPE")
	require.Nil(t, b.sub(t, id).ProvisioningStatus)
	require.Empty(t, b.events(t, id))
	pre, err := b.svc.Preflight(ctx)
	require.NoError(t, err)
	require.True(t, pre.Checked)
	require.False(t, pre.OK)

	// Retry under a failed preflight: a cloud_init failure whose server is gone would create a new
	// one, so it is refused and nothing changes; with its server it resumes at cloud_init (no create).
	retried := b.newSubscription(t)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'failed', failed_step = 'cloud_init',
		provisioning_error = 'callback deadline' WHERE id = $1`, retried)
	require.NoError(t, err)
	err = b.svc.Retry(ctx, retried, admin)
	require.ErrorIs(t, err, ErrPreflight)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(b.sub(t, retried)))
	require.Empty(t, b.events(t, retried))
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET hetzner_server_id = 4242, vps_ip_address = '127.0.0.9' WHERE id = $1`, retried)
	require.NoError(t, err)
	require.NoError(t, b.svc.Retry(ctx, retried, admin))
	require.Equal(t, db.ProvisioningStatusCloudInit, statusOf(b.sub(t, retried)))

	// Fixed, it passes and Provision goes ahead.
	b.sim.SetNow(time.Now())
	_, err = RunPreflight(ctx, b.pool, b.cfg, b.hc)
	require.NoError(t, err)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	require.Equal(t, db.ProvisioningStatusPending, statusOf(b.sub(t, id)))
}

func TestPreflightPublicBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		endpoint, url string
		bad           bool
	}{
		{"", "http://127.0.0.1:8080", true},
		{"", "http://localhost:8080", true},
		{"https://api.hetzner.cloud/v1", "https://10.1.2.3", true},
		{"", "http://169.254.10.1", true},
		{"", "http://[fe80::1]:8080", true},
		{"", "https://admin.example.com", false},
		{"", "https://203.0.113.7", false},
		{"http://127.0.0.1:8090/v1", "http://127.0.0.1:8080", false}, // the simulator
	} {
		var got []string
		checkPublicURL(&config.Config{HCloudEndpoint: tc.endpoint, PublicBaseURL: tc.url}, func(f string, a ...any) { got = append(got, f) })
		require.Equal(t, tc.bad, len(got) > 0, "%s via %q", tc.url, tc.endpoint)
	}
}

// TestServerLimitQueue: with a project limit of 3, ten provisionings all end ready as earlier ones
// are destroyed; none fails, the wait shows on their status pages, and they get their servers in
// request order.
func TestServerLimitQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.sim.ServerLimit = 3; o.env["CREATE_DEADLINE"] = "5s" })
	ctx := context.Background()
	var ids []int64
	for range 10 {
		id := b.newSubscription(t)
		require.NoError(t, b.svc.Provision(ctx, id, admin))
		ids = append(ids, id)
	}
	ready := map[int64]int64{} // subscription → its server ID
	sawWait := map[int64]bool{}
	testkit.Eventually(t, "ten provisionings ready", func() bool {
		for _, id := range ids {
			if _, done := ready[id]; done {
				continue
			}
			sub := b.sub(t, id)
			require.NotEqual(t, db.ProvisioningStatusFailed, statusOf(sub), "subscription %d failed: %v; events %v", id, deref(sub.ProvisioningError), b.events(t, id))
			// The status page shows the wait from these (package statusview).
			if sub.LimitWaitSince != nil && !sawWait[id] && statusOf(sub) == db.ProvisioningStatusCreating &&
				strings.Contains(strings.Join(b.events(t, id), "\n"), LimitWaitPrefix) {
				sawWait[id] = true
			}
			if statusOf(sub) == db.ProvisioningStatusReady {
				ready[id] = *sub.HetznerServerID
				require.NoError(t, b.svc.Destroy(ctx, id, admin))
			}
		}
		limit, used := b.sim.ServerLimit()
		require.LessOrEqual(t, used, limit)
		return len(ready) == len(ids)
	})
	require.GreaterOrEqual(t, len(sawWait), 5, "most provisionings waited visibly")
	for _, id := range ids {
		evs := strings.Join(b.events(t, id), "\n")
		if sawWait[id] {
			require.Contains(t, evs, "Waiting for Hetzner's server limit")
		}
	}
	var waited []int64
	for _, id := range ids {
		if sawWait[id] {
			waited = append(waited, id)
		}
	}
	servers := make([]int64, 0, len(waited))
	for _, id := range waited {
		servers = append(servers, ready[id])
	}
	require.True(t, slices.IsSorted(servers), "servers in request order: subscriptions %v got %v", waited, servers)
	fleet, err := b.svc.Fleet(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, fleet.ServerLimit, "the limit is learnt from the refusal")
	for _, id := range ids {
		b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	}
}

// TestCapacityFallback: no capacity in the plan's first location → the server is made in the
// next one, and the status page says where and what it costs.
func TestCapacityFallback(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.sim.Faults.Capacity = []hcloudsim.CapacityFault{{Location: "fsn1", Code: "placement_error"}}
	})
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "%v %v", deref(sub.ProvisioningError), b.events(t, id))
	require.Equal(t, "nbg1", deref(sub.ServerLocation))
	require.Equal(t, "cx23", deref(sub.ServerType))
	require.Contains(t, strings.Join(b.events(t, id), "\n"), "Hetzner has no capacity for cx23 in fsn1 right now (placement_error); trying nbg1")
	require.Equal(t, "debian-12", deref(sub.ServerImage))
	require.True(t, sub.ServerPriceMonthly.Valid, "the catalog's price was recorded")
	price, err := sub.ServerPriceMonthly.Float64Value()
	require.NoError(t, err)
	require.Greater(t, price.Float64, 0.0)
	fleet, err := b.svc.Fleet(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, fleet.Servers)
	require.InDelta(t, price.Float64, fleet.MonthlyEUR, 0.0001)
}

// TestPowerOnAndReboot: a server whose start failed is off; Retry powers it on (the simulator's
// poweron), and a ready server reboots through a worker job, audited.
func TestPowerOnAndReboot(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.sim.Faults.ActionFailures = []hcloudsim.ActionFailure{{Command: "start_server", Count: 1}}
	})
	ctx := context.Background()
	id := b.newSubscription(t)
	require.ErrorIs(t, b.svc.Reboot(ctx, id, admin), ErrInvalidState)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusFailed, db.ProvisioningStatusReady)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub))
	srv, ok := b.sim.Server(*sub.HetznerServerID)
	require.True(t, ok)
	require.Equal(t, "off", srv.Status)

	require.NoError(t, b.svc.Retry(ctx, id, admin))
	sub = b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "%v %v", deref(sub.ProvisioningError), b.events(t, id))
	require.Contains(t, strings.Join(b.events(t, id), "\n"), "Server was off; powering it on")

	require.NoError(t, b.svc.Reboot(ctx, id, admin))
	testkit.Eventually(t, "the reboot action to succeed", func() bool {
		acts, err := db.New().HetznerActionListSince(ctx, b.pool, db.HetznerActionListSinceParams{SubscriptionID: id, Since: time.Time{}})
		require.NoError(t, err)
		return slices.ContainsFunc(acts, func(a db.HetznerAction) bool {
			return a.Command == "reboot_server" && a.Status == string(hcloud.ActionStatusSuccess)
		})
	})
	require.Equal(t, db.ProvisioningStatusReady, statusOf(b.sub(t, id)))
	var audited int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'vps.reboot' AND subscription_id = $1`, id).Scan(&audited))
	require.Equal(t, 1, audited)
}

// TestVanishedActionFailsTheWait: an action ID Hetzner no longer returns fails the step with a
// reason at once, instead of waiting for CREATE_DEADLINE.
func TestVanishedActionFailsTheWait(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true; o.env["CREATE_DEADLINE"] = "10m" })
	b.startWorker(t, WithHook(func(point string) {
		if point != "server-recorded" {
			return
		}
		rows, err := db.New().HetznerActionListRunning(context.Background(), b.pool, 100)
		if err != nil {
			return
		}
		for _, r := range rows {
			b.sim.ForgetAction(r.ID)
		}
	}))
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusFailed, db.ProvisioningStatusReady)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub))
	require.Contains(t, deref(sub.ProvisioningError), "no longer knows action")
}

// TestFirewallGoneIsFoundByLookup: the shared firewall deleted behind the app's back is found
// by GET /firewalls/{id} after the create is refused, made again, and the provisioning goes on.
func TestFirewallGoneIsFoundByLookup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	first := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, first, admin))
	b.waitStatus(t, first, db.ProvisioningStatusReady)
	fws := b.sim.Firewalls()
	require.Len(t, fws, 1)
	require.NoError(t, b.svc.Destroy(ctx, first, admin))
	b.waitStatus(t, first, db.ProvisioningStatusDestroyed)
	_, err := b.hc.Firewall.Delete(ctx, &hcloud.Firewall{ID: fws[0].ID})
	require.NoError(t, err)

	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "%v %v", deref(sub.ProvisioningError), b.events(t, id))
	now := b.sim.Firewalls()
	require.Len(t, now, 1)
	require.NotEqual(t, fws[0].ID, now[0].ID)
}
