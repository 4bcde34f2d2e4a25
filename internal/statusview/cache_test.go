package statusview

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/testkit"
)

// PollStatus serves from memory while nothing changes, and reads again as soon as a change is
// announced on commit; without the listener it always reads.
func TestPollStatusCacheFollowsAnnouncements(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.newSubscription(t)
	plan := func() string {
		t.Helper()
		st, err := b.view.PollStatus(ctx, id)
		require.NoError(t, err)
		return st.Plan
	}
	// A change the triggers do not announce shows whether an answer came from memory.
	setPlanSilently := func(p string) {
		t.Helper()
		_, err := b.pool.Exec(ctx, `ALTER TABLE subscriptions DISABLE TRIGGER subscriptions_notify;
			UPDATE subscriptions SET plan = '`+p+`' WHERE id = `+itoa(id)+`;
			ALTER TABLE subscriptions ENABLE TRIGGER subscriptions_notify;`)
		require.NoError(t, err)
	}

	// No listener: every poll reads the database.
	require.Equal(t, "personal", plan())
	setPlanSilently("plus")
	require.Equal(t, "plus", plan())

	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); b.view.ListenForChanges(lctx) }()
	t.Cleanup(func() { stop(); <-done })
	testkit.Eventually(t, "listener connected", func() bool {
		b.view.statuses.mu.Lock()
		defer b.view.statuses.mu.Unlock()
		return b.view.statuses.live
	})

	require.Equal(t, "plus", plan()) // read and kept
	setPlanSilently("pro")
	require.Equal(t, "plus", plan(), "served from memory: nothing was announced")

	// An announced change (any update of the row) is seen on the next polls.
	_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET billing_status = 'past_due' WHERE id = $1`, id)
	require.NoError(t, err)
	testkit.Eventually(t, "the announced change", func() bool { return plan() == "pro" })
	st, err := b.view.PollStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "past_due", st.BillingStatus)

	// An event of the subscription is announced too.
	setPlanSilently("personal")
	_, err = b.pool.Exec(ctx, `INSERT INTO provisioning_events (subscription_id, step, kind, message, actor)
		VALUES ($1, 'pending', 'info', 'note', 'test')`, id)
	require.NoError(t, err)
	testkit.Eventually(t, "the event's announcement", func() bool { return plan() == "personal" })

	// Losing the listener turns caching off.
	stop()
	<-done
	setPlanSilently("plus")
	require.Equal(t, "plus", plan())
}
