package teststack_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testenv"
	"github.com/rachelcloud/admin/internal/testkit"
	"github.com/rachelcloud/admin/internal/teststack"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var actor = audit.Actor{Email: "ops@example.com", IP: "192.0.2.1"}

// provision creates a customer through the app's customer service and provisions it until ready.
func provision(t *testing.T, s *teststack.Stack, email string) db.Subscription {
	t.Helper()
	ctx := context.Background()
	_, id, err := s.Deps.Customers.Create(ctx, customer.Form{
		Email: email, Name: "Ann Example", Plan: "personal", BillingStatus: "active",
		ClaudeAccessToken: "sk-ant-oat01-access-token", ClaudeRefreshToken: "sk-ant-ort01-refresh-token",
		TelegramBotToken: "123456789:AAEhBP0av28bottokenvalue0123456789", OwnerTelegramUserID: "4242",
	}, actor)
	require.NoError(t, err)
	require.NoError(t, s.Service.Provision(ctx, id, actor))
	var sub db.Subscription
	testkit.Eventually(t, fmt.Sprintf("subscription %d ready", id), func() error {
		sub, err = db.New().SubscriptionGet(ctx, s.Pool, id)
		require.NoError(t, err)
		if st := sub.ProvisioningStatus; st == nil || *st != db.ProvisioningStatusReady {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	return sub
}

// The whole stack provisions: the worker creates the server in the simulator, the VPS downloads
// the assistant from the public URL and calls back into the web app there.
func TestStackProvisionsThroughTheWebApp(t *testing.T) {
	t.Parallel()
	s := teststack.New(t, teststack.Options{Options: testenv.Options{Sim: hcloudsim.Config{SSHPort: 22061}}})
	require.NotNil(t, s.Worker)
	require.NotNil(t, s.Web)
	sub := provision(t, s, "stack@example.com")
	require.NotNil(t, sub.HetznerServerID)
	m := s.Sim.Machine(*sub.HetznerServerID)
	require.NotNil(t, m)
	require.True(t, m.State().CallbackDelivered, "the VPS called back")
	require.Len(t, s.Sim.Servers(), 1)

	resp, err := http.Get(s.Server.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the public URL is the web app")
}

// Without the web app the callbacks go straight to the service; without a worker nothing moves
// until one is started.
func TestStackWithoutWebAndWorker(t *testing.T) {
	t.Parallel()
	s := teststack.New(t, teststack.Options{Options: testenv.Options{Sim: hcloudsim.Config{SSHPort: 22062}}, NoWeb: true, NoWorker: true})
	require.Nil(t, s.Web)
	require.Nil(t, s.Worker)
	resp, err := http.Get(s.Server.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no web app")

	s.StartWorker(t)
	sub := provision(t, s, "noweb@example.com")
	require.True(t, s.Sim.Machine(*sub.HetznerServerID).State().CallbackDelivered)
}
