package keyrotation_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/keyrotation"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func keyring(t *testing.T, s string) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.ParseKeyring(s)
	require.NoError(t, err)
	return kr
}

func TestRotateReencryptsEverythingUnderTheNewPrimary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	oldKey, err := secrets.GenerateKey()
	require.NoError(t, err)
	newKey, err := secrets.GenerateKey()
	require.NoError(t, err)
	oldRing := keyring(t, "1:"+oldKey)

	// Data written under key 1: customer secrets, a subscription's keys, a pooled key.
	cid, sid, err := customer.NewService(pool, oldRing).Create(ctx, customer.Form{
		Email: "rot@example.com", Name: "Rot", Plan: "personal", BillingStatus: "active",
		ClaudeAccessToken: "sk-ant-oat01-rotation", TelegramBotToken: "123456789:AAEhBP0av28FAKEfakeFAKEfakeFAKEfake12",
	}, audit.Actor{Email: "ops@example.com"})
	require.NoError(t, err)
	priv, err := oldRing.Encrypt([]byte("PRIVATE"), secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: sid})
	require.NoError(t, err)
	host, err := oldRing.Encrypt([]byte("HOST"), secrets.AD{Table: "subscriptions", Column: "ssh_host_key_private", RowID: sid})
	require.NoError(t, err)
	cbToken, err := oldRing.Encrypt([]byte("CALLBACK"), secrets.AD{Table: "subscriptions", Column: "callback_token", RowID: sid})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE subscriptions SET ssh_private_key = $1, ssh_public_key = 'pub', ssh_host_key_private = $2, ssh_host_key_public = 'hpub', callback_token = $4 WHERE id = $3`, priv, host, sid, cbToken)
	require.NoError(t, err)
	q := db.New()
	poolID, err := q.SSHKeyPoolInsert(ctx, pool, db.SSHKeyPoolInsertParams{Algorithm: "ed25519", PublicKey: "pub"})
	require.NoError(t, err)
	pooled, err := oldRing.Encrypt([]byte("POOLED"), secrets.AD{Table: "ssh_key_pool", Column: "private_key", RowID: poolID})
	require.NoError(t, err)
	require.NoError(t, q.SSHKeyPoolSetPrivate(ctx, pool, db.SSHKeyPoolSetPrivateParams{ID: poolID, PrivateKey: pooled}))

	// A keyring without the old key cannot rotate: it stops and changes nothing.
	_, err = keyrotation.Rotate(ctx, pool, keyring(t, "2:"+newKey))
	require.Error(t, err)
	sec, err := q.CustomerSecretsGet(ctx, pool, cid)
	require.NoError(t, err)
	v, err := secrets.Version(sec.ClaudeAccessToken)
	require.NoError(t, err)
	require.EqualValues(t, 1, v)

	// With both keys, new first: everything moves to key 2, once.
	both := keyring(t, "2:"+newKey+",1:"+oldKey)
	n, err := keyrotation.Rotate(ctx, pool, both)
	require.NoError(t, err)
	require.Equal(t, 6, n, "two customer secrets, two subscription keys, a kept callback token, one pooled key")
	n, err = keyrotation.Rotate(ctx, pool, both)
	require.NoError(t, err)
	require.Zero(t, n)

	// The old key can go: the new one alone reads everything.
	newOnly := keyring(t, "2:"+newKey)
	sec, err = q.CustomerSecretsGet(ctx, pool, cid)
	require.NoError(t, err)
	plain, err := newOnly.Decrypt(sec.ClaudeAccessToken, secrets.AD{Table: "customer_secrets", Column: "claude_access_token", RowID: cid})
	require.NoError(t, err)
	require.Equal(t, "sk-ant-oat01-rotation", string(plain))
	sub, err := q.SubscriptionGet(ctx, pool, sid)
	require.NoError(t, err)
	plain, err = newOnly.Decrypt(sub.SshHostKeyPrivate, secrets.AD{Table: "subscriptions", Column: "ssh_host_key_private", RowID: sid})
	require.NoError(t, err)
	require.Equal(t, "HOST", string(plain))
	plain, err = newOnly.Decrypt(sub.CallbackToken, secrets.AD{Table: "subscriptions", Column: "callback_token", RowID: sid})
	require.NoError(t, err)
	require.Equal(t, "CALLBACK", string(plain))
	keys, err := q.SSHKeyPoolListAll(ctx, pool)
	require.NoError(t, err)
	plain, err = newOnly.Decrypt(keys[0].PrivateKey, secrets.AD{Table: "ssh_key_pool", Column: "private_key", RowID: poolID})
	require.NoError(t, err)
	require.Equal(t, "POOLED", string(plain))
}

// A secret changed while rotation runs is not reverted: here the change holds the row when
// rotation starts, and commits only once rotation waits for it. Rotation then re-encrypts the
// new value (it used to read the old one first and write it back over the change).
func TestRotateKeepsAConcurrentChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	oldKey, err := secrets.GenerateKey()
	require.NoError(t, err)
	newKey, err := secrets.GenerateKey()
	require.NoError(t, err)
	oldRing := keyring(t, "1:"+oldKey)
	cid, _, err := customer.NewService(pool, oldRing).Create(ctx, customer.Form{
		Email: "race@example.com", Name: "Race", Plan: "personal", BillingStatus: "active",
		ClaudeAccessToken: "sk-ant-oat01-before",
	}, audit.Actor{Email: "ops@example.com"})
	require.NoError(t, err)
	ad := secrets.AD{Table: "customer_secrets", Column: "claude_access_token", RowID: cid}

	// A web process still on the old keyring saves a new token; its transaction is open.
	q := db.New()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	changed, err := oldRing.Encrypt([]byte("sk-ant-oat01-after"), ad)
	require.NoError(t, err)
	_, err = q.CustomerSecretsUpsert(ctx, tx, db.CustomerSecretsUpsertParams{CustomerID: cid, ClaudeAccessToken: changed})
	require.NoError(t, err)

	both := keyring(t, "2:"+newKey+",1:"+oldKey)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := keyrotation.Rotate(ctx, pool, both)
		done <- result{n, err}
	}()
	// Rotation reaches the changed row and waits for its lock.
	testkit.Eventually(t, "the rotation to wait for the row lock", func() error {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			return err
		}
		if waiting == 0 {
			return errors.New("no session waits for a lock")
		}
		return nil
	})
	require.NoError(t, tx.Commit(ctx))
	r := <-done
	require.NoError(t, r.err)

	sec, err := q.CustomerSecretsGet(ctx, pool, cid)
	require.NoError(t, err)
	plain, err := keyring(t, "2:"+newKey).Decrypt(sec.ClaudeAccessToken, ad)
	require.NoError(t, err, "rotated under the new key")
	require.Equal(t, "sk-ant-oat01-after", string(plain), "the change made during rotation survives")
}
