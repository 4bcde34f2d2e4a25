package notify

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/testkit"
)

// flakyHook answers status to every POST and remembers what it was sent.
type flakyHook struct {
	mu     sync.Mutex
	status int
	ids    []string
	valid  []bool
}

func (h *flakyHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids = append(h.ids, r.Header.Get("X-Rachel-Message-ID"))
	h.valid = append(h.valid, Verify([]byte("hook-signing-secret-0123"), r.Header.Get(HeaderTimestamp), body, r.Header.Get(HeaderSignature)))
	w.WriteHeader(h.status)
}

func (h *flakyHook) set(status int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.status = status
}

func (h *flakyHook) seen() (ids []string, valid []bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...), append([]bool(nil), h.valid...)
}

type deliveryRow struct {
	Status, LastError string
	Attempts          int
	Sent              bool
}

func readDelivery(t *testing.T, n *Notifier, id int64) deliveryRow {
	t.Helper()
	var d deliveryRow
	require.NoError(t, n.pool.QueryRow(context.Background(), `SELECT status, attempts, coalesce(last_error, ''), sent_at IS NOT NULL
		FROM notify_deliveries WHERE id = $1`, id).Scan(&d.Status, &d.Attempts, &d.LastError, &d.Sent))
	return d
}

// enqueue stores a message and returns its webhook delivery's ID.
func enqueue(t *testing.T, n *Notifier) (messageID, deliveryID int64) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, inTx(ctx, n.pool, func(tx pgx.Tx) error {
		var err error
		messageID, err = n.enqueueMessage(ctx, tx, "incident", "[Rachel Cloud] Provisioning failed", "Subscription #1 failed", 1)
		return err
	}))
	require.NoError(t, n.pool.QueryRow(ctx, `SELECT id FROM notify_deliveries WHERE message_id = $1 AND channel = 'webhook'`, messageID).Scan(&deliveryID))
	return messageID, deliveryID
}

// TestDeliveryRetriesUntilSentAndGivesUpAtTheLastAttempt: a webhook answering 500 leaves the
// delivery retrying with the reason (never the URL's secret path, in the row or the log); the
// last attempt's failure marks it failed; a later 2xx sends the same message once, and a sent
// delivery is never sent again. A delivery whose channel was removed fails without retries.
func TestDeliveryRetriesUntilSentAndGivesUpAtTheLastAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	hook := &flakyHook{status: http.StatusInternalServerError}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	var logs testkit.Buffer
	cfg := loadConfig(t, map[string]string{"NOTIFY_WEBHOOK_URL": srv.URL + "/hooks/path-secret-do-not-leak",
		"NOTIFY_WEBHOOK_SECRET": "hook-signing-secret-0123", "PUBLIC_BASE_URL": "https://admin.example.com"})
	n, err := New(pool, cfg, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	msgID, id := enqueue(t, n)

	err = n.deliver(ctx, id, 1, maxAttempts)
	require.ErrorContains(t, err, "answered 500 Internal Server Error")
	require.NotContains(t, err.Error(), "path-secret-do-not-leak")
	d := readDelivery(t, n, id)
	require.Equal(t, deliveryRow{Status: "retrying", Attempts: 1, LastError: d.LastError}, d)
	require.Contains(t, d.LastError, "answered 500")
	require.Contains(t, d.LastError, srv.URL+"/…")
	require.NotContains(t, d.LastError, "path-secret-do-not-leak")
	require.Contains(t, logs.String(), "notification not delivered")
	require.NotContains(t, logs.String(), "path-secret-do-not-leak")

	// The last attempt fails too: given up, recorded as failed.
	require.Error(t, n.deliver(ctx, id, maxAttempts, maxAttempts))
	require.Equal(t, "failed", readDelivery(t, n, id).Status)

	// The receiver recovers (an operator retried the job): sent, the error cleared.
	hook.set(http.StatusOK)
	require.NoError(t, n.deliver(ctx, id, maxAttempts+1, maxAttempts+1))
	require.Equal(t, deliveryRow{Status: "sent", Attempts: maxAttempts + 1, Sent: true}, readDelivery(t, n, id))
	require.NoError(t, n.deliver(ctx, id, maxAttempts+2, maxAttempts+2), "a sent delivery is done")
	ids, valid := hook.seen()
	require.Len(t, ids, 3, "not sent again once sent")
	for i := range ids {
		require.Equal(t, strconv.FormatInt(msgID, 10), ids[i], "every attempt is the same message")
		require.True(t, valid[i], "every attempt is signed")
	}

	// The webhook is no longer configured: the delivery fails at once and is not retried.
	_, id2 := enqueue(t, n)
	bare, err := New(pool, loadConfig(t, nil), Options{})
	require.NoError(t, err)
	err = bare.deliver(ctx, id2, 1, maxAttempts)
	var cancel *rivertype.JobCancelError
	require.True(t, errors.As(err, &cancel), "%v", err)
	require.Equal(t, deliveryRow{Status: "failed", Attempts: 1, LastError: "channel webhook is no longer configured"}, readDelivery(t, n, id2))
	ids, _ = hook.seen()
	require.Len(t, ids, 3)

	// A delivery whose message is gone is nothing to do.
	require.NoError(t, n.deliver(ctx, id2+1000, 1, maxAttempts))
}

// TestRetryBackoffDoublesUpToFourHours: the delay after attempt k is RetryBase·2^(k-1), capped.
func TestRetryBackoffDoublesUpToFourHours(t *testing.T) {
	t.Parallel()
	w := &deliverWorker{n: &Notifier{o: Options{RetryBase: 30 * time.Second}}}
	for attempt, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 4: 4 * time.Minute,
		9: 256 * 30 * time.Second, 10: 4 * time.Hour, 40: 4 * time.Hour} {
		before := time.Now()
		got := w.NextRetry(&river.Job[deliverArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}})
		after := time.Now()
		require.False(t, got.Before(before.Add(want)) || got.After(after.Add(want)), "attempt %d: %s, want %s", attempt, got.Sub(before), want)
	}
}
