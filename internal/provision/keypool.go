package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// keyPairs gives the creating step its provisioner key pairs and keeps ssh_key_pool filled. It
// needs the database, the keyring (pooled private keys are encrypted), SSH_KEY_ALGORITHM and
// SSH_KEY_POOL_SIZE, the metrics (quarantined pairs) and a generator while the worker runs.
type keyPairs struct {
	pool    *pgxpool.Pool
	q       *db.Queries
	cfg     *config.Config
	alg     sshkey.Algorithm
	metrics *stepMetrics
	log     *slog.Logger
	every   time.Duration // how often the loop looks at the pool
	// gen generates pairs on demand (in parallel up to GOMAXPROCS); set while the worker runs.
	gen *sshkey.Pool
}

func poolAD(id int64) secrets.AD {
	return secrets.AD{Table: "ssh_key_pool", Column: "private_key", RowID: id}
}

// take takes a pre-generated pair from ssh_key_pool inside tx (SKIP LOCKED, so a burst
// of provisionings takes different pairs at once), or generates one when the pool is empty. In
// the process, generation is parallel up to GOMAXPROCS, so a burst does not queue behind one RSA
// generation after another.
//
// A pooled pair that no key of the keyring decrypts (its key was dropped from RACHEL_KEYRING, or
// the row is damaged) is moved to ssh_key_pool_quarantine in the same transaction, counted and
// logged (by ID, never its contents), and the next pair is taken: one bad row must not fail every
// provisioning that reaches it first.
func (k *keyPairs) take(ctx context.Context, tx pgx.Tx) (*sshkey.KeyPair, error) {
	for {
		row, err := k.q.SSHKeyPoolTake(ctx, tx, string(k.alg))
		if errors.Is(err, db.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("take pooled key: %w", err)
		}
		pem, derr := k.cfg.Keyring.Decrypt(row.PrivateKey, poolAD(row.ID))
		if derr == nil {
			return &sshkey.KeyPair{PublicKey: row.PublicKey, PrivateKeyPEM: pem}, nil
		}
		if err := k.q.SSHKeyPoolQuarantine(ctx, tx, db.SSHKeyPoolQuarantineParams{
			ID: row.ID, Algorithm: row.Algorithm, PublicKey: row.PublicKey, PrivateKey: row.PrivateKey,
			Reason: derr.Error(), CreatedAt: row.CreatedAt,
		}); err != nil {
			return nil, fmt.Errorf("quarantine pooled key %d: %w", row.ID, err)
		}
		k.metrics.keyQuarantined()
		k.log.WarnContext(ctx, "pooled SSH key cannot be decrypted: quarantined, taking the next",
			"pool_key_id", row.ID, "error", derr)
	}
	kp, err := k.gen.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("generate key pair: %w", err)
	}
	return kp, nil
}

// loop keeps ssh_key_pool at SSH_KEY_POOL_SIZE pairs of the configured algorithm. It
// generates only while no provisioning waits for a key: during a burst the CPU belongs to the
// provisionings that draw on the pool (or generate their own when it runs dry).
func (k *keyPairs) loop(ctx context.Context) error {
	for {
		if err := k.refill(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("refill SSH key pool", "err", err)
		}
		if !sleep(ctx, k.every) {
			return nil
		}
	}
}

// refill generates pairs into ssh_key_pool up to SSH_KEY_POOL_SIZE, stopping as soon as a
// provisioning waits for a key.
func (k *keyPairs) refill(ctx context.Context) error {
	n, err := k.q.SSHKeyPoolCount(ctx, k.pool, string(k.alg))
	if err != nil {
		return fmt.Errorf("count pooled keys: %w", err)
	}
	for ; n < int64(k.cfg.SSHKeyPoolSize); n++ {
		waiting, err := k.q.ProvisionWaitingForKeys(ctx, k.pool, state.Strings(state.BeforeServer))
		if err != nil {
			return fmt.Errorf("count provisionings waiting for keys: %w", err)
		}
		if waiting > 0 {
			return nil
		}
		kp, err := k.gen.Get(ctx)
		if err != nil {
			return err
		}
		err = inTx(ctx, k.pool, func(tx pgx.Tx) error {
			id, err := k.q.SSHKeyPoolInsert(ctx, tx, db.SSHKeyPoolInsertParams{Algorithm: string(k.alg), PublicKey: kp.PublicKey})
			if err != nil {
				return fmt.Errorf("pool key: %w", err)
			}
			enc, err := k.cfg.Keyring.Encrypt(kp.PrivateKeyPEM, poolAD(id))
			if err != nil {
				return fmt.Errorf("encrypt pooled key: %w", err)
			}
			return k.q.SSHKeyPoolSetPrivate(ctx, tx, db.SSHKeyPoolSetPrivateParams{ID: id, PrivateKey: enc})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
