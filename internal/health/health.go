// Package health watches the assistants after their VPS is ready: ready is not forever. A periodic
// job connects to every ready VPS over SSH — pinned to its seeded host key, as the provisioner's
// login user, as injection does — and asks systemd (systemctl show) whether the assistant's unit is running: one
// connection and one command per VPS, a bounded number at a time, so a thousand VPSes cost a
// thousand short sessions every HEALTH_CHECK_INTERVAL and no agent on the VPS. Two failed checks in
// a row flag "ready but assistant down" with when it was last seen running, and notify; the admin
// acts with Re-inject (which restarts the unit) or a Reboot.
//
// It also lists the customers whose Claude token is past or near claude_token_expires_at, so an
// admin can update it and re-inject.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// DownAfter is how many failed checks in a row flag an assistant as down (one failure may be a
// restart in progress).
const DownAfter = 2

// Options adjust a [Checker].
type Options struct {
	Clock       func() time.Time
	Notify      *notify.Notifier // nil: flagged on the pages only
	Log         *slog.Logger
	Concurrency int           // VPSes checked at once (default 16)
	Timeout     time.Duration // per VPS: dial, handshake and the command (default 15 s)
	// Dial opens the TCP connection to a VPS's sshd (nil: a net.Dialer). Tests wrap it to see
	// how many checks are in flight at once.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// CheckBatch is how many VPSes one run checks (default 10,000): those checked longest ago,
	// so a larger fleet is checked in rotation over several runs.
	CheckBatch int
	// NotifyBatch bounds what one run does to the assistant_down incidents: it opens at most this
	// many and resolves at most this many (default [notify.DefaultScanBatch]); the next runs take
	// the rest. Tests set a small one.
	NotifyBatch int
}

// Checker runs the health checks and answers the pages.
type Checker struct {
	pool *pgxpool.Pool
	q    *db.Queries
	cfg  *config.Config
	o    Options
}

// New returns a checker.
func New(pool *pgxpool.Pool, cfg *config.Config, o Options) *Checker {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.CheckBatch <= 0 {
		o.CheckBatch = 10_000
	}
	if o.NotifyBatch <= 0 {
		o.NotifyBatch = notify.DefaultScanBatch
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	return &Checker{pool: pool, q: db.New(), cfg: cfg, o: o}
}

// Result counts one run.
type Result struct{ Checked, Up, Failing, Down int }

// CheckAll checks the ready VPSes once (at most Options.CheckBatch, those checked longest ago
// first), records the outcomes and keeps the assistant_down incidents current.
func (c *Checker) CheckAll(ctx context.Context) (Result, error) {
	var res Result
	if err := c.q.HealthForgetNotReady(ctx, c.pool); err != nil {
		return res, fmt.Errorf("health: forget VPSes no longer ready: %w", err)
	}
	subs, err := c.q.HealthReadySubscriptions(ctx, c.pool, int32(c.o.CheckBatch))
	if err != nil {
		return res, fmt.Errorf("health: list ready subscriptions: %w", err)
	}
	type outcome struct {
		sub    db.HealthReadySubscriptionsRow
		state  string
		detail string
	}
	outs := make([]outcome, len(subs))
	sem := make(chan struct{}, c.o.Concurrency)
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			state, detail := c.check(ctx, s)
			outs[i] = outcome{sub: s, state: state, detail: detail}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	now := c.o.Clock()
	var errs []error
	for _, o := range outs {
		res.Checked++
		if o.state == "up" {
			res.Up++
		} else {
			res.Failing++
		}
		if err := c.q.HealthRecord(ctx, c.pool, db.HealthRecordParams{SubscriptionID: o.sub.ID, CheckedAt: now,
			State: o.state, Detail: o.detail, ProvisionedAt: o.sub.ProvisionedAt}); err != nil {
			errs = append(errs, fmt.Errorf("health: record subscription %d: %w", o.sub.ID, err))
		}
	}
	down, err := c.q.HealthCountDown(ctx, c.pool, DownAfter)
	if err != nil {
		return res, errors.Join(append(errs, fmt.Errorf("health: count assistants down: %w", err))...)
	}
	res.Down = int(down)
	errs = append(errs, c.syncDown(ctx))
	if res.Failing > 0 {
		c.o.Log.Warn("assistant health", "checked", res.Checked, "failing", res.Failing, "down", res.Down)
	}
	return res, errors.Join(errs...)
}

// syncDown keeps the assistant_down incidents current in bounded batches, in one transaction:
// it resolves up to a batch of the open ones whose assistant is no longer down (checked in the
// database against each incident's subscription), then opens up to a batch for the assistants
// down without one, longest down first. So an incident resolves only when its assistant is up
// again (or no longer ready), however many are down, and the rest open at the next runs.
func (c *Checker) syncDown(ctx context.Context) error {
	if c.o.Notify == nil {
		return nil
	}
	lim := int32(min(c.o.NotifyBatch, 1<<30))
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		gone, err := c.q.HealthDownGone(ctx, tx, db.HealthDownGoneParams{DownAfter: DownAfter, Lim: lim})
		if err != nil {
			return fmt.Errorf("health: assistant_down incidents no longer down: %w", err)
		}
		if _, err := c.o.Notify.ResolveIDs(ctx, tx, notify.KindAssistantDown, gone); err != nil {
			return fmt.Errorf("health: %w", err)
		}
		rows, err := c.q.HealthDownUnnotified(ctx, tx, db.HealthDownUnnotifiedParams{DownAfter: DownAfter, Lim: lim})
		if err != nil {
			return fmt.Errorf("health: assistants down without an incident: %w", err)
		}
		conds := make([]notify.Condition, 0, len(rows))
		for _, d := range rows {
			id := d.SubscriptionID
			conds = append(conds, notify.Condition{Key: fmt.Sprintf("assistant_down:%d", id), SubscriptionID: &id,
				Summary: fmt.Sprintf("The assistant of subscription #%d (%s) is %s: %s. Last seen running %s. Re-inject restarts it; Reboot restarts the VPS.",
					id, d.CustomerEmail, d.State, d.Detail, lastSeen(d.LastSeenAt))})
		}
		if _, err := c.o.Notify.OpenBatch(ctx, tx, notify.KindAssistantDown, conds); err != nil {
			return fmt.Errorf("health: %w", err)
		}
		return nil
	})
}

func lastSeen(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// check asks one VPS whether the assistant runs: "up", "down" (systemd says otherwise) or
// "unreachable" (no SSH session), with a detail for the admin that holds no secret.
func (c *Checker) check(ctx context.Context, s db.HealthReadySubscriptionsRow) (state, detail string) {
	if s.VpsIpAddress == nil || s.SshPrivateKey == nil || s.SshHostKeyPublic == nil {
		return "unreachable", "no address or keys are recorded"
	}
	privPEM, err := c.cfg.Keyring.Decrypt(s.SshPrivateKey, secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: s.ID})
	if err != nil {
		return "unreachable", "the stored SSH key cannot be decrypted"
	}
	signer, err := sshkey.ParsePrivateKey(privPEM)
	if err != nil {
		return "unreachable", "the stored SSH key is unusable"
	}
	pinned, err := sshkey.ParseAuthorizedKey(*s.SshHostKeyPublic)
	if err != nil {
		return "unreachable", "the pinned host key is unusable"
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	addr := net.JoinHostPort(s.VpsIpAddress.String(), strconv.Itoa(c.cfg.VPSSSHPort))
	conn, err := c.o.Dial(ctx, "tcp", addr)
	if err != nil {
		return "unreachable", fmt.Sprintf("cannot reach sshd at %s", addr)
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              cloudinit.DefaultLoginUser,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   sshkey.FixedHostKeyCallback(pinned),
		HostKeyAlgorithms: []string{pinned.Type()},
		Timeout:           c.o.Timeout,
	})
	if err != nil {
		return "unreachable", fmt.Sprintf("SSH to %s failed (a wrong host key is refused)", addr)
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "unreachable", "cannot open an SSH session"
	}
	defer sess.Close()
	// The sudo rule cloud-init installs allows exactly this command (cloudinit.SudoCommands).
	out, _ := sess.Output("sudo " + cloudinit.ShowCommand)
	props := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			props[k] = v
		}
	}
	active, sub := props["ActiveState"], props["SubState"]
	if active == "active" && sub == "running" {
		return "up", "active (running)"
	}
	if active == "" {
		return "down", fmt.Sprintf("systemctl show gave no state for %s", cloudinit.UnitName)
	}
	detail = fmt.Sprintf("%s is %s (%s), result %s", cloudinit.UnitName, active, sub, props["Result"])
	if len(detail) > 200 {
		detail = detail[:200]
	}
	return "down", detail
}

// Down is an assistant flagged down.
type Down = db.HealthListDownRow

// Down lists the ready VPSes whose assistant is down, longest first.
func (c *Checker) Down(ctx context.Context, limit int) ([]Down, error) {
	rows, err := c.q.HealthListDown(ctx, c.pool, db.HealthListDownParams{DownAfter: DownAfter, Lim: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("health: list assistants down: %w", err)
	}
	return rows, nil
}

// Of is one subscription's latest check (nil when never checked).
func (c *Checker) Of(ctx context.Context, subscriptionID int64) (*db.AssistantHealth, error) {
	h, err := c.q.HealthGet(ctx, c.pool, subscriptionID)
	if err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("health of subscription %d: %w", subscriptionID, err)
	}
	return &h, nil
}

// TokenExpiry is a customer whose Claude token is past or near its expiry.
type TokenExpiry struct {
	CustomerID     int64
	Email, Name    string
	SubscriptionID int64  // latest, 0 when none
	State          string // its provisioning status
	ExpiresAt      time.Time
	Expired        bool
}

// ExpiringTokens lists the Claude tokens expired or expiring within warn, soonest first. The
// expiry is stored encrypted, so each is decrypted here (a cheap AES-GCM open per customer).
func (c *Checker) ExpiringTokens(ctx context.Context, warn time.Duration) ([]TokenExpiry, error) {
	rows, err := c.q.HealthClaudeExpiries(ctx, c.pool)
	if err != nil {
		return nil, fmt.Errorf("health: read Claude token expiries: %w", err)
	}
	now := c.o.Clock()
	var out []TokenExpiry
	for _, r := range rows {
		plain, err := c.cfg.Keyring.Decrypt(r.ClaudeTokenExpiresAt, secrets.AD{Table: "customer_secrets", Column: "claude_token_expires_at", RowID: r.CustomerID})
		if err != nil {
			c.o.Log.Warn("health: undecryptable Claude token expiry", "customer_id", r.CustomerID)
			continue
		}
		at, err := time.Parse(time.RFC3339, strings.TrimSpace(string(plain)))
		if err != nil || at.After(now.Add(warn)) {
			continue
		}
		te := TokenExpiry{CustomerID: r.CustomerID, Email: r.Email, Name: r.Name, SubscriptionID: r.SubscriptionID,
			ExpiresAt: at, Expired: !at.After(now)}
		if r.ProvisioningStatus != nil {
			te.State = string(*r.ProvisioningStatus)
		}
		out = append(out, te)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExpiresAt.Before(out[j].ExpiresAt) })
	return out, nil
}

// checkArgs runs the checks once (periodic).
type checkArgs struct{}

func (checkArgs) Kind() string { return "assistant_health" }

func (checkArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue, MaxAttempts: 2,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
			rivertype.JobStateRetryable, rivertype.JobStateScheduled}}}
}

const queue = "health"

type checkWorker struct {
	river.WorkerDefaults[checkArgs]
	c *Checker
}

func (w *checkWorker) Work(ctx context.Context, _ *river.Job[checkArgs]) error {
	_, err := w.c.CheckAll(ctx)
	return err
}

func (w *checkWorker) Timeout(*river.Job[checkArgs]) time.Duration { return 30 * time.Minute }

// Jobs are the periodic health check for the worker's River client ([provision.WithJobs]).
func (c *Checker) Jobs(every time.Duration) provision.Jobs {
	return provision.Jobs{
		Register: func(w *river.Workers) error { return river.AddWorkerSafely(w, &checkWorker{c: c}) },
		Queues:   map[string]river.QueueConfig{queue: {MaxWorkers: 1}},
		Periodic: []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(every),
			func() (river.JobArgs, *river.InsertOpts) { return checkArgs{}, nil }, nil)},
	}
}
