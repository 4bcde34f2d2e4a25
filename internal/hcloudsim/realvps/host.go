// Package realvps runs a real Debian 12 system behind a simulated Hetzner server: this
// machine's root filesystem as the read-only lower layer of an overlay whose upper layer is a
// per-server tmpfs, systemd booted in it by systemd-nspawn, in a network namespace of its own
// joined to this machine by a veth pair, with a NoCloud seed holding exactly the user data and
// metadata the server was created with. Real cloud-init, sshd, sudo and systemd then run the
// project's user data, and the Hetzner firewalls applied to the server become nftables rules in
// that namespace.
//
// Everything a VPS owns on this machine is named after its slot (a number): the directory
// StateDir/<slot>, the network namespace and the host side of the veth "rvps-<slot>", the
// addresses 10.213.x.y/30 of the slot. A slot is owned by the process holding the flock of
// StateDir/<slot>.lock, so a process that dies (a crashed or SIGKILLed test) releases its slots
// with its file descriptors, and the next Host removes what they left: processes, mounts,
// links, namespaces, directories. Traffic goes only between this machine and those namespaces:
// no default route, no forwarding, no NAT.
package realvps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// StateDir holds every slot's directory and lock, and the cached locale archive.
const StateDir = "/run/rachel-realvps"

// Prefix names every namespace and link this package creates.
const Prefix = "rvps-"

// maxSlots bounds the slots to the /30s of 10.213.0.0 to 10.213.254.255; 10.213.255.0/24 is
// kept for the gateway address.
const maxSlots = 255 * 64

// GatewayIP is the address every VPS reaches this machine at, whatever its slot: it lives on
// the link "rvps-gw" of this machine (one end of a veth pair whose both ends stay here: this
// kernel may lack the dummy link type) and each namespace routes it (only it) through its
// veth. Servers the VPSes must reach (the app's callback, an artifact server) listen on it.
var GatewayIP = net.IPv4(10, 213, 255, 254).To4()

const gatewayLink = Prefix + "gw"

// Options configure a Host.
type Options struct {
	// BootConcurrency is how many containers may be booting at once on this machine, across
	// processes (default 3: a few at once on 2 cores).
	BootConcurrency int
	// BootTimeout is how long a container may take to reach systemd's running (or degraded)
	// state before its boot slot is given to the next one (default 3 minutes).
	BootTimeout time.Duration
	// Logger receives the host's log (nil: discarded).
	Logger *slog.Logger
}

// Host owns this process's real VPSes.
type Host struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	leases map[int]*Lease
	next   int
}

var (
	defaultMu   sync.Mutex
	defaultHost *Host
)

// Default returns the process's Host, created (and leftovers of dead processes removed) on
// first use. Simulators in one process share it, so boot concurrency is bounded once.
func Default() (*Host, error) {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultHost != nil {
		return defaultHost, nil
	}
	h, err := NewHost(Options{})
	if err != nil {
		return nil, err
	}
	defaultHost = h
	return h, nil
}

// Available reports why real VPSes cannot run here ("" when they can): they need root,
// systemd-nspawn, ip, nft, nsenter and cloud-init with sshd installed.
func Available() string {
	if why := notRoot(); why != "" {
		return why
	}
	return missing()
}

// Unavailable separates Available's reasons: skip is why real VPSes cannot run for want of root
// (tests skip then, the README's one exception), fail names what is not installed (tests fail
// then: `make test` installs it).
func Unavailable() (skip, fail string) {
	if why := notRoot(); why != "" {
		return why, ""
	}
	return "", missing()
}

// notRoot says why real VPSes cannot run without root ("" as root).
func notRoot() string {
	if os.Geteuid() != 0 {
		return "real VPSes need root (mounts, network namespaces, systemd-nspawn)"
	}
	return ""
}

// missing says which program or file of the image real VPSes need is not installed ("" when
// none is).
func missing() string {
	for _, p := range []string{"systemd-nspawn", "ip", "nft", "nsenter", "localedef", "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Sprintf("real VPSes need %s (Debian packages systemd-container, iproute2, nftables, util-linux, libc-bin, openssh-client; `make test` installs them as root)", p)
		}
	}
	// The VPS runs this machine's image, which must carry what Hetzner's debian-12 image does
	// and the project's user data uses.
	for _, p := range []string{"/usr/bin/cloud-init", "/usr/sbin/sshd", "/lib/systemd/systemd", "/usr/bin/sudo", "/usr/bin/curl", "/usr/share/i18n/locales/en_US"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("real VPSes need %s on this machine's image (Debian packages cloud-init, openssh-server, systemd, sudo, curl, locales)", p)
		}
	}
	return ""
}

// NewHost checks that real VPSes can run here and removes what dead processes left behind.
func NewHost(opts Options) (*Host, error) {
	if why := Available(); why != "" {
		return nil, errors.New(why)
	}
	if opts.BootConcurrency <= 0 {
		opts.BootConcurrency = 3
	}
	if opts.BootTimeout <= 0 {
		opts.BootTimeout = 3 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("realvps: state directory: %w", err)
	}
	h := &Host{opts: opts, log: opts.Logger, leases: map[int]*Lease{}, next: os.Getpid() % maxSlots}
	if err := h.CleanLeftovers(); err != nil {
		return nil, err
	}
	return h, nil
}

// Lease is one slot owned by this process: its addresses and names. A server gets a lease when
// it is created (its public IPv4 is the VPS address) and gives it back when it is removed.
type Lease struct {
	host *Host
	slot int
	lock *os.File
}

// Slot is the lease's number.
func (l *Lease) Slot() int { return l.slot }

// Name is the slot's namespace, host link and machine name.
func (l *Lease) Name() string { return Prefix + strconv.Itoa(l.slot) }

// IP is the VPS's address (the second of the slot's /30).
func (l *Lease) IP() net.IP { return slotIP(l.slot, 2) }

// HostIP is this machine's end of the veth (the first of the slot's /30).
func (l *Lease) HostIP() net.IP { return slotIP(l.slot, 1) }

func (l *Lease) dir() string { return filepath.Join(StateDir, strconv.Itoa(l.slot)) }

func slotIP(slot, host int) net.IP {
	n := slot*4 + host
	return net.IPv4(10, 213, byte(n>>8), byte(n)).To4()
}

// SlotOf returns the slot whose VPS address is ip (what a server's public IPv4 shows), to
// look at its leftovers.
func SlotOf(ip net.IP) (int, bool) {
	v4 := ip.To4()
	if v4 == nil || v4[0] != 10 || v4[1] != 213 {
		return 0, false
	}
	n := int(v4[2])<<8 | int(v4[3])
	if n%4 != 2 || n/4 >= maxSlots {
		return 0, false
	}
	return n / 4, true
}

func lockPath(slot int) string { return filepath.Join(StateDir, strconv.Itoa(slot)+".lock") }

// tryLock takes the slot's lock without waiting; nil, nil means another process holds it.
func tryLock(slot int) (*os.File, error) {
	for range 3 {
		f, err := os.OpenFile(lockPath(slot), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("realvps: open slot lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, nil
			}
			return nil, fmt.Errorf("realvps: lock slot %d: %w", slot, err)
		}
		// The file may have been unlinked by its previous owner between open and flock: the
		// lock is only valid on the file the path names now.
		var a, b unix.Stat_t
		if unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(lockPath(slot), &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev {
			return f, nil
		}
		_ = f.Close()
	}
	return nil, nil
}

// Reserve takes a free slot, removing whatever a dead owner left in it.
func (h *Host) Reserve() (*Lease, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range maxSlots {
		slot := h.next
		h.next = (h.next + 1) % maxSlots
		if _, mine := h.leases[slot]; mine {
			continue
		}
		f, err := tryLock(slot)
		if err != nil {
			return nil, err
		}
		if f == nil {
			continue
		}
		l := &Lease{host: h, slot: slot, lock: f}
		if err := cleanSlot(slot); err != nil {
			_ = f.Close()
			h.log.Warn("realvps: slot left dirty, skipping it", "slot", slot, "err", err)
			continue
		}
		h.leases[slot] = l
		return l, nil
	}
	return nil, errors.New("realvps: no free slot")
}

// Release removes everything of the slot and gives it back. Stop the machine first.
func (l *Lease) Release() error {
	h := l.host
	h.mu.Lock()
	defer h.mu.Unlock()
	if l.lock == nil {
		return nil
	}
	err := cleanSlot(l.slot)
	if err == nil {
		_ = os.Remove(lockPath(l.slot))
	}
	_ = l.lock.Close()
	l.lock = nil
	delete(h.leases, l.slot)
	if err != nil {
		return fmt.Errorf("realvps: release slot %d: %w", l.slot, err)
	}
	return nil
}

// CleanLeftovers removes what dead processes left: for every slot whose lock nobody holds —
// found by its directory, lock file, namespace, link or mount — its container processes, mounts,
// link, namespace and directory.
func (h *Host) CleanLeftovers() error {
	slots := map[int]bool{}
	if ents, err := os.ReadDir(StateDir); err == nil {
		for _, e := range ents {
			if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".lock")); err == nil {
				slots[n] = true
			}
		}
	}
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if n, ok := slotOfName(e.Name()); ok {
				slots[n] = true
			}
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if n, ok := slotOfName(i.Name); ok {
				slots[n] = true
			}
		}
	}
	for _, n := range cgroupSlots() {
		slots[n] = true
	}
	for _, m := range mountsUnder(StateDir) {
		rest := strings.TrimPrefix(m, StateDir+"/")
		first, _, _ := strings.Cut(rest, "/")
		if n, err := strconv.Atoi(first); err == nil {
			slots[n] = true
		}
	}
	var errs []error
	h.mu.Lock()
	defer h.mu.Unlock()
	for slot := range slots {
		if _, mine := h.leases[slot]; mine || slot < 0 || slot >= maxSlots {
			continue
		}
		f, err := tryLock(slot)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f == nil {
			continue // a live process owns it
		}
		h.log.Info("realvps: removing leftovers of a dead process", "slot", slot)
		if err := cleanSlot(slot); err != nil {
			errs = append(errs, err)
		} else {
			_ = os.Remove(lockPath(slot))
		}
		_ = f.Close()
	}
	return errors.Join(errs...)
}

func slotOfName(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// diskReadyPath marks a slot whose disk (tmpfs layer with the prepared upper layer) is complete:
// a later Boot on the lease reuses it.
func diskReadyPath(slot int) string {
	return filepath.Join(StateDir, strconv.Itoa(slot), "disk-ready")
}

func diskReady(slot int) bool {
	_, err := os.Stat(diskReadyPath(slot))
	return err == nil
}

// haltSlot powers a slot's VPS off, keeping its disk: the container's processes are killed and
// its root overlay unmounted; the tmpfs layer, the namespace (eth0 down: nothing answers at the
// address, and it still routes only to this namespace) and the host link stay. The caller
// holds the slot's lock.
func haltSlot(slot int) error {
	name := Prefix + strconv.Itoa(slot)
	dir := filepath.Join(StateDir, strconv.Itoa(slot))
	killSlotProcesses(slot, dir, filepath.Join("/run/netns", name))
	errs := unmountAll(filepath.Join(dir, "root"))
	if err := removeSlotCgroups(slot); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
		if out, err := exec.Command("ip", "-n", name, "link", "set", "eth0", "down").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip -n %s link set eth0 down: %v: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	_ = os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", name))
	return errors.Join(errs...)
}

// unmountAll unmounts dir and everything below it, deepest first.
func unmountAll(dir string) []error {
	var errs []error
	mounts := mountsUnder(dir)
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		if err := unix.Unmount(m, 0); err != nil {
			if err2 := unix.Unmount(m, unix.MNT_DETACH); err2 != nil && !errors.Is(err2, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err2))
			}
		}
	}
	return errs
}

// cleanSlot removes every trace of a slot whose lock the caller holds: the container's
// processes (by their network namespace, and the recorded nspawn process), its mounts (the
// disk too), the namespace, the link, the directory.
func cleanSlot(slot int) error {
	name := Prefix + strconv.Itoa(slot)
	dir := filepath.Join(StateDir, strconv.Itoa(slot))
	nsPath := filepath.Join("/run/netns", name)

	killSlotProcesses(slot, dir, nsPath)

	// Deepest first: the overlay root before the tmpfs layer it lives on.
	errs := unmountAll(dir)
	if err := removeSlotCgroups(slot); err != nil {
		errs = append(errs, err)
	}
	if linkExists(name) {
		if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil && linkExists(name) {
			errs = append(errs, fmt.Errorf("ip link del %s: %v: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	if _, err := os.Stat(nsPath); err == nil {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	_ = os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", name))
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Never delete through a mount: after a failed unmount the directory stays.
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %s", strings.Join(left, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// SlotLeftovers lists what of a slot exists on this machine (its directory, mounts, namespace,
// host link, container processes): empty once a server's deletion removed everything.
func SlotLeftovers(slot int) []string {
	name := Prefix + strconv.Itoa(slot)
	dir := filepath.Join(StateDir, strconv.Itoa(slot))
	var out []string
	if _, err := os.Stat(dir); err == nil {
		out = append(out, "directory "+dir)
	}
	for _, m := range mountsUnder(dir) {
		out = append(out, "mount "+m)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
		out = append(out, "network namespace "+name)
	}
	if linkExists(name) {
		out = append(out, "link "+name)
	}
	for _, c := range slotCgroups(slot) {
		if _, err := os.Stat(c); err == nil {
			out = append(out, "cgroup "+c)
		}
	}
	return out
}

// killSlotProcesses SIGKILLs the recorded nspawn process (if it still is that nspawn), every
// process in the slot's cgroups and every process in its network namespace (the container's
// init first: its PID namespace dies with it), then waits for them to be gone.
func killSlotProcesses(slot int, dir, nsPath string) {
	var pids []int
	if b, err := os.ReadFile(filepath.Join(dir, "nspawn.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if isNspawnOf(pid, dir) {
				pids = append(pids, pid)
			}
		}
	}
	var ns unix.Stat_t
	if unix.Stat(nsPath, &ns) == nil {
		if ents, err := os.ReadDir("/proc"); err == nil {
			for _, e := range ents {
				pid, err := strconv.Atoi(e.Name())
				if err != nil {
					continue
				}
				var st unix.Stat_t
				if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == ns.Ino && st.Dev == ns.Dev {
					pids = append(pids, pid)
				}
			}
		}
	}
	pids = append(pids, slotCgroupPIDs(slot)...)
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	// Processes of a dead PID namespace go quickly; a bounded wait is only a hang guard.
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// isNspawnOf reports whether pid is the systemd-nspawn of the slot directory dir: its argv has
// the program and, as one whole argument, the slot's root. (A substring test took the nspawn
// of slot 2821 for that of slot 282 when a stale PID file of slot 282 named it.)
func isNspawnOf(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	return len(args) > 0 && filepath.Base(args[0]) == "systemd-nspawn" && slices.Contains(args, filepath.Join(dir, "root"))
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// mountsUnder lists mount points at or below dir, from /proc/self/mountinfo.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// vpsNet holds every slot's /30 and the gateway address.
const vpsNet = "10.213.0.0/16"

// EnsureGateway creates the link carrying GatewayIP if it is missing, and the unreachable route
// of vpsNet. Both are shared by every process and left in place: a local /32 nothing routes
// out, and a route that keeps every VPS address on this machine.
//
// Without that route, a VPS address whose slot has no link (while its disk is prepared, before
// the veth exists; after the server's deletion) followed this machine's default route out of
// it, and whatever answers there took the connection: on this workplace's network a TCP
// connection to any address is accepted and then closed, so the worker's SSH dial to a VPS not
// yet booted got "ssh: handshake failed: EOF" — as from an sshd that answers — instead of the
// refusal of a machine that is not up. Each slot's /30 (the address on its host link) is more
// specific than vpsNet, so a live VPS is reached as before; any other address of vpsNet fails
// at once with "no route to host", and nothing of it leaves the machine.
func EnsureGateway() error {
	if why := Available(); why != "" {
		return errors.New(why)
	}
	if out, err := exec.Command("ip", "route", "replace", "unreachable", vpsNet).CombinedOutput(); err != nil {
		return fmt.Errorf("realvps: unreachable route for %s: %v: %s", vpsNet, err, bytes.TrimSpace(out))
	}
	if !linkExists(gatewayLink) {
		if out, err := exec.Command("ip", "link", "add", gatewayLink, "type", "veth", "peer", "name", gatewayLink+"-peer").CombinedOutput(); err != nil && !linkExists(gatewayLink) {
			return fmt.Errorf("realvps: create %s: %v: %s", gatewayLink, err, bytes.TrimSpace(out))
		}
	}
	out, err := exec.Command("ip", "addr", "replace", GatewayIP.String()+"/32", "dev", gatewayLink).CombinedOutput()
	if err != nil {
		return fmt.Errorf("realvps: address of %s: %v: %s", gatewayLink, err, bytes.TrimSpace(out))
	}
	for _, l := range []string{gatewayLink, gatewayLink + "-peer"} {
		if out, err := exec.Command("ip", "link", "set", l, "up").CombinedOutput(); err != nil {
			return fmt.Errorf("realvps: %s up: %v: %s", l, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// bootQueue is the directory of boots waiting for a token: one ticket file per waiter, named so
// that names sort in arrival order, flocked by its waiter for as long as it waits.
var bootQueue = filepath.Join(StateDir, "boot-queue")

// ticketSeq tells apart the tickets one process takes in the same nanosecond.
var ticketSeq atomic.Uint64

// bootToken is one of BootConcurrency flocked files: a boot holds one from nspawn's start
// until systemd is up, so concurrent processes share the bound. Waiters are served in arrival
// order, across processes: only the oldest live ticket in bootQueue may take a free token.
//
// Before, every waiter polled the token files and whichever came first after a release took
// it, so under a steady stream of boots (several test binaries side by side on a loaded
// machine) one boot could lose again and again: its server showed running at Hetzner while
// its address refused connections for as long as CALLBACK_DEADLINE (seen: 6 minutes in
// TestRealVPSThreeToReadyReinjectDestroy).
func (h *Host) bootToken(ctx context.Context) (_ *os.File, err error) {
	if err := os.MkdirAll(bootQueue, 0o700); err != nil {
		return nil, fmt.Errorf("realvps: boot queue: %w", err)
	}
	// The ticket is locked before it is renamed into the queue, so every ticket there is held by
	// a live waiter from its first appearance; one nobody holds is a dead process's.
	name := fmt.Sprintf("%020d-%d-%d", time.Now().UnixNano(), os.Getpid(), ticketSeq.Add(1))
	tmp := filepath.Join(StateDir, ".ticket-"+name)
	ticket, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("realvps: boot ticket: %w", err)
	}
	if err := unix.Flock(int(ticket.Fd()), unix.LOCK_EX); err != nil {
		_ = ticket.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("realvps: lock boot ticket: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(bootQueue, name)); err != nil {
		_ = ticket.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("realvps: boot ticket: %w", err)
	}
	defer func() {
		_ = os.Remove(filepath.Join(bootQueue, name))
		_ = ticket.Close()
	}()
	for {
		if firstInQueue(name) {
			for i := range h.opts.BootConcurrency {
				f, err := os.OpenFile(filepath.Join(StateDir, fmt.Sprintf("boot-%d.token", i)), os.O_RDWR|os.O_CREATE, 0o600)
				if err != nil {
					return nil, fmt.Errorf("realvps: boot token: %w", err)
				}
				if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
					return f, nil
				}
				_ = f.Close()
			}
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// firstInQueue reports whether no live ticket is ahead of mine in bootQueue, removing the tickets
// of waiters that died (a killed test binary) on the way.
func firstInQueue(mine string) bool {
	ents, err := os.ReadDir(bootQueue) // sorted by name: arrival order
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Name() >= mine {
			return true
		}
		p := filepath.Join(bootQueue, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue // served or given up meanwhile
		}
		alive := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
		if !alive {
			_ = os.Remove(p)
		}
		_ = f.Close()
		if alive {
			return false
		}
	}
	return true
}

var localeOnce struct {
	sync.Mutex
	path string
}

// localeArchive returns a locale archive holding en_US.UTF-8, built once per machine: Hetzner's
// debian-12 image has that locale generated and cloud-init's locale module sets it; this
// machine's image has only C.UTF-8.
func localeArchive() (string, error) {
	localeOnce.Lock()
	defer localeOnce.Unlock()
	if localeOnce.path != "" {
		return localeOnce.path, nil
	}
	final := filepath.Join(StateDir, "locale", "usr", "lib", "locale", "locale-archive")
	if _, err := os.Stat(final); err == nil {
		localeOnce.path = final
		return final, nil
	}
	tmp, err := os.MkdirTemp(StateDir, "locale-build-")
	if err != nil {
		return "", fmt.Errorf("realvps: locale: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "usr", "lib", "locale"), 0o755); err != nil {
		return "", fmt.Errorf("realvps: locale: %w", err)
	}
	if out, err := exec.Command("localedef", "-i", "en_US", "-f", "UTF-8", "--prefix="+tmp, "en_US.UTF-8").CombinedOutput(); err != nil {
		return "", fmt.Errorf("realvps: localedef en_US.UTF-8: %v: %s", err, bytes.TrimSpace(out))
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return "", fmt.Errorf("realvps: locale: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, "usr", "lib", "locale", "locale-archive"), final); err != nil {
		return "", fmt.Errorf("realvps: locale: %w", err)
	}
	localeOnce.path = final
	return final, nil
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
