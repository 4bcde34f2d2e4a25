package realvps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"
)

// BootConfig is what one real VPS boots with.
type BootConfig struct {
	InstanceID int64  // the Hetzner server ID: NoCloud instance-id
	Hostname   string // the server name: NoCloud local-hostname
	UserData   string // exactly what POST /servers received
	// Firewall holds the rules of every firewall applied to the server; FirewallApplied says
	// whether any is (no firewall: everything passes).
	Firewall        []schema.FirewallRule
	FirewallApplied bool
	// SwapHostKey makes sshd present a key of its own instead of what cloud-init installed
	// (someone else answering at the address); phone_home still posts the seeded key.
	SwapHostKey bool
	// BreakInit damages the VPS's init on its disk (an empty /usr/lib/systemd/systemd, as a
	// corrupted image would have): systemd-nspawn's execv of it fails, the machine never boots
	// and powers off. Applied when the disk is made, so every later power-on fails the same way.
	BreakInit bool
	// SSHDelay refuses inbound TCP connections (sshd is the only listener) for this long from
	// the boot, as an sshd that is late to accept.
	SSHDelay time.Duration
	// LoseCallback makes real cloud-init never send the phone_home callback: the image's
	// cloud_final_modules without phone-home, in a cloud.cfg.d drop-in on the disk (the user data
	// stays exactly what the server was created with). Everything else of cloud-init runs.
	LoseCallback bool
	Logger       *slog.Logger
}

// State is what an observer can see of a real VPS.
type State struct {
	StartedAt time.Time
	// SystemState is systemd's `is-system-running` answer once booted ("running", "degraded"),
	// empty while booting.
	SystemState string
	BootedAt    time.Time
	// Exited is set once the container's nspawn process ended, with why in ExitError.
	Exited    bool
	ExitError string
	// SSHRefused is true while the ssh_delay fault refuses inbound connections.
	SSHRefused bool
}

// Machine is one running container.
type Machine struct {
	lease  *Lease
	cfg    BootConfig
	log    *slog.Logger
	cmd    *exec.Cmd
	leader int
	exited chan struct{}

	stopOnce sync.Once
	stopErr  error

	mu    sync.Mutex
	state State
	fw    string
}

// Boot starts a container in the lease's slot: overlay root, NoCloud seed, network namespace,
// firewall, then systemd-nspawn -b. It returns once the container's init runs; boot goes on in
// the background (State().SystemState tells when it is up). On error nothing is left running.
//
// The slot's disk (the tmpfs upper layer) outlives the container: a Boot on a lease whose
// machine was stopped (powered off) boots the same disk again, as a Hetzner server keeps its
// disk across power cycles; only Lease.Release (the server's deletion) removes it.
func (h *Host) Boot(ctx context.Context, l *Lease, cfg BootConfig) (_ *Machine, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if l.lock == nil {
		return nil, errors.New("realvps: boot on a released lease")
	}
	m := &Machine{lease: l, cfg: cfg, exited: make(chan struct{}),
		log: cfg.Logger.With("slot", l.slot, "vps_ip", l.IP().String())}
	reuse := diskReady(l.slot)
	defer func() {
		if err != nil {
			// A disk that was made stays (the server keeps it); a half-made one goes.
			var cerr error
			if diskReady(l.slot) {
				cerr = haltSlot(l.slot)
			} else {
				cerr = cleanSlot(l.slot)
			}
			if cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if reuse {
		if err := m.mountRoot(); err != nil {
			return nil, err
		}
		m.log.Info("realvps: booting the kept disk")
	} else {
		if err := cleanSlot(l.slot); err != nil {
			return nil, fmt.Errorf("realvps: clean slot: %w", err)
		}
		if err := m.prepareRoot(); err != nil {
			return nil, err
		}
		if err := os.WriteFile(diskReadyPath(l.slot), nil, 0o600); err != nil {
			return nil, fmt.Errorf("realvps: %w", err)
		}
	}
	if err := m.prepareNetwork(); err != nil {
		return nil, err
	}
	script, err := FirewallScript(cfg.Firewall, cfg.FirewallApplied)
	if err != nil {
		return nil, fmt.Errorf("realvps: %w", err)
	}
	if err := m.applyFirewall(script); err != nil {
		return nil, err
	}
	if err := m.applyFaults(); err != nil {
		return nil, err
	}
	token, err := h.bootToken(ctx)
	if err != nil {
		return nil, err
	}
	if err := m.start(); err != nil {
		_ = token.Close()
		return nil, err
	}
	if cfg.SSHDelay > 0 {
		m.mu.Lock()
		m.state.SSHRefused = true
		m.mu.Unlock()
		time.AfterFunc(cfg.SSHDelay, m.endSSHDelay)
	}
	go m.awaitBoot(token, h.opts.BootTimeout)
	return m, nil
}

func (m *Machine) dir() string  { return m.lease.dir() }
func (m *Machine) root() string { return filepath.Join(m.dir(), "root") }

// prepareRoot mounts the per-server tmpfs and the overlay of / on it, and writes into the
// upper layer what turns this machine's image into a fresh Hetzner debian-12 VPS.
func (m *Machine) prepareRoot() error {
	layer, root := filepath.Join(m.dir(), "layer"), m.root()
	if err := os.MkdirAll(layer, 0o700); err != nil {
		return fmt.Errorf("realvps: %w", err)
	}
	if err := unix.Mount("tmpfs", layer, "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, "mode=0700,size=2g"); err != nil {
		return fmt.Errorf("realvps: mount tmpfs layer: %w", err)
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(layer, d), 0o755); err != nil {
			return fmt.Errorf("realvps: %w", err)
		}
	}
	if err := m.mountRoot(); err != nil {
		return err
	}
	at := func(p string) string { return filepath.Join(root, p) }
	write := func(p, content string, mode os.FileMode) error {
		if err := os.MkdirAll(filepath.Dir(at(p)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(at(p), []byte(content), mode)
	}
	// "Host and machine ids are equal" otherwise; empty makes systemd generate one at boot.
	if err := write("etc/machine-id", "", 0o444); err != nil {
		return fmt.Errorf("realvps: machine-id: %w", err)
	}
	// A fresh image: no cloud-init state, no host keys, no root keys of this machine.
	for _, p := range []string{"var/lib/cloud/instance", "var/lib/cloud/instances", "var/lib/cloud/data",
		"var/lib/cloud/sem", "var/lib/cloud/seed", "root/.ssh", "var/log/cloud-init.log", "var/log/cloud-init-output.log"} {
		if err := os.RemoveAll(at(p)); err != nil {
			return fmt.Errorf("realvps: clean %s: %w", p, err)
		}
	}
	keys, _ := filepath.Glob(at("etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return fmt.Errorf("realvps: remove image host key: %w", err)
		}
	}
	meta := fmt.Sprintf("instance-id: %d\nlocal-hostname: %s\n", m.cfg.InstanceID, m.cfg.Hostname)
	if err := write("var/lib/cloud/seed/nocloud/user-data", m.cfg.UserData, 0o600); err != nil {
		return fmt.Errorf("realvps: seed: %w", err)
	}
	if err := write("var/lib/cloud/seed/nocloud/meta-data", meta, 0o600); err != nil {
		return fmt.Errorf("realvps: seed: %w", err)
	}
	if err := write("etc/cloud/cloud.cfg.d/99-rachel-sim.cfg", "datasource_list: [ NoCloud, None ]\n", 0o644); err != nil {
		return fmt.Errorf("realvps: datasource: %w", err)
	}
	archive, err := localeArchive()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(at("usr/lib/locale"), 0o755); err != nil {
		return fmt.Errorf("realvps: locale: %w", err)
	}
	if err := copyFile(at("usr/lib/locale/locale-archive"), archive, 0o644); err != nil {
		return fmt.Errorf("realvps: locale: %w", err)
	}
	if err := write("etc/locale.gen", "en_US.UTF-8 UTF-8\n", 0o644); err != nil {
		return fmt.Errorf("realvps: locale.gen: %w", err)
	}
	if m.cfg.SwapHostKey {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "swapped",
			"-f", at("etc/ssh/sim_swapped_ed25519_key")).CombinedOutput(); err != nil {
			return fmt.Errorf("realvps: swapped host key: %v: %s", err, bytes.TrimSpace(out))
		}
		if err := write("etc/ssh/sshd_config.d/00-sim-swapped-host-key.conf", "HostKey /etc/ssh/sim_swapped_ed25519_key\n", 0o644); err != nil {
			return fmt.Errorf("realvps: swapped host key: %w", err)
		}
	}
	if m.cfg.LoseCallback {
		image, err := os.ReadFile(at("etc/cloud/cloud.cfg"))
		if err != nil {
			return fmt.Errorf("realvps: lose_callback: %w", err)
		}
		dropIn, err := withoutPhoneHome(image)
		if err != nil {
			return fmt.Errorf("realvps: lose_callback: %w", err)
		}
		if err := write("etc/cloud/cloud.cfg.d/99-rachel-sim-lose-callback.cfg", dropIn, 0o644); err != nil {
			return fmt.Errorf("realvps: lose_callback: %w", err)
		}
	}
	if m.cfg.BreakInit {
		// nspawn -b execs the first of /usr/lib/systemd/systemd, /lib/systemd/systemd, /sbin/init
		// (all this one file on merged-/usr Debian): an empty file fails with ENOEXEC.
		if err := write("usr/lib/systemd/systemd", "", 0o755); err != nil {
			return fmt.Errorf("realvps: break init: %w", err)
		}
	}
	// cloud-init and ssh are installed but disabled on this machine's image; PostgreSQL is
	// enabled here and not on Hetzner's.
	for _, args := range [][]string{
		{"enable", "cloud-init-local.service", "cloud-init.service", "cloud-config.service", "cloud-final.service", "ssh.service"},
		{"mask", "postgresql.service"},
	} {
		out, err := exec.Command("systemctl", append([]string{"--root=" + root, "--quiet"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("realvps: systemctl %s: %v: %s", args[0], err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// mountRoot mounts the overlay of / with the slot's layer as the container's root.
func (m *Machine) mountRoot() error {
	layer, root := filepath.Join(m.dir(), "layer"), m.root()
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("realvps: %w", err)
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s/upper,workdir=%s/work", layer, layer)
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("realvps: mount overlay of /: %w", err)
	}
	return nil
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("realvps: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// prepareNetwork makes the namespace and the veth pair: the VPS's address and a route to this
// machine's gateway address, nothing else (no default route); the host side forwards nothing.
func (m *Machine) prepareNetwork() error {
	if err := EnsureGateway(); err != nil {
		return err
	}
	name, hostIP, ip := m.lease.Name(), m.lease.HostIP().String(), m.lease.IP().String()
	var steps [][]string
	if _, err := os.Stat("/run/netns/" + name); err != nil {
		steps = [][]string{
			{"netns", "add", name},
			{"link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name},
			{"addr", "add", hostIP + "/30", "dev", name},
			{"link", "set", name, "up"},
			{"-n", name, "addr", "add", ip + "/30", "dev", "eth0"},
			{"-n", name, "link", "set", "lo", "up"},
		}
	}
	// A powered-off VPS's namespace is kept with its link down (the route went with it).
	steps = append(steps,
		[]string{"-n", name, "link", "set", "eth0", "up"},
		[]string{"-n", name, "route", "replace", GatewayIP.String() + "/32", "via", hostIP, "dev", "eth0"})
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	// Nothing that arrives from the VPS is forwarded anywhere, whatever the host's ip_forward.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/forwarding", []byte("0\n"), 0o644); err != nil {
		return fmt.Errorf("realvps: disable forwarding on %s: %w", name, err)
	}
	return nil
}

func (m *Machine) applyFirewall(script string) error {
	cmd := exec.Command("ip", "netns", "exec", m.lease.Name(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("realvps: nft in %s: %v: %s", m.lease.Name(), err, bytes.TrimSpace(out))
	}
	m.mu.Lock()
	m.fw = script
	m.mu.Unlock()
	return nil
}

// faultsTable holds the simulator's faults in the VPS's namespace, apart from the firewall.
const faultsTable = "hcloudsim_faults"

// applyFaults refuses inbound TCP while sshd is late (ssh_delay): a refusal (TCP reset), not a
// drop, so the worker's dial fails at once, as against a port nobody listens on yet.
func (m *Machine) applyFaults() error {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", faultsTable, faultsTable)
	if m.cfg.SSHDelay > 0 {
		fmt.Fprintf(&b, "table inet %s {\n", faultsTable)
		b.WriteString("  chain late_sshd {\n    type filter hook input priority filter - 10; policy accept;\n" +
			"    iifname \"eth0\" meta l4proto tcp ct state new reject with tcp reset\n  }\n")
		b.WriteString("}\n")
	}
	cmd := exec.Command("ip", "netns", "exec", m.lease.Name(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("realvps: fault rules in %s: %v: %s", m.lease.Name(), err, bytes.TrimSpace(out))
	}
	return nil
}

// withoutPhoneHome renders a cloud.cfg.d drop-in whose cloud_final_modules is the image's
// (/etc/cloud/cloud.cfg) without phone-home. Lists in cloud.cfg.d replace those of cloud.cfg.
func withoutPhoneHome(imageCfg []byte) (string, error) {
	var cfg struct {
		Final []any `yaml:"cloud_final_modules"`
	}
	if err := yaml.Unmarshal(imageCfg, &cfg); err != nil {
		return "", fmt.Errorf("read the image's cloud.cfg: %w", err)
	}
	if len(cfg.Final) == 0 {
		return "", errors.New("the image's cloud.cfg has no cloud_final_modules")
	}
	var kept []any
	for _, mod := range cfg.Final {
		name := mod
		if l, ok := mod.([]any); ok && len(l) > 0 {
			name = l[0]
		}
		if n, ok := name.(string); ok && strings.ReplaceAll(n, "_", "-") == "phone-home" {
			continue
		}
		kept = append(kept, mod)
	}
	out, err := yaml.Marshal(map[string]any{"cloud_final_modules": kept})
	if err != nil {
		return "", err
	}
	return "# fault lose_callback: cloud-init never sends the phone_home callback\n" + string(out), nil
}

// endSSHDelay lets connections to sshd in once SSHDelay has passed (unless the machine is gone:
// its slot may boot another machine by then).
func (m *Machine) endSSHDelay() {
	select {
	case <-m.exited:
		return
	default:
	}
	out, err := exec.Command("ip", "netns", "exec", m.lease.Name(), "nft", "delete", "chain", "inet", faultsTable, "late_sshd").CombinedOutput()
	if err != nil {
		m.log.Warn("realvps: end of the ssh delay not applied", "err", err, "out", string(bytes.TrimSpace(out)))
		return
	}
	m.mu.Lock()
	m.state.SSHRefused = false
	m.mu.Unlock()
	m.log.Info("realvps: sshd accepts connections (ssh_delay over)")
}

// SetFirewall replaces the VPS's firewall rules (the simulator calls it whenever the firewalls
// applied to the server, or their rules, change).
func (m *Machine) SetFirewall(rules []schema.FirewallRule, applied bool) error {
	script, err := FirewallScript(rules, applied)
	if err != nil {
		return fmt.Errorf("realvps: %w", err)
	}
	m.mu.Lock()
	same := script == m.fw
	m.mu.Unlock()
	if same {
		return nil
	}
	return m.applyFirewall(script)
}

// FirewallRuleset is nft's listing of the VPS's firewall table ("" when none is applied).
func (m *Machine) FirewallRuleset() (string, error) {
	out, err := exec.Command("ip", "netns", "exec", m.lease.Name(), "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("realvps: nft list ruleset: %v: %s", err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func (m *Machine) start() error {
	console, err := os.OpenFile(filepath.Join(m.dir(), "console.log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("realvps: console log: %w", err)
	}
	defer console.Close()
	name := m.lease.Name()
	cgroups, err := makeSlotCgroups(m.lease.slot)
	if err != nil {
		return err
	}
	procs := make([]string, len(cgroups))
	for i, c := range cgroups {
		procs[i] = filepath.Join(c, "cgroup.procs")
	}
	// nspawn, in the VPS's own cgroups (see cgroupDir): sh moves itself there and execs it.
	cmd := exec.Command("sh", "-c", inCgroups, "systemd-nspawn", "--quiet", "-D", m.root(), "--register=no", "--keep-unit",
		"--link-journal=no", "--network-namespace-path=/run/netns/"+name, "--console=pipe",
		"--machine="+name, "-b")
	cmd.Env = append(os.Environ(), "RVPS_CGROUP_PROCS="+strings.Join(procs, " "))
	cmd.Stdout, cmd.Stderr = console, console
	// Its own process group: a signal to the test's group does not reach it; Stop and the
	// leftover cleanup kill it by PID.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("realvps: start systemd-nspawn: %w", err)
	}
	m.cmd = cmd
	_ = os.WriteFile(filepath.Join(m.dir(), "nspawn.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
	m.mu.Lock()
	m.state.StartedAt = time.Now()
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.state.Exited = true
		if err != nil {
			m.state.ExitError = fmt.Sprintf("systemd-nspawn: %v; console: %s", err, m.consoleTailLocked(400))
		}
		m.mu.Unlock()
		close(m.exited)
	}()
	// The container's init is nspawn's child in a new PID namespace.
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	deadline := time.Now().Add(time.Minute)
	for {
		// nspawn's first children are short-lived helpers; the init is the child that has
		// become systemd (nspawn is a subreaper, so it ends up as nspawn's child).
		b, _ := os.ReadFile(children)
		for _, f := range strings.Fields(string(b)) {
			comm, _ := os.ReadFile("/proc/" + f + "/comm")
			if strings.TrimSpace(string(comm)) == "systemd" {
				m.leader, _ = strconv.Atoi(f)
			}
		}
		if m.leader > 0 {
			break
		}
		select {
		case <-m.exited:
			return fmt.Errorf("realvps: systemd-nspawn exited before the container started: %s", m.State().ExitError)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-m.exited
			return errors.New("realvps: the container's init did not start within a minute")
		}
	}
	m.log.Info("realvps: container started", "leader", m.leader)
	return nil
}

// awaitBoot holds the boot token until systemd in the container is up (or the boot timed
// out, or the container ended), and records systemd's state.
func (m *Machine) awaitBoot(token *os.File, timeout time.Duration) {
	defer token.Close()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, _ := m.Exec(ctx, "systemctl", "is-system-running")
		cancel()
		s := strings.TrimSpace(string(out))
		if s == "running" || s == "degraded" {
			m.mu.Lock()
			m.state.SystemState, m.state.BootedAt = s, time.Now()
			m.mu.Unlock()
			m.log.Info("realvps: booted", "system_state", s)
			return
		}
		select {
		case <-m.exited:
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	m.log.Warn("realvps: systemd did not come up in time", "timeout", timeout)
}

// Exec runs a command inside the container (all its namespaces, as root) and returns its
// combined output.
func (m *Machine) Exec(ctx context.Context, args ...string) ([]byte, error) {
	select {
	case <-m.exited:
		return nil, errors.New("realvps: the container is not running")
	default:
	}
	argv := append([]string{"-t", strconv.Itoa(m.leader), "-a", "--"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("realvps: %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// ExecInput is Exec with stdin.
func (m *Machine) ExecInput(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	argv := append([]string{"-t", strconv.Itoa(m.leader), "-a", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("realvps: %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// IP is the VPS's address (what the server's public_net.ipv4 shows).
func (m *Machine) IP() net.IP { return m.lease.IP() }

// HostIP is this machine's end of the VPS's veth: the source of connections to the VPS.
func (m *Machine) HostIP() net.IP { return m.lease.HostIP() }

// SSHAddr is the VPS's address; the port is whatever the user data makes sshd listen on.
func (m *Machine) SSHAddr() string { return m.lease.IP().String() }

// Root is the container's root directory as this machine sees it (the overlay mount).
func (m *Machine) Root() string { return m.root() }

// Slot is the number of the lease the machine runs in (see SlotLeftovers).
func (m *Machine) Slot() int { return m.lease.slot }

// Leader is the host PID of the container's init.
func (m *Machine) Leader() int { return m.leader }

// Done is closed when the container has ended.
func (m *Machine) Done() <-chan struct{} { return m.exited }

// State returns a snapshot.
func (m *Machine) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Console returns the last n bytes of the container's console output.
func (m *Machine) Console(n int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consoleTailLocked(n)
}

func (m *Machine) consoleTailLocked(n int) string {
	b, _ := os.ReadFile(filepath.Join(m.dir(), "console.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop kills the container (power cut) and unmounts its root; the disk (the upper layer), the
// namespace (its link down) and the lease stay, so a Boot on the lease starts the same disk
// again; Lease.Release removes them. Safe to call more than once.
func (m *Machine) Stop() error {
	m.stopOnce.Do(func() {
		if m.leader > 0 {
			_ = unix.Kill(m.leader, unix.SIGKILL)
		}
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
		m.stopErr = haltSlot(m.lease.slot)
		m.log.Info("realvps: container stopped, its disk kept", "err", m.stopErr)
	})
	return m.stopErr
}

// UpperDir is the overlay's upper layer: every file the VPS wrote since boot, and whiteouts for
// what it removed.
func (m *Machine) UpperDir() string { return filepath.Join(m.dir(), "layer", "upper") }
