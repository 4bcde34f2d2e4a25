package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/sshkey"
)

func poolAD(id int64) secrets.AD {
	return secrets.AD{Table: "ssh_key_pool", Column: "private_key", RowID: id}
}

// takeKeyPair takes a pre-generated pair from ssh_key_pool inside tx (SKIP LOCKED, so a burst
// of provisionings takes different pairs at once), or generates one when the pool is empty. In
// the process, generation is parallel up to GOMAXPROCS, so a burst does not queue behind one RSA
// generation after another.
//
// A pooled pair that no key of the keyring decrypts (its key was dropped from RACHEL_KEYRING, or
// the row is damaged) is moved to ssh_key_pool_quarantine in the same transaction, counted and
// logged (by ID, never its contents), and the next pair is taken: one bad row must not fail every
// provisioning that reaches it first.
func (w *Worker) takeKeyPair(ctx context.Context, tx pgx.Tx) (*sshkey.KeyPair, error) {
	for {
		row, err := w.q.SSHKeyPoolTake(ctx, tx, string(w.alg))
		if errors.Is(err, db.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("take pooled key: %w", err)
		}
		pem, derr := w.cfg.Keyring.Decrypt(row.PrivateKey, poolAD(row.ID))
		if derr == nil {
			return &sshkey.KeyPair{PublicKey: row.PublicKey, PrivateKeyPEM: pem}, nil
		}
		if err := w.q.SSHKeyPoolQuarantine(ctx, tx, db.SSHKeyPoolQuarantineParams{
			ID: row.ID, Algorithm: row.Algorithm, PublicKey: row.PublicKey, PrivateKey: row.PrivateKey,
			Reason: derr.Error(), CreatedAt: row.CreatedAt,
		}); err != nil {
			return nil, fmt.Errorf("quarantine pooled key %d: %w", row.ID, err)
		}
		w.metrics.keyQuarantined()
		w.o.log.WarnContext(ctx, "pooled SSH key cannot be decrypted: quarantined, taking the next",
			"pool_key_id", row.ID, "error", derr)
	}
	kp, err := w.keys.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("generate key pair: %w", err)
	}
	return kp, nil
}

// keyPoolLoop keeps ssh_key_pool at SSH_KEY_POOL_SIZE pairs of the configured algorithm. It
// generates only while no provisioning waits for a key: during a burst the CPU belongs to the
// provisionings that draw on the pool (or generate their own when it runs dry).
func (w *Worker) keyPoolLoop(ctx context.Context) error {
	for {
		if err := w.refillKeyPool(ctx); err != nil && ctx.Err() == nil {
			w.o.log.Warn("refill SSH key pool", "err", err)
		}
		if !sleep(ctx, w.o.timings.Sweep) {
			return nil
		}
	}
}

func (w *Worker) refillKeyPool(ctx context.Context) error {
	n, err := w.q.SSHKeyPoolCount(ctx, w.pool, string(w.alg))
	if err != nil {
		return fmt.Errorf("count pooled keys: %w", err)
	}
	for ; n < int64(w.cfg.SSHKeyPoolSize); n++ {
		waiting, err := w.q.ProvisionWaitingForKeys(ctx, w.pool)
		if err != nil {
			return fmt.Errorf("count provisionings waiting for keys: %w", err)
		}
		if waiting > 0 {
			return nil
		}
		kp, err := w.keys.Get(ctx)
		if err != nil {
			return err
		}
		err = inTx(ctx, w.pool, func(tx pgx.Tx) error {
			id, err := w.q.SSHKeyPoolInsert(ctx, tx, db.SSHKeyPoolInsertParams{Algorithm: string(w.alg), PublicKey: kp.PublicKey})
			if err != nil {
				return fmt.Errorf("pool key: %w", err)
			}
			enc, err := w.cfg.Keyring.Encrypt(kp.PrivateKeyPEM, poolAD(id))
			if err != nil {
				return fmt.Errorf("encrypt pooled key: %w", err)
			}
			return w.q.SSHKeyPoolSetPrivate(ctx, tx, db.SSHKeyPoolSetPrivateParams{ID: id, PrivateKey: enc})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
