package state_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/provision/state"
)

// every is each state a subscription can be in: never provisioned, then the enum's values.
var every = append([]state.State{state.None}, state.All...)

// expected is what each event does in each state, written out by hand from the behaviour the
// service, the worker and the SQL had before the table existed: the target state, or "keep"
// (accepted, nothing changes); a pair not listed is refused. Retry lists its possible targets.
var expected = map[state.Event]map[state.State][]string{
	state.Provision: {
		state.None: {"pending"}, state.Destroyed: {"pending"},
		state.Pending: {"keep"}, state.Creating: {"keep"}, state.CloudInit: {"keep"},
		state.InjectingSecrets: {"keep"}, state.Ready: {"keep"},
	},
	state.Retry:    {state.Failed: {"creating", "cloud_init", "injecting_secrets", "destroying"}},
	state.Reinject: {state.Ready: {"injecting_secrets"}},
	state.Reboot:   {state.Ready: {"ready"}},
	state.Destroy: {
		state.Pending: {"destroying"}, state.Creating: {"destroying"}, state.CloudInit: {"destroying"},
		state.InjectingSecrets: {"destroying"}, state.Ready: {"destroying"}, state.Failed: {"destroying"},
		state.Destroying: {"keep"}, state.Destroyed: {"keep"},
	},
	state.MarkGone: {
		state.Pending: {"failed"}, state.Creating: {"failed"}, state.CloudInit: {"failed"},
		state.InjectingSecrets: {"failed"}, state.Ready: {"failed"}, state.Failed: {"failed"},
	},
	state.Start:            {state.Pending: {"creating"}},
	state.ServerUp:         {state.Creating: {"cloud_init"}},
	state.CallbackReceived: {state.Creating: {"injecting_secrets"}, state.CloudInit: {"injecting_secrets"}},
	state.CloudInitSeen:    {state.CloudInit: {"injecting_secrets"}},
	state.Injected:         {state.InjectingSecrets: {"ready"}},
	state.Deleted:          {state.Destroying: {"destroyed"}},
	state.StepFailed: {
		state.Pending: {"failed"}, state.Creating: {"failed"}, state.CloudInit: {"failed"},
		state.InjectingSecrets: {"failed"}, state.Destroying: {"failed"},
	},
	state.ServerVanished: {state.CloudInit: {"failed"}, state.InjectingSecrets: {"failed"}},
}

// TestEveryPair checks Decide, Targets, Next, Can and Check for every state and event against
// the expectations written out above.
func TestEveryPair(t *testing.T) {
	t.Parallel()
	require.Len(t, expected, len(state.Events), "every event has its expectations")
	for _, e := range state.Events {
		for _, from := range every {
			t.Run(fmt.Sprintf("%s/%s", e, state.Name(from)), func(t *testing.T) {
				want := expected[e][from]
				var wantTargets []state.State
				wantVerdict := state.Refuse
				switch {
				case slices.Equal(want, []string{"keep"}):
					wantVerdict = state.Keep
				case len(want) > 0:
					wantVerdict = state.Move
					for _, w := range want {
						wantTargets = append(wantTargets, state.State(w))
					}
				}
				require.Equal(t, wantVerdict, state.Decide(from, e))
				require.Equal(t, wantTargets, state.Targets(from, e))
				next, ok := state.Next(from, e)
				require.Equal(t, len(wantTargets) == 1, ok)
				if ok {
					require.Equal(t, wantTargets[0], next)
				}
				require.Equal(t, wantVerdict == state.Move, slices.Contains(state.Sources(e), from))
				for _, to := range every {
					can := slices.Contains(wantTargets, to)
					require.Equal(t, can, state.Can(from, e, to), "to %s", state.Name(to))
					if can {
						require.NoError(t, state.Check(from, e, to))
					} else {
						require.Error(t, state.Check(from, e, to))
					}
				}
			})
		}
	}
}

// TestTableIsWellFormed: no event both moves and keeps a state, none has two rules for one state
// and target, every state but never-provisioned is reached, and none is a dead end.
func TestTableIsWellFormed(t *testing.T) {
	t.Parallel()
	type key struct {
		e    state.Event
		from state.State
		to   state.State
		keep bool
	}
	seen := map[key]bool{}
	decided := map[state.Event]map[state.State]bool{}
	reached := map[state.State]bool{}
	for _, r := range state.Table {
		require.Contains(t, state.Events, r.Event)
		require.NotEmpty(t, r.From, "%s", r.Event)
		if r.Keep {
			require.Equal(t, state.None, r.To, "a keeping rule of %s names no target", r.Event)
		} else {
			require.Contains(t, state.All, r.To, "%s moves to a state of the enum", r.Event)
			reached[r.To] = true
		}
		for _, from := range r.From {
			require.Contains(t, every, from)
			k := key{r.Event, from, r.To, r.Keep}
			require.False(t, seen[k], "duplicate rule %+v", k)
			seen[k] = true
			if decided[r.Event] == nil {
				decided[r.Event] = map[state.State]bool{}
			}
			if r.Keep {
				require.False(t, decided[r.Event][from], "%s both keeps and moves %s", r.Event, from)
			}
		}
		if !r.Keep {
			for _, from := range r.From {
				decided[r.Event][from] = true
			}
		}
	}
	for _, s := range state.All {
		require.True(t, reached[s], "%s is reached by some event", s)
		moves := false
		for _, e := range state.Events {
			if to, ok := state.Next(s, e); ok && to != s || len(state.Targets(s, e)) > 1 {
				moves = true
			}
		}
		require.True(t, moves, "%s is left by some event", s)
	}
	for _, e := range state.Events {
		if e == state.Retry {
			continue
		}
		for _, from := range every {
			require.LessOrEqual(t, len(state.Targets(from, e)), 1, "%s has one target from %s", e, state.Name(from))
		}
	}
}

// TestPredicates checks the predicates for every state against the rules the status page, the
// worker and the service applied before the table existed.
func TestPredicates(t *testing.T) {
	t.Parallel()
	for _, s := range every {
		t.Run(state.Name(s), func(t *testing.T) {
			working := s == state.Pending || s == state.Creating || s == state.CloudInit ||
				s == state.InjectingSecrets || s == state.Destroying
			require.Equal(t, working, state.InProgress(s))
			require.Equal(t, !working, state.Terminal(s))
			require.Equal(t, s == state.None || s == state.Destroyed, state.MayProvision(s))
			require.Equal(t, s == state.Pending || s == state.Creating || s == state.Destroying, state.HandlesUnrecordedServer(s))
			for _, hasServer := range []bool{false, true} {
				require.Equal(t, state.Actions{
					Provision: s == state.None || s == state.Destroyed,
					Retry:     s == state.Failed,
					Reinject:  s == state.Ready,
					Reboot:    s == state.Ready && hasServer,
					Destroy:   s != state.None && s != state.Destroyed && s != state.Destroying,
				}, state.Allowed(s, hasServer), "server %v", hasServer)
			}
		})
	}
	require.Equal(t, "none", state.Name(state.None))
	require.Equal(t, "cloud_init", state.Name(state.CloudInit))
	require.Equal(t, []string{"", "destroyed"}, state.Guard(state.Provision))
	require.Equal(t, []string{"creating", "cloud_init"}, state.Guard(state.CallbackReceived))
}

// TestRetryTarget: Retry resumes at the failed step, creating a new server when the steps that
// need one lost it, and each target is one the table allows.
func TestRetryTarget(t *testing.T) {
	t.Parallel()
	want := map[state.State][2]state.State{ // failed step → target without, with a server
		state.Pending:          {state.Creating, state.Creating},
		state.Creating:         {state.Creating, state.Creating},
		state.CloudInit:        {state.Creating, state.CloudInit},
		state.InjectingSecrets: {state.Creating, state.InjectingSecrets},
		state.Destroying:       {state.Destroying, state.Destroying},
	}
	targets := map[state.State]bool{}
	// A failed step is one StepFailed leaves (the database's failed_step_is_a_step agrees), or
	// creating (a vanished server).
	steps := state.Sources(state.StepFailed)
	require.Len(t, steps, len(want))
	for _, step := range steps {
		for i, hasServer := range []bool{false, true} {
			got := state.RetryTarget(step, hasServer)
			require.Equal(t, want[step][i], got, "failed at %s, server %v", step, hasServer)
			require.True(t, state.Can(state.Failed, state.Retry, got), "retry to %s", got)
			targets[got] = true
		}
	}
	for _, to := range state.Targets(state.Failed, state.Retry) {
		require.True(t, targets[to], "retry target %s is reached by RetryTarget", to)
	}
}

// TestDiagram: one line per rule, naming its event, sources and target.
func TestDiagram(t *testing.T) {
	t.Parallel()
	d := state.Diagram()
	require.Contains(t, d, "provision        none, destroyed → pending\n")
	require.Contains(t, d, "destroy          destroying, destroyed → (no change)\n")
	require.Contains(t, d, "deleted          destroying → destroyed\n")
	require.Contains(t, d, "retry            failed → creating | cloud_init | injecting_secrets | destroying\n")
}

// TestREADMEShowsTheDiagram: the README's architecture section shows the table as it is.
func TestREADMEShowsTheDiagram(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	const start = "<!-- state.Diagram -->\n```text\n"
	_, rest, ok := strings.Cut(string(b), start)
	require.True(t, ok, "README.md has the marker %q", start)
	shown, _, ok := strings.Cut(rest, "```\n")
	require.True(t, ok, "the README's diagram block ends")
	require.Equal(t, state.Diagram(), shown, "README.md's state diagram differs from state.Diagram(): paste its output there")
}

// TestNoStateListsInQueries: no query lists the states a rule applies to (IN ('pending', …)):
// such lists are passed from the table, which is the one place they are defined.
func TestNoStateListsInQueries(t *testing.T) {
	t.Parallel()
	list := regexp.MustCompile(`(?i)(provisioning_status|failed_step)\s+(NOT\s+)?IN\s*\(`)
	files, err := filepath.Glob("../../../queries/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for i, line := range strings.Split(string(b), "\n") {
			require.False(t, list.MatchString(line), "%s:%d lists states: pass them from package state\n%s", f, i+1, line)
		}
	}
}
