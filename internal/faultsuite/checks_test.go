package faultsuite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/testkit"
)

// subRow is what the suite reads of a subscription.
type subRow struct {
	ID       int64
	Status   string
	Error    string
	Step     string
	ServerID *int64
	KeyID    *int64
}

func readSubs(ctx context.Context, pool *pgxpool.Pool) (map[int64]subRow, error) {
	rows, err := pool.Query(ctx, `
		SELECT id, coalesce(provisioning_status::text, ''), coalesce(provisioning_error, ''),
		       coalesce(failed_step::text, ''), hetzner_server_id, hetzner_ssh_key_id
		FROM subscriptions ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read subscriptions: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (subRow, error) {
		var s subRow
		err := r.Scan(&s.ID, &s.Status, &s.Error, &s.Step, &s.ServerID, &s.KeyID)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("read subscriptions: %w", err)
	}
	out := make(map[int64]subRow, len(list))
	for _, s := range list {
		out[s.ID] = s
	}
	return out, nil
}

// waitSettled waits until every listed subscription is ready or failed and returns them. Reads
// that fail (the database restarting) are retried.
func (s *stack) waitSettled(t testing.TB, ids []int64) map[int64]subRow {
	t.Helper()
	var last map[int64]subRow
	testkit.Eventually(t, "every subscription ready or failed", func() error {
		subs, err := readSubs(context.Background(), s.pool)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		last = subs
		u := unsettled{s: s, t: t, subs: subs, counts: map[string]int{}}
		for _, id := range ids {
			u.counts[subs[id].Status]++
			if st := subs[id].Status; st != "ready" && st != "failed" {
				u.waiting = append(u.waiting, id)
			}
		}
		if len(u.waiting) > 0 {
			return u
		}
		return nil
	})
	return last
}

// unsettled says which subscriptions are still under way; their events are read only when the
// wait fails and the message is written, not at every check.
type unsettled struct {
	s       *stack
	t       testing.TB
	subs    map[int64]subRow
	counts  map[string]int
	waiting []int64
}

func (u unsettled) Error() string {
	var lines []string
	for _, id := range u.waiting[:min(len(u.waiting), 10)] {
		lines = append(lines, fmt.Sprintf("%d:%s %s", id, u.subs[id].Status, strings.Join(u.s.events(u.t, id, 4), " | ")))
	}
	return fmt.Sprintf("%v; e.g.\n%s", u.counts, strings.Join(lines, "\n"))
}

// events are the subscription's last n provisioning events, for failure messages.
func (s *stack) events(t testing.TB, id int64, n int) []string {
	rows, err := s.pool.Query(context.Background(), `
		SELECT step::text || ' ' || kind || ': ' || message FROM provisioning_events
		WHERE subscription_id = $1 ORDER BY id DESC LIMIT $2`, id, n)
	if err != nil {
		return []string{err.Error()}
	}
	evs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return []string{err.Error()}
	}
	return evs
}

// report is what the suite proves; every field but the first two must be zero.
type report struct {
	Provisioned       int // subscriptions ready at the end
	FailedThenRetried int // failed under faults, then taken to ready by Retry
	Unaccounted       int // servers in Hetzner no subscription references
	Orphans           int // servers or SSH keys labelled for a subscription that does not reference them
	Duplicates        int // subscriptions with more than one server or key in Hetzner
	JobsStuck         int // jobs running for a dead worker or available for over a minute
	Lost              int // subscriptions not ready at the end, or ready without their server
	// KeptForRetry counts servers and keys a subscription that failed while creating made but a
	// killed worker never recorded: failed keeps what was created, Retry adopts them by name and
	// Destroy deletes them by name. Not a problem while the subscription is failed.
	KeptForRetry int
}

func (r report) line() string {
	return fmt.Sprintf("fault suite: provisioned=%d failed_then_retried=%d servers_left_unaccounted=%d orphans=%d duplicates=%d jobs_stuck=%d lost=%d kept_for_retry_unrecorded=%d",
		r.Provisioned, r.FailedThenRetried, r.Unaccounted, r.Orphans, r.Duplicates, r.JobsStuck, r.Lost, r.KeptForRetry)
}

// summaryFile collects the summaries of a run; `make test` prints it at the end, since `go test`
// shows nothing of a passing package without -v.
const summaryFile = "../../test-artifacts/fault-suite-summary.txt"

// print logs the summary, writes it to stdout (seen with -v) and appends it to summaryFile.
func (r report) print(t testing.TB, extra string) {
	line := fmt.Sprintf("%s (%s: %s)", r.line(), t.Name(), extra)
	t.Log(line)
	fmt.Println(line)
	if err := os.MkdirAll(filepath.Dir(summaryFile), 0o755); err == nil {
		if f, err := os.OpenFile(summaryFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, _ = fmt.Fprintln(f, line)
			_ = f.Close()
		}
	}
}

// requireClean fails the test unless nothing was lost, orphaned, duplicated or stuck.
func (r report) requireClean(t testing.TB, want int) {
	t.Helper()
	require.Equal(t, want, r.Provisioned, r.line())
	require.Zero(t, r.Unaccounted, r.line())
	require.Zero(t, r.Orphans, r.line())
	require.Zero(t, r.Duplicates, r.line())
	require.Zero(t, r.JobsStuck, r.line())
	require.Zero(t, r.Lost, r.line())
}

// checkResources compares the simulator's servers and SSH keys with the subscriptions: every
// server and key is referenced by the subscription its labels name, none twice, and every ready
// subscription's server exists. Problems are described in the returned list.
func (s *stack) checkResources(subs map[int64]subRow, r *report) []string {
	var problems []string
	serverOf := map[int64]int64{} // server ID → subscription referencing it
	keyOf := map[int64]int64{}
	for _, sub := range subs {
		if sub.ServerID != nil {
			serverOf[*sub.ServerID] = sub.ID
		}
		if sub.KeyID != nil {
			keyOf[*sub.KeyID] = sub.ID
		}
	}
	// keptForRetry: the labelled subscription failed while creating and records no such resource.
	keptForRetry := func(labelled int64, recorded func(subRow) *int64) bool {
		sub, ok := subs[labelled]
		return ok && sub.Status == "failed" && sub.Step == "creating" && recorded(sub) == nil
	}
	perSub := map[int64]int{}
	live := map[int64]bool{}
	for _, srv := range s.sim.Servers() {
		labelled, _ := strconv.ParseInt(srv.Labels[provision.LabelSubscription], 10, 64)
		perSub[labelled]++
		live[srv.ID] = true
		owner, ok := serverOf[srv.ID]
		switch {
		case !ok && keptForRetry(labelled, func(s subRow) *int64 { return s.ServerID }) && srv.Name == s.serverName(labelled):
			r.KeptForRetry++
		case !ok:
			r.Unaccounted++
			problems = append(problems, fmt.Sprintf("server %d %s (status %s) is referenced by no subscription", srv.ID, srv.Name, srv.Status))
		case owner != labelled || srv.Name != s.serverName(owner):
			r.Orphans++
			problems = append(problems, fmt.Sprintf("server %d %s is referenced by subscription %d but labelled for %d", srv.ID, srv.Name, owner, labelled))
		}
	}
	keysPerSub := map[int64]int{}
	for _, k := range s.sim.SSHKeys() {
		labelled, _ := strconv.ParseInt(k.Labels[provision.LabelSubscription], 10, 64)
		keysPerSub[labelled]++
		owner, ok := keyOf[k.ID]
		if !ok && keptForRetry(labelled, func(s subRow) *int64 { return s.KeyID }) && k.Name == s.serverName(labelled) {
			r.KeptForRetry++
			continue
		}
		if !ok || owner != labelled {
			r.Orphans++
			problems = append(problems, fmt.Sprintf("SSH key %d %s is not referenced by subscription %d", k.ID, k.Name, labelled))
		}
	}
	for id, n := range perSub {
		if n > 1 {
			r.Duplicates++
			problems = append(problems, fmt.Sprintf("subscription %d has %d servers", id, n))
		}
	}
	for id, n := range keysPerSub {
		if n > 1 {
			r.Duplicates++
			problems = append(problems, fmt.Sprintf("subscription %d has %d SSH keys", id, n))
		}
	}
	for _, sub := range subs {
		if sub.Status == "ready" && (sub.ServerID == nil || !live[*sub.ServerID]) {
			r.Lost++
			problems = append(problems, fmt.Sprintf("subscription %d is ready but its server is not in Hetzner", sub.ID))
		}
	}
	sort.Strings(problems)
	return problems
}

// workerPID reads the process ID out of a River client ID (host-pid-random, see provision.Worker).
var workerPID = regexp.MustCompile(`-(\d+)-[0-9a-f]+$`)

// stuckJobs lists River jobs that nobody will run: running for a worker process that is dead,
// or available (due) for over a minute.
func (s *stack) stuckJobs(ctx context.Context) ([]string, error) {
	type job struct {
		id          int64
		kind, state string
		by          string
		overdue     bool
	}
	var jobs []job
	err := s.eachJob(ctx, river.NewJobListParams().States(rivertype.JobStateRunning, rivertype.JobStateAvailable), func(r *rivertype.JobRow) {
		j := job{id: r.ID, kind: r.Kind, state: string(r.State), overdue: r.ScheduledAt.Before(time.Now().Add(-time.Minute))}
		if len(r.AttemptedBy) > 0 {
			j.by = r.AttemptedBy[len(r.AttemptedBy)-1]
		}
		jobs = append(jobs, j)
	})
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	alive := s.liveWorkerPIDs()
	var stuck []string
	for _, j := range jobs {
		switch j.state {
		case "running":
			m := workerPID.FindStringSubmatch(j.by)
			pid := 0
			if m != nil {
				pid, _ = strconv.Atoi(m[1])
			}
			if !alive[pid] {
				stuck = append(stuck, fmt.Sprintf("job %d %s running for dead worker %q", j.id, j.kind, j.by))
			}
		case "available":
			if j.overdue {
				stuck = append(stuck, fmt.Sprintf("job %d %s available for over a minute", j.id, j.kind))
			}
		}
	}
	return stuck, nil
}

// jobsSettle waits for jobs left by killed workers to be rescued: a job is stuck only if the
// system does not recover it by itself, and then the wait fails naming it.
func (s *stack) jobsSettle(t testing.TB) {
	t.Helper()
	testkit.Eventually(t, "no stuck jobs", func() error {
		stuck, err := s.stuckJobs(context.Background())
		if err != nil {
			return err
		}
		if len(stuck) > 0 {
			return fmt.Errorf("stuck: %v", stuck)
		}
		return nil
	})
}

// jobStates counts River jobs by state (River's driver's count), for the summary.
func (s *stack) jobStates(t testing.TB) string {
	t.Helper()
	counts, err := riverpgxv5.New(s.pool).GetExecutor().JobCountByAllStates(context.Background(), &riverdriver.JobCountByAllStatesParams{})
	require.NoError(t, err)
	var states []string
	for _, st := range rivertype.JobStates() {
		if counts[st] > 0 {
			states = append(states, fmt.Sprintf("%s=%d", st, counts[st]))
		}
	}
	return strings.Join(states, ",")
}

// eachJob calls fn for every job River's JobList finds with params (an insert-only client on the
// stack's pool), page by page.
func (s *stack) eachJob(ctx context.Context, params *river.JobListParams, fn func(*rivertype.JobRow)) error {
	rc, err := river.NewClient(riverpgxv5.New(s.pool), &river.Config{})
	if err != nil {
		return err
	}
	params = params.First(1000)
	for {
		res, err := rc.JobList(ctx, params)
		if err != nil {
			return err
		}
		for _, j := range res.Jobs {
			fn(j)
		}
		if len(res.Jobs) < 1000 || res.LastCursor == nil {
			return nil
		}
		params = params.After(res.LastCursor)
	}
}

// serverName is the subscription's server name in the stack's installation.
func (s *stack) serverName(id int64) string {
	inst, err := db.New().InstallationID(context.Background(), s.pool)
	if err != nil {
		panic(fmt.Sprintf("installation ID: %v", err))
	}
	return provision.ServerName(inst, id)
}
