package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
)

// hproject is one Hetzner project the worker talks to (issue 14): its own client (token),
// rate-limit budget (the tracker), action poller, server limit and shared firewall.
type hproject struct {
	name  string
	hc    *hcloud.Client
	rl    *RateLimitTracker
	nudge chan struct{} // wakes this project's poller

	fwMu sync.Mutex
	fwID int64
}

// HCloudProject is a project's client, given to a worker by [WithHCloudProject].
type HCloudProject struct {
	Name      string
	Client    *hcloud.Client
	RateLimit *RateLimitTracker // may be nil
}

// WithHCloudProject sets the client of the project named p.Name (default: built from its token
// in the configuration). A project given here but not configured is used too.
func WithHCloudProject(p HCloudProject) Option {
	return func(o *options) { o.projects = append(o.projects, p) }
}

// newProjects builds the worker's projects: the configured ones in order (with the clients
// options gave, else built from their tokens), then projects only options named.
func newProjects(cfg *config.Config, o options) ([]*hproject, error) {
	given := map[string]HCloudProject{}
	var order []string
	add := func(name string) {
		if !slices.Contains(order, name) {
			order = append(order, name)
		}
	}
	for _, p := range cfg.HCloudProjects() {
		add(p.Name)
	}
	if o.hc != nil {
		name := config.DefaultProject
		if len(order) > 0 {
			name = order[0]
		}
		given[name] = HCloudProject{Name: name, Client: o.hc, RateLimit: o.rl}
		add(name)
	}
	for _, p := range o.projects {
		given[p.Name] = p
		add(p.Name)
	}
	if len(order) == 0 {
		return nil, errors.New("HCLOUD_TOKEN (or HCLOUD_PROJECTS): required but not set")
	}
	var out []*hproject
	for _, name := range order {
		p := &hproject{name: name, nudge: make(chan struct{}, 1)}
		if g, ok := given[name]; ok {
			p.hc, p.rl = g.Client, g.RateLimit
		} else {
			cp, _ := cfg.Project(name)
			p.rl = &RateLimitTracker{}
			var reg prometheus.Registerer
			if o.registry != nil {
				reg = prometheus.WrapRegistererWith(prometheus.Labels{"project": name}, o.registry)
			}
			hc, err := newHCloudClient(cfg, cp, p.rl, reg)
			if err != nil {
				return nil, err
			}
			p.hc = hc
		}
		out = append(out, p)
	}
	return out, nil
}

// hcloudProjects lists the worker's projects' clients.
func (w *Worker) hcloudProjects() []HCloudProject {
	out := make([]HCloudProject, len(w.projects))
	for i, p := range w.projects {
		out[i] = HCloudProject{Name: p.name, Client: p.hc, RateLimit: p.rl}
	}
	return out
}

// project returns the project the subscription is recorded in; a subscription not placed yet
// (nothing of it exists in Hetzner) gets the first one, for look-ups that then find nothing.
func (w *Worker) project(sub db.Subscription) (*hproject, error) {
	if sub.HetznerProject == nil {
		return w.projects[0], nil
	}
	return w.projectNamed(*sub.HetznerProject)
}

// projectNamed finds a configured project by name.
func (w *Worker) projectNamed(name string) (*hproject, error) {
	for _, p := range w.projects {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fail("This subscription's server lives in the Hetzner project %q, which is not configured (HCLOUD_TOKEN is project %q; others come from HCLOUD_PROJECTS). Configure its token again, then Retry.", name, config.DefaultProject)
}

// lowBudget reports a project whose last seen rate-limit budget is under a tenth of its limit
// (the poller's own slow-down threshold): new servers go elsewhere while another has more.
func (p *hproject) lowBudget() bool {
	if p.rl == nil {
		return false
	}
	st, ok := p.rl.Latest()
	return ok && (st.Limited || st.Remaining < st.Limit/10)
}

// place records the project a subscription's server goes to, before anything is created in
// Hetzner: among the projects not known to be full (the learnt server limit) and, while one has
// budget left, not short of requests, the one holding the fewest of our servers (creations in
// flight included), in configuration order on ties. Placements are serialised so that a burst
// spreads evenly. exclude names a project that just refused a server. It returns nil only when
// exclude was the one project.
func (s *creatingStep) place(ctx context.Context, sub db.Subscription, exclude string) (*hproject, []db.ProjectUsageRow, error) {
	var chosen *hproject
	var usage []db.ProjectUsageRow
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.PlacementLock(ctx, tx); err != nil {
			return fmt.Errorf("place in a Hetzner project: %w", err)
		}
		names := make([]string, len(s.projects))
		for i, p := range s.projects {
			names[i] = p.name
		}
		var err error
		if usage, err = s.q.ProjectUsage(ctx, tx, names); err != nil {
			return fmt.Errorf("read the projects' usage: %w", err)
		}
		best := -1
		// Pass 0: room and budget; 1: room (every budget is short); 2: every project is known
		// full: the least used one is tried anyway (a limit may have been raised, foreign
		// servers deleted), and its refusal puts the subscription in the queue.
		for pass := range 3 {
			for i, u := range usage {
				p := s.projects[i]
				if p.name == exclude || (pass < 2 && u.ServerLimit != nil && u.Used >= *u.ServerLimit) {
					continue
				}
				if pass == 0 && p.lowBudget() {
					continue
				}
				if best < 0 || u.Used < usage[best].Used {
					best = i
				}
			}
			if best >= 0 {
				break
			}
		}
		if best < 0 {
			return nil
		}
		chosen = s.projects[best]
		n, err := s.q.ProvisionSetProject(ctx, tx, db.ProvisionSetProjectParams{ID: sub.ID, Project: chosen.name, FromProject: sub.HetznerProject})
		if err != nil {
			return fmt.Errorf("record the Hetzner project: %w", err)
		}
		if n == 0 {
			chosen = nil
			return errors.New("the subscription changed while it was being placed; trying again")
		}
		if sub.HetznerProject != nil {
			return event(ctx, tx, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker,
				"Hetzner project %s is full; moving to project %s (%d of our servers there)", *sub.HetznerProject, chosen.name, usage[best].Used)
		}
		if len(s.projects) > 1 {
			return event(ctx, tx, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker,
				"Placed in Hetzner project %s (%d of our servers there)", chosen.name, usage[best].Used)
		}
		return nil
	})
	if err == nil && len(usage) > 0 {
		// The placement is committed; a failed fold only leaves the deltas for the next reader.
		if ferr := foldFleet(ctx, s.q, s.pool, usage[0].Deltas); ferr != nil {
			s.log.Warn("placement", "err", ferr)
		}
	}
	return chosen, usage, err
}

// usageText renders the projects' usage for the status page: "default 100/100, b 100/100".
func usageText(usage []db.ProjectUsageRow) string {
	parts := make([]string, 0, len(usage))
	for _, u := range usage {
		lim := "?"
		if u.ServerLimit != nil {
			lim = fmt.Sprint(*u.ServerLimit)
		}
		parts = append(parts, fmt.Sprintf("%s %d/%s", u.Project, u.Used, lim))
	}
	return strings.Join(parts, ", ")
}

// moveProject takes a subscription whose project refused a server (its server limit) to another
// project with headroom: its SSH key is deleted from the full project first (it has no server
// there). moved is false when every other project is full too.
func (s *creatingStep) moveProject(ctx context.Context, p *hproject, sub db.Subscription) (moved bool, err error) {
	if len(s.projects) < 2 {
		return false, nil
	}
	// Is there room elsewhere at all? (Read without placing: the key stays while all are full.)
	names := make([]string, len(s.projects))
	for i, q := range s.projects {
		names[i] = q.name
	}
	usage, err := s.q.ProjectUsage(ctx, s.pool, names)
	if err != nil {
		return false, fmt.Errorf("read the projects' usage: %w", err)
	}
	room := false
	for _, u := range usage {
		if u.Project != p.name && (u.ServerLimit == nil || u.Used < *u.ServerLimit) {
			room = true
		}
	}
	if !room {
		return false, nil
	}
	if sub.HetznerSshKeyID != nil {
		if _, err := p.hc.SSHKey.Delete(ctx, &hcloud.SSHKey{ID: *sub.HetznerSshKeyID}); err != nil && !hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
			return false, hetznerError("delete the SSH key from the full project", err)
		}
		if err := s.q.ProvisionSetSSHKeyID(ctx, s.pool, db.ProvisionSetSSHKeyIDParams{ID: sub.ID}); err != nil {
			return false, fmt.Errorf("forget SSH key: %w", err)
		}
		sub.HetznerSshKeyID = nil
	}
	q, _, err := s.place(ctx, sub, p.name)
	if err != nil {
		return false, err
	}
	return q != nil, nil
}
