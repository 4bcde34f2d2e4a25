package hcloudsim

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/vps"
)

// VPS modes: what stands behind a running server.
const (
	// VPSEmulated is the default: package vps, an in-process imitation of a Debian machine,
	// fast and light enough for bursts of hundreds.
	VPSEmulated = "emulated"
	// VPSReal boots a real Debian 12 system container per server (package realvps): real
	// cloud-init, sshd, sudo, systemd, and the Hetzner firewall as nftables rules. Needs root
	// and systemd-container.
	VPSReal = "real"
)

// machine is what runs behind a running server: *vps.Machine or *realvps.Machine.
type machine interface {
	Stop() error
	SSHAddr() string
}

var (
	_ machine = (*vps.Machine)(nil)
	_ machine = (*realvps.Machine)(nil)
)

// realState is what the simulator keeps of real mode.
type realState struct {
	host *realvps.Host
	// fwMu orders firewall updates, which run outside the simulator's lock.
	fwMu sync.Mutex
}

func (c *Config) validateVPS() error {
	switch c.VPS {
	case "", VPSEmulated, VPSReal:
		return nil
	}
	return fmt.Errorf("VPS mode %q: want %s or %s", c.VPS, VPSEmulated, VPSReal)
}

// newRealState checks that real VPSes can run and prepares the gateway address they call back on.
func newRealState(cfg Config) (*realState, error) {
	h := cfg.RealHost
	if h == nil {
		var err error
		if h, err = realvps.Default(); err != nil {
			return nil, fmt.Errorf("real VPS mode: %w", err)
		}
	}
	if err := realvps.EnsureGateway(); err != nil {
		return nil, fmt.Errorf("real VPS mode: %w", err)
	}
	return &realState{host: h}, nil
}

// reserveAddress gives a new server its public IPv4: a loopback address for an emulated VPS,
// the container's own address (a /30 lease) for a real one; mu must be held.
func (s *Simulator) reserveAddress(sv *server) *apiError {
	if s.real == nil {
		sv.ip = s.allocateIP()
		return nil
	}
	l, err := s.real.host.Reserve()
	if err != nil {
		s.cfg.Logger.Error("real VPS: no address", "err", err)
		// The spec's error table pairs resource_unavailable with 412 ("currently unavailable").
		return &apiError{status: http.StatusPreconditionFailed, code: hcloud.ErrorCodeResourceUnavailable, message: "no address left for a real VPS: " + err.Error()}
	}
	sv.lease = l
	sv.ip = l.IP()
	return nil
}

// firewallRules returns the rules of every firewall applied to a server and whether any is;
// mu must be held.
func (s *Simulator) firewallRules(sv *server) ([]schema.FirewallRule, bool) {
	ids := s.firewallsOf(sv)
	var rules []schema.FirewallRule
	for _, id := range ids {
		rules = append(rules, s.firewalls[id].rules...)
	}
	return rules, len(ids) > 0
}

// bootReal boots the container of a server that reached running (again, after a power-off:
// the same disk). A container that does not boot, or ends by itself, leaves the server `off`,
// as Hetzner shows a server whose guest powered off (a shutdown's action only sends the ACPI
// request; the server shows `off` once the guest is down: the shutdown action's description in
// cloud.spec.json, hetznercloud/cli#489); why stays in machine_error (/_sim/servers/{id}), as
// the server's console would show it.
func (s *Simulator) bootReal(sv *server) {
	s.mu.Lock()
	if sv.lease == nil || sv.gone || s.closed {
		s.mu.Unlock()
		return
	}
	sf := s.serverFault(sv.name)
	rules, applied := s.firewallRules(sv)
	cfg := realvps.BootConfig{InstanceID: sv.id, Hostname: sv.name, UserData: sv.userData,
		Firewall: rules, FirewallApplied: applied, SwapHostKey: sf.SwapHostKey,
		BreakInit: sf.NeverBoot, LoseCallback: sf.LoseCallback, SSHDelay: s.scale(time.Duration(sf.SSHDelay)),
		Logger: s.cfg.Logger.With("server_id", sv.id, "server", sv.name)}
	lease, halted := sv.lease, sv.halted
	s.mu.Unlock()
	// The previous power-off must have let go of the disk before it boots again.
	if halted != nil {
		select {
		case <-halted:
		case <-s.ctx.Done():
			return
		}
	}

	m, err := s.real.host.Boot(s.ctx, lease, cfg)
	s.mu.Lock()
	if err != nil {
		sv.machineErr = fmt.Sprintf("boot real VPS: %v", err)
		if sv.status == hcloud.ServerStatusRunning && !sv.gone {
			sv.status = hcloud.ServerStatusOff
		}
		s.mu.Unlock()
		s.cfg.Logger.Error("real VPS did not boot; the server is off", "server_id", sv.id, "err", err)
		return
	}
	if sv.gone || s.closed || sv.status != hcloud.ServerStatusRunning {
		s.mu.Unlock()
		_ = m.Stop()
		return
	}
	sv.machine = m
	sv.machineErr = ""
	s.wg.Add(1)
	go s.watchReal(sv, m)
	s.mu.Unlock()
	// A firewall change while it booted went to no machine: apply what is in force now.
	s.syncFirewalls()
}

// watchReal turns a server `off` when its container ends by itself (its init died, or the guest
// powered itself off), not through the API.
func (s *Simulator) watchReal(sv *server, m *realvps.Machine) {
	defer s.wg.Done()
	select {
	case <-m.Done():
	case <-s.ctx.Done():
		return
	}
	s.mu.Lock()
	if sv.machine != machine(m) {
		s.mu.Unlock()
		return // stopped through the API (power off, delete) or by Close
	}
	why := m.State().ExitError
	if why == "" {
		why = "the container ended"
	}
	sv.machineErr = "the VPS went down by itself: " + why
	if sv.status == hcloud.ServerStatusRunning {
		sv.status = hcloud.ServerStatusOff
	}
	s.stopMachine(sv)
	s.mu.Unlock()
	s.cfg.Logger.Warn("real VPS went down by itself; the server is off", "server_id", sv.id, "why", why)
}

// syncFirewalls brings every real VPS's nftables rules in line with the firewalls applied to
// its server. It runs after every API request that can change them (any non-GET), so new
// firewall actions need not remember to call it.
func (s *Simulator) syncFirewalls() {
	if s.real == nil {
		return
	}
	type job struct {
		m       *realvps.Machine
		rules   []schema.FirewallRule
		applied bool
	}
	s.real.fwMu.Lock()
	defer s.real.fwMu.Unlock()
	s.mu.Lock()
	var jobs []job
	for _, sv := range s.servers {
		if m, ok := sv.machine.(*realvps.Machine); ok {
			rules, applied := s.firewallRules(sv)
			jobs = append(jobs, job{m, slices.Clone(rules), applied})
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		if err := j.m.SetFirewall(j.rules, j.applied); err != nil {
			s.cfg.Logger.Error("real VPS: firewall not applied", "vps_ip", j.m.IP().String(), "err", err)
		}
	}
}

// stopMachine takes a server's VPS down in the background (a real VPS keeps its disk, which a
// power-on boots again; the address lease stays until the server is removed); mu must be held.
// sv.halted is closed once it is down.
func (s *Simulator) stopMachine(sv *server) {
	m := sv.machine
	if m == nil {
		return
	}
	sv.machine = nil
	prev, done := sv.halted, make(chan struct{})
	sv.halted = done
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		if prev != nil {
			<-prev
		}
		if err := m.Stop(); err != nil {
			s.cfg.Logger.Warn("stop VPS", "server_id", sv.id, "err", err)
		}
	}()
}

// releaseServer stops a removed server's VPS and then gives its address lease back (a real
// VPS's disk, namespace and link go with it); mu must be held.
func (s *Simulator) releaseServer(sv *server) {
	m, l, halted := sv.machine, sv.lease, sv.halted
	sv.machine, sv.lease = nil, nil
	if m == nil && l == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if halted != nil {
			<-halted
		}
		if m != nil {
			if err := m.Stop(); err != nil {
				s.cfg.Logger.Warn("stop VPS", "server_id", sv.id, "err", err)
			}
		}
		if l != nil {
			if err := l.Release(); err != nil {
				s.cfg.Logger.Warn("release real VPS address", "server_id", sv.id, "err", err)
			}
		}
	}()
}

// RealMachine returns the real VPS of a server, nil when it has none (not running yet, or the
// simulator emulates its VPSes).
func (s *Simulator) RealMachine(serverID int64) *realvps.Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv, ok := s.servers[serverID]; ok {
		if m, ok := sv.machine.(*realvps.Machine); ok {
			return m
		}
	}
	return nil
}

// VPSMode is the simulator's VPS mode, VPSEmulated or VPSReal.
func (s *Simulator) VPSMode() string {
	if s.real != nil {
		return VPSReal
	}
	return VPSEmulated
}
