package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
)

// tickArgs detects incidents and dispatches waiting events (periodic).
type tickArgs struct{}

func (tickArgs) Kind() string { return "notify_tick" }

func (tickArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates}}
}

// deliverArgs sends one message to one channel.
type deliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

func (deliverArgs) Kind() string { return "notify_deliver" }

func (deliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: maxAttempts}
}

type tickWorker struct {
	river.WorkerDefaults[tickArgs]
	n *Notifier
}

func (w *tickWorker) Work(ctx context.Context, _ *river.Job[tickArgs]) error {
	return w.n.Tick(ctx)
}

// Tick runs the detectors, then dispatches what waited a full window.
func (n *Notifier) Tick(ctx context.Context) error {
	scanErr := n.Scan(ctx)
	if scanErr != nil {
		n.o.Log.Warn("notify: detect incidents", "err", scanErr)
	}
	if _, err := n.Dispatch(ctx); err != nil {
		return errors.Join(scanErr, err)
	}
	return scanErr
}

type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	n *Notifier
}

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	return w.n.deliver(ctx, job.Args.DeliveryID, job.Attempt, job.MaxAttempts)
}

// NextRetry backs off from RetryBase, doubling, capped at 4 h.
func (w *deliverWorker) NextRetry(job *river.Job[deliverArgs]) time.Time {
	d := w.n.o.RetryBase << min(max(job.Attempt-1, 0), 12)
	return time.Now().Add(min(d, 4*time.Hour))
}

func (w *deliverWorker) Timeout(*river.Job[deliverArgs]) time.Duration { return time.Minute }

// deliver sends a delivery's message and records the outcome; an error makes River retry.
func (n *Notifier) deliver(ctx context.Context, id int64, attempt, maxAttempts int) error {
	d, err := n.q.NotifyDeliveryGet(ctx, n.pool, id)
	if errors.Is(err, db.ErrNotFound) {
		return nil // its message was deleted
	}
	if err != nil {
		return fmt.Errorf("notify: read delivery %d: %w", id, err)
	}
	if d.Status == "sent" {
		return nil
	}
	s, ok := n.channel[d.Channel]
	if !ok {
		msg := fmt.Sprintf("channel %s is no longer configured", d.Channel)
		n.record(ctx, id, "failed", attempt, msg)
		return river.JobCancel(errors.New(msg))
	}
	sendErr := s.send(ctx, message{ID: d.MessageID, Subject: d.Subject, Body: d.Body})
	if sendErr == nil {
		n.record(ctx, id, "sent", attempt, "")
		return nil
	}
	status := "retrying"
	if attempt >= maxAttempts {
		status = "failed"
	}
	n.record(ctx, id, status, attempt, sendErr.Error())
	n.o.Log.WarnContext(ctx, "notification not delivered", "delivery_id", id, "channel", d.Channel,
		"attempt", attempt, "err", n.scrub.clean(sendErr.Error()))
	return fmt.Errorf("deliver notification %d by %s: %s", id, d.Channel, n.scrub.clean(sendErr.Error()))
}

func (n *Notifier) record(ctx context.Context, id int64, status string, attempt int, lastErr string) {
	err := n.q.NotifyDeliveryRecord(context.WithoutCancel(ctx), n.pool, db.NotifyDeliveryRecordParams{
		ID: id, Status: status, Attempts: int32(attempt), LastError: n.scrub.clean(lastErr)})
	if err != nil {
		n.o.Log.ErrorContext(ctx, "notify: record delivery outcome", "delivery_id", id, "err", err)
	}
}

// Jobs are the notification jobs for the worker's River client ([provision.WithJobs]).
func (n *Notifier) Jobs() provision.Jobs {
	return provision.Jobs{
		Register: n.Register,
		Queues:   map[string]river.QueueConfig{Queue: {MaxWorkers: 5}},
		Periodic: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(n.o.Tick),
			func() (river.JobArgs, *river.InsertOpts) { return tickArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true})},
	}
}

// Register adds the notification workers to workers.
func (n *Notifier) Register(workers *river.Workers) error {
	if err := river.AddWorkerSafely(workers, &tickWorker{n: n}); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &deliverWorker{n: n}); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Delivery is one row of the settings page's recent deliveries.
type Delivery = db.NotifyDeliveryRecentRow

// Recent lists the latest deliveries, newest first.
func (n *Notifier) Recent(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := n.q.NotifyDeliveryRecent(ctx, n.pool, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("notify: recent deliveries: %w", err)
	}
	return rows, nil
}

// OpenIncidents lists the open incidents, newest first.
func (n *Notifier) OpenIncidents(ctx context.Context, limit int) ([]db.NotifyIncident, error) {
	rows, err := n.q.NotifyIncidentListOpen(ctx, n.pool, int32(limit))
	if err != nil {
		return nil, fmt.Errorf("notify: open incidents: %w", err)
	}
	return rows, nil
}

var _ rivertype.JobArgs = deliverArgs{}
