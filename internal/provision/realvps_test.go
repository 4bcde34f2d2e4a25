package provision

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps/realvpstest"
)

// withRealVPS puts a real Debian 12 container behind every simulated server (package realvps)
// and serves the callback on the gateway address the containers reach. Without root it skips the
// test, noting why; as root a missing tool fails it (realvpstest.Require).
func withRealVPS(t testing.TB) func(*setupOpts) {
	t.Helper()
	realvpstest.Require(t, "internal/provision")
	require.NoError(t, realvps.EnsureGateway())
	return func(o *setupOpts) {
		o.sim.VPS = hcloudsim.VPSReal
		o.callbackListen = net.JoinHostPort(realvps.GatewayIP.String(), "0")
		o.env["VPS_SSH_PORT"] = "22"
		o.env["CALLBACK_DEADLINE"] = "6m"
		o.env["INJECT_DEADLINE"] = "3m"
		// The production default: a real systemd on a busy machine may take longer than the
		// emulation's 200 ms to exec a crashing program, which would pass a shorter window.
		o.env["ASSISTANT_STABLE_FOR"] = "5s"
	}
}

// realMachine returns the container of a subscription's server.
func (b *bundle) realMachine(t testing.TB, subID int64) *realvps.Machine {
	t.Helper()
	sub := b.sub(t, subID)
	require.NotNil(t, sub.HetznerServerID)
	m := b.sim.RealMachine(*sub.HetznerServerID)
	require.NotNil(t, m, "server %d has a running container", *sub.HetznerServerID)
	return m
}

// vpsRun runs a shell command as root inside the container.
func vpsRun(t testing.TB, m *realvps.Machine, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := m.Exec(ctx, "sh", "-c", script)
	require.NoError(t, err, "%s: %s", script, out)
	return string(out)
}

// TestRealVPSHostKeyNotSeeded: sshd of a real VPS presents a key other than the one seeded in
// its user data (someone else answers there). Injection stops at the handshake: the step fails
// saying so, and sshd never saw a login, so not a byte of a secret was sent.
func TestRealVPSHostKeyNotSeeded(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real, func(o *setupOpts) {
		o.sim.Faults.Servers = []hcloudsim.ServerFault{{SwapHostKey: true}}
	})
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(context.Background(), id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub), "events %v", b.events(t, id))
	require.Contains(t, deref(sub.ProvisioningError), "different SSH host key")
	require.Contains(t, deref(sub.ProvisioningError), "Nothing was sent")

	m := b.realMachine(t, id)
	require.Empty(t, strings.TrimSpace(vpsRun(t, m, "find /etc/rachel -type f 2>/dev/null || true")), "no secret file on the VPS")
	journal := vpsRun(t, m, "journalctl -u ssh.service --no-pager -o cat")
	require.NotContains(t, journal, "Accepted publickey", "nobody logged in")
}

// TestRealVPSFirewallRefusesWorker: SSH_ALLOWED_SOURCES leaves out the worker's address. The
// Hetzner firewall, enforced by nftables on the real VPS, drops its SSH connections (the
// callback, outbound, still arrives); injection fails at INJECT_DEADLINE and says why.
func TestRealVPSFirewallRefusesWorker(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real, func(o *setupOpts) {
		o.env["SSH_ALLOWED_SOURCES"] = "192.0.2.0/24"
		o.env["INJECT_DEADLINE"] = "20s"
	})
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(context.Background(), id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub), "events %v", b.events(t, id))
	reason := deref(sub.ProvisioningError)
	require.Contains(t, reason, "INJECT_DEADLINE")
	require.Contains(t, reason, "cannot reach sshd")
	require.Contains(t, reason, "SSH_ALLOWED_SOURCES must admit the worker's public address")
	require.Contains(t, strings.Join(b.events(t, id), "\n"), "cloud_init completed", "the callback went out through the firewall")

	m := b.realMachine(t, id)
	rules, err := m.FirewallRuleset()
	require.NoError(t, err)
	require.Contains(t, rules, "192.0.2.0/24")
	require.Contains(t, rules, "policy drop")
	require.Empty(t, strings.TrimSpace(vpsRun(t, m, "find /etc/rachel -type f 2>/dev/null || true")), "no secret file on the VPS")
}
