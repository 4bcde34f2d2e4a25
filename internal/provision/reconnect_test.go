package provision

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/internal/testkit"
)

// A worker whose database sessions are all cut (as when PostgreSQL restarts) stops working,
// reconnects by itself and finishes the provisioning, with no process manager restarting it.
func TestWorkerReconnectsAfterLosingItsSession(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.noWork = true
		o.sim.CloudInitDuration = 300e9 // 3 s at time scale 0.01: time to cut the sessions mid-step
	})
	var logs testkit.Buffer
	b.startWorker(t, WithLogger(logging.New("text", &logs, slog.LevelInfo)))
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusCloudInit)

	_, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	// The test's own connections were cut too: let the pool dial afresh before reading.
	b.pool.Reset()
	testkit.Eventually(t, "the worker notices and starts again", func() bool {
		return strings.Contains(logs.String(), "provision worker interrupted; starting again")
	})

	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "error: %v; events: %v", deref(sub.ProvisioningError), b.events(t, id))
	b.assertOnly(t, id)
}
