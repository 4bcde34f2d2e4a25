package provision

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/testenv"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestSecondInstallationLeavesOthersAlone: two installations (two databases, each with its own
// subscription 1) share one Hetzner project. Each gets its own server, key and firewall, named
// and labelled with its installation ID; neither adopts, reports or deletes the other's.
func TestSecondInstallationLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := setup(t, func(o *setupOpts) { o.sharedSim = a.sim })
	ctx := context.Background()
	require.NotEqual(t, a.inst(t), b.inst(t), "each installation has its own ID")

	idA, idB := a.newSubscription(t), b.newSubscription(t)
	require.Equal(t, idA, idB, "both databases hand out the same subscription ID")
	requireReady(t, a, a.provisionUntilSettled(t, idA))
	requireReady(t, b, b.provisionUntilSettled(t, idB))
	subA, subB := a.sub(t, idA), b.sub(t, idB)
	require.NotEqual(t, *subA.HetznerServerID, *subB.HetznerServerID, "two servers, none adopted")
	require.NotEqual(t, *subA.HetznerSshKeyID, *subB.HetznerSshKeyID, "two keys, none adopted")
	require.Len(t, a.sim.Servers(), 2)
	require.Len(t, a.sim.Firewalls(), 2, "a firewall per installation")
	for _, s := range a.sim.Servers() {
		require.LessOrEqual(t, len(s.Name), 63, "one DNS label")
		for k, v := range s.Labels {
			require.LessOrEqual(t, len(v), 63, "label %s", k)
		}
	}

	// Reconciling sees only its own server: no orphan.
	wB, err := NewWorker(b.pool, b.cfg, WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	r, err := wB.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, ReconcileResult{Servers: 1}, r)

	// A finding naming the other's server (forged) deletes nothing.
	f, err := db.New().FindingUpsert(ctx, b.pool, db.FindingUpsertParams{Kind: findingOrphan, HetznerServerID: *subA.HetznerServerID, ServerName: "forged"})
	require.NoError(t, err)
	require.NoError(t, b.svc.DestroyOrphan(ctx, f.ID, admin))
	testkit.Eventually(t, "the orphan job to finish", func() bool {
		res, err := b.svc.river.JobList(ctx, river.NewJobListParams().Kinds(destroyOrphanArgs{}.Kind()).States(rivertype.JobStateCompleted))
		require.NoError(t, err)
		return len(res.Jobs) == 1
	})
	_, ok := a.sim.Server(*subA.HetznerServerID)
	require.True(t, ok, "the other installation's server is still there")

	// Destroying B's subscription deletes only B's server and key.
	require.NoError(t, b.svc.Destroy(ctx, idB, admin))
	b.waitStatus(t, idB, db.ProvisioningStatusDestroyed)
	a.assertOnly(t, idA)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(a.sub(t, idA)))
}

// TestRestoredDatabaseDoesNotAdopt: a database restored from a backup with its ID sequence rolled
// back hands a subscription ID out again, to a new subscription. The server and key of the one
// that had the ID before carry its tag: the new one neither adopts nor deletes them, and the
// reconciler reports the server as an orphan for an admin to decide.
func TestRestoredDatabaseDoesNotAdopt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.newSubscription(t)
	requireReady(t, b, b.provisionUntilSettled(t, id))
	old := b.sub(t, id)

	// The restore: the row is the new subscription's now, never provisioned, with its own tag.
	_, err := b.pool.Exec(ctx, `DELETE FROM hetzner_actions WHERE subscription_id = $1`, id)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = NULL, step_started_at = NULL,
		hetzner_server_id = NULL, hetzner_ssh_key_id = NULL, vps_ip_address = NULL, vps_hostname = NULL,
		ssh_private_key = NULL, ssh_public_key = NULL, ssh_host_key_private = NULL, ssh_host_key_public = NULL,
		callback_token_hash = NULL, callback_token = NULL, callback_expires_at = NULL, callback_received_at = NULL,
		provisioned_at = NULL, hetzner_tag = DEFAULT WHERE id = $1`, id)
	require.NoError(t, err)
	require.NotEqual(t, old.HetznerTag, b.sub(t, id).HetznerTag)

	sub := b.provisionUntilSettled(t, id)
	requireFailed(t, b, sub, db.ProvisioningStatusCreating, "not this subscription's")
	_, ok := b.sim.Server(*old.HetznerServerID)
	require.True(t, ok, "the earlier subscription's server is left alone")
	require.Len(t, b.sim.SSHKeys(), 1, "the earlier subscription's key is left alone")
	require.Equal(t, *old.HetznerSshKeyID, b.sim.SSHKeys()[0].ID)

	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	_, ok = b.sim.Server(*old.HetznerServerID)
	require.True(t, ok, "Destroy leaves the earlier subscription's server alone")
	require.Len(t, b.sim.SSHKeys(), 1, "Destroy leaves the earlier subscription's key alone")

	w, err := NewWorker(b.pool, b.cfg, WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	r, err := w.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, r.Orphans, "the earlier subscription's server is reported")
}

// TestFirewallDrift: a changed SSH_ALLOWED_SOURCES (or VPS_SSH_PORT) reaches the existing shared
// firewall through set_rules, at the next provisioning and at the next reconcile, and shows in
// the event log and the audit log; a firewall of the installation's name that does not carry its
// installation label is not adopted.
func TestFirewallDrift(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	first, err := NewWorker(b.pool, b.cfg, WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	stopFirst := testenv.RunWorker(t, first)
	id := b.newSubscription(t)
	requireReady(t, b, b.provisionUntilSettled(t, id))
	// The restart below stops the worker with the old setting: left running, it set the old rules
	// back whenever it reconciled by itself (River's RunOnStart run of the periodic reconcile
	// comes when it is elected leader, seconds after its start on a busy machine).
	stopFirst()
	fwRules := func() string {
		fws := b.sim.Firewalls()
		require.Len(t, fws, 1)
		var ips []string
		for _, r := range fws[0].Rules {
			ips = append(ips, *r.Port+" "+strings.Join(r.SourceIPs, ","))
		}
		return strings.Join(ips, ";")
	}
	require.Equal(t, "22022 10.0.0.0/8,2001:db8::/32", fwRules())

	// The operator narrows SSH_ALLOWED_SOURCES and restarts: the next provisioning applies it.
	changed := func(sources string) *config.Config {
		env := map[string]string{}
		for k, v := range b.env {
			env[k] = v
		}
		env["SSH_ALLOWED_SOURCES"] = sources
		cfg, err := config.Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		return cfg
	}
	w, err := NewWorker(b.pool, changed("192.0.2.0/24"), WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	fwID, err := w.creating.ensureFirewall(ctx, w.projects[0], b.inst(t), id)
	require.NoError(t, err)
	require.Equal(t, "22022 192.0.2.0/24", fwRules())
	require.Contains(t, strings.Join(b.events(t, id), "\n"), "rules changed to match SSH_ALLOWED_SOURCES and VPS_SSH_PORT: in tcp 22022 from 192.0.2.0/24 (were: in tcp 22022 from 10.0.0.0/8,2001:db8::/32)")
	var audits int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'firewall.set_rules'`).Scan(&audits))
	require.Equal(t, 1, audits)
	again, err := w.creating.ensureFirewall(ctx, w.projects[0], b.inst(t), id)
	require.NoError(t, err)
	require.Equal(t, fwID, again, "the same firewall")

	// And once more, by the reconciler alone.
	w2, err := NewWorker(b.pool, changed("198.51.100.0/24,192.0.2.0/24"), WithLogger(b.log), WithHCloudClient(b.hc, b.rl), WithTimings(SimulatorTimings()))
	require.NoError(t, err)
	_, err = w2.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, "22022 198.51.100.0/24,192.0.2.0/24", fwRules())
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'firewall.set_rules'`).Scan(&audits))
	require.Equal(t, 2, audits)
	_, err = w2.reconcile(ctx)
	require.NoError(t, err)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'firewall.set_rules'`).Scan(&audits))
	require.Equal(t, 2, audits, "no change, no set_rules")
}

// TestForeignFirewallNotAdopted: a firewall of this installation's name that its labels do not
// tie to this installation is left alone, and the provisioning says why.
func TestForeignFirewallNotAdopted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	port := "22"
	_, _, err := b.hc.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: FirewallName(b.inst(t)),
		Labels: map[string]string{LabelManagedBy: LabelManagedByValue}, Rules: []hcloud.FirewallRule{{
			Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: &port,
			SourceIPs: ipNets(t, "0.0.0.0/0")}}})
	require.NoError(t, err)
	id := b.newSubscription(t)
	sub := b.provisionUntilSettled(t, id)
	requireFailed(t, b, sub, db.ProvisioningStatusCreating, "that this installation did not create")
	require.Empty(t, b.sim.Servers())
	_, err = db.New().SharedResourceGet(ctx, b.pool, db.SharedResourceGetParams{Project: "default", Name: FirewallName(b.inst(t))})
	require.ErrorIs(t, err, db.ErrNotFound, "not recorded as ours")
	require.Equal(t, "22", *b.sim.Firewalls()[0].Rules[0].Port, "its rules untouched")
}

func ipNets(t *testing.T, cidrs ...string) []net.IPNet {
	t.Helper()
	var out []net.IPNet
	for _, c := range cidrs {
		p := netip.MustParsePrefix(c)
		bits := 32
		if p.Addr().Is6() {
			bits = 128
		}
		out = append(out, net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)})
	}
	return out
}
