package customer_test

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/secrets"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var actor = audit.Actor{Email: "ops@example.com", IP: "192.0.2.1"}

func validForm() customer.Form {
	return customer.Form{
		Email: "Ann@Example.com", Name: "Ann Example", TelegramUserID: "4242", Plan: "personal", BillingStatus: "active",
		ClaudeAccessToken: "sk-ant-oat01-ACCESS-secret-value", ClaudeRefreshToken: "sk-ant-ort01-REFRESH-secret-value",
		ClaudeTokenExpiresAt: "2027-01-31T12:00", TelegramBotToken: "123456789:AAEhBP0av28FAKEfakeFAKEfakeFAKEfake12",
		OwnerTelegramUserID: "4242",
	}
}

func setup(t *testing.T) (*customer.Service, *secrets.Keyring, *dbtestPool) {
	t.Helper()
	krs, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	kr, err := secrets.ParseKeyring(krs)
	require.NoError(t, err)
	pool := dbtest.New(t)
	return customer.NewService(pool, kr), kr, &dbtestPool{pool}
}

func TestCreateEncryptsSecretsAndAudits(t *testing.T) {
	t.Parallel()
	s, kr, p := setup(t)
	ctx := context.Background()
	cid, sid, err := s.Create(ctx, validForm(), actor)
	require.NoError(t, err)
	require.NotZero(t, sid)

	sec, err := db.New().CustomerSecretsGet(ctx, p.pool, cid)
	require.NoError(t, err)
	require.NotContains(t, string(sec.ClaudeAccessToken), "ACCESS-secret")
	plain, err := kr.Decrypt(sec.ClaudeAccessToken, secrets.AD{Table: "customer_secrets", Column: "claude_access_token", RowID: cid})
	require.NoError(t, err)
	require.Equal(t, "sk-ant-oat01-ACCESS-secret-value", string(plain))
	exp, err := kr.Decrypt(sec.ClaudeTokenExpiresAt, secrets.AD{Table: "customer_secrets", Column: "claude_token_expires_at", RowID: cid})
	require.NoError(t, err)
	require.Equal(t, "2027-01-31T12:00:00Z", string(exp))

	d, err := s.Get(ctx, cid)
	require.NoError(t, err)
	require.Equal(t, "ann@example.com", d.Customer.Email)
	require.True(t, d.Claude.Set)
	require.True(t, d.Telegram.Set)

	var detail string
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT detail FROM audit_log WHERE action = 'customer_create'`).Scan(&detail))
	require.Contains(t, detail, "Claude access token")
	require.NotContains(t, detail, "secret-value")
}

func TestUpdateKeepsBlankSecrets(t *testing.T) {
	t.Parallel()
	s, kr, p := setup(t)
	ctx := context.Background()
	cid, _, err := s.Create(ctx, validForm(), actor)
	require.NoError(t, err)
	f := validForm()
	f.Name = "Ann Renamed"
	f.ClaudeAccessToken, f.ClaudeRefreshToken, f.TelegramBotToken = "", "", ""
	f.Plan = "pro"
	require.NoError(t, s.Update(ctx, cid, f, actor))
	sec, err := db.New().CustomerSecretsGet(ctx, p.pool, cid)
	require.NoError(t, err)
	plain, err := kr.Decrypt(sec.TelegramBotToken, secrets.AD{Table: "customer_secrets", Column: "telegram_bot_token", RowID: cid})
	require.NoError(t, err)
	require.Contains(t, string(plain), "123456789:")
	d, err := s.Get(ctx, cid)
	require.NoError(t, err)
	require.Equal(t, "Ann Renamed", d.Customer.Name)
	require.Equal(t, "pro", d.Subscriptions[0].Plan)
}

func TestInvalidInputWritesNothing(t *testing.T) {
	t.Parallel()
	s, _, p := setup(t)
	ctx := context.Background()
	bad := validForm()
	bad.Email = "not-an-email"
	bad.TelegramBotToken = "nope"
	bad.Plan = "gold"
	bad.Name = "<script>\x00</script>"
	_, _, err := s.Create(ctx, bad, actor)
	var fe customer.FieldErrors
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe, "email")
	require.Contains(t, fe, "telegram_bot_token")
	require.Contains(t, fe, "plan")
	require.Contains(t, fe, "name")

	_, _, err = s.Create(ctx, validForm(), actor)
	require.NoError(t, err)
	_, _, err = s.Create(ctx, validForm(), actor)
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe["email"], "already exists")

	var n int
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&n))
	require.Equal(t, 1, n)
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n))
	require.Equal(t, 1, n)
}

func TestList(t *testing.T) {
	t.Parallel()
	s, _, _ := setup(t)
	ctx := context.Background()
	for _, e := range []string{"a_1@example.com", "b%2@example.com", "carol@example.com", "ax1@example.com"} {
		f := validForm()
		f.Email = e
		_, _, err := s.Create(ctx, f, actor)
		require.NoError(t, err)
	}
	page, err := s.List(ctx, customer.ListParams{Search: "a_1"})
	require.NoError(t, err)
	require.EqualValues(t, 1, page.Total, "LIKE wildcards are escaped")
	require.Equal(t, "a_1@example.com", page.Rows[0].CustomerEmail)
	page, err = s.List(ctx, customer.ListParams{Search: "B%2@"})
	require.NoError(t, err)
	require.EqualValues(t, 1, page.Total, "case-insensitive, % escaped")
	page, err = s.List(ctx, customer.ListParams{Status: "none", Sort: "email", PerPage: 2})
	require.NoError(t, err)
	require.EqualValues(t, 4, page.Total)
	require.Equal(t, 2, page.TotalPages)
	require.Equal(t, "a_1@example.com", page.Rows[0].CustomerEmail)
	require.Equal(t, "ax1@example.com", page.Rows[1].CustomerEmail)
	page, err = s.List(ctx, customer.ListParams{Status: "none", Sort: "email", PerPage: 2, Page: 50_000_000})
	require.NoError(t, err, "a page past the last shows the last")
	require.Equal(t, 2, page.Page)
	require.Equal(t, "carol@example.com", page.Rows[1].CustomerEmail)
	page, err = s.List(ctx, customer.ListParams{Status: "ready"})
	require.NoError(t, err)
	require.Zero(t, page.Total)
	require.Empty(t, page.Rows)
	_, err = s.List(ctx, customer.ListParams{Status: "bogus"})
	require.Error(t, err)
	_, err = s.List(ctx, customer.ListParams{Sort: "id; DROP TABLE customers"})
	require.Error(t, err)
	for _, q := range []string{"a\x00b", "bad\xff\xfeutf8", "ab", "abc\x1fdef", "tab\there"} {
		_, err = s.List(ctx, customer.ListParams{Search: q})
		var fe customer.FieldErrors
		require.ErrorAs(t, err, &fe, "%q is refused before it reaches PostgreSQL", q)
	}
}

type dbtestPool struct{ pool *pgxpool.Pool }

// TestSearchAndCountsFollowChanges: the search finds a subscription by its customer's current
// email and name and by its server's name and IPv4, and the maintained counts per status follow
// every insert, status change and delete (also after the deltas are folded in).
func TestSearchAndCountsFollowChanges(t *testing.T) {
	t.Parallel()
	s, _, p := setup(t)
	ctx := context.Background()
	f := validForm()
	f.Email = "old-address@example.com"
	cid, sid, err := s.Create(ctx, f, actor)
	require.NoError(t, err)
	f2 := validForm()
	f2.Email = "other@example.com"
	_, _, err = s.Create(ctx, f2, actor)
	require.NoError(t, err)

	found := func(q string) []int64 {
		t.Helper()
		page, err := s.List(ctx, customer.ListParams{Search: q})
		require.NoError(t, err)
		var ids []int64
		for _, r := range page.Rows {
			ids = append(ids, r.ID)
		}
		return ids
	}
	require.Equal(t, []int64{sid}, found("OLD-address"))
	// The email and name sorts read the customer's email and name as copied into each
	// subscription (indexed with and without the status): they follow a change at once.
	sorted := func(sort, status string) []string {
		t.Helper()
		page, err := s.List(ctx, customer.ListParams{Sort: sort, Status: status})
		require.NoError(t, err)
		var out []string
		for _, r := range page.Rows {
			out = append(out, r.CustomerEmail+" "+r.CustomerName)
		}
		return out
	}
	require.Equal(t, []string{"old-address@example.com Ann Example", "other@example.com Ann Example"}, sorted("email", ""))
	f.Email, f.Name = "zz-new-address@example.com", "Renamed Person"
	require.NoError(t, s.Update(ctx, cid, f, actor))
	require.Empty(t, found("old-address"))
	require.Equal(t, []int64{sid}, found("new-address"))
	require.Equal(t, []int64{sid}, found("renamed pers"))
	require.Equal(t, []string{"other@example.com Ann Example", "zz-new-address@example.com Renamed Person"}, sorted("email", ""))
	require.Equal(t, []string{"other@example.com Ann Example", "zz-new-address@example.com Renamed Person"}, sorted("name", "none"))
	_, err = p.pool.Exec(ctx, `UPDATE customers SET name = 'Aaron First' WHERE id = $1`, cid)
	require.NoError(t, err)
	require.Equal(t, []string{"zz-new-address@example.com Aaron First", "other@example.com Ann Example"}, sorted("name", "none"))

	_, err = p.pool.Exec(ctx, `UPDATE subscriptions SET vps_hostname = 'rachel-77', vps_ip_address = '192.0.2.77',
		provisioning_status = 'creating', step_started_at = now() WHERE id = $1`, sid)
	require.NoError(t, err)
	require.Equal(t, []int64{sid}, found("rachel-77"))
	require.Equal(t, []int64{sid}, found("192.0.2.7"))

	counts := func() map[string]int64 {
		t.Helper()
		cs, err := s.CountByStatus(ctx)
		require.NoError(t, err)
		m := map[string]int64{}
		for _, c := range cs {
			m[c.Status] = c.Count
		}
		return m
	}
	require.Equal(t, map[string]int64{"none": 1, "creating": 1}, counts())
	// Enough status changes that a reader folds the deltas into the counts.
	for range 60 {
		_, err = p.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'pending' WHERE id = $1`, sid)
		require.NoError(t, err)
		_, err = p.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'creating', updated_at = now() WHERE id = $1`, sid)
		require.NoError(t, err)
	}
	require.Equal(t, map[string]int64{"none": 1, "creating": 1}, counts())
	var deltas int
	require.NoError(t, p.pool.QueryRow(ctx, `SELECT count(*) FROM subscription_status_deltas`).Scan(&deltas))
	require.Zero(t, deltas, "folded")
	_, err = p.pool.Exec(ctx, `DELETE FROM audit_log`)
	require.NoError(t, err)
	_, err = p.pool.Exec(ctx, `DELETE FROM subscriptions WHERE id = $1`, sid)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"none": 1}, counts())
	page, err := s.List(ctx, customer.ListParams{})
	require.NoError(t, err)
	require.EqualValues(t, 1, page.Total)
}
