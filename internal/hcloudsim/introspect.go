package hcloudsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/vps"
)

// RequestKey identifies a request counter: the route template ("GET /servers/{id}", or
// "unknown") and the status answered.
type RequestKey struct {
	Route  string `json:"route"`
	Status int    `json:"status"`
}

// RequestStat is one request counter.
type RequestStat struct {
	RequestKey
	Count int `json:"count"`
}

// ServerInfo is the simulator's view of a server, for tests and benchmarks.
type ServerInfo struct {
	ID        int64             `json:"id"`
	Name      string            `json:"name"`
	Status    string            `json:"status"`
	IP        net.IP            `json:"ip"`
	Created   time.Time         `json:"created"`
	Labels    map[string]string `json:"labels"`
	UserData  string            `json:"user_data"`
	SSHKeys   []int64           `json:"ssh_keys"`
	Firewalls []int64           `json:"firewalls"`
	// Machine is the emulated VPS, nil until the server is running (and after deletion, and
	// in real mode).
	Machine *vps.Machine `json:"-"`
	// Real is the real VPS in real mode, nil until the server is running.
	Real *realvps.Machine `json:"-"`
	// MachineError says why the VPS could not start, if it could not.
	MachineError string `json:"machine_error,omitempty"`
}

// Requests returns every request counter, sorted by route and status. /_sim/ endpoints are not
// counted.
func (s *Simulator) Requests() []RequestStat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RequestStat, 0, len(s.counts))
	for k, n := range s.counts {
		out = append(out, RequestStat{RequestKey: k, Count: n})
	}
	slices.SortFunc(out, func(a, b RequestStat) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Status, b.Status))
	})
	return out
}

// RequestCount counts the requests to route answered with status; status 0 counts all of them
// and route "" counts every route.
func (s *Simulator) RequestCount(route string, status int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, c := range s.counts {
		if (route == "" || k.Route == route) && (status == 0 || k.Status == status) {
			n += c
		}
	}
	return n
}

// ResetRequests zeroes the request counters (between phases of a benchmark).
func (s *Simulator) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
}

// RateLimit returns the rate-limit bucket as the next response's headers would describe it
// (before that request's own cost).
func (s *Simulator) RateLimit() RateLimitState { return s.bucket.state() }

// SetRateLimitRemaining sets the requests left in the bucket, to test behaviour near the limit.
func (s *Simulator) SetRateLimitRemaining(n int) { s.bucket.set(n) }

// Faults returns the faults in force (counters reflect what has been consumed).
func (s *Simulator) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneFaults(s.faults)
}

// SetFaults replaces the faults in force; it is safe to call at any time.
func (s *Simulator) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Seed != nil {
		s.pcg.Seed(*f.Seed, *f.Seed^0x9e3779b97f4a7c15)
	}
	s.faults = cloneFaults(f)
	return nil
}

// UpdateFaults edits the faults in force under the simulator's lock, so a test can add one
// fault without racing other changes.
func (s *Simulator) UpdateFaults(edit func(*Faults)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := cloneFaults(s.faults)
	edit(&f)
	if err := f.validate(); err != nil {
		return fmt.Errorf("update faults: %w", err)
	}
	s.faults = f
	return nil
}

func cloneFaults(f Faults) Faults {
	f.Errors = slices.Clone(f.Errors)
	f.Slow = slices.Clone(f.Slow)
	f.ActionFailures = slices.Clone(f.ActionFailures)
	f.Servers = slices.Clone(f.Servers)
	f.Capacity = slices.Clone(f.Capacity)
	return f
}

// Servers returns every server, ordered by ID.
func (s *Simulator) Servers() []ServerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ServerInfo
	for _, sv := range s.sortedServers() {
		out = append(out, s.serverInfo(sv))
	}
	return out
}

// Server returns one server by ID.
func (s *Simulator) Server(id int64) (ServerInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok {
		return ServerInfo{}, false
	}
	return s.serverInfo(sv), true
}

// Machine returns the emulated VPS of a server, nil when it has none (yet, or in real mode).
func (s *Simulator) Machine(serverID int64) *vps.Machine {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv, ok := s.servers[serverID]; ok {
		m, _ := sv.machine.(*vps.Machine)
		return m
	}
	return nil
}

func (s *Simulator) serverInfo(sv *server) ServerInfo {
	em, _ := sv.machine.(*vps.Machine)
	rm, _ := sv.machine.(*realvps.Machine)
	return ServerInfo{ID: sv.id, Name: sv.name, Status: string(sv.status), IP: slices.Clone(sv.ip),
		Created: sv.created, Labels: maps.Clone(sv.labels), UserData: sv.userData,
		SSHKeys: slices.Clone(sv.sshKeys), Firewalls: s.firewallsOf(sv), Machine: em, Real: rm,
		MachineError: sv.machineErr}
}

// SSHKeys returns every SSH key, ordered by ID, as the API renders them.
func (s *Simulator) SSHKeys() []schema.SSHKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []schema.SSHKey
	for _, k := range s.sortedKeys() {
		out = append(out, k.wire())
	}
	return out
}

// Firewalls returns every firewall, ordered by ID, as the API renders them.
func (s *Simulator) Firewalls() []schema.Firewall {
	s.mu.Lock()
	defer s.mu.Unlock()
	fws := slices.Collect(maps.Values(s.firewalls))
	slices.SortFunc(fws, func(a, b *firewall) int { return cmp.Compare(a.id, b.id) })
	var out []schema.Firewall
	for _, fw := range fws {
		out = append(out, s.wireFirewall(fw))
	}
	return out
}

// machineView is a VPS as /_sim/servers/{id} shows it.
type machineView struct {
	SSHAddr  string        `json:"ssh_addr"`
	State    vps.State     `json:"state"`
	Files    []vps.File    `json:"files"`
	Commands []vps.Command `json:"commands"`
}

// realMachineView is a real VPS as /_sim/servers/{id} shows it.
type realMachineView struct {
	IP      string        `json:"ip"`
	HostIP  string        `json:"host_ip"`
	State   realvps.State `json:"state"`
	Console string        `json:"console_tail"`
}

type serverView struct {
	ServerInfo
	Machine *machineView     `json:"machine"`
	Real    *realMachineView `json:"real_machine,omitempty"`
}

func viewServer(si ServerInfo) serverView {
	v := serverView{ServerInfo: si}
	if m := si.Real; m != nil {
		v.Real = &realMachineView{IP: m.IP().String(), HostIP: m.HostIP().String(), State: m.State(), Console: m.Console(4096)}
	}
	if m := si.Machine; m != nil {
		v.Machine = &machineView{SSHAddr: m.SSHAddr(), State: m.State(), Files: m.Files(), Commands: m.Commands()}
	}
	return v
}

// simRoutes serves the simulator's own endpoints: neither rate-limited, authenticated nor
// counted, because they are not Hetzner's.
func (s *Simulator) simRoutes() {
	m := http.NewServeMux()
	s.simMux = m
	m.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"requests": nonNil(s.Requests()), "rate_limit": s.RateLimit()})
	})
	m.HandleFunc("DELETE /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		s.ResetRequests()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("PUT /_sim/rate_limit", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Remaining int `json:"remaining"`
		}
		if err := decodeBody(r, &body); err != nil {
			writeError(w, err)
			return
		}
		s.SetRateLimitRemaining(body.Remaining)
		writeJSON(w, http.StatusOK, s.RateLimit())
	})
	m.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	setFaults := func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			writeError(w, &apiError{status: http.StatusBadRequest, code: hcloud.ErrorCodeJSONError, message: err.Error()})
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeError(w, errInvalid(fieldError{Name: "faults", Messages: []string{err.Error()}}))
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	}
	m.HandleFunc("PUT /_sim/faults", setFaults)
	m.HandleFunc("POST /_sim/faults", setFaults)
	m.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		_ = s.SetFaults(Faults{})
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /_sim/servers", func(w http.ResponseWriter, r *http.Request) {
		out := []serverView{}
		for _, si := range s.Servers() {
			out = append(out, viewServer(si))
		}
		writeJSON(w, http.StatusOK, map[string]any{"servers": out})
	})
	m.HandleFunc("GET /_sim/servers/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		si, ok := s.Server(id)
		if !ok {
			writeError(w, errNotFound("server"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"server": viewServer(si)})
	})
	m.HandleFunc("POST /_sim/servers/{id}/delete_behind_back", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if !s.DeleteServerBehindBack(id) {
			writeError(w, errNotFound("server"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /_sim/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"now": s.Now()})
	})
	m.HandleFunc("PUT /_sim/clock", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Now time.Time `json:"now"`
		}
		if err := decodeBody(r, &body); err != nil {
			writeError(w, err)
			return
		}
		if body.Now.IsZero() {
			writeError(w, errInvalid(fieldError{Name: "now", Messages: []string{"Missing data for required field."}}))
			return
		}
		s.SetNow(body.Now)
		writeJSON(w, http.StatusOK, map[string]any{"now": s.Now()})
	})
	m.HandleFunc("GET /_sim/limits", func(w http.ResponseWriter, r *http.Request) {
		limit, used := s.ServerLimit()
		writeJSON(w, http.StatusOK, map[string]any{"servers": limit, "servers_used": used})
	})
	m.HandleFunc("PUT /_sim/limits", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Servers int `json:"servers"`
		}
		if err := decodeBody(r, &body); err != nil {
			writeError(w, err)
			return
		}
		if body.Servers < 0 {
			writeError(w, errInvalid(fieldError{Name: "servers", Messages: []string{"must be 0 (no limit) or more"}}))
			return
		}
		s.SetServerLimit(body.Servers)
		limit, used := s.ServerLimit()
		writeJSON(w, http.StatusOK, map[string]any{"servers": limit, "servers_used": used})
	})
	m.HandleFunc("GET /_sim/ssh_keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ssh_keys": nonNil(s.SSHKeys())})
	})
	m.HandleFunc("GET /_sim/firewalls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"firewalls": nonNil(s.Firewalls())})
	})
	m.HandleFunc("/_sim/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{status: http.StatusNotFound, code: hcloud.ErrorCodeNotFound,
			message: "simulator endpoints: " + strings.Join([]string{"GET|DELETE /_sim/stats", "PUT /_sim/rate_limit",
				"GET|PUT|DELETE /_sim/faults", "GET /_sim/servers[/{id}]", "POST /_sim/servers/{id}/delete_behind_back",
				"GET|PUT /_sim/clock", "GET|PUT /_sim/limits", "GET /_sim/ssh_keys", "GET /_sim/firewalls"}, ", ")})
	})
}
