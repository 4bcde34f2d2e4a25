package hcloudsim

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/vps"
)

// maxUserData is Hetzner's limit on user_data (32 KiB).
const maxUserData = 32 * 1024

type server struct {
	id         int64
	name       string
	status     hcloud.ServerStatus
	created    time.Time
	ip         net.IP
	serverType schema.ServerType
	image      schema.Image
	location   schema.Location
	//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
	datacenter schema.Datacenter
	labels     map[string]string
	userData   string
	sshKeys    []int64
	firewalls  []int64
	machine    machine        // *vps.Machine or *realvps.Machine; nil while not running
	lease      *realvps.Lease // real mode: the VPS's address slot, held until removal
	machineErr string
	// halted is closed when the last stop of its machine finished (nil: never stopped); a boot
	// waits for it, so a real VPS's disk is let go before it is mounted again.
	halted chan struct{}
	// gone is set when the server is removed, so a machine starting concurrently stops.
	gone bool
}

// wireServer is schema.Server plus the datacenter the spec copy still requires, which hcloud-go's
// schema type no longer carries; it is left out from datacenterPropertyRemoved on.
type wireServer struct {
	schema.Server
	//lint:ignore SA1019 simulates the deprecated datacenters until their removal dates
	Datacenter *schema.Datacenter `json:"datacenter,omitempty"`
}

// wire renders the server; mu must be held.
func (s *Simulator) wireServer(sv *server) wireServer {
	fws := []schema.ServerFirewall{}
	for _, id := range s.firewallsOf(sv) {
		fws = append(fws, schema.ServerFirewall{ID: id, Status: string(hcloud.FirewallStatusApplied)})
	}
	im := sv.image
	var zero uint64
	return wireServer{Server: schema.Server{
		ID: sv.id, Name: sv.name, Status: string(sv.status), Created: sv.created,
		PublicNet: schema.ServerPublicNet{
			IPv4: schema.ServerPublicNetIPv4{ID: sv.id + 100000000, IP: sv.ip.String(),
				DNSPtr: "static." + reverse(sv.ip) + ".clients.your-server.de"},
			IPv6: schema.ServerPublicNetIPv6{ID: sv.id + 200000000,
				IP: fmt.Sprintf("2a01:4f8:c0c:%x::/64", sv.id&0xffff), DNSPtr: []schema.ServerPublicNetIPv6DNSPtr{}},
			FloatingIPs: []int64{},
			Firewalls:   fws,
		},
		PrivateNet:      []schema.ServerPrivateNet{},
		ServerType:      sv.serverType,
		IncludedTraffic: 21990232555520,
		OutgoingTraffic: &zero,
		IngoingTraffic:  &zero,
		Location:        sv.location,
		Image:           &im,
		Labels:          maps.Clone(sv.labels),
		Volumes:         []int64{},
		PrimaryDiskSize: sv.serverType.Disk,
		LoadBalancers:   []int64{},
	}, Datacenter: s.serverDatacenter(sv)}
}

// serverDatacenter is the server's datacenter property while Hetzner still sent it.
//
//lint:ignore SA1019 simulates the deprecated datacenters until their removal dates
func (s *Simulator) serverDatacenter(sv *server) *schema.Datacenter {
	if !s.now().Before(datacenterPropertyRemoved) {
		return nil
	}
	dc := sv.datacenter
	return &dc
}

func reverse(ip net.IP) string {
	v4 := ip.To4()
	if v4 == nil {
		return ip.String()
	}
	return fmt.Sprintf("%d.%d.%d.%d", v4[3], v4[2], v4[1], v4[0])
}

// createServerRequest is schema.ServerCreateRequest with ssh_keys as the spec has them: IDs or
// names (hcloud-go sends only IDs).
type createServerRequest struct {
	Name             string                         `json:"name"`
	ServerType       schema.IDOrName                `json:"server_type"`
	Image            schema.IDOrName                `json:"image"`
	SSHKeys          []json.RawMessage              `json:"ssh_keys"`
	Location         *schema.IDOrName               `json:"location"`
	Datacenter       *schema.IDOrName               `json:"datacenter"`
	UserData         string                         `json:"user_data"`
	StartAfterCreate *bool                          `json:"start_after_create"`
	Labels           *map[string]string             `json:"labels"`
	Firewalls        []schema.ServerCreateFirewalls `json:"firewalls"`
}

func (s *Simulator) createServer(w http.ResponseWriter, r *http.Request) *apiError {
	var req createServerRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	var fields []fieldError
	bad := func(name, msg string) { fields = append(fields, fieldError{Name: name, Messages: []string{msg}}) }
	if req.Name == "" {
		bad("name", "Missing data for required field.")
	} else if !validHostname(req.Name) {
		bad("name", "Name must be a valid hostname.")
	}
	st, stOK := s.cat.serverType(req.ServerType)
	if !stOK {
		bad("server_type", "server type not found")
	}
	im, ok := s.cat.image(req.Image, st.Architecture)
	switch {
	case ok && stOK && im.Architecture != st.Architecture:
		bad("image", fmt.Sprintf("image %d is for %s, server type %s is %s", im.ID, im.Architecture, st.Name, st.Architecture))
	case !ok && stOK && req.Image.Name != "" && s.cat.imageNamed(req.Image.Name):
		bad("image", fmt.Sprintf("image %s is not available for architecture %s", req.Image.Name, st.Architecture))
	case !ok && (stOK || req.Image.ID != 0 || !s.cat.imageNamed(req.Image.Name)):
		bad("image", "image not found")
	}
	loc, dc := s.cat.locations[0], s.cat.datacenters[0]
	switch {
	case req.Location != nil && req.Datacenter != nil:
		bad("location", "must not be used together with datacenter")
	case req.Location != nil:
		if loc, dc, ok = s.cat.location(*req.Location); !ok {
			bad("location", "location not found")
		}
	case req.Datacenter != nil:
		if dc, ok = s.cat.datacenter(*req.Datacenter); !ok {
			bad("datacenter", "datacenter not found")
		}
		loc = dc.Location
	}
	if len(req.UserData) > maxUserData {
		bad("user_data", fmt.Sprintf("user_data is %d bytes, the limit is 32 KiB", len(req.UserData)))
	}
	var keyIDs []int64
	for _, raw := range req.SSHKeys {
		k, err := s.resolveSSHKey(raw)
		if err != "" {
			bad("ssh_keys", err)
			continue
		}
		keyIDs = append(keyIDs, k)
	}
	var fwIDs []int64
	for _, f := range req.Firewalls {
		if _, ok := s.firewalls[f.Firewall]; !ok {
			bad("firewalls", fmt.Sprintf("firewall %d not found", f.Firewall))
			continue
		}
		fwIDs = append(fwIDs, f.Firewall)
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = maps.Clone(*req.Labels)
		if msgs := validateLabels(labels); len(msgs) > 0 {
			fields = append(fields, fieldError{Name: "labels", Messages: msgs})
		}
	}
	if len(fields) > 0 {
		return errInvalid(fields...)
	}
	for _, o := range s.servers {
		if o.name == req.Name {
			return errUniqueness("server name is already used", "name")
		}
	}
	if aerr := s.admitServer(st, loc); aerr != nil {
		return aerr
	}

	sv := &server{name: req.Name, status: hcloud.ServerStatusInitializing, created: s.now(),
		serverType: st, image: im, location: loc, datacenter: dc,
		labels: labels, userData: req.UserData, sshKeys: keyIDs, firewalls: fwIDs}
	if aerr := s.reserveAddress(sv); aerr != nil {
		return aerr
	}
	sv.id = s.id("server")
	s.servers[sv.id] = sv
	for _, fw := range fwIDs {
		s.firewalls[fw].servers = append(s.firewalls[fw].servers, sv.id)
	}

	create := s.newAction("create_server", s.cfg.CreateDuration, serverRef(sv.id))
	start := req.StartAfterCreate == nil || *req.StartAfterCreate
	var startAction *action
	next := []schema.Action{}
	if start {
		startAction = s.newAction("start_server", s.cfg.CreateDuration+s.cfg.StartDuration, serverRef(sv.id))
		next = append(next, startAction.wire())
	}
	s.after(s.cfg.CreateDuration, func() { s.createDone(sv, create, startAction) })

	var rootPassword *string
	if len(keyIDs) == 0 {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		pw := base64.RawURLEncoding.EncodeToString(b)
		rootPassword = &pw
	}
	writeJSON(w, http.StatusCreated, struct {
		Server       wireServer      `json:"server"`
		Action       schema.Action   `json:"action"`
		NextActions  []schema.Action `json:"next_actions"`
		RootPassword *string         `json:"root_password"`
	}{s.wireServer(sv), create.wire(), next, rootPassword})
	return nil
}

// resolveSSHKey finds a key by ID (number or numeric string) or name; mu must be held.
func (s *Simulator) resolveSSHKey(raw json.RawMessage) (int64, string) {
	var ref schema.IDOrName
	if err := json.Unmarshal(raw, &ref); err != nil {
		return 0, "SSH keys must be IDs or names"
	}
	for _, k := range s.sshKeys {
		if (ref.ID != 0 && k.ID == ref.ID) || (ref.Name != "" && k.Name == ref.Name) {
			return k.ID, ""
		}
	}
	return 0, fmt.Sprintf("SSH key %s not found", bytes.Trim(raw, `"`))
}

// createDone ends create_server and, when asked, schedules the start.
func (s *Simulator) createDone(sv *server, create, start *action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv.gone {
		s.finish(create, "server_error", "server was deleted during creation")
		s.finish(start, "server_error", "server was deleted during creation")
		return
	}
	if code, msg := s.actionFailure("create_server", sv.name); code != "" {
		s.finish(create, code, msg)
		s.finish(start, "action_failed", "server creation failed")
		s.removeServer(sv)
		return
	}
	s.finish(create, "", "")
	if start == nil {
		sv.status = hcloud.ServerStatusOff
		return
	}
	sv.status = hcloud.ServerStatusStarting
	s.after(s.cfg.StartDuration, func() { s.startDone(sv, start) })
}

func (s *Simulator) startDone(sv *server, start *action) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv.gone {
		s.finish(start, "server_error", "server was deleted during start")
		return
	}
	if code, msg := s.actionFailure("start_server", sv.name); code != "" {
		s.finish(start, code, msg)
		sv.status = hcloud.ServerStatusOff
		return
	}
	s.finish(start, "", "")
	sv.status = hcloud.ServerStatusRunning
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.bootMachine(sv)
	}()
}

// bootMachine starts the simulated VPS of a server that reached running. If its address
// cannot be bound (another process took it), it moves the server to another address.
func (s *Simulator) bootMachine(sv *server) {
	if s.real != nil {
		s.bootReal(sv)
		return
	}
	s.mu.Lock()
	sf := s.serverFault(sv.name)
	if sf.NeverBoot {
		sv.machineErr = "fault never_boot: the VPS's operating system did not boot"
		if sv.status == hcloud.ServerStatusRunning {
			sv.status = hcloud.ServerStatusOff
		}
		s.mu.Unlock()
		return
	}
	cfg := vps.Config{InstanceID: sv.id, Hostname: sv.name, UserData: sv.userData, IP: sv.ip,
		SSHPort: s.cfg.SSHPort, CloudInitDelay: s.scale(s.cfg.CloudInitDuration),
		SSHDelay: s.scale(time.Duration(sf.SSHDelay)), SwapHostKey: sf.SwapHostKey,
		LoseCallback: sf.LoseCallback, HTTPClient: s.cfg.HTTPClient,
		// cloud-init pauses 3 s between phone_home tries; that is simulated time too.
		CallbackRetryInterval: s.scale(3 * time.Second),
		Logger:                s.cfg.Logger.With("server_id", sv.id, "server", sv.name)}
	s.mu.Unlock()

	var m *vps.Machine
	var err error
	for range 20 {
		m, err = s.cfg.StartMachine(s.ctx, cfg)
		if err == nil {
			break
		}
		s.cfg.Logger.Warn("simulated VPS could not listen, moving it to another address", "ip", cfg.IP, "err", err)
		s.mu.Lock()
		cfg.IP = s.allocateIP()
		sv.ip = cfg.IP
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		sv.machineErr = fmt.Sprintf("start simulated VPS: %v", err)
		s.cfg.Logger.Error("simulated VPS did not start", "server_id", sv.id, "err", err)
		return
	}
	if sv.gone || s.closed {
		_ = m.Stop()
		return
	}
	sv.machine = m
}

// serverFault merges the VPS faults that apply to a server name; mu must be held.
func (s *Simulator) serverFault(name string) ServerFault {
	var out ServerFault
	for _, f := range s.faults.Servers {
		if f.Server == "" || f.Server == name {
			out.LoseCallback = out.LoseCallback || f.LoseCallback
			out.SwapHostKey = out.SwapHostKey || f.SwapHostKey
			out.NeverBoot = out.NeverBoot || f.NeverBoot
			out.SSHDelay = max(out.SSHDelay, f.SSHDelay)
		}
	}
	return out
}

// allocateIP hands out the next unused loopback address whose SSH port is free right now
// (never 127.0.0.1); mu must be held.
func (s *Simulator) allocateIP() net.IP {
	for range 1000 {
		s.ipNext++
		n := s.ipNext
		ip := net.IPv4(127, s.ipBase[1], s.ipBase[2]+byte(n>>8), byte(n))
		if ip[15] == 0 || ip[15] == 255 || ip.Equal(net.IPv4(127, 0, 0, 1)) {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(s.cfg.SSHPort)))
		if err != nil {
			continue
		}
		_ = ln.Close()
		return ip
	}
	// Every probe failed (no permission for the port, say): the VPS start will report why.
	s.ipNext++
	return net.IPv4(127, s.ipBase[1], s.ipBase[2]+byte(s.ipNext>>8), byte(s.ipNext))
}

// removeServer forgets a server and stops its VPS; mu must be held.
func (s *Simulator) removeServer(sv *server) {
	sv.gone = true
	delete(s.servers, sv.id)
	for _, fw := range s.firewalls {
		fw.servers = slices.DeleteFunc(fw.servers, func(id int64) bool { return id == sv.id })
	}
	s.releaseServer(sv)
}

func (s *Simulator) listServers(w http.ResponseWriter, r *http.Request) *apiError {
	sel, aerr := selectorParam(r)
	if aerr != nil {
		return aerr
	}
	statuses := r.URL.Query()["status"]
	s.mu.Lock()
	var out []wireServer
	for _, sv := range s.sortedServers() {
		if nameMatches(r, sv.name) && sel.matches(sv.labels) && (len(statuses) == 0 || slices.Contains(statuses, string(sv.status))) {
			out = append(out, s.wireServer(sv))
		}
	}
	s.mu.Unlock()
	page, meta, aerr := pageOf(r, out)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, struct {
		Servers []wireServer `json:"servers"`
		Meta    listMeta     `json:"meta"`
	}{nonNil(page), meta})
	return nil
}

// sortedServers returns the servers ordered by ID; mu must be held.
func (s *Simulator) sortedServers() []*server {
	out := slices.Collect(maps.Values(s.servers))
	slices.SortFunc(out, func(a, b *server) int { return cmp.Compare(a.id, b.id) })
	return out
}

func (s *Simulator) getServer(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "server")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok {
		return errNotFound("server")
	}
	writeJSON(w, http.StatusOK, struct {
		Server wireServer `json:"server"`
	}{s.wireServer(sv)})
	return nil
}

func (s *Simulator) updateServer(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "server")
	if aerr != nil {
		return aerr
	}
	var req schema.ServerUpdateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Name != "" && !validHostname(req.Name) {
		return errInvalid(fieldError{Name: "name", Messages: []string{"Name must be a valid hostname."}})
	}
	if req.Labels != nil {
		if msgs := validateLabels(*req.Labels); len(msgs) > 0 {
			return errInvalid(fieldError{Name: "labels", Messages: msgs})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok {
		return errNotFound("server")
	}
	if req.Name != "" && req.Name != sv.name {
		for _, o := range s.servers {
			if o.name == req.Name {
				return errUniqueness("server name is already used", "name")
			}
		}
		sv.name = req.Name
	}
	if req.Labels != nil {
		sv.labels = maps.Clone(*req.Labels)
	}
	writeJSON(w, http.StatusOK, struct {
		Server wireServer `json:"server"`
	}{s.wireServer(sv)})
	return nil
}

// deleteServer answers an action; the server shows deleting, its VPS goes down at once, and it
// disappears when the action ends.
func (s *Simulator) deleteServer(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "server")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok {
		return errNotFound("server")
	}
	if sv.status == hcloud.ServerStatusDeleting {
		return &apiError{status: http.StatusLocked, code: hcloud.ErrorCodeLocked, message: "server is locked by a running delete_server action"}
	}
	prev := sv.status
	sv.status = hcloud.ServerStatusDeleting
	s.stopMachine(sv)
	a := s.newAction("delete_server", s.cfg.DeleteDuration, serverRef(sv.id))
	s.after(s.cfg.DeleteDuration, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if sv.gone {
			s.finish(a, "", "")
			return
		}
		if code, msg := s.actionFailure("delete_server", sv.name); code != "" {
			s.finish(a, code, msg)
			sv.status = prev
			if prev == hcloud.ServerStatusRunning {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					s.bootMachine(sv)
				}()
			}
			return
		}
		s.finish(a, "", "")
		s.removeServer(sv)
	})
	writeJSON(w, http.StatusOK, schema.ServerDeleteResponse{Action: a.wire()})
	return nil
}

// DeleteServerBehindBack removes a server at once, without an action, as if someone deleted
// it in Hetzner's console; it reports whether the server existed.
func (s *Simulator) DeleteServerBehindBack(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok {
		return false
	}
	s.removeServer(sv)
	return true
}
