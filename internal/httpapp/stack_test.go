package httpapp_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testenv"
	"github.com/rachelcloud/admin/internal/testkit"
	"github.com/rachelcloud/admin/internal/teststack"
)

// stackSSHPort is where this package's simulated VPSes serve SSH (each on its own loopback
// address); other packages' tests use other ports.
const stackSSHPort = 22031

const stackSimToken = "stack-test-token"

// setupStack runs everything an admin's browser talks to (teststack): a database, the simulator
// (1/100 time scale), a provisioning worker, and the app on the public URL, so the simulated
// VPSes call back into it.
func setupStack(t *testing.T, sim hcloudsim.Config) *testBundle {
	t.Helper()
	sim.Token, sim.SSHPort = stackSimToken, stackSSHPort
	return newBundle(t, teststack.New(t, teststack.Options{Options: testenv.Options{Sim: sim}}))
}

// waitState polls the database until the subscription is in state.
func (b *testBundle) waitState(t *testing.T, id int64, state db.ProvisioningStatus) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("subscription %d to reach %s", id, state), func() error {
		sub, err := db.New().SubscriptionGet(context.Background(), b.pool, id)
		require.NoError(t, err)
		if sub.ProvisioningStatus != nil && *sub.ProvisioningStatus == state {
			return nil
		}
		if sub.ProvisioningStatus == nil {
			return fmt.Errorf("it has no provisioning status")
		}
		return fmt.Errorf("it is %s", *sub.ProvisioningStatus)
	})
}

// latestSubscription is the ID of the newest subscription.
func (b *testBundle) latestSubscription(t *testing.T) int64 {
	t.Helper()
	var id int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT max(id) FROM subscriptions`).Scan(&id))
	return id
}
