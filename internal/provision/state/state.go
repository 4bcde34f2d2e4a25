// Package state is the provisioning state machine: its states, the events that move a
// subscription between them, and what follows from that table (which buttons the status page
// offers, where Retry resumes, which states a worker drives). It is the one place a transition
// is defined: the worker, the service, the status view, the reconciler, the sweeper and the SQL
// guards in queries/ read it (the SQL guards take their source states from [Sources]; a test
// runs every state-changing query against every state and compares with the table).
//
// The diagram in the README is [Diagram]'s output; a test keeps them equal.
package state

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rachelcloud/admin/internal/db"
)

// State is a subscription's provisioning status: the PostgreSQL enum provisioning_status (a test
// checks that [All] equals the enum's values). It is an alias of the generated type, so columns
// read by sqlc are States without conversion.
type State = db.ProvisioningStatus

// The states. None is the NULL column: a subscription never provisioned.
const (
	None             State = ""
	Pending                = db.ProvisioningStatusPending
	Creating               = db.ProvisioningStatusCreating
	CloudInit              = db.ProvisioningStatusCloudInit
	InjectingSecrets       = db.ProvisioningStatusInjectingSecrets
	Ready                  = db.ProvisioningStatusReady
	Failed                 = db.ProvisioningStatusFailed
	Destroying             = db.ProvisioningStatusDestroying
	Destroyed              = db.ProvisioningStatusDestroyed
)

// All is every value of the enum provisioning_status, in the enum's order (None is not one).
var All = []State{Pending, Creating, CloudInit, InjectingSecrets, Ready, Failed, Destroying, Destroyed}

// Working are the states a worker drives on by itself (each is a step with a job and a
// deadline); every other state waits for an admin.
var Working = []State{Pending, Creating, CloudInit, InjectingSecrets, Destroying}

// BeforeServer are the states of a provisioning whose server may not be recorded yet: the
// creating step adopts the server it made (and still needs the access key pair for it).
var BeforeServer = []State{Pending, Creating}

// Path is the happy path of a provisioning, for the status page's timeline.
var Path = []State{Pending, Creating, CloudInit, InjectingSecrets, Ready}

// Event is what moves a subscription: an admin's action (a button) or something the worker or
// the VPS reports.
type Event string

// Admin actions.
const (
	Provision Event = "provision"
	Retry     Event = "retry"
	Reinject  Event = "reinject"
	Reboot    Event = "reboot"
	Destroy   Event = "destroy"
	// MarkGone: an admin confirmed the reconciler's finding that the server is gone from Hetzner.
	MarkGone Event = "mark_gone"
)

// Worker and VPS events.
const (
	// Start: a worker picked the provisioning up.
	Start Event = "start"
	// ServerUp: the server's create and start actions finished; cloud-init runs now.
	ServerUp Event = "server_up"
	// CallbackReceived: the VPS called back (possibly before the worker saw its actions finish).
	CallbackReceived Event = "callback"
	// CloudInitSeen: no callback came, but the worker saw over SSH that cloud-init finished.
	CloudInitSeen Event = "cloud_init_seen"
	// Injected: the secrets are on the VPS and the assistant runs.
	Injected Event = "injected"
	// Deleted: the server and its SSH key are gone from Hetzner.
	Deleted Event = "deleted"
	// StepFailed: the current step failed (an error, its deadline); the step is kept for Retry.
	StepFailed Event = "step_failed"
	// ServerVanished: the worker found the subscription's server deleted outside this app.
	ServerVanished Event = "server_vanished"
)

// Events is every event, admin actions first.
var Events = []Event{Provision, Retry, Reinject, Reboot, Destroy, MarkGone,
	Start, ServerUp, CallbackReceived, CloudInitSeen, Injected, Deleted, StepFailed, ServerVanished}

// Admin reports whether an admin's action causes e (it is audited and offered as a button).
func (e Event) Admin() bool { return slices.Index(Events, e) < slices.Index(Events, Start) }

// Rule is one row of the transition table: Event moves a subscription in any of From to To.
// A Rule with Keep set accepts Event in From and changes nothing: a button pressed again while
// its effect is under way is no error.
type Rule struct {
	Event Event
	From  []State
	To    State
	Keep  bool
}

// live are the states with something (possibly) in Hetzner that Destroy removes.
var live = []State{Pending, Creating, CloudInit, InjectingSecrets, Ready, Failed}

// Table is the transition table: every move of a subscription's provisioning status.
var Table = []Rule{
	{Event: Provision, From: []State{None, Destroyed}, To: Pending},
	{Event: Provision, From: []State{Pending, Creating, CloudInit, InjectingSecrets, Ready}, Keep: true},
	{Event: Start, From: []State{Pending}, To: Creating},
	{Event: ServerUp, From: []State{Creating}, To: CloudInit},
	{Event: CallbackReceived, From: []State{Creating, CloudInit}, To: InjectingSecrets},
	{Event: CloudInitSeen, From: []State{CloudInit}, To: InjectingSecrets},
	{Event: Injected, From: []State{InjectingSecrets}, To: Ready},
	{Event: Reinject, From: []State{Ready}, To: InjectingSecrets},
	{Event: Reboot, From: []State{Ready}, To: Ready},
	{Event: StepFailed, From: Working, To: Failed},
	{Event: ServerVanished, From: []State{CloudInit, InjectingSecrets}, To: Failed},
	{Event: MarkGone, From: live, To: Failed},
	// Retry resumes at the step that failed: see RetryTarget.
	{Event: Retry, From: []State{Failed}, To: Creating},
	{Event: Retry, From: []State{Failed}, To: CloudInit},
	{Event: Retry, From: []State{Failed}, To: InjectingSecrets},
	{Event: Retry, From: []State{Failed}, To: Destroying},
	{Event: Destroy, From: live, To: Destroying},
	// Pressed again while the destroy runs, or after it finished: a destroy with nothing to
	// delete (a pending provisioning) is done within a few queries, so a double press often
	// arrives after it.
	{Event: Destroy, From: []State{Destroying, Destroyed}, Keep: true},
	{Event: Deleted, From: []State{Destroying}, To: Destroyed},
}

// Verdict is what an event does in a state.
type Verdict int

// Verdicts.
const (
	// Refuse: the event is not allowed in the state.
	Refuse Verdict = iota
	// Keep: the event is accepted and changes nothing.
	Keep
	// Move: the event moves the subscription (possibly to the same state: Reboot).
	Move
)

// Decide says what e does in from.
func Decide(from State, e Event) Verdict {
	for _, r := range Table {
		if r.Event == e && slices.Contains(r.From, from) {
			if r.Keep {
				return Keep
			}
			return Move
		}
	}
	return Refuse
}

// Targets are the states e may move from to, in the table's order (several only for Retry).
func Targets(from State, e Event) []State {
	var out []State
	for _, r := range Table {
		if r.Event == e && !r.Keep && slices.Contains(r.From, from) {
			out = append(out, r.To)
		}
	}
	return out
}

// Next is the state e moves from to; ok is false when e does not move from (refused, kept, or
// ambiguous: Retry's target is [RetryTarget]'s).
func Next(from State, e Event) (to State, ok bool) {
	t := Targets(from, e)
	if len(t) != 1 {
		return None, false
	}
	return t[0], true
}

// Can says whether e may move from to to.
func Can(from State, e Event, to State) bool { return slices.Contains(Targets(from, e), to) }

// Sources are the states e moves (not those it keeps), in the order of [All] (None first): the
// guard of the SQL query that makes the move.
func Sources(e Event) []State {
	var out []State
	for _, s := range append([]State{None}, All...) {
		if len(Targets(s, e)) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// Guard is the @sources parameter of the SQL query that makes e's move: [Sources] as text.
func Guard(e Event) []string { return Strings(Sources(e)) }

// Strings are the states as text, for a query parameter of type text[].
func Strings(ss []State) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// Check returns an error naming the event and the states when e may not move from to to.
func Check(from State, e Event, to State) error {
	if !Can(from, e, to) {
		return fmt.Errorf("%s from %s to %s is not a transition", e, Name(from), Name(to))
	}
	return nil
}

// MayProvision says whether Provision starts a provisioning in s.
func MayProvision(s State) bool { return Decide(s, Provision) == Move }

// InProgress says whether a worker drives s on by itself.
func InProgress(s State) bool { return slices.Contains(Working, s) }

// Terminal says whether nothing changes in s without an admin (ready, failed, destroyed, never
// provisioned): the status page stops polling.
func Terminal(s State) bool { return !InProgress(s) }

// HandlesUnrecordedServer says whether the step of s itself adopts or deletes a server of the
// subscription that is not recorded yet (creating adopts it, destroying deletes it): the
// reconciler leaves such a server alone.
func HandlesUnrecordedServer(s State) bool {
	return slices.Contains(BeforeServer, s) || s == Destroying
}

// RetryTarget is where Retry resumes a provisioning that failed at failedStep: pending goes on
// at creating; cloud_init and injecting_secrets need the server (hasServer: its ID and address
// are recorded), without it Retry creates a new one; the rest resume where they failed.
func RetryTarget(failedStep State, hasServer bool) State {
	switch failedStep {
	case Pending:
		return Creating
	case CloudInit, InjectingSecrets:
		if !hasServer {
			return Creating
		}
	}
	return failedStep
}

// Actions says which admin actions a state offers (the status page's buttons).
type Actions struct{ Provision, Retry, Reinject, Reboot, Destroy bool }

// Allowed are the actions s offers; Reboot also needs the server (hasServer).
func Allowed(s State, hasServer bool) Actions {
	return Actions{
		Provision: Decide(s, Provision) == Move,
		Retry:     Decide(s, Retry) == Move,
		Reinject:  Decide(s, Reinject) == Move,
		Reboot:    Decide(s, Reboot) == Move && hasServer,
		Destroy:   Decide(s, Destroy) == Move,
	}
}

// Name is s as the UI and errors show it: "none" for a subscription never provisioned.
func Name(s State) string {
	if s == None {
		return "none"
	}
	return string(s)
}

// Diagram is the transition table as text, one line per event and source states (the README
// shows it; Retry's targets are [RetryTarget]'s).
func Diagram() string {
	var b strings.Builder
	w := 0
	for _, e := range Events {
		w = max(w, len(e))
	}
	for i := 0; i < len(Table); i++ {
		r := Table[i]
		from := make([]string, len(r.From))
		for j, s := range r.From {
			from[j] = Name(s)
		}
		to := []string{Name(r.To)}
		if r.Keep {
			to = []string{"(no change)"}
		}
		for ; i+1 < len(Table) && !r.Keep && Table[i+1].Event == r.Event && !Table[i+1].Keep &&
			slices.Equal(Table[i+1].From, r.From); i++ {
			to = append(to, Name(Table[i+1].To))
		}
		fmt.Fprintf(&b, "%-*s  %s → %s\n", w, r.Event, strings.Join(from, ", "), strings.Join(to, " | "))
	}
	return b.String()
}
