package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rachelcloud/admin/internal/db"
)

// isCapacityError reports Hetzner saying a location cannot take the server right now: 412
// resource_unavailable or 422 placement_error. Decided by the error code, never by its text.
func isCapacityError(err error) bool {
	return hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable, hcloud.ErrorCodePlacementError)
}

// LimitWaitPrefix starts the event that says the creating step waits for Hetzner's server limit;
// the status page shows the latest such event.
const LimitWaitPrefix = "Waiting for Hetzner's server limit"

// queuedForLimit keeps the server-limit queue in request order: while subscriptions that asked
// earlier wait for the limit, this one waits behind them instead of taking a freed slot.
// It returns a snooze outcome when the subscription must wait, else nil.
func (s *creatingStep) queuedForLimit(ctx context.Context, sub db.Subscription) (*outcome, error) {
	ahead, err := s.q.LimitWaitAhead(ctx, s.pool, db.LimitWaitAheadParams{ID: sub.ID, Since: sub.LimitWaitSince})
	if err != nil {
		return nil, fmt.Errorf("read the server-limit queue: %w", err)
	}
	if ahead == 0 {
		return nil, nil
	}
	if sub.LimitWaitSince == nil {
		if err := s.startLimitWait(ctx, sub.ID, fmt.Sprintf("%s: %d earlier provisioning(s) wait for a free server slot; this one goes after them.", LimitWaitPrefix, ahead)); err != nil {
			return nil, err
		}
	}
	out := snoozeFor(s.limitPoll())
	return &out, nil
}

// limitPoll is how often a subscription waiting for the server limit looks again. A destroy
// that frees a server also wakes the first waiter at once.
func (s *creatingStep) limitPoll() time.Duration {
	return max(s.timings.PollMax, s.timings.PollMin)
}

// placeAgain re-runs the creating step at once in the project the subscription moved to; it is
// not the step finishing (no step metrics).
var placeAgain = outcome{next: true, moved: true}

// waitForLimit is the answer to 403 resource_limit_exceeded from project p (nil: placement found
// every project full): the provisioning does not fail. It moves to another project with room
// when there is one, else it waits in the queue, showing how many servers the projects hold.
// Hetzner has no endpoint for a project's limits; the limit is learnt as the number of servers
// held when a create is refused.
func (s *creatingStep) waitForLimit(ctx context.Context, p *hproject, sub db.Subscription, usage []db.ProjectUsageRow) (outcome, error) {
	used := -1
	if p != nil {
		_, resp, err := p.hc.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{PerPage: 1}})
		if err == nil && resp != nil && resp.Meta.Pagination != nil {
			used = resp.Meta.Pagination.TotalEntries
			if err := s.q.ProjectLimitPut(ctx, s.pool, db.ProjectLimitPutParams{Project: p.name, ServerLimit: int32(used)}); err != nil {
				return waiting, fmt.Errorf("record the project's server limit: %w", err)
			}
		}
		moved, err := s.moveProject(ctx, p, sub)
		if err != nil {
			return waiting, err
		}
		if moved {
			return placeAgain, nil
		}
	}
	msg := LimitWaitPrefix + ": the project is full. Provisioning goes on, in request order, as servers are freed."
	switch {
	case len(s.projects) > 1:
		if usage == nil {
			names := make([]string, len(s.projects))
			for i, q := range s.projects {
				names[i] = q.name
			}
			usage, _ = s.q.ProjectUsage(ctx, s.pool, names)
		}
		msg = fmt.Sprintf("%s: every project is full (%s). Provisioning goes on, in request order, as servers are freed.", LimitWaitPrefix, usageText(usage))
	case used >= 0:
		msg = fmt.Sprintf("%s: %d of %d used. Provisioning goes on, in request order, as servers are freed.", LimitWaitPrefix, used, used)
	}
	if err := s.startLimitWait(ctx, sub.ID, msg); err != nil {
		return waiting, err
	}
	return snoozeFor(s.limitPoll()), nil
}

// startLimitWait puts the subscription in the queue, with an event the first time.
func (s *creatingStep) startLimitWait(ctx context.Context, subID int64, message string) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		started, err := s.q.LimitWaitStart(ctx, tx, subID)
		if err != nil {
			return fmt.Errorf("queue for the server limit: %w", err)
		}
		if !started {
			return nil
		}
		return event(ctx, tx, subID, db.ProvisioningStatusCreating, "info", actorWorker, "%s", message)
	})
}

// wakeLimitWaiter runs the first subscription waiting for the server limit now, inside tx (a
// server was just freed).
func wakeLimitWaiter(ctx context.Context, jobs inserter, tx pgx.Tx) error {
	id, err := db.New().LimitWaitHead(ctx, tx)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the server-limit queue: %w", err)
	}
	return enqueueStep(ctx, jobs, tx, id)
}

// createInPlan creates the server of the subscription's plan, trying the plan's locations in
// order while Hetzner answers that a location has no capacity (each fallback is an event the
// status page shows). When every location is full it returns a transient error: the step is
// retried with backoff until CREATE_DEADLINE. res is nil when no server was created; out is
// then what to do (a wait for the server limit), unless err says more.
func (s *creatingStep) createInPlan(ctx context.Context, p *hproject, sub db.Subscription, opts hcloud.ServerCreateOpts) (res *hcloud.ServerCreateResult, out *outcome, err error) {
	plan := s.cfg.PlanFor(sub.Plan)
	opts.ServerType = &hcloud.ServerType{Name: plan.ServerType}
	opts.Image = &hcloud.Image{Name: plan.Image}
	var full []string
	for i, loc := range plan.Locations {
		opts.Location = &hcloud.Location{Name: loc}
		s.hook("before-server-create")
		r, _, err := p.hc.Server.Create(ctx, opts)
		s.hook("server-created")
		switch {
		case err == nil:
			return &r, nil, nil
		case hcloud.IsError(err, hcloud.ErrorCodeResourceLimitExceeded):
			o, err := s.waitForLimit(ctx, p, sub, nil)
			return nil, &o, err
		case !isCapacityError(err):
			return nil, nil, err
		}
		full = append(full, fmt.Sprintf("%s (%s)", loc, errCode(err)))
		next := "no other location is configured; trying again with backoff"
		if i+1 < len(plan.Locations) {
			next = "trying " + plan.Locations[i+1]
		} else if len(plan.Locations) > 1 {
			next = "no location of the plan has room; trying them again with backoff"
		}
		if err := event(ctx, s.pool, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker,
			"Hetzner has no capacity for %s in %s right now (%s); %s", plan.ServerType, loc, errCode(err), next); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("no capacity for %s in %s: %w", plan.ServerType, strings.Join(full, ", "), errNoCapacity)
}

// errNoCapacity marks the transient "every location is full" error.
var errNoCapacity = errors.New("no capacity at Hetzner in the plan's locations right now")

func errCode(err error) string {
	var herr hcloud.Error
	if errors.As(err, &herr) {
		return string(herr.Code)
	}
	return "error"
}

// firewallGone tells whether the shared firewall a create named no longer exists, by asking
// Hetzner for it (GET /firewalls/{id}), never by reading an error's text.
func (s *creatingStep) firewallGone(ctx context.Context, p *hproject, id int64, createErr error) bool {
	if !hcloud.IsError(createErr, hcloud.ErrorCodeInvalidInput, hcloud.ErrorCodeNotFound) {
		return false
	}
	fw, _, err := p.hc.Firewall.GetByID(ctx, id)
	return err == nil && fw == nil
}

// serverFacts records what server the subscription actually got: type, location, image and the
// catalog's net monthly price for that type there.
func serverFacts(ctx context.Context, tx db.DBTX, subID int64, srv *hcloud.Server) error {
	p := db.ProvisionSetServerFactsParams{ID: subID}
	if srv.ServerType != nil {
		p.ServerType = srv.ServerType.Name
		if srv.Location != nil {
			for _, pr := range srv.ServerType.Pricings {
				if pr.Location != nil && pr.Location.Name == srv.Location.Name {
					var n pgtype.Numeric
					if err := n.Scan(pr.Monthly.Net); err == nil {
						p.PriceMonthly = n
					}
				}
			}
		}
	}
	if srv.Location != nil {
		p.ServerLocation = srv.Location.Name
	}
	if srv.Image != nil {
		p.ServerImage = srv.Image.Name
	}
	if err := db.New().ProvisionSetServerFacts(ctx, tx, p); err != nil {
		return fmt.Errorf("record the facts of server %d: %w", srv.ID, err)
	}
	return nil
}

// describeServer names type, location and image of a server, for events.
func describeServer(srv *hcloud.Server) string {
	var parts []string
	if srv.ServerType != nil {
		parts = append(parts, srv.ServerType.Name)
	}
	if srv.Location != nil {
		parts = append(parts, "in "+srv.Location.Name)
	}
	if srv.Image != nil && srv.Image.Name != "" {
		parts = append(parts, "with "+srv.Image.Name)
	}
	return strings.Join(parts, " ")
}

// Fleet is the servers the app holds in Hetzner, what they cost a month by the catalog's prices,
// and the project's server limit as far as Hetzner has told it.
type Fleet struct {
	Servers    int
	MonthlyEUR float64
	// Unpriced counts servers without a recorded price (created before prices were recorded).
	Unpriced int
	// ServerLimit is the limit learnt at the last resource_limit_exceeded (0: never hit).
	ServerLimit int
	// Waiting counts provisionings waiting for the server limit.
	Waiting int
	// Projects are the configured Hetzner projects' usage and budgets, in configuration order.
	Projects []ProjectBudget
}

// ProjectBudget is one Hetzner project on the dashboard: our servers there against its learnt
// server limit, and its request budget.
type ProjectBudget struct {
	Name string
	// Servers counts our servers in the project, creations in flight included.
	Servers int
	// ServerLimit is the limit learnt at its last resource_limit_exceeded (0: never hit).
	ServerLimit int
	// RateLimit is its latest rate-limit headers; BudgetKnown is false before any response.
	RateLimit   RateLimitState
	BudgetKnown bool
}

// fleetFoldAt is how many unfolded fleet deltas make a reader fold them into the totals.
const fleetFoldAt = 100

// foldFleet folds the fleet's deltas into the totals the database maintains once a reader has
// seen fleetFoldAt of them, so that reading the fleet stays a few rows however busy the workers
// are (the dashboard and placement both read it).
func foldFleet(ctx context.Context, q *db.Queries, dbtx db.DBTX, deltas int32) error {
	if deltas < fleetFoldAt {
		return nil
	}
	if err := q.FleetCountsFold(ctx, dbtx); err != nil {
		return fmt.Errorf("fold the fleet counts: %w", err)
	}
	return nil
}

// Fleet returns the fleet's size, cost and the server limit, for the dashboard.
func (s *Service) Fleet(ctx context.Context) (Fleet, error) {
	sum, err := s.q.FleetSummary(ctx, s.pool)
	if err != nil {
		return Fleet{}, fmt.Errorf("read the fleet summary: %w", err)
	}
	f := Fleet{Servers: int(sum.Servers), MonthlyEUR: sum.MonthlyEur, Unpriced: int(sum.Unpriced), Waiting: int(sum.Waiting)}
	if err := foldFleet(ctx, s.q, s.pool, sum.Deltas); err != nil {
		return Fleet{}, err
	}
	usage, err := s.q.ProjectUsage(ctx, s.pool, s.cfg.ProjectNames())
	if err != nil {
		return Fleet{}, fmt.Errorf("read the projects' usage: %w", err)
	}
	budgets := s.RateLimits()
	allKnown := len(usage) > 0
	for _, u := range usage {
		pb := ProjectBudget{Name: u.Project, Servers: int(u.Used)}
		if u.ServerLimit != nil {
			pb.ServerLimit = int(*u.ServerLimit)
			f.ServerLimit += pb.ServerLimit
		} else {
			allKnown = false
		}
		pb.RateLimit, pb.BudgetKnown = budgets[u.Project]
		f.Projects = append(f.Projects, pb)
	}
	if !allKnown {
		f.ServerLimit = 0 // the sum means something only when every project's limit is known
	}
	return f, nil
}
