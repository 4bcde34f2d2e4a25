package hcloudsim

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

type firewall struct {
	id        int64
	name      string
	labels    map[string]string
	created   time.Time
	rules     []schema.FirewallRule
	servers   []int64  // applied directly
	selectors []string // applied through label selectors
}

// firewallsOf lists the firewalls applied to a server, directly or by selector; mu must be held.
func (s *Simulator) firewallsOf(sv *server) []int64 {
	var out []int64
	for _, fw := range s.firewalls {
		if slices.Contains(fw.servers, sv.id) || slices.ContainsFunc(fw.selectors, func(sel string) bool {
			ls, err := parseLabelSelector(sel)
			return err == nil && ls.matches(sv.labels)
		}) {
			out = append(out, fw.id)
		}
	}
	slices.Sort(out)
	return out
}

// selectorServers lists the servers a selector applies a firewall to; mu must be held.
func (s *Simulator) selectorServers(sel string) []int64 {
	ls, err := parseLabelSelector(sel)
	if err != nil {
		return nil
	}
	var out []int64
	for _, sv := range s.sortedServers() {
		if ls.matches(sv.labels) {
			out = append(out, sv.id)
		}
	}
	return out
}

// wire renders the firewall; mu must be held.
func (s *Simulator) wireFirewall(fw *firewall) schema.Firewall {
	applied := []schema.FirewallResource{}
	for _, id := range fw.servers {
		applied = append(applied, schema.FirewallResource{Type: string(hcloud.FirewallResourceTypeServer), Server: &schema.FirewallResourceServer{ID: id}})
	}
	for _, sel := range fw.selectors {
		res := schema.FirewallResource{Type: string(hcloud.FirewallResourceTypeLabelSelector), LabelSelector: &schema.FirewallResourceLabelSelector{Selector: sel},
			AppliedToResources: []schema.FirewallResource{}}
		for _, id := range s.selectorServers(sel) {
			res.AppliedToResources = append(res.AppliedToResources, schema.FirewallResource{Type: string(hcloud.FirewallResourceTypeServer), Server: &schema.FirewallResourceServer{ID: id}})
		}
		applied = append(applied, res)
	}
	rules := []schema.FirewallRule{}
	for _, r := range fw.rules {
		r.SourceIPs = nonNil(r.SourceIPs)
		r.DestinationIPs = nonNil(r.DestinationIPs)
		rules = append(rules, r)
	}
	return schema.Firewall{ID: fw.id, Name: fw.name, Labels: maps.Clone(fw.labels), Created: fw.created,
		Rules: rules, AppliedTo: applied}
}

func (s *Simulator) createFirewall(w http.ResponseWriter, r *http.Request) *apiError {
	var req schema.FirewallCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	var fields []fieldError
	bad := func(name, msg string) { fields = append(fields, fieldError{Name: name, Messages: []string{msg}}) }
	if strings.TrimSpace(req.Name) == "" {
		bad("name", "Missing data for required field.")
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = maps.Clone(*req.Labels)
		if msgs := validateLabels(labels); len(msgs) > 0 {
			fields = append(fields, fieldError{Name: "labels", Messages: msgs})
		}
	}
	rules, ruleFields := parseFirewallRules(req.Rules)
	fields = append(fields, ruleFields...)
	s.mu.Lock()
	defer s.mu.Unlock()
	var servers []int64
	var selectors []string
	for i, a := range req.ApplyTo {
		switch {
		case a.Type == "server" && a.Server != nil:
			if _, ok := s.servers[a.Server.ID]; !ok {
				bad(fmt.Sprintf("apply_to[%d].server", i), fmt.Sprintf("server %d not found", a.Server.ID))
				continue
			}
			servers = append(servers, a.Server.ID)
		case a.Type == "label_selector" && a.LabelSelector != nil:
			if _, err := parseLabelSelector(a.LabelSelector.Selector); err != nil {
				bad(fmt.Sprintf("apply_to[%d].label_selector", i), err.Error())
				continue
			}
			selectors = append(selectors, a.LabelSelector.Selector)
		default:
			bad(fmt.Sprintf("apply_to[%d].type", i), "must be server (with server) or label_selector (with label_selector)")
		}
	}
	if len(fields) > 0 {
		return errInvalid(fields...)
	}
	for _, o := range s.firewalls {
		if o.name == req.Name {
			return errUniqueness("firewall name is already used", "name")
		}
	}
	fw := &firewall{id: s.id("firewall"), name: req.Name, labels: labels, created: s.now(),
		rules: rules, servers: servers, selectors: selectors}
	s.firewalls[fw.id] = fw
	// Rules and applications take effect at once here; Hetzner reports them as actions.
	actions := []schema.Action{}
	ref := schema.ActionResourceReference{ID: fw.id, Type: string(hcloud.ActionResourceTypeFirewall)}
	if len(rules) > 0 {
		a := s.newAction("set_firewall_rules", 0, ref)
		s.finish(a, "", "")
		actions = append(actions, a.wire())
	}
	for _, id := range servers {
		a := s.newAction("apply_firewall", 0, ref, serverRef(id))
		s.finish(a, "", "")
		actions = append(actions, a.wire())
	}
	writeJSON(w, http.StatusCreated, schema.FirewallCreateResponse{Firewall: s.wireFirewall(fw), Actions: actions})
	return nil
}

// maxFirewallRules is Hetzner's limit of rules per firewall (cloud.spec.json, set_rules and
// POST /firewalls: "Rules are limited to 50 entries per Firewall").
const maxFirewallRules = 50

// parseFirewallRules validates rules as POST /firewalls and set_rules do; the field names are
// rules[i].x.
func parseFirewallRules(req []schema.FirewallRuleRequest) ([]schema.FirewallRule, []fieldError) {
	var fields []fieldError
	bad := func(name, msg string) { fields = append(fields, fieldError{Name: name, Messages: []string{msg}}) }
	if len(req) > maxFirewallRules {
		bad("rules", fmt.Sprintf("at most %d rules per firewall", maxFirewallRules))
	}
	var rules []schema.FirewallRule
	for i, rr := range req {
		if rr.Direction != "in" && rr.Direction != "out" {
			bad(fmt.Sprintf("rules[%d].direction", i), "must be in or out")
		}
		switch rr.Protocol {
		case "tcp", "udp":
			if rr.Port == nil || *rr.Port == "" {
				bad(fmt.Sprintf("rules[%d].port", i), "required for tcp and udp")
			}
		case "icmp", "esp", "gre":
		default:
			bad(fmt.Sprintf("rules[%d].protocol", i), "must be tcp, udp, icmp, esp or gre")
		}
		if rr.Direction == "in" && len(rr.SourceIPs) == 0 {
			bad(fmt.Sprintf("rules[%d].source_ips", i), "required for direction in")
		}
		if rr.Direction == "out" && len(rr.DestinationIPs) == 0 {
			bad(fmt.Sprintf("rules[%d].destination_ips", i), "required for direction out")
		}
		rules = append(rules, schema.FirewallRule(rr))
	}
	return rules, fields
}

// setFirewallRules is POST /firewalls/{id}/actions/set_rules: the given rules replace all of the
// firewall's rules (an empty array removes them all). Hetzner answers 201 with the actions:
// set_firewall_rules on the firewall, and apply_firewall for each server it is applied to
// (cloud.spec.json; hcloud-go's FirewallClient.SetRules returns them). Rules take effect at once
// here; the actions are finished when returned.
func (s *Simulator) setFirewallRules(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "firewall")
	if aerr != nil {
		return aerr
	}
	var req schema.FirewallActionSetRulesRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	rules, fields := parseFirewallRules(req.Rules)
	if len(fields) > 0 {
		return errInvalid(fields...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fw, ok := s.firewalls[id]
	if !ok {
		return errNotFound("firewall")
	}
	fw.rules = rules
	ref := schema.ActionResourceReference{ID: fw.id, Type: string(hcloud.ActionResourceTypeFirewall)}
	a := s.newAction("set_firewall_rules", 0, ref)
	s.finish(a, "", "")
	actions := []schema.Action{a.wire()}
	servers := slices.Clone(fw.servers)
	for _, sel := range fw.selectors {
		servers = append(servers, s.selectorServers(sel)...)
	}
	slices.Sort(servers)
	for _, sv := range slices.Compact(servers) {
		a := s.newAction("apply_firewall", 0, ref, serverRef(sv))
		s.finish(a, "", "")
		actions = append(actions, a.wire())
	}
	writeJSON(w, http.StatusCreated, schema.FirewallActionSetRulesResponse{Actions: actions})
	return nil
}

func (s *Simulator) listFirewalls(w http.ResponseWriter, r *http.Request) *apiError {
	sel, aerr := selectorParam(r)
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	fws := slices.Collect(maps.Values(s.firewalls))
	slices.SortFunc(fws, func(a, b *firewall) int { return cmp.Compare(a.id, b.id) })
	var out []schema.Firewall
	for _, fw := range fws {
		if nameMatches(r, fw.name) && sel.matches(fw.labels) {
			out = append(out, s.wireFirewall(fw))
		}
	}
	s.mu.Unlock()
	page, meta, aerr := pageOf(r, out)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, struct {
		Firewalls []schema.Firewall `json:"firewalls"`
		Meta      listMeta          `json:"meta"`
	}{nonNil(page), meta})
	return nil
}

func (s *Simulator) getFirewall(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "firewall")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fw, ok := s.firewalls[id]
	if !ok {
		return errNotFound("firewall")
	}
	writeJSON(w, http.StatusOK, schema.FirewallGetResponse{Firewall: s.wireFirewall(fw)})
	return nil
}

// deleteFirewall refuses while the firewall still protects a server, as Hetzner does.
func (s *Simulator) deleteFirewall(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "firewall")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fw, ok := s.firewalls[id]
	if !ok {
		return errNotFound("firewall")
	}
	inUse := len(fw.servers) > 0
	for _, sel := range fw.selectors {
		inUse = inUse || len(s.selectorServers(sel)) > 0
	}
	if inUse {
		return &apiError{status: http.StatusConflict, code: hcloud.ErrorCodeResourceInUse, message: "firewall is still applied to a server"}
	}
	delete(s.firewalls, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
