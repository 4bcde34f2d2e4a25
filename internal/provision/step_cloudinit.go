package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
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

// cloudInitStatusCommand is what the worker runs as the login user to learn whether cloud-init
// finished, when the VPS's callback does not come. In cloud-init 22.4 (Debian 12), `cloud-init
// status` reads /run/cloud-init/status.json and result.json (both world-readable, so no sudo is
// needed); its first line is "status: " and one of "not run", "running", "done", "error",
// "disabled"; --long adds boot_status_code, last_update and "detail:" followed by the datasource
// or the errors. It exits 1 on error, 0 otherwise (cloudinit/cmd/status.py, 22.4).
const cloudInitStatusCommand = "cloud-init status --long"

// cloudInitProbeMax caps the pause between two SSH looks at a VPS whose callback is late.
const cloudInitProbeMax = 30 * time.Second

// cloudInitStep is the cloud_init step. It needs the database, the configuration
// (RACHEL_KEYRING, VPS_SSH_PORT, CALLBACK_DEADLINE, PUBLIC_BASE_URL), SSH and polling timings, and
// Hetzner for the server's status when nothing answers SSH, and for one look whether the server
// vanished before it gives up.
type cloudInitStep struct {
	pool *pgxpool.Pool
	q    *db.Queries
	cfg  *config.Config
	// project finds the Hetzner project (client) the subscription's server lives in.
	project func(db.Subscription) (*hproject, error)
	log     *slog.Logger
	timings Timings
}

// run waits for the VPS's callback and meanwhile looks for itself: over SSH, pinned to
// the seeded host key, `cloud-init status --long` tells whether cloud-init finished. So a lost or
// rejected callback (the VPS cannot reach PUBLIC_BASE_URL, a server adopted after its phone_home
// gave up, a server made with another token) never strands a subscription: once cloud-init is
// done, injection starts as if the VPS had called back. Only when neither the callback nor SSH
// shows cloud-init finished by CALLBACK_DEADLINE does the step fail.
func (s *cloudInitStep) run(ctx context.Context, sub db.Subscription) (outcome, error) {
	var status, detail string
	var lastUpdate time.Time
	var err error
	if sub.HetznerServerID == nil || sub.VpsIpAddress == nil || sub.SshPrivateKey == nil || sub.SshHostKeyPublic == nil {
		err = errors.New("no server address or keys are recorded to look with")
	} else {
		status, detail, lastUpdate, err = s.probe(ctx, sub)
	}
	var mismatch *hostKeyMismatchError
	var unreachable *sshUnreachableError
	var f *stepFailure
	switch {
	case errors.As(err, &mismatch):
		return waiting, fail("The VPS at %s presented a different SSH host key than the one seeded into it (%v). Nothing was sent. Someone else may answer at that address: Destroy the VPS and provision again.", mismatch.addr, mismatch.err)
	case errors.As(err, &f):
		return waiting, err
	case errors.As(err, &unreachable) && unreachable.noConnection() && ctx.Err() == nil:
		// Nothing answers at the address: ask Hetzner whether the server still runs. A VPS that
		// never booted, or went down, shows `off` there (its console says why), and waiting for
		// CALLBACK_DEADLINE would only delay the same failure. One GET per probe whose TCP
		// connection failed (an sshd that answers, even refusing the login, is a running VPS).
		p, perr := s.project(sub)
		if perr != nil {
			return waiting, perr
		}
		if srv, _, gerr := p.hc.Server.GetByID(ctx, *sub.HetznerServerID); gerr == nil {
			switch {
			case srv == nil:
				return waiting, serverGone(ctx, s.pool, sub, db.ProvisioningStatusCloudInit, serverGoneWaitingReason(*sub.HetznerServerID))
			case srv.Status == hcloud.ServerStatusOff:
				return waiting, fail("Server %d is off at Hetzner: the VPS went down while it booted (or was powered off), so cloud-init never called back, and SSH at %s fails (%v). The server's console in Hetzner's Cloud Console shows why it stopped. Destroy the VPS and provision again, or power it on in the Cloud Console and Retry.",
					*sub.HetznerServerID, unreachable.addr, unreachable.err)
			}
		} else if ctx.Err() == nil {
			s.log.WarnContext(ctx, "cloud-init: could not read the server's status", "err", gerr)
		}
	case err != nil:
		if ctx.Err() != nil {
			return waiting, ctx.Err()
		}
	case (status == "done" || status == "error") && !lastUpdate.IsZero() && time.Since(lastUpdate) < s.timings.CallbackGrace &&
		(sub.CallbackExpiresAt == nil || time.Now().Before(*sub.CallbackExpiresAt)):
		// Just finished: its phone_home is on its way, and the callback is the normal path (a
		// callback after this would be turned away as spent). Look again after the grace.
		return snoozeFor(max(s.timings.CallbackGrace-time.Since(lastUpdate), s.timings.PollMin)), nil
	case status == "done" || status == "error":
		moved, err := s.confirmed(ctx, sub, status, detail)
		if err != nil || !moved {
			return outcome{next: true, moved: true}, err // the callback came first
		}
		return advanced, nil
	case status == "disabled":
		return waiting, fail("cloud-init is disabled on the VPS (`%s`: %s): it will neither set the VPS up nor call back. Destroy the VPS and provision again.", cloudInitStatusCommand, detail)
	default:
		err = fmt.Errorf("`%s` says %q", cloudInitStatusCommand, status)
	}
	if sub.CallbackExpiresAt != nil && time.Now().After(*sub.CallbackExpiresAt) {
		if sub.HetznerServerID != nil {
			// One look at Hetzner before giving up (not on every probe: that would cost the
			// request budget): a server deleted behind our back needs a new one, not a wait.
			if p, perr := s.project(sub); perr != nil {
				return waiting, perr
			} else if srv, _, gerr := p.hc.Server.GetByID(ctx, *sub.HetznerServerID); gerr == nil && srv == nil {
				return waiting, serverGone(ctx, s.pool, sub, db.ProvisioningStatusCloudInit, serverGoneWaitingReason(*sub.HetznerServerID))
			}
		}
		return waiting, fail("The VPS did not call back within CALLBACK_DEADLINE (%s), and over SSH cloud-init was not seen finished either (%v): cloud-init may still run or have hung, the VPS may not reach %s, or sshd does not answer. Retry looks again; Destroy removes the VPS.",
			s.cfg.CallbackDeadline, err, s.cfg.PublicBaseURL)
	}
	s.log.InfoContext(ctx, "cloud-init not seen finished yet", "problem", err)
	elapsed := time.Duration(0)
	if sub.StepStartedAt != nil {
		elapsed = time.Since(*sub.StepStartedAt)
	}
	// Look again soon at first, then less often: a callback wakes the job at once anyway.
	return snoozeFor(min(max(elapsed/2, s.timings.InjectRetry), cloudInitProbeMax)), nil
}

func serverGoneWaitingReason(id int64) string {
	return fmt.Sprintf("Server %d was deleted outside this app while waiting for cloud-init. Retry creates a new server; Destroy cleans up the rest.", id)
}

// serverGone fails the subscription at creating (Retry makes a new server) after its server
// vanished, if it is still in step from.
func serverGone(ctx context.Context, pool *pgxpool.Pool, sub db.Subscription, from db.ProvisioningStatus, reason string) error {
	return inTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := db.New().ProvisionMarkServerGone(ctx, tx, db.ProvisionMarkServerGoneParams{ID: sub.ID, Reason: reason, FromStatus: from, Sources: state.Guard(state.ServerVanished)}); err != nil {
			if errors.Is(err, db.ErrNotFound) {
				return nil // the state moved on (a destroy, a callback)
			}
			return fmt.Errorf("record server gone: %w", err)
		}
		return event(ctx, tx, sub.ID, from, "error", actorWorker, "%s", reason)
	})
}

// confirmed moves cloud_init → injecting_secrets after SSH showed cloud-init finished,
// spending the callback token as the callback would; a callback that won the race changes nothing.
func (s *cloudInitStep) confirmed(ctx context.Context, sub db.Subscription, status, detail string) (moved bool, err error) {
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.q.ProvisionCloudInitConfirmed(ctx, tx, db.ProvisionCloudInitConfirmedParams{ID: sub.ID, Sources: state.Guard(state.CloudInitSeen)}); err != nil {
			if errors.Is(err, db.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("record cloud-init finished: %w", err)
		}
		moved = true
		msg := fmt.Sprintf("cloud-init finished: no callback was accepted, but over SSH with the pinned host key `%s` reports %q", cloudInitStatusCommand, status)
		if status == "error" {
			msg += fmt.Sprintf(" (%s); injecting anyway, the injection checks that the assistant runs", detail)
		}
		if err := event(ctx, tx, sub.ID, db.ProvisioningStatusCloudInit, "completed", actorWorker, "%s", msg); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusInjectingSecrets, "entered", actorWorker, "Injecting secrets over SSH")
	})
	return moved && err == nil, err
}

// sshUnreachableError means no SSH session could be opened at the VPS's address (refused, timed
// out, or the handshake failed for another reason than the host key).
type sshUnreachableError struct {
	addr string
	err  error
}

func (e *sshUnreachableError) Error() string {
	return fmt.Sprintf("cannot reach sshd at %s: %v", e.addr, e.err)
}

func (e *sshUnreachableError) Unwrap() error { return e.err }

// noConnection reports whether not even a TCP connection was made (refused, timed out, no route).
func (e *sshUnreachableError) noConnection() bool {
	var op *net.OpError
	return errors.As(e.err, &op) && op.Op == "dial"
}

// hostKeyMismatchError means the VPS presented another host key than the seeded one.
type hostKeyMismatchError struct {
	addr string
	err  error
}

func (e *hostKeyMismatchError) Error() string {
	return fmt.Sprintf("host key of %s is not the seeded one: %v", e.addr, e.err)
}

// probe runs [cloudInitStatusCommand] on the VPS as the login user and returns the
// status word, the detail lines and last_update (zero when it is missing or unreadable).
func (s *cloudInitStep) probe(ctx context.Context, sub db.Subscription) (status, detail string, lastUpdate time.Time, err error) {
	privPEM, err := s.cfg.Keyring.Decrypt(sub.SshPrivateKey, secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: sub.ID})
	if err != nil {
		return "", "", time.Time{}, fail("The stored SSH key cannot be decrypted (%v): was RACHEL_KEYRING changed? Destroy and provision again.", err)
	}
	signer, err := sshkey.ParsePrivateKey(privPEM)
	if err != nil {
		return "", "", time.Time{}, fail("The stored SSH key is unusable (%v). Destroy and provision again.", err)
	}
	pinned, err := sshkey.ParseAuthorizedKey(*sub.SshHostKeyPublic)
	if err != nil {
		return "", "", time.Time{}, fail("The pinned host key is unusable (%v). Destroy and provision again.", err)
	}
	addr := net.JoinHostPort(sub.VpsIpAddress.String(), strconv.Itoa(s.cfg.VPSSSHPort))
	var mismatch error
	check := sshkey.FixedHostKeyCallback(pinned)
	// The command's own deadline: a VPS that accepts SSH but never answers must not hold the job.
	limits := s.timings.sshLimits()
	limits.command = s.timings.SSHTimeout
	client, err := dialVPS(ctx, addr, &ssh.ClientConfig{
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
	}, limits)
	if mismatch != nil {
		return "", "", time.Time{}, &hostKeyMismatchError{addr: addr, err: mismatch}
	}
	if err != nil {
		return "", "", time.Time{}, &sshUnreachableError{addr: addr, err: err}
	}
	defer client.Close()
	out, runErr := client.Run(ctx, cloudInitStatusCommand, nil)
	status, detail, lastUpdate, ok := parseCloudInitStatus(string(out))
	if !ok {
		return "", "", time.Time{}, fmt.Errorf("`%s` printed no status (%v)", cloudInitStatusCommand, runErr)
	}
	return status, detail, lastUpdate, nil
}

// parseCloudInitStatus reads the output of `cloud-init status --long` (22.4):
//
//	status: done
//	boot_status_code: enabled-by-generator
//	last_update: Thu, 01 Jan 1970 00:02:05 +0000
//	detail:
//	DataSourceHetzner
func parseCloudInitStatus(out string) (status, detail string, lastUpdate time.Time, ok bool) {
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if s, found := strings.CutPrefix(l, "status: "); found && !ok {
			status, ok = strings.TrimSpace(s), true
			continue
		}
		if s, found := strings.CutPrefix(l, "last_update: "); found {
			// strftime("%a, %d %b %Y %H:%M:%S %z", gmtime(...)) in cloud-init 22.4.
			lastUpdate, _ = time.Parse("Mon, 02 Jan 2006 15:04:05 -0700", strings.TrimSpace(s))
			continue
		}
		if l == "detail:" {
			detail = strings.TrimSpace(strings.Join(lines[i+1:], "\n"))
			break
		}
	}
	const maxDetail = 500
	if len(detail) > maxDetail {
		detail = detail[:maxDetail] + "…"
	}
	return status, detail, lastUpdate, ok
}
