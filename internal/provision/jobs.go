package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rachelcloud/admin/internal/logging"
)

// jobRequestID reads the request ID a job was inserted with, if any.
func jobRequestID(metadata []byte) string {
	var md struct {
		RequestID string `json:"request_id"`
	}
	if len(metadata) == 0 || json.Unmarshal(metadata, &md) != nil {
		return ""
	}
	return md.RequestID
}

// liveStates are the River job states in which a job still will or does run.
var liveStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// stepArgs is the job that moves one subscription through its steps. Unique per subscription
// while live, so one provisioning or destroy runs per subscription at a time.
type stepArgs struct {
	SubscriptionID int64 `json:"subscription_id"`
}

func (stepArgs) Kind() string { return "provision_step" }

func (stepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       queueSteps,
		MaxAttempts: 50, // step deadlines fail a subscription long before this
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// reconcileArgs runs the reconciler once.
type reconcileArgs struct{}

func (reconcileArgs) Kind() string { return "provision_reconcile" }

func (reconcileArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaintenance, MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates}}
}

// destroyOrphanArgs deletes one orphan server an admin chose to delete.
type destroyOrphanArgs struct {
	FindingID int64 `json:"finding_id"`
	ServerID  int64 `json:"server_id"`
	// Project is the Hetzner project the server was found in (empty: the first configured).
	Project string `json:"project,omitempty"`
}

func (destroyOrphanArgs) Kind() string { return "provision_destroy_orphan" }

func (destroyOrphanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queueMaintenance, MaxAttempts: 10,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates}}
}

const (
	queueSteps       = "provision"
	queueMaintenance = "provision_maintenance"
)

// inserter is the part of a River client that enqueues jobs.
type inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobRetryTx(ctx context.Context, tx pgx.Tx, id int64) (*rivertype.JobRow, error)
}

// enqueueStep makes sure the subscription's step job runs soon, inside tx: it inserts the job, or,
// when one is already waiting (snoozed or backing off), moves it to now. A running job re-reads
// the status before it finishes, and the sweeper catches the rest.
func enqueueStep(ctx context.Context, rc inserter, tx pgx.Tx, subscriptionID int64) error {
	var opts *river.InsertOpts
	if rid := logging.RequestID(ctx); rid != "" {
		// The request that started the job, for its log lines (metadata does not count for uniqueness).
		md, _ := json.Marshal(map[string]string{"request_id": rid})
		opts = &river.InsertOpts{Metadata: md}
	}
	res, err := rc.InsertTx(ctx, tx, stepArgs{SubscriptionID: subscriptionID}, opts)
	if err != nil {
		return fmt.Errorf("enqueue step job for subscription %d: %w", subscriptionID, err)
	}
	if res.UniqueSkippedAsDuplicate && res.Job != nil {
		switch res.Job.State {
		case rivertype.JobStateScheduled, rivertype.JobStateRetryable, rivertype.JobStateAvailable:
			if res.Job.ScheduledAt.After(time.Now()) {
				if _, err := rc.JobRetryTx(ctx, tx, res.Job.ID); err != nil {
					return fmt.Errorf("wake step job of subscription %d: %w", subscriptionID, err)
				}
			}
		}
	}
	return nil
}

// retryPolicy backs off exponentially from base, capped at 32×base, with jitter; River's default
// (attempt⁴ seconds) would leave a subscription idle for minutes after a few 503s.
type retryPolicy struct{ base time.Duration }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	n := min(max(job.Attempt-1, 0), 5)
	d := p.base << n
	d += time.Duration(rand.Int64N(int64(d)/4 + 1))
	return time.Now().Add(d)
}
