package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/db"
)

// actionsPerRequest is how many IDs one GET /actions?id=…&id=… asks for: the endpoint takes only
// id and answers without pagination (spec; listing arbitrary actions was removed 2025-01-30), and
// hcloud-go's own WaitFor asks for 25 at a time.
const actionsPerRequest = 25

// pollLoop runs on the one worker holding the poller lock: one poller per Hetzner project, each
// with its own budget ([Worker.pollProject]).
func (w *Worker) pollLoop(ctx context.Context) error {
	t := w.o.timings
	leader := false
	for !leader {
		if err := w.withLockConn(func(c *pgxpool.Conn) (err error) {
			leader, err = w.q.WorkerLockTry(ctx, c, pollerLockKey)
			return err
		}); err != nil {
			return fmt.Errorf("poller lock: %w", err)
		}
		if !leader {
			if !sleep(ctx, t.Sweep) {
				return nil
			}
			continue
		}
		w.o.log.Info("this worker polls Hetzner actions", "worker_id", w.id)
	}
	var wg sync.WaitGroup
	for _, p := range w.projects {
		wg.Go(func() { w.pollProject(ctx, p) })
	}
	wg.Wait()
	return nil
}

// pollProject reads every running action of the project's subscriptions in batched requests,
// backs off while nothing changes, and paces itself by the project's RateLimit-Remaining and
// RateLimit-Reset.
func (w *Worker) pollProject(ctx context.Context, p *hproject) {
	t := w.o.timings
	interval := t.PollMin
	for {
		n, changed, err := w.pollOnce(ctx, p)
		if err != nil && ctx.Err() == nil {
			w.o.log.Warn("poll Hetzner actions", "project", p.name, "err", err)
		}
		switch {
		case changed:
			interval = t.PollMin
		case n == 0:
			interval = t.PollMax
		default:
			interval = min(interval*2, t.PollMax)
		}
		wait := max(interval, p.rateLimitPause())
		w.persistRateLimit(ctx, p)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-p.nudge:
			timer.Stop()
			// New actions were just recorded: they will not be done at once, so look after PollMin.
			if !sleep(ctx, t.PollMin) {
				return
			}
			interval = t.PollMin
		case <-timer.C:
		}
	}
}

// rateLimitPause is how long to wait before the next poll so the project's budget lasts: after a
// 429 until RateLimit-Reset, and below a tenth of the limit spread over the time to reset.
func (p *hproject) rateLimitPause() time.Duration {
	if p.rl == nil {
		return 0
	}
	st, ok := p.rl.Latest()
	if !ok {
		return 0
	}
	untilReset := time.Until(st.Reset)
	switch {
	case st.Limited || st.Remaining <= 0:
		return min(max(untilReset, time.Second), time.Hour)
	case st.Remaining < st.Limit/10:
		return min(untilReset/time.Duration(st.Remaining), time.Minute)
	}
	return 0
}

// pollOnce reads the running actions of the project's subscriptions; n is how many were running,
// changed whether any finished.
func (w *Worker) pollOnce(ctx context.Context, p *hproject) (n int, changed bool, err error) {
	rows, err := w.q.HetznerActionListRunningInProject(ctx, w.pool, db.HetznerActionListRunningInProjectParams{Project: p.name, FirstProject: w.projects[0].name, Lim: 1000})
	if err != nil {
		return 0, false, fmt.Errorf("list running actions: %w", err)
	}
	if len(rows) == 0 {
		return 0, false, nil
	}
	known := make(map[int64]db.HetznerActionListRunningInProjectRow, len(rows))
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		known[r.ID] = r
		ids = append(ids, r.ID)
	}
	finishedSubs := map[int64]bool{}
	for chunk := range slices.Chunk(ids, actionsPerRequest) {
		// PerPage -1 sends no per_page: GET /actions takes only id.
		actions, _, err := p.hc.Action.List(ctx, hcloud.ActionListOpts{ListOpts: hcloud.ListOpts{PerPage: -1}, ID: chunk})
		if err != nil {
			return len(rows), changed, fmt.Errorf("GET /actions: %w", err)
		}
		// An ID the answer leaves out is one Hetzner no longer knows (hcloud-go's WaitFor fails
		// with "actions not found" then): waiting for it cannot end, so it fails now with a reason.
		answered := make(map[int64]bool, len(actions))
		for _, a := range actions {
			answered[a.ID] = true
		}
		for _, id := range chunk {
			if answered[id] {
				continue
			}
			code, msg := "not_found", fmt.Sprintf("Hetzner no longer knows action %d, so its outcome cannot be learnt", id)
			if _, err := w.q.HetznerActionFinish(ctx, w.pool, db.HetznerActionFinishParams{ID: id, Status: string(hcloud.ActionStatusError),
				Progress: known[id].Progress, ErrorCode: &code, ErrorMessage: &msg}); err != nil && !errors.Is(err, db.ErrNotFound) {
				return len(rows), changed, fmt.Errorf("record vanished action %d: %w", id, err)
			}
			changed = true
			finishedSubs[known[id].SubscriptionID] = true
		}
		for _, a := range actions {
			r, ok := known[a.ID]
			if !ok {
				continue
			}
			if a.Status == hcloud.ActionStatusRunning {
				if int32(a.Progress) != r.Progress {
					_ = w.q.HetznerActionProgress(ctx, w.pool, db.HetznerActionProgressParams{ID: a.ID, Progress: int32(a.Progress)})
				}
				continue
			}
			p := db.HetznerActionFinishParams{ID: a.ID, Status: string(a.Status), Progress: int32(a.Progress)}
			if a.Status == hcloud.ActionStatusError {
				p.ErrorCode, p.ErrorMessage = &a.ErrorCode, &a.ErrorMessage
			}
			if _, err := w.q.HetznerActionFinish(ctx, w.pool, p); err != nil && !errors.Is(err, db.ErrNotFound) {
				return len(rows), changed, fmt.Errorf("record action %d: %w", a.ID, err)
			}
			changed = true
			finishedSubs[r.SubscriptionID] = true
		}
	}
	for subID := range finishedSubs {
		if err := w.wake(ctx, subID); err != nil {
			return len(rows), changed, err
		}
	}
	return len(rows), changed, nil
}

// wake enqueues the step job of a subscription whose actions are all done.
func (w *Worker) wake(ctx context.Context, subID int64) error {
	return inTx(ctx, w.pool, func(tx pgx.Tx) error {
		running, err := w.q.HetznerActionAnyRunning(ctx, tx, subID)
		if err != nil {
			return fmt.Errorf("check actions of subscription %d: %w", subID, err)
		}
		if running {
			return nil
		}
		return enqueueStep(ctx, w.river, tx, subID)
	})
}

// persistRateLimit shares the project's latest headers with the web processes (the dashboard).
func (w *Worker) persistRateLimit(ctx context.Context, p *hproject) {
	if p.rl == nil {
		return
	}
	st, ok := p.rl.Latest()
	if !ok || time.Since(st.Seen) > time.Minute {
		return
	}
	_ = w.q.RateLimitPut(ctx, w.pool, db.RateLimitPutParams{Project: p.name, Lim: int32(st.Limit), Remaining: int32(st.Remaining), ResetAt: st.Reset})
}
