package hcloudsim

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps/realvpstest"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestRealVPS runs the user data of the end-to-end fixture on a real Debian 12 container:
// the callback comes from real cloud-init, sshd presents the seeded key at the address the API
// reports, the firewalls applied by label selector and by ID are enforced as they change, and
// delete leaves nothing behind.
func TestRealVPS(t *testing.T) {
	realvpstest.Require(t, "internal/hcloudsim")
	t.Parallel()
	b := setup(t, func(c *Config) { c.VPS = VPSReal })
	require.Equal(t, VPSReal, b.sim.VPSMode())
	ctx := context.Background()
	f := newE2EFixtureOn(t, net.JoinHostPort(realvps.GatewayIP.String(), "0"))

	port := "22"
	_, _, err := b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "ssh-from-this-machine",
		Rules: []hcloud.FirewallRule{{Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP,
			Port: &port, SourceIPs: []net.IPNet{mustCIDR(t, "10.213.0.0/16")}}},
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeLabelSelector,
			LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: "role=assistant"}}}})
	require.NoError(t, err)
	key, _, err := b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "rachel-ops",
		PublicKey: string(ssh.MarshalAuthorizedKey(f.client.PublicKey()))})
	require.NoError(t, err)
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "rachel-real", SSHKeys: []*hcloud.SSHKey{key},
		UserData: f.userData, Labels: map[string]string{"role": "assistant"}})
	require.NoError(t, b.client.Action.WaitFor(ctx, res.Action, res.NextActions[0]))
	ip := res.Server.PublicNet.IPv4.IP
	require.True(t, net.ParseIP("10.213.0.0").Mask(net.CIDRMask(16, 32)).Equal(ip.Mask(net.CIDRMask(16, 32))), "the API reports the container's address, got %s", ip)

	var cb callback
	select {
	case cb = <-f.callbacks:
	case <-time.After(5 * time.Minute):
		m := b.sim.RealMachine(res.Server.ID)
		if m != nil {
			t.Logf("console: %s", m.Console(4000))
		}
		t.Fatal("no phone_home from real cloud-init")
	}
	require.Equal(t, "/callback/tok123", cb.path)
	require.Equal(t, strconv.FormatInt(res.Server.ID, 10), cb.form.Get("instance_id"))
	require.Equal(t, "rachel-real", cb.form.Get("hostname"))
	require.Equal(t, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(f.hostPub))), strings.TrimSpace(cb.form.Get("pub_key_ed25519")))

	addr := net.JoinHostPort(ip.String(), "22")
	var conn *ssh.Client
	testkit.Eventually(t, "real sshd admits the authorized key with the seeded host key", func() bool {
		conn, err = f.dial(addr)
		return err == nil
	})
	sess, err := conn.NewSession()
	require.NoError(t, err)
	out, err := sess.Output("id -un; cat /etc/motd")
	require.NoError(t, err)
	require.Equal(t, "rachel-ops\nhello\n", string(out))
	conn.Close()

	m := b.sim.RealMachine(res.Server.ID)
	require.NotNil(t, m)
	require.Nil(t, b.sim.Machine(res.Server.ID), "no emulated machine in real mode")

	// The label no longer matches and a firewall without in rules is applied by ID: all
	// inbound traffic is dropped.
	_, _, err = b.client.Server.Update(ctx, &hcloud.Server{ID: res.Server.ID}, hcloud.ServerUpdateOpts{Labels: map[string]string{}})
	require.NoError(t, err)
	_, _, err = b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "closed",
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: res.Server.ID}}}})
	require.NoError(t, err)
	_, err = net.DialTimeout("tcp", addr, 2*time.Second)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "dropped by the firewall: %v", err)

	root := m.Root()
	_, _, err = b.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: res.Server.ID})
	require.NoError(t, err)
	select {
	case <-m.Done():
	case <-time.After(time.Minute):
		t.Fatal("the container did not stop on delete")
	}
	testkit.Eventually(t, "the layer is removed", func() bool {
		_, err := os.Stat(root)
		return os.IsNotExist(err)
	})
}

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	require.NoError(t, err)
	return *n
}

// TestRealVPSPowerCycleAndNeverBoot: a real VPS powered off shows `off` and its container goes,
// but its disk stays: powered on it boots what it had written. A VPS whose init is damaged
// (fault never_boot) does not boot: the API shows it `off`, machine_error has nspawn's words,
// and delete leaves nothing of either on this machine.
func TestRealVPSPowerCycleAndNeverBoot(t *testing.T) {
	if why := realvps.Available(); why != "" {
		realvps.NoteSkip("internal/hcloudsim", why)
		t.Skipf("skipping real-VPS test: %s", why)
	}
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.VPS = VPSReal
		c.Faults.Servers = []ServerFault{{Server: "never", NeverBoot: true}}
	})
	ctx := context.Background()
	userData := "#cloud-config\n{}\n"

	never := b.createServer(t, hcloud.ServerCreateOpts{Name: "never", UserData: userData})
	cycled := b.createServer(t, hcloud.ServerCreateOpts{Name: "cycled", UserData: userData})
	require.NoError(t, b.client.Action.WaitFor(ctx, never.Action, never.NextActions[0], cycled.Action, cycled.NextActions[0]))

	// never_boot: running, then off once the container failed to start.
	testkit.Eventually(t, "the server that never boots shows off", func() bool {
		srv, _, err := b.client.Server.GetByID(ctx, never.Server.ID)
		return err == nil && srv.Status == hcloud.ServerStatusOff
	})
	info, ok := b.sim.Server(never.Server.ID)
	require.True(t, ok)
	require.Contains(t, info.MachineError, "Exec format error", "the console's words")
	require.Nil(t, info.Real)

	// Power cycle: write on the disk, power off, power on, read it back.
	var m *realvps.Machine
	testkit.Eventually(t, "the server's VPS running", func() bool { m = b.sim.RealMachine(cycled.Server.ID); return m != nil })
	out, err := m.Exec(ctx, "sh", "-c", "echo before > /root/kept && sync")
	require.NoError(t, err, "%s", out)
	a, _, err := b.client.Server.Poweroff(ctx, &hcloud.Server{ID: cycled.Server.ID})
	require.NoError(t, err)
	require.NoError(t, b.client.Action.WaitFor(ctx, a))
	srv, _, err := b.client.Server.GetByID(ctx, cycled.Server.ID)
	require.NoError(t, err)
	require.Equal(t, hcloud.ServerStatusOff, srv.Status)
	select {
	case <-m.Done():
	case <-time.After(time.Minute):
		t.Fatal("the container did not stop on power off")
	}
	a, _, err = b.client.Server.Poweron(ctx, &hcloud.Server{ID: cycled.Server.ID})
	require.NoError(t, err)
	require.NoError(t, b.client.Action.WaitFor(ctx, a))
	var m2 *realvps.Machine
	testkit.Eventually(t, "the server's VPS running again", func() bool { m2 = b.sim.RealMachine(cycled.Server.ID); return m2 != nil })
	require.NotSame(t, m, m2, "a new container")
	out, err = m2.Exec(ctx, "cat", "/root/kept")
	require.NoError(t, err, "%s", out)
	require.Equal(t, "before\n", string(out), "the disk survived the power cycle")

	for _, s := range []hcloud.ServerCreateResult{never, cycled} {
		res, _, err := b.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: s.Server.ID})
		require.NoError(t, err)
		require.NoError(t, b.client.Action.WaitFor(ctx, res.Action))
		slot, ok := realvps.SlotOf(s.Server.PublicNet.IPv4.IP)
		require.True(t, ok)
		testkit.Eventually(t, fmt.Sprintf("nothing of %s left", s.Server.Name), func() error {
			if left := realvps.SlotLeftovers(slot); len(left) > 0 {
				return fmt.Errorf("left: %v", left)
			}
			return nil
		})
	}
}
