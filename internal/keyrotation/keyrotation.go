// Package keyrotation re-encrypts every stored secret under the keyring's primary key.
package keyrotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/secrets"
)

// Rotate re-encrypts, in one transaction, every ciphertext not yet under the primary key (customer
// secrets, the VPS access and host keys, a kept callback token, the pre-generated key pool, admins'
// TOTP secrets), and
// returns how many values it rewrote. A value no key of the keyring can decrypt stops it with an
// error and nothing is changed.
//
// Every row is read FOR UPDATE: a secret changed while rotation runs either commits before the
// read (and is rotated) or waits for the rotation to commit (and is written over the rotated
// row); it is never overwritten by the value rotation read before it. Should the row locks meet
// another transaction's in a deadlock, PostgreSQL aborts one of them; Rotate then starts over.
func Rotate(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring) (int, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var n int
		n, err = rotate(ctx, pool, kr)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 3 || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
			return n, err
		}
	}
}

func rotate(ctx context.Context, pool *pgxpool.Pool, kr *secrets.Keyring) (int, error) {
	q := db.New()
	n := 0
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		re := func(ct []byte, ad secrets.AD) ([]byte, error) {
			if ct == nil || !kr.NeedsRotation(ct) {
				return ct, nil
			}
			out, err := kr.Reencrypt(ct, ad)
			if err != nil {
				return nil, fmt.Errorf("re-encrypt %s: %w", ad, err)
			}
			n++
			return out, nil
		}
		rows, err := q.CustomerSecretsListAll(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			p := db.CustomerSecretsReplaceParams{CustomerID: r.CustomerID}
			for _, f := range []struct {
				dst    *[]byte
				src    []byte
				column string
			}{
				{&p.ClaudeAccessToken, r.ClaudeAccessToken, "claude_access_token"},
				{&p.ClaudeRefreshToken, r.ClaudeRefreshToken, "claude_refresh_token"},
				{&p.ClaudeTokenExpiresAt, r.ClaudeTokenExpiresAt, "claude_token_expires_at"},
				{&p.TelegramBotToken, r.TelegramBotToken, "telegram_bot_token"},
				{&p.OwnerTelegramUserID, r.OwnerTelegramUserID, "owner_telegram_user_id"},
			} {
				if *f.dst, err = re(f.src, secrets.AD{Table: "customer_secrets", Column: f.column, RowID: r.CustomerID}); err != nil {
					return err
				}
			}
			if err := q.CustomerSecretsReplace(ctx, tx, p); err != nil {
				return err
			}
		}
		keys, err := q.SubscriptionKeysListAll(ctx, tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			p := db.SubscriptionKeysReplaceParams{ID: k.ID}
			if p.SshPrivateKey, err = re(k.SshPrivateKey, secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: k.ID}); err != nil {
				return err
			}
			if p.SshHostKeyPrivate, err = re(k.SshHostKeyPrivate, secrets.AD{Table: "subscriptions", Column: "ssh_host_key_private", RowID: k.ID}); err != nil {
				return err
			}
			if p.CallbackToken, err = re(k.CallbackToken, secrets.AD{Table: "subscriptions", Column: "callback_token", RowID: k.ID}); err != nil {
				return err
			}
			if err := q.SubscriptionKeysReplace(ctx, tx, p); err != nil {
				return err
			}
		}
		pooled, err := q.SSHKeyPoolListAll(ctx, tx)
		if err != nil {
			return err
		}
		for _, k := range pooled {
			ct, err := re(k.PrivateKey, secrets.AD{Table: "ssh_key_pool", Column: "private_key", RowID: k.ID})
			if err != nil {
				return err
			}
			if err := q.SSHKeyPoolSetPrivate(ctx, tx, db.SSHKeyPoolSetPrivateParams{ID: k.ID, PrivateKey: ct}); err != nil {
				return err
			}
		}
		// Admins' TOTP secrets: without them, dropping the old key would lock admins out.
		totp, err := q.AdminTOTPSecretsListAll(ctx, tx)
		if err != nil {
			return err
		}
		for _, a := range totp {
			p := db.AdminTOTPSecretsReplaceParams{ID: a.ID}
			if p.TotpSecret, err = re(a.TotpSecret, secrets.AD{Table: "admins", Column: "totp_secret", RowID: a.ID}); err != nil {
				return err
			}
			if p.TotpPendingSecret, err = re(a.TotpPendingSecret, secrets.AD{Table: "admins", Column: "totp_pending_secret", RowID: a.ID}); err != nil {
				return err
			}
			if err := q.AdminTOTPSecretsReplace(ctx, tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rotate keys: %w", err)
	}
	return n, nil
}
