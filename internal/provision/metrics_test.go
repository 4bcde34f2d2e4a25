package provision

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/logging"
	"github.com/rachelcloud/admin/internal/testkit"
)

// The worker records how long each step took and logs every line of a job with its
// subscription and the request that started it.
func TestStepMetricsAndJobLogs(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	reg := prometheus.NewRegistry()
	var logs testkit.Buffer
	log := logging.New("json", &logs, slog.LevelInfo)
	b.startWorker(t, WithRegistry(reg), WithLogger(log))

	id := b.newSubscription(t)
	ctx := logging.With(context.Background(), slog.String("request_id", "req-test-1"))
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub))

	// cloud_init is observed by whoever ended it: the callback's service, or the worker when it saw
	// over SSH that cloud-init finished before the callback arrived.
	want := 2
	if strings.Contains(strings.Join(b.events(t, id), "\n"), "no callback was accepted") {
		want = 3
	}
	require.Equal(t, want, testutil.CollectAndCount(reg, "rachel_provisioning_step_duration_seconds"),
		"creating and injecting_secrets (and cloud_init, when it saw it end) observed by the worker")
	text := logs.String()
	require.Contains(t, text, `"msg":"provisioning step done"`)
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.Contains(line, "provisioning step done") {
			require.Contains(t, line, `"subscription_id":`+itoa(id), line)
		}
	}
	require.Contains(t, text, `"request_id":"req-test-1"`, "the job carries the request that started it")

	// Callback outcomes are counted by kind, never by token.
	svcReg := prometheus.NewRegistry()
	svc, err := NewService(b.pool, b.cfg, WithRegistry(svcReg))
	require.NoError(t, err)
	require.ErrorIs(t, svc.HandleCallback(context.Background(), "short", url.Values{}, "192.0.2.1"), ErrCallbackRejected)
	require.ErrorIs(t, svc.HandleCallback(context.Background(), strings.Repeat("A", 43), url.Values{}, "192.0.2.1"), ErrCallbackRejected)
	require.Equal(t, 1.0, testutil.ToFloat64(svc.metrics.callbacks.WithLabelValues("malformed_token")))
	require.Equal(t, 1.0, testutil.ToFloat64(svc.metrics.callbacks.WithLabelValues("unknown_token")))
}
