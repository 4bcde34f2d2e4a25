package realvps

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/testkit"
)

const envCrashChild = "RACHEL_REALVPS_CRASH_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(envCrashChild) != "" {
		crashChild()
		return
	}
	os.Exit(m.Run())
}

// crashChild boots a VPS, prints its slot and leader and waits to be killed: the parent plays
// the crashed test.
func crashChild() {
	h, err := NewHost(Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	l, err := h.Reserve()
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	m, err := h.Boot(context.Background(), l, BootConfig{InstanceID: 1, Hostname: "crash", UserData: "#cloud-config\n{}\n"})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("booted", l.Slot(), m.Leader())
	select {}
}

func requireReal(t *testing.T) *Host {
	t.Helper()
	// What realvpstest.Require does (it imports this package).
	skip, fail := Unavailable()
	if skip != "" {
		NoteSkip("internal/hcloudsim/realvps", skip)
		t.Skipf("skipping the real-VPS test: %s", skip)
	}
	if fail != "" {
		t.Fatal(fail)
	}
	h, err := Default()
	require.NoError(t, err)
	return h
}

// hostKeyAt dials sshd and returns the host key it presents, or the dial error.
func hostKeyAt(addr string) (ssh.PublicKey, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var got ssh.PublicKey
	errGot := errors.New("got the host key")
	_, _, _, err = ssh.NewClientConn(c, addr, &ssh.ClientConfig{User: "nobody",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { got = k; return errGot }})
	if got != nil {
		return got, nil
	}
	return nil, err
}

// TestBootFirewallFaultsPowerCycle boots one VPS and checks, on it: sshd refused while the
// ssh_delay fault holds and answering after; cloud-init finishing without phone_home
// (lose_callback) while the app's address is reachable; its own host key and seed; no route out; the firewall; then a
// power cycle keeps the disk, and Release removes everything.
func TestBootFirewallFaultsPowerCycle(t *testing.T) {
	h := requireReal(t)
	l, err := h.Reserve()
	require.NoError(t, err)
	released := false
	t.Cleanup(func() {
		if !released {
			require.NoError(t, l.Release())
		}
	})

	// The app's callback, which the lose_callback fault keeps cloud-init from calling.
	var calls atomic.Int32
	cb := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls.Add(1) }))
	cb.Listener, err = net.Listen("tcp", net.JoinHostPort(GatewayIP.String(), "0"))
	require.NoError(t, err)
	cb.Start()
	defer cb.Close()

	port := "22"
	allowHost := []schema.FirewallRule{{Direction: "in", Protocol: "tcp", Port: &port, SourceIPs: []string{l.HostIP().String() + "/32"}}}
	cfg := BootConfig{InstanceID: 4242, Hostname: "fw-test",
		UserData: "#cloud-config\nssh_genkeytypes: [ed25519]\nphone_home: {url: \"" + cb.URL + "/cb\", post: [instance_id], tries: 1}\n",
		Firewall: allowHost, FirewallApplied: true, SSHDelay: time.Hour, LoseCallback: true}
	m, err := h.Boot(context.Background(), l, cfg)
	require.NoError(t, err)
	defer func() { _ = m.Stop() }()
	ctx := context.Background()

	// ssh_delay: sshd listens in the VPS, but connections are refused until the delay ends.
	addr := net.JoinHostPort(m.IP().String(), "22")
	testkit.Eventually(t, "sshd listening in the VPS", func() bool {
		out, _ := m.Exec(ctx, "ss", "-Hltn", "sport = :22")
		return strings.Contains(string(out), ":22")
	})
	_, err = net.DialTimeout("tcp", addr, 10*time.Second)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "sshd is late: refused")
	m.endSSHDelay()
	var key ssh.PublicKey
	testkit.Eventually(t, "sshd of the VPS answers through a firewall that admits this machine", func() bool {
		key, err = hostKeyAt(addr)
		return err == nil
	})
	require.Equal(t, ssh.KeyAlgoED25519, key.Type())

	// lose_callback: cloud-init ran to its end without phone_home; the gateway is reachable.
	out, err := m.Exec(ctx, "cloud-init", "status", "--wait")
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "status: done")
	log, err := m.Exec(ctx, "cat", "/var/log/cloud-init.log")
	require.NoError(t, err)
	require.NotContains(t, string(log), "cc_phone_home", "the phone_home module did not run")
	require.Zero(t, calls.Load(), "no callback arrived")
	out, err = m.Exec(ctx, "curl", "-sS", "-m", "60", "-o", "/dev/null", "-w", "%{http_code}", cb.URL+"/other")
	require.NoError(t, err, "%s", out)
	require.Equal(t, "200", string(out), "the app's address is reachable: only the callback is lost")
	calls.Store(0)

	// The generated key is the VPS's own (not this machine's) and cloud-init saw the seed.
	pub, err := os.ReadFile(filepath.Join(m.Root(), "etc/ssh/ssh_host_ed25519_key.pub"))
	require.NoError(t, err)
	require.Equal(t, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), strings.Join(strings.Fields(string(pub))[:2], " "))
	if hostPub, err := os.ReadFile("/etc/ssh/ssh_host_ed25519_key.pub"); err == nil {
		require.NotEqual(t, string(hostPub), string(pub))
	}
	out, err = m.Exec(ctx, "cat", "/run/cloud-init/.instance-id")
	require.NoError(t, err, string(out))
	require.Equal(t, "4242", strings.TrimSpace(string(out)))
	out, err = m.Exec(ctx, "hostname")
	require.NoError(t, err)
	require.Equal(t, "fw-test", strings.TrimSpace(string(out)))

	// No route out: only the /30 and the gateway.
	out, err = m.Exec(ctx, "ip", "-4", "route")
	require.NoError(t, err)
	require.NotContains(t, string(out), "default")

	// A firewall that leaves this machine out drops the connection (a timeout, not a refusal).
	require.NoError(t, m.SetFirewall([]schema.FirewallRule{{Direction: "in", Protocol: "tcp", Port: &port, SourceIPs: []string{"192.0.2.0/24"}}}, true))
	_, err = net.DialTimeout("tcp", addr, 2*time.Second)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "dropped, not refused: %v", err)
	rs, err := m.FirewallRuleset()
	require.NoError(t, err)
	require.Contains(t, rs, "192.0.2.0/24")

	// No firewall at all: everything passes again.
	require.NoError(t, m.SetFirewall(nil, false))
	_, err = hostKeyAt(addr)
	require.NoError(t, err)

	// Power cycle: the container goes, its disk stays and boots again as it was.
	vpsOut, err := m.Exec(ctx, "sh", "-c", "echo written-before-power-off > /root/kept && sync")
	require.NoError(t, err, "%s", vpsOut)
	root, leader := m.Root(), m.Leader()
	require.NoError(t, m.Stop())
	require.False(t, processAlive(leader), "the container's init is gone")
	require.NotContains(t, mountsUnder(root), root, "the root is unmounted")
	require.NotEmpty(t, SlotLeftovers(l.Slot()), "the disk is kept while the server exists")
	cfg.SSHDelay = 0
	m2, err := h.Boot(ctx, l, cfg)
	require.NoError(t, err)
	defer func() { _ = m2.Stop() }()
	out, err = m2.Exec(ctx, "cat", "/root/kept")
	require.NoError(t, err, "%s", out)
	require.Equal(t, "written-before-power-off\n", string(out), "the disk survived the power cycle")
	_, err = os.Stat(filepath.Join(m2.Root(), "var/lib/cloud/instances/4242"))
	require.NoError(t, err, "cloud-init's instance state is kept (per-instance modules do not run again)")
	testkit.Eventually(t, "sshd answers after the power-on", func() bool {
		_, err = hostKeyAt(addr)
		return err == nil
	})

	leader2 := m2.Leader()
	require.NoError(t, m2.Stop())
	require.NoError(t, l.Release())
	released = true
	requireSlotGone(t, l.Slot(), leader2)
	_, err = os.Stat(root)
	require.True(t, os.IsNotExist(err), "the layer is removed with the lease")
	require.Empty(t, SlotLeftovers(l.Slot()))
}

// TestBrokenInitNeverBoots: the never_boot fault damages the init on the VPS's disk; nspawn's
// own error says why, nothing runs, the disk stays broken for the next power-on, and Release
// removes it all.
func TestBrokenInitNeverBoots(t *testing.T) {
	h := requireReal(t)
	l, err := h.Reserve()
	require.NoError(t, err)
	cfg := BootConfig{InstanceID: 4343, Hostname: "broken", UserData: "#cloud-config\n{}\n", BreakInit: true}
	_, err = h.Boot(context.Background(), l, cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "Exec format error", "nspawn's own words")
	require.True(t, diskReady(l.Slot()), "the disk is kept")
	dir := filepath.Join(StateDir, strconv.Itoa(l.Slot()))
	require.NotContains(t, mountsUnder(dir), filepath.Join(dir, "root"), "nothing runs on an unmounted root")

	_, err = h.Boot(context.Background(), l, BootConfig{InstanceID: 4343, Hostname: "broken", UserData: "#cloud-config\n{}\n"})
	require.ErrorContains(t, err, "Exec format error", "the damage is on the disk: the next power-on fails too")

	require.NoError(t, l.Release())
	require.Empty(t, SlotLeftovers(l.Slot()))
}

func requireSlotGone(t *testing.T, slot, leader int) {
	t.Helper()
	name := Prefix + strconv.Itoa(slot)
	require.Empty(t, mountsUnder(filepath.Join(StateDir, strconv.Itoa(slot))), "nothing mounted")
	require.False(t, linkExists(name), "no host link")
	_, err := os.Stat("/run/netns/" + name)
	require.True(t, os.IsNotExist(err), "no namespace")
	require.False(t, processAlive(leader), "the container's init is gone")
}

// TestLeftoversOfACrashedProcessAreRemoved: a process that booted a VPS is SIGKILLed; the
// next Host removes its container, mounts, namespace, link and directory.
func TestLeftoversOfACrashedProcessAreRemoved(t *testing.T) {
	h := requireReal(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envCrashChild+"=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	var slot, leader int
	_, err = fmt.Sscanf(line, "booted %d %d", &slot, &leader)
	require.NoError(t, err, "child said %q", line)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	require.True(t, processAlive(leader), "the container outlives its crashed owner")
	require.NotEmpty(t, mountsUnder(filepath.Join(StateDir, strconv.Itoa(slot))))

	// Another test binary's Host (go test runs packages side by side) may be cleaning the same
	// slot at this moment, holding its lock, so this Host skips it: whichever Host cleans, the
	// leftovers go. Poll, cleaning again each time; the deadline is only a hang guard.
	dir := filepath.Join(StateDir, strconv.Itoa(slot))
	testkit.Eventually(t, fmt.Sprintf("the leftovers of slot %d removed", slot), func() error {
		if err := h.CleanLeftovers(); err != nil {
			return fmt.Errorf("clean: %w", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			return fmt.Errorf("%s still there (%v)", dir, err)
		}
		if m := mountsUnder(dir); len(m) > 0 {
			return fmt.Errorf("still mounted: %v", m)
		}
		if processAlive(leader) {
			return fmt.Errorf("leader %d still alive", leader)
		}
		return nil
	})
	requireSlotGone(t, slot, leader)
}

func TestFirewallScript(t *testing.T) {
	p22, p80 := "22", "80-85"
	s, err := FirewallScript([]schema.FirewallRule{
		{Direction: "in", Protocol: "tcp", Port: &p22, SourceIPs: []string{"10.0.0.1/8", "2001:db8::/32"}},
		{Direction: "in", Protocol: "icmp", SourceIPs: []string{"0.0.0.0/0"}},
		{Direction: "out", Protocol: "udp", Port: &p80, DestinationIPs: []string{"192.0.2.0/24"}},
	}, true)
	require.NoError(t, err)
	require.Contains(t, s, "policy drop")
	require.Contains(t, s, "ip saddr { 10.0.0.0/8 } tcp dport 22 accept")
	require.Contains(t, s, "ip6 saddr { 2001:db8::/32 } tcp dport 22 accept")
	require.Contains(t, s, "ip saddr { 0.0.0.0/0 } meta l4proto icmp accept")
	require.Contains(t, s, "ip daddr { 192.0.2.0/24 } udp dport 80-85 accept")

	none, err := FirewallScript(nil, false)
	require.NoError(t, err)
	require.NotContains(t, none, "chain", "no firewall: nothing filtered")

	in, err := FirewallScript(nil, true)
	require.NoError(t, err)
	require.Contains(t, in, "policy drop", "a firewall without in rules drops all inbound")
	require.NotContains(t, in, "chain out", "no out rules: outbound accepted")

	bad := "70000"
	_, err = FirewallScript([]schema.FirewallRule{{Direction: "in", Protocol: "tcp", Port: &bad, SourceIPs: []string{"0.0.0.0/0"}}}, true)
	require.ErrorContains(t, err, "out of range")
	_, err = FirewallScript([]schema.FirewallRule{{Direction: "in", Protocol: "tcp", Port: &p22, SourceIPs: []string{"nope"}}}, true)
	require.ErrorContains(t, err, "CIDR")
}

// TestAddressWithoutAVPSGoesNowhere: a VPS address whose slot has no link yet (its disk is
// still being made) or any more (the server was deleted) is unreachable on this machine at
// once. Before, it followed the default route out, where this workplace's network accepted the
// TCP connection and closed it: the worker's SSH dial to a VPS not yet booted ended in
// "ssh: handshake failed: EOF", as if an sshd had answered.
func TestAddressWithoutAVPSGoesNowhere(t *testing.T) {
	h := requireReal(t)
	require.NoError(t, EnsureGateway())
	l, err := h.Reserve()
	require.NoError(t, err)
	addr := net.JoinHostPort(l.IP().String(), "22")
	dial := func() error {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	}
	require.ErrorIs(t, dial(), syscall.EHOSTUNREACH, "reserved, no link yet: %s goes nowhere", addr)
	require.NoError(t, l.Release())
	require.ErrorIs(t, dial(), syscall.EHOSTUNREACH, "released: %s goes nowhere", addr)
	// The gateway address stays this machine's own.
	ln, err := net.Listen("tcp", net.JoinHostPort(GatewayIP.String(), "0"))
	require.NoError(t, err)
	defer ln.Close()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	require.NoError(t, err)
	_ = c.Close()
}

// TestBootsAreServedInArrivalOrder: boots waiting for a token get it in the order they asked
// (across processes: the queue is files), so a steady stream of boots cannot starve one; a
// ticket left by a killed waiter does not block the queue and is removed.
func TestBootsAreServedInArrivalOrder(t *testing.T) {
	requireReal(t)
	h, err := NewHost(Options{BootConcurrency: 1})
	require.NoError(t, err)
	ctx := context.Background()
	held, err := h.bootToken(ctx)
	require.NoError(t, err)
	released := false
	defer func() {
		if !released {
			_ = held.Close()
		}
	}()

	// A waiter that died: its ticket is first in the queue and nobody holds it.
	dead := filepath.Join(bootQueue, fmt.Sprintf("%020d-0-0", 1))
	require.NoError(t, os.WriteFile(dead, nil, 0o600))

	mine := func() int {
		ents, _ := os.ReadDir(bootQueue)
		n := 0
		for _, e := range ents {
			if strings.Contains(e.Name(), fmt.Sprintf("-%d-", os.Getpid())) {
				n++
			}
		}
		return n
	}
	const waiters = 5
	served := make(chan int, waiters)
	errs := make(chan error, waiters)
	for i := range waiters {
		before := mine()
		go func() {
			tok, err := h.bootToken(ctx)
			if err != nil {
				errs <- err
				return
			}
			served <- i
			errs <- tok.Close()
		}()
		testkit.Eventually(t, fmt.Sprintf("waiter %d queued", i), func() bool { return mine() > before })
	}
	require.NoError(t, held.Close())
	released = true
	for range waiters {
		require.NoError(t, <-errs)
	}
	close(served)
	var order []int
	for i := range served {
		order = append(order, i)
	}
	require.Equal(t, []int{0, 1, 2, 3, 4}, order, "served in arrival order")
	_, err = os.Stat(dead)
	require.True(t, os.IsNotExist(err), "the dead waiter's ticket was removed")
	require.Zero(t, mine(), "no ticket of this process left")
}

// TestNspawnOfASlotIsNotAnothers: the nspawn PID recorded for a slot is killed only if that
// process is the nspawn of this very slot: slot 282's stale PID file naming (after PID reuse)
// slot 2821's nspawn must not kill it.
func TestNspawnOfASlotIsNotAnothers(t *testing.T) {
	dir := func(slot int) string { return filepath.Join(StateDir, strconv.Itoa(slot)) }
	cmd := &exec.Cmd{Path: "/bin/sh", Args: []string{"systemd-nspawn", "-c", "sleep 60; :", "sh", "--quiet", "-D", filepath.Join(dir(2821), "root"), "-b"}}
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	testkit.Eventually(t, "the stand-in's command line", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		return strings.HasPrefix(string(b), "systemd-nspawn\x00")
	})
	require.True(t, isNspawnOf(cmd.Process.Pid, dir(2821)))
	require.False(t, isNspawnOf(cmd.Process.Pid, dir(282)), "slot 282 is a prefix of slot 2821, not its nspawn")
	require.False(t, isNspawnOf(cmd.Process.Pid, dir(28211)))
	require.False(t, isNspawnOf(os.Getpid(), dir(2821)), "not an nspawn at all")
}

// TestEachVPSHasItsOwnCgroups: two VPSes' systemds do not share control groups. They did
// (nspawn without a host systemd nests the container below the caller's cgroup, the same for
// every test binary), so one VPS's systemd removed the cgroups of another's units, which then
// failed "at step CGROUP". A unit started in one VPS is not seen in the other's cgroup tree;
// release removes each VPS's cgroups.
func TestEachVPSHasItsOwnCgroups(t *testing.T) {
	h := requireReal(t)
	ctx := context.Background()
	var ms [2]*Machine
	var ls [2]*Lease
	for i := range ms {
		l, err := h.Reserve()
		require.NoError(t, err)
		ls[i] = l
		t.Cleanup(func() { _ = l.Release() })
		m, err := h.Boot(ctx, l, BootConfig{InstanceID: int64(4500 + i), Hostname: fmt.Sprintf("cg-%d", i), UserData: "#cloud-config\n{}\n"})
		require.NoError(t, err)
		ms[i] = m
		t.Cleanup(func() { _ = m.Stop() })
	}
	for i, m := range ms {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", m.Leader()))
		require.NoError(t, err)
		want := fmt.Sprintf("/%s/%d/", cgroupDir, m.Slot())
		for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
			if strings.Contains(line, ":name=systemd:") || strings.HasPrefix(line, "0::") {
				require.Contains(t, line, want, "VPS %d's init is in its own cgroup", i)
			}
		}
		testkit.Eventually(t, fmt.Sprintf("systemd of VPS %d up", i), func() bool { return m.State().SystemState != "" })
	}
	out, err := ms[0].Exec(ctx, "systemd-run", "--unit=rvps-isolation-probe", "sleep", "600")
	require.NoError(t, err, "%s", out)
	probe := "ls -d /sys/fs/cgroup/systemd/system.slice/rvps-isolation-probe.service /sys/fs/cgroup/unified/system.slice/rvps-isolation-probe.service 2>/dev/null || true"
	out, err = ms[0].Exec(ctx, "sh", "-c", probe)
	require.NoError(t, err)
	require.Contains(t, string(out), "rvps-isolation-probe.service", "the unit's cgroup, seen from its own VPS")
	out, err = ms[1].Exec(ctx, "sh", "-c", probe)
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(string(out)), "the other VPS does not see it")

	for i, m := range ms {
		require.NoError(t, m.Stop())
		require.NoError(t, ls[i].Release())
		require.Empty(t, SlotLeftovers(ls[i].Slot()), "no cgroup or anything else left")
	}
}
