package provision

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
	"github.com/rachelcloud/admin/internal/secrets"
)

// newCallbackToken returns a 256-bit random token, base64url for the URL, and the SHA-256 that
// is all the database keeps of it.
func newCallbackToken() (token string, hash []byte, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("callback token: %w", err)
	}
	h := sha256.Sum256(raw)
	return base64.RawURLEncoding.EncodeToString(raw), h[:], nil
}

// callbackURL is where cloud-init's phone_home posts.
func callbackURL(baseURL, token string) string {
	return strings.TrimRight(baseURL, "/") + "/callback/" + token
}

// HandleCallback accepts the phone_home POST of a new VPS: the token must be one issued for a
// server still waiting for it and not expired, instance_id must be that server's ID and
// pub_key_ed25519 the host key seeded into it. It is then spent, and injection starts. Anything
// else returns [ErrCallbackRejected] (the handler answers 404) and changes nothing.
func (s *Service) HandleCallback(ctx context.Context, token string, form url.Values, remoteIP string) error {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		s.metrics.callback("malformed_token")
		return ErrCallbackRejected
	}
	sum := sha256.Sum256(raw)
	var outcome string
	reject := func(why string, subID int64) error {
		outcome = why
		s.o.log.WarnContext(ctx, "VPS callback rejected", "reason", why, "subscription_id", subID, "remote_ip", remoteIP)
		return ErrCallbackRejected
	}
	var accepted db.Subscription
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		sub, err := s.q.ProvisionGetByCallbackToken(ctx, tx, sum[:])
		if errors.Is(err, db.ErrNotFound) {
			return reject("unknown or spent token", 0)
		}
		if err != nil {
			return fmt.Errorf("callback: read subscription: %w", err)
		}
		if subtle.ConstantTimeCompare(sub.CallbackTokenHash, sum[:]) != 1 {
			return reject("token hash mismatch", sub.ID)
		}
		st := statusOf(sub)
		if state.Decide(st, state.CallbackReceived) != state.Move {
			return reject("not waiting for a callback (state "+string(st)+")", sub.ID)
		}
		if sub.CallbackExpiresAt != nil && time.Now().After(*sub.CallbackExpiresAt) {
			return reject("token expired", sub.ID)
		}
		id, err := strconv.ParseInt(strings.TrimSpace(form.Get("instance_id")), 10, 64)
		if err != nil || sub.HetznerServerID == nil || id != *sub.HetznerServerID {
			return reject("instance_id does not match the server", sub.ID)
		}
		if sub.SshHostKeyPublic == nil || !sameKey(form.Get("pub_key_ed25519"), *sub.SshHostKeyPublic) {
			return reject("pub_key_ed25519 is not the seeded host key", sub.ID)
		}
		if _, err := s.q.ProvisionCallbackReceived(ctx, tx, db.ProvisionCallbackReceivedParams{ID: sub.ID, Sources: state.Guard(state.CallbackReceived)}); err != nil {
			return fmt.Errorf("callback: record for subscription %d: %w", sub.ID, err)
		}
		if st == db.ProvisioningStatusCreating {
			if err := event(ctx, tx, sub.ID, db.ProvisioningStatusCloudInit, "entered", actorVPS, "Server running"); err != nil {
				return err
			}
		}
		if err := event(ctx, tx, sub.ID, db.ProvisioningStatusCloudInit, "completed", actorVPS,
			"cloud-init finished: the VPS called back from %s (hostname %q)", remoteIP, form.Get("hostname")); err != nil {
			return err
		}
		if err := event(ctx, tx, sub.ID, db.ProvisioningStatusInjectingSecrets, "entered", actorVPS, "Injecting secrets over SSH"); err != nil {
			return err
		}
		accepted = sub
		return enqueueStep(ctx, s.river, tx, sub.ID)
	})
	switch {
	case err == nil:
		s.metrics.callback("accepted")
		if statusOf(accepted) == db.ProvisioningStatusCloudInit {
			s.metrics.stepDone(db.ProvisioningStatusCloudInit, accepted.StepStartedAt)
		}
		s.o.log.InfoContext(ctx, "VPS called back", "subscription_id", accepted.ID)
	case errors.Is(err, ErrCallbackRejected):
		s.metrics.callback(outcomeLabel(outcome))
	}
	return err
}

// outcomeLabel turns a rejection reason into a metric label of bounded cardinality.
func outcomeLabel(why string) string {
	switch {
	case strings.HasPrefix(why, "unknown"):
		return "unknown_token"
	case strings.HasPrefix(why, "not waiting"):
		return "not_waiting"
	case strings.HasPrefix(why, "token expired"):
		return "expired"
	case strings.HasPrefix(why, "instance_id"):
		return "wrong_instance"
	case strings.HasPrefix(why, "pub_key"):
		return "wrong_host_key"
	}
	return "rejected"
}

// sameKey compares two authorized_keys lines by key material, ignoring comments and spacing.
func sameKey(a, b string) bool {
	ka, _, _, _, err1 := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(a)))
	kb, _, _, _, err2 := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(b)))
	if err1 != nil || err2 != nil {
		return false
	}
	return bytes.Equal(ka.Marshal(), kb.Marshal())
}

// callbackToken returns the token to bake into the user data of the subscription's server: the
// one already stored when there is one, so that a create request of an earlier attempt that is
// still in flight (a crashed worker, a timed-out request Hetzner still carries out) makes a server
// whose callback is accepted. Only when no usable token is stored is one minted; replacing an
// unusable one is recorded in the event log, never done silently.
func (s *creatingStep) callbackToken(ctx context.Context, sub db.Subscription) (string, error) {
	ad := secrets.AD{Table: "subscriptions", Column: "callback_token", RowID: sub.ID}
	var why string
	switch {
	case sub.CallbackToken != nil:
		raw, err := s.cfg.Keyring.Decrypt(sub.CallbackToken, ad)
		if err == nil {
			return base64.RawURLEncoding.EncodeToString(raw), nil
		}
		why = fmt.Sprintf("the stored one cannot be decrypted (%v; was RACHEL_KEYRING changed?)", err)
	case sub.CallbackTokenHash != nil:
		why = "only the hash of the earlier one is stored"
	}
	token, hash, err := newCallbackToken()
	if err != nil {
		return "", err
	}
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	ct, err := s.cfg.Keyring.Encrypt(raw, ad)
	if err != nil {
		return "", fmt.Errorf("encrypt callback token: %w", err)
	}
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := s.q.ProvisionSetCallbackToken(ctx, tx, db.ProvisionSetCallbackTokenParams{ID: sub.ID, Hash: hash, Token: ct, Replace: why != ""})
		if errors.Is(err, db.ErrNotFound) {
			return errors.New("another attempt stored a callback token meanwhile; trying again")
		}
		if err != nil {
			return fmt.Errorf("store callback token: %w", err)
		}
		if why == "" {
			return nil
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker,
			"Minted a new callback token: %s. A server made by an earlier create request would call back with the old token and be rejected; the worker then checks over SSH that cloud-init finished.", why)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}
