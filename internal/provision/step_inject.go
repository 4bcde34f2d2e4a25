package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// secretFile is one file injection writes: content goes over stdin only.
type secretFile struct {
	cloudinit.SecretFile
	content []byte
}

// injectStep is the injecting_secrets step. It needs the database (the customer's secrets, the
// receipt), the configuration (RACHEL_KEYRING, VPS_SSH_PORT, INJECT_DEADLINE,
// ASSISTANT_STABLE_FOR), SSH timings, and Hetzner only to tell a vanished server from a slow one.
type injectStep struct {
	pool *pgxpool.Pool
	q    *db.Queries
	cfg  *config.Config
	// project finds the Hetzner project (client) the subscription's server lives in.
	project func(db.Subscription) (*hproject, error)
	log     *slog.Logger
	timings Timings
	hook    func(point string) // crash-safety tests block at named points
}

// run writes the customer's secrets to the VPS over SSH, pinned to the seeded host key,
// restarts the assistant and checks it runs; then records a receipt and marks the VPS ready.
//
// Order: cloud-init's own result first (a VPS whose cloud-init failed — say the assistant's
// artifact did not download or check out — gets no secret), then each file staged and renamed
// into place, the restart, and the unit watched until it has stayed up for ASSISTANT_STABLE_FOR.
func (s *injectStep) run(ctx context.Context, sub db.Subscription) (outcome, error) {
	if sub.HetznerServerID == nil || sub.VpsIpAddress == nil || sub.SshPrivateKey == nil || sub.SshHostKeyPublic == nil {
		return waiting, fail("No server or keys are recorded for this subscription. Destroy it and provision again.")
	}
	files, err := s.secretFiles(ctx, sub.CustomerID)
	if err != nil {
		return waiting, err
	}
	privPEM, err := s.cfg.Keyring.Decrypt(sub.SshPrivateKey, secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: sub.ID})
	if err != nil {
		return waiting, fail("The stored SSH key cannot be decrypted (%v): was RACHEL_KEYRING changed? Destroy and provision again.", err)
	}
	signer, err := sshkey.ParsePrivateKey(privPEM)
	if err != nil {
		return waiting, fail("The stored SSH key is unusable (%v). Destroy and provision again.", err)
	}
	pinned, err := sshkey.ParseAuthorizedKey(*sub.SshHostKeyPublic)
	if err != nil {
		return waiting, fail("The pinned host key is unusable (%v). Destroy and provision again.", err)
	}

	addr := net.JoinHostPort(sub.VpsIpAddress.String(), strconv.Itoa(s.cfg.VPSSSHPort))
	var mismatch error
	check := sshkey.FixedHostKeyCallback(pinned)
	conn, err := dialVPS(ctx, addr, &ssh.ClientConfig{
		User: cloudinit.DefaultLoginUser,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			if err := check(host, remote, key); err != nil {
				mismatch = err
				return err
			}
			return nil
		},
		HostKeyAlgorithms: []string{pinned.Type()},
		Timeout:           s.timings.SSHTimeout,
	}, s.timings.sshLimits())
	if mismatch != nil {
		return waiting, fail("The VPS at %s presented a different SSH host key than the one seeded into it (%v). Nothing was sent. Someone else may answer at that address: Destroy the VPS and provision again.", addr, mismatch)
	}
	if err != nil {
		return s.retry(ctx, sub, fmt.Sprintf("cannot reach sshd at %s: %v%s", addr, err, silenceHint(err)))
	}
	defer conn.Close()
	s.hook("inject-connected")

	ci, err := cloudInitStatus(ctx, conn)
	if err != nil {
		return s.retry(ctx, sub, fmt.Sprintf("read cloud-init's status: %v", err))
	}
	switch ci.Status {
	case "done":
	case "error":
		return waiting, fail("cloud-init on the VPS ended with an error, so no secret was sent: %s. Fix the cause (for the assistant: ASSISTANT_ARTIFACT_URL, ASSISTANT_ARTIFACT_SHA256, ASSISTANT_COMMAND), then Destroy and provision again.", ci.message())
	default:
		return s.retry(ctx, sub, fmt.Sprintf("cloud-init is not done: %s", ci.message()))
	}

	var receipt []ReceiptFile
	for _, f := range files {
		if _, err := conn.Run(ctx, "sudo "+f.InstallCommand(), f.content); err != nil {
			if sudoRefused(err) {
				return waiting, fail("The VPS's sudo rule does not allow this injection (%v). It was provisioned with an older cloud-config (before the root-owned /etc/rachel): Destroy it and provision again.", err)
			}
			return s.retry(ctx, sub, fmt.Sprintf("write %s: %v", f.Path, err))
		}
		s.hook("inject-wrote-temp")
		if _, err := conn.Run(ctx, "sudo "+f.MoveCommand(), nil); err != nil {
			return s.retry(ctx, sub, fmt.Sprintf("move %s into place: %v", f.Path, err))
		}
		sum := sha256.Sum256(f.content)
		receipt = append(receipt, ReceiptFile{Path: f.Path, SHA256: hex.EncodeToString(sum[:]), Bytes: len(f.content), Mode: f.Mode, Owner: f.Owner + ":" + f.Group})
	}
	if _, err := conn.Run(ctx, "sudo "+cloudinit.RestartCommand, nil); err != nil {
		return s.retry(ctx, sub, fmt.Sprintf("restart %s: %v", cloudinit.UnitName, err))
	}
	if err := waitUnitStable(ctx, conn, s.cfg.AssistantStableFor); err != nil {
		var failed *errUnitFailed
		if errors.As(err, &failed) {
			return waiting, fail("The assistant does not run on the VPS: %v. The secrets are in place; fix the assistant (ASSISTANT_ARTIFACT_URL, ASSISTANT_COMMAND), then Re-inject or Retry.", err)
		}
		return s.retry(ctx, sub, fmt.Sprintf("check %s: %v", cloudinit.UnitName, err))
	}
	s.hook("inject-done")

	filesJSON, err := json.Marshal(receipt)
	if err != nil {
		return waiting, fmt.Errorf("receipt: %w", err)
	}
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.q.ProvisionReady(ctx, tx, db.ProvisionReadyParams{ID: sub.ID, Sources: state.Guard(state.Injected)}); err != nil {
			if errors.Is(err, db.ErrNotFound) {
				return nil // destroyed meanwhile: the loop turns to that
			}
			return fmt.Errorf("mark ready: %w", err)
		}
		if _, err := s.q.SecretReceiptInsert(ctx, tx, db.SecretReceiptInsertParams{SubscriptionID: sub.ID, Files: filesJSON}); err != nil {
			return fmt.Errorf("record receipt: %w", err)
		}
		written := make([]string, len(receipt))
		for i, r := range receipt {
			written[i] = fmt.Sprintf("%s (%s, %s)", r.Path, r.Mode, r.Owner)
		}
		if err := event(ctx, tx, sub.ID, db.ProvisioningStatusInjectingSecrets, "completed", actorWorker,
			"Wrote %s; %s is running and stayed up for %s", strings.Join(written, ", "), cloudinit.UnitName, s.cfg.AssistantStableFor); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusReady, "entered", actorWorker, "VPS ready at %s", sub.VpsIpAddress)
	})
	return advanced, err
}

// silenceHint explains a connection that got no answer at all (a timeout, not a refusal): that
// is what a Hetzner firewall dropping the worker's address looks like, where a VPS still booting
// refuses instead once its address is up.
func silenceHint(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return " — no answer at all, as when the VPS's firewall drops this worker's address: SSH_ALLOWED_SOURCES must admit the worker's public address"
	}
	return ""
}

// retry waits for sshd (or the assistant) a little longer, until INJECT_DEADLINE. A server
// that has vanished fails at once.
func (s *injectStep) retry(ctx context.Context, sub db.Subscription, problem string) (outcome, error) {
	p, err := s.project(sub)
	if err != nil {
		return waiting, err
	}
	srv, _, err := p.hc.Server.GetByID(ctx, *sub.HetznerServerID)
	if err == nil && srv == nil {
		return waiting, serverGone(ctx, s.pool, sub, db.ProvisioningStatusInjectingSecrets,
			fmt.Sprintf("Server %d was deleted outside this app while secrets were being injected. Retry creates a new server; Destroy cleans up the rest.", *sub.HetznerServerID))
	}
	if sub.StepStartedAt != nil && time.Since(*sub.StepStartedAt) > s.cfg.InjectDeadline {
		return waiting, fail("Secret injection did not succeed within INJECT_DEADLINE (%s): %s. Retry tries again; Destroy removes the VPS.", s.cfg.InjectDeadline, problem)
	}
	s.log.InfoContext(ctx, "secret injection will retry", "problem", problem)
	return snoozeFor(s.timings.InjectRetry), nil
}

// claudeCredentials is the Claude tooling's credentials file.
type claudeCredentials struct {
	ClaudeAiOauth struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken,omitempty"`
		ExpiresAt    int64  `json:"expiresAt,omitempty"` // Unix milliseconds
	} `json:"claudeAiOauth"`
}

// secretFiles decrypts the customer's secrets into the files of docs/contracts.md.
func (s *injectStep) secretFiles(ctx context.Context, customerID int64) ([]secretFile, error) {
	row, err := s.q.CustomerSecretsGet(ctx, s.pool, customerID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, fail("The customer has no secrets yet. Enter the Claude credentials and the Telegram bot token on the customer page, then Retry.")
	}
	if err != nil {
		return nil, fmt.Errorf("read customer secrets: %w", err)
	}
	dec := func(column string, ct []byte) (string, error) {
		if ct == nil {
			return "", nil
		}
		pt, err := s.cfg.Keyring.Decrypt(ct, secrets.AD{Table: "customer_secrets", Column: column, RowID: customerID})
		if err != nil {
			return "", fail("The customer's %s cannot be decrypted (%v): was RACHEL_KEYRING changed? Enter it again, then Retry.", column, err)
		}
		return string(pt), nil
	}
	var errs []error
	get := func(column string, ct []byte) string {
		v, err := dec(column, ct)
		errs = append(errs, err)
		return v
	}
	access := get("claude_access_token", row.ClaudeAccessToken)
	refresh := get("claude_refresh_token", row.ClaudeRefreshToken)
	expires := get("claude_token_expires_at", row.ClaudeTokenExpiresAt)
	bot := get("telegram_bot_token", row.TelegramBotToken)
	owner := get("owner_telegram_user_id", row.OwnerTelegramUserID)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var missing []string
	if access == "" {
		missing = append(missing, "Claude access token")
	}
	if bot == "" {
		missing = append(missing, "Telegram bot token")
	}
	if owner == "" {
		missing = append(missing, "owner's Telegram user ID")
	}
	if len(missing) > 0 {
		return nil, fail("The customer's %s is not set. Enter it on the customer page, then Retry.", strings.Join(missing, " and "))
	}
	var cc claudeCredentials
	cc.ClaudeAiOauth.AccessToken, cc.ClaudeAiOauth.RefreshToken = access, refresh
	if expires != "" {
		t, err := time.Parse(time.RFC3339, expires)
		if err != nil {
			return nil, fail("The customer's Claude token expiry %q is not a time. Enter it again, then Retry.", expires)
		}
		cc.ClaudeAiOauth.ExpiresAt = t.UnixMilli()
	}
	creds, err := json.Marshal(cc)
	if err != nil {
		return nil, fmt.Errorf("encode credentials: %w", err)
	}
	if strings.ContainsAny(bot, "\n\r") || strings.ContainsAny(owner, "\n\r") {
		return nil, fail("The customer's Telegram settings contain a line break. Enter them again, then Retry.")
	}
	env := "TELEGRAM_BOT_TOKEN=" + bot + "\nTELEGRAM_OWNER_ID=" + owner + "\n"
	sf := cloudinit.SecretFiles(cloudinit.DefaultServiceUser)
	return []secretFile{
		{SecretFile: sf[0], content: append(creds, '\n')},
		{SecretFile: sf[1], content: []byte(env)},
	}, nil
}

// sudoRefused reports whether sudo refused a command its rule does not list (sudo's own words,
// with and without -n).
func sudoRefused(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "is not allowed to execute") || strings.Contains(msg, "a password is required")
}

// ReceiptFile is one file the injection wrote to the VPS, as recorded in the receipt (JSON):
// path, hash, size, mode and owner, never the content.
type ReceiptFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
	Mode   string `json:"mode"`
	Owner  string `json:"owner"`
}
