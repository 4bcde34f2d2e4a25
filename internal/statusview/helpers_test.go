package statusview

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var admin = provision.Actor{Email: "ops@example.com", IP: "192.0.2.1"}

// bundle is a database with the provisioning service (which makes the changes a status page
// shows; no worker runs, the tests set the later states themselves) and the reader under test.
type bundle struct {
	pool *pgxpool.Pool
	svc  *provision.Service
	view *Reader
}

func setup(t testing.TB) *bundle {
	t.Helper()
	b := &bundle{pool: dbtest.New(t)}
	kr, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	env := map[string]string{"DATABASE_URL": b.pool.Config().ConnString(), "RACHEL_KEYRING": kr,
		"PUBLIC_BASE_URL": "http://127.0.0.1:1", "HCLOUD_TOKEN": "test-token"}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	log := testkit.Logger(t, slog.LevelWarn)
	b.svc, err = provision.NewService(b.pool, cfg, provision.WithLogger(log))
	require.NoError(t, err)
	b.view = New(b.pool, b.svc, log)
	return b
}

// newSubscription creates a customer and a subscription that was never provisioned.
func (b *bundle) newSubscription(t testing.TB) int64 {
	t.Helper()
	ctx := context.Background()
	q := db.New()
	cust, err := q.CustomerCreate(ctx, b.pool, db.CustomerCreateParams{Email: fmt.Sprintf("c%d@example.com", time.Now().UnixNano()), Name: "Customer"})
	require.NoError(t, err)
	sub, err := q.SubscriptionCreate(ctx, b.pool, db.SubscriptionCreateParams{CustomerID: cust.ID, Plan: "personal", BillingStatus: "active"})
	require.NoError(t, err)
	return sub.ID
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
