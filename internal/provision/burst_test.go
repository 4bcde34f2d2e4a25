package provision

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
)

// TestRSA4096 provisions with the seeds' key algorithm: the stored key is PKCS#8 RSA and the
// uploaded one ssh-rsa.
func TestRSA4096(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.env["SSH_KEY_ALGORITHM"] = "rsa-4096" })
	id := b.newSubscription(t)
	sub := b.provisionUntilSettled(t, id)
	requireReady(t, b, sub)
	require.Contains(t, *sub.SshPublicKey, "ssh-rsa AAAAB3NzaC1yc2E")
	keys := b.sim.SSHKeys()
	require.Len(t, keys, 1)
	require.Contains(t, keys[0].PublicKey, "ssh-rsa ")
}

// provisionBurst provisions n subscriptions at once and returns the Hetzner API requests made
// per provisioned server (the shared firewall included) and the wall time to all ready.
func provisionBurst(t testing.TB, b *bundle, n int) (perServer float64, wall time.Duration) {
	ctx := context.Background()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = b.newSubscription(t)
	}
	b.sim.ResetRequests()
	start := time.Now()
	for _, id := range ids {
		require.NoError(t, b.svc.Provision(ctx, id, admin))
	}
	for _, id := range ids {
		requireReady(t, b, b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed))
	}
	wall = time.Since(start)
	return float64(b.sim.RequestCount("", 0)) / float64(n), wall
}

// TestBurstRequestBudget provisions 50 at once and holds the request count per server to the
// design's budget (≤ 2.5: one key upload, one create, shared batched polls). The per-server part
// is exact; the shared part (polls, the firewall) depends on how many poll rounds the machine's
// load makes, so the burst is large enough for it to stay a small share: at 25 a loaded machine
// measured 2.52 with every per-server count exact.
func TestBurstRequestBudget(t *testing.T) {
	t.Parallel()
	const n = 50
	b := setup(t)
	perServer, _ := provisionBurst(t, b, n)
	for _, r := range b.sim.Requests() {
		t.Logf("%s %d: %d", r.Route, r.Status, r.Count)
	}
	t.Logf("Hetzner requests per provisioned server, %d at once: %.2f", n, perServer)
	require.Equal(t, n, b.sim.RequestCount("POST /servers", 0), "one create per server")
	require.Equal(t, n, b.sim.RequestCount("POST /ssh_keys", 0), "one key upload per server")
	require.LessOrEqual(t, perServer, 2.5)
}

// BenchmarkProvision100 reports Hetzner API requests per provisioned server with 100 provisioned
// at once, and the wall time against one alone (the design's ≤ 2.5 and ≤ 1.2×).
func BenchmarkProvision100(bm *testing.B) {
	for range bm.N {
		b := setup(bm)
		_, one := provisionBurst(bm, b, 1)
		perServer, hundred := provisionBurst(bm, b, 100)
		bm.ReportMetric(perServer, "requests/server")
		bm.ReportMetric(hundred.Seconds()/one.Seconds(), "wall-100/wall-1")
	}
}
