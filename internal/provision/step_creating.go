package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
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

// creatingStep is the creating step. It needs the database, the configuration (RACHEL_KEYRING,
// the plans, SSH_ALLOWED_SOURCES, VPS_SSH_PORT, PUBLIC_BASE_URL, CALLBACK_DEADLINE), the
// installation ID (names and labels), the key pairs, the Hetzner projects (placement, server
// limit, the shared firewall of each) and the poller's nudge (it watches the create and start
// actions).
type creatingStep struct {
	pool *pgxpool.Pool
	q    *db.Queries
	cfg  *config.Config
	inst *installationID
	keys *keyPairs
	// projects are the Hetzner projects a server may be placed in, in configuration order.
	projects []*hproject
	// project finds the Hetzner project (client) the subscription's server lives in.
	project     func(db.Subscription) (*hproject, error)
	nudgePoller func()
	log         *slog.Logger
	timings     Timings
	hook        func(point string) // crash-safety tests block at named points
}

// run: key pair, SSH key in Hetzner, server; each recorded before anything waits on it.
// Then the create and start actions are left to the poller.
func (s *creatingStep) run(ctx context.Context, sub db.Subscription) (outcome, error) {
	inst, err := s.inst.get(ctx, s.pool)
	if err != nil {
		return waiting, err
	}
	name := ServerName(inst, sub.ID)
	if sub.SshPrivateKey == nil {
		if sub, err = s.storeKeys(ctx, sub, name); err != nil {
			return waiting, err
		}
		s.hook("keys-stored")
	}
	// The project is chosen before anything is created in Hetzner, and recorded.
	if sub.HetznerProject == nil {
		p, usage, err := s.place(ctx, sub, "")
		if err != nil {
			return waiting, err
		}
		if p == nil {
			return s.waitForLimit(ctx, nil, sub, usage)
		}
		sub.HetznerProject = &p.name
	}
	p, err := s.project(sub)
	if err != nil {
		return waiting, err
	}
	if sub.HetznerSshKeyID == nil {
		keyID, err := s.uploadKey(ctx, p, sub, inst, name)
		if err != nil {
			return waiting, err
		}
		if err := s.q.ProvisionSetSSHKeyID(ctx, s.pool, db.ProvisionSetSSHKeyIDParams{ID: sub.ID, SshKeyID: &keyID}); err != nil {
			return waiting, fmt.Errorf("record SSH key %d: %w", keyID, err)
		}
		sub.HetznerSshKeyID = &keyID
		s.hook("ssh-key-recorded")
	}
	if sub.HetznerServerID == nil {
		return s.createServer(ctx, p, sub, inst, name)
	}

	// The server exists: wait for this step's actions.
	actions, err := s.q.HetznerActionListSince(ctx, s.pool, db.HetznerActionListSinceParams{SubscriptionID: sub.ID, Since: *sub.StepStartedAt})
	if err != nil {
		return waiting, fmt.Errorf("read actions: %w", err)
	}
	if len(actions) == 0 {
		return s.checkServer(ctx, sub)
	}
	for _, a := range actions {
		if a.Status == string(hcloud.ActionStatusRunning) {
			return waiting, nil
		}
	}
	for _, a := range actions {
		if a.Status == string(hcloud.ActionStatusError) {
			return waiting, fail("Hetzner could not %s server %s: %s (%s). Retry creates it again; Destroy removes what is left.",
				strings.ReplaceAll(strings.TrimSuffix(a.Command, "_server"), "_", " "), name, deref(a.ErrorMessage), deref(a.ErrorCode))
		}
	}
	return advanced, s.awaitCallback(ctx, sub, "Server running")
}

// leftoversTimeout bounds recordLeftovers.
const leftoversTimeout = 5 * time.Second

// recordLeftovers records the SSH key and server this subscription's creating step made but a
// crash kept from recording (they carry its deterministic name and labels), so that a failed
// subscription keeps and shows everything already created. It runs after the failure is
// recorded, and is best effort: when Hetzner cannot be asked now (or the worker dies first),
// Retry adopts them and Destroy deletes them by name.
func (s *creatingStep) recordLeftovers(ctx context.Context, sub db.Subscription) {
	// A short look: the step is failing anyway, and Hetzner may be what makes it fail.
	ctx, cancel := context.WithTimeout(ctx, leftoversTimeout)
	defer cancel()
	inst, err := s.inst.get(ctx, s.pool)
	if err != nil {
		s.log.WarnContext(ctx, "look for unrecorded resources", "err", err)
		return
	}
	name := ServerName(inst, sub.ID)
	p, err := s.project(sub)
	if err != nil {
		s.log.WarnContext(ctx, "look for unrecorded resources", "err", err)
		return
	}
	if sub.HetznerSshKeyID == nil && sub.SshPublicKey != nil {
		key, _, err := p.hc.SSHKey.GetByName(ctx, name)
		if err == nil && key != nil && ownedBy(key.Labels, inst, sub) {
			err = s.q.ProvisionSetSSHKeyID(ctx, s.pool, db.ProvisionSetSSHKeyIDParams{ID: sub.ID, SshKeyID: &key.ID})
		}
		if err != nil {
			s.log.WarnContext(ctx, "look for an unrecorded SSH key", "err", err)
		}
	}
	if sub.HetznerServerID == nil && sub.CallbackTokenHash != nil {
		srv, _, err := p.hc.Server.GetByName(ctx, name)
		if err == nil && srv != nil && ownedBy(srv.Labels, inst, sub) {
			err = recordServer(ctx, s.pool, sub.ID, srv)
		}
		if err != nil {
			s.log.WarnContext(ctx, "look for an unrecorded server", "err", err)
		}
	}
}

// checkServer looks at a recorded server with no actions of this step to wait on (a Retry, an
// adopted server): gone → create again; off → power on; running → wait for the callback.
func (s *creatingStep) checkServer(ctx context.Context, sub db.Subscription) (outcome, error) {
	p, err := s.project(sub)
	if err != nil {
		return waiting, err
	}
	srv, _, err := p.hc.Server.GetByID(ctx, *sub.HetznerServerID)
	if err != nil {
		return waiting, hetznerError("read the server", err)
	}
	if srv == nil {
		if err := s.q.ProvisionClearServer(ctx, s.pool, sub.ID); err != nil {
			return waiting, fmt.Errorf("forget vanished server: %w", err)
		}
		return advanced, event(ctx, s.pool, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker,
			"Server %d no longer exists in Hetzner; creating a new one", *sub.HetznerServerID)
	}
	switch srv.Status {
	case hcloud.ServerStatusRunning:
		return advanced, s.awaitCallback(ctx, sub, "Server running")
	case hcloud.ServerStatusOff:
		action, _, err := p.hc.Server.Poweron(ctx, srv)
		if err != nil {
			return waiting, hetznerError("power the server on", err)
		}
		if err := recordActions(ctx, s.pool, sub.ID, action); err != nil {
			return waiting, err
		}
		s.nudgePoller()
		return waiting, event(ctx, s.pool, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker, "Server was off; powering it on")
	}
	return snoozeFor(max(s.timings.PollMin, s.timings.PollMax/2)), nil // initializing or starting
}

// storeKeys takes a pre-generated access key pair (or makes one), generates the host key, and
// stores both encrypted, in one transaction with taking the pooled pair.
func (s *creatingStep) storeKeys(ctx context.Context, sub db.Subscription, name string) (db.Subscription, error) {
	hk, err := sshkey.GenerateHostKey()
	if err != nil {
		return sub, err
	}
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		kp, err := s.keys.take(ctx, tx)
		if err != nil {
			return err
		}
		if kp, err = kp.WithComment("rachel-provisioner@" + name); err != nil {
			return err
		}
		kr := s.cfg.Keyring
		priv, err := kr.Encrypt(kp.PrivateKeyPEM, secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: sub.ID})
		if err != nil {
			return fmt.Errorf("encrypt private key: %w", err)
		}
		hostPriv, err := kr.Encrypt([]byte(hk.PrivateOpenSSH), secrets.AD{Table: "subscriptions", Column: "ssh_host_key_private", RowID: sub.ID})
		if err != nil {
			return fmt.Errorf("encrypt host key: %w", err)
		}
		_, err = s.q.ProvisionSetKeys(ctx, tx, db.ProvisionSetKeysParams{ID: sub.ID, SshPrivateKey: priv,
			SshPublicKey: kp.PublicKey, SshHostKeyPrivate: hostPriv, SshHostKeyPublic: hk.Public})
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("store keys: %w", err)
		}
		return nil
	})
	if err != nil {
		return sub, fmt.Errorf("key pair for subscription %d: %w", sub.ID, err)
	}
	return s.q.SubscriptionGet(ctx, s.pool, sub.ID)
}

// uploadKey uploads the public key under the subscription's name. A uniqueness_error (a retry
// after the upload went through, or a leftover) adopts the existing key when it is ours.
func (s *creatingStep) uploadKey(ctx context.Context, p *hproject, sub db.Subscription, inst, name string) (int64, error) {
	pub := *sub.SshPublicKey
	key, _, err := p.hc.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: name, PublicKey: pub, Labels: labelsFor(inst, sub)})
	s.hook("ssh-key-uploaded")
	if err == nil {
		return key.ID, nil
	}
	if !hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		return 0, hetznerError("upload the SSH key", err)
	}
	parsed, perr := sshkey.ParseAuthorizedKey(pub)
	if perr != nil {
		return 0, fmt.Errorf("parse stored public key: %w", perr)
	}
	fp := ssh.FingerprintLegacyMD5(parsed)
	existing, _, err := p.hc.SSHKey.GetByName(ctx, name)
	if err != nil {
		return 0, hetznerError("look up the SSH key", err)
	}
	if existing != nil && existing.Fingerprint == fp {
		return existing.ID, nil
	}
	if existing != nil {
		if !ownedBy(existing.Labels, inst, sub) {
			return 0, fail("An SSH key named %s exists in Hetzner that is not this subscription's (its labels name another installation or subscription, e.g. one from before a database restore). It is left alone: rename or delete it there, then Retry.", name)
		}
		// A leftover of an earlier provisioning of this subscription: replace it.
		if _, err := p.hc.SSHKey.Delete(ctx, existing); err != nil && !hcloud.IsError(err, hcloud.ErrorCodeNotFound) {
			return 0, hetznerError("delete the stale SSH key", err)
		}
		return 0, errors.New("replaced a stale SSH key; uploading again")
	}
	byFP, _, err := p.hc.SSHKey.GetByFingerprint(ctx, fp)
	if err != nil {
		return 0, hetznerError("look up the SSH key", err)
	}
	if byFP != nil {
		return byFP.ID, nil
	}
	return 0, errors.New("SSH key upload conflicted but no such key was found; trying again")
}

// createServer creates the server, or adopts the one a previous attempt created. The callback
// token is stored before the create is sent, so it doubles as "a create may be out", and a
// repeated create bakes the same token into the user data (see [creatingStep.callbackToken]).
func (s *creatingStep) createServer(ctx context.Context, p *hproject, sub db.Subscription, inst, name string) (outcome, error) {
	if sub.CallbackTokenHash != nil {
		srv, _, err := p.hc.Server.GetByName(ctx, name)
		if err != nil {
			return waiting, hetznerError("look up the server", err)
		}
		if srv != nil {
			return s.adoptServer(ctx, sub, inst, srv)
		}
	}
	if wait, err := s.queuedForLimit(ctx, sub); err != nil || wait != nil {
		if err != nil {
			return waiting, err
		}
		return *wait, nil
	}
	token, err := s.callbackToken(ctx, sub)
	if err != nil {
		return waiting, err
	}
	hostKeyPriv, err := s.cfg.Keyring.Decrypt(sub.SshHostKeyPrivate, secrets.AD{Table: "subscriptions", Column: "ssh_host_key_private", RowID: sub.ID})
	if err != nil {
		return waiting, fail("The stored host key cannot be decrypted (%v): was RACHEL_KEYRING changed? Destroy and provision again.", err)
	}
	userData, err := cloudinit.Build(userDataConfig(s.cfg, name, *sub.SshPublicKey, string(hostKeyPriv), *sub.SshHostKeyPublic,
		callbackURL(s.cfg.PublicBaseURL, token)))
	if err != nil {
		return waiting, fail("Cannot build the cloud-init user data: %v", err)
	}
	fwID, err := s.ensureFirewall(ctx, p, inst, sub.ID)
	if err != nil {
		return waiting, err
	}
	// Type, image and location come from the subscription's plan (createInPlan).
	res, wait, err := s.createInPlan(ctx, p, sub, hcloud.ServerCreateOpts{
		Name:             name,
		SSHKeys:          []*hcloud.SSHKey{{ID: *sub.HetznerSshKeyID}},
		UserData:         string(userData),
		StartAfterCreate: hcloud.Ptr(true),
		Labels:           labelsFor(inst, sub),
		Firewalls:        []*hcloud.ServerCreateFirewall{{Firewall: hcloud.Firewall{ID: fwID}}},
	})
	if res == nil && wait != nil {
		return *wait, err
	}
	if err != nil {
		if hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
			srv, _, gerr := p.hc.Server.GetByName(ctx, name)
			if gerr != nil {
				return waiting, hetznerError("look up the server", gerr)
			}
			if srv != nil {
				return s.adoptServer(ctx, sub, inst, srv)
			}
			return waiting, errors.New("server name conflict but no such server found; trying again")
		}
		if s.firewallGone(ctx, p, fwID, err) {
			s.forgetFirewall(ctx, p, inst)
			return waiting, fmt.Errorf("the shared firewall %d is gone; creating it again: %w", fwID, err)
		}
		if errors.Is(err, errNoCapacity) {
			return waiting, err // transient: retried with backoff until CREATE_DEADLINE
		}
		return waiting, hetznerError("create the server", err)
	}
	actions := append([]*hcloud.Action{res.Action}, res.NextActions...)
	err = inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := recordServer(ctx, tx, sub.ID, res.Server); err != nil {
			return err
		}
		if sub.LimitWaitSince != nil {
			if err := s.q.LimitWaitEnd(ctx, tx, sub.ID); err != nil {
				return fmt.Errorf("leave the server-limit queue: %w", err)
			}
		}
		if err := recordActions(ctx, tx, sub.ID, actions...); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker,
			"Server %s (%d) created at %s: %s; waiting for Hetzner to start it", name, res.Server.ID, ipv4(res.Server), describeServer(res.Server))
	})
	if err != nil {
		return waiting, err
	}
	s.hook("server-recorded")
	s.nudgePoller()
	return waiting, nil
}

// adoptServer takes over a server this subscription created earlier: its labels carry this
// installation, this subscription and its tag (the name alone proves nothing).
func (s *creatingStep) adoptServer(ctx context.Context, sub db.Subscription, inst string, srv *hcloud.Server) (outcome, error) {
	if !ownedBy(srv.Labels, inst, sub) {
		return waiting, fail("A server named %s exists in Hetzner (ID %d) that is not this subscription's (its labels name another installation or subscription, e.g. one from before a database restore; the reconciler lists it as an orphan). It is left alone: delete or rename it there, then Retry.", srv.Name, srv.ID)
	}
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := recordServer(ctx, tx, sub.ID, srv); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusCreating, "info", actorWorker,
			"Adopted server %s (%d), created by an earlier attempt", srv.Name, srv.ID)
	})
	if err != nil {
		return waiting, err
	}
	sub.HetznerServerID = &srv.ID
	return s.checkServer(ctx, sub)
}

func recordServer(ctx context.Context, tx db.DBTX, subID int64, srv *hcloud.Server) error {
	var ip *netip.Addr
	if a, ok := netip.AddrFromSlice(srv.PublicNet.IPv4.IP.To4()); ok && !a.IsUnspecified() {
		ip = &a
	}
	if err := db.New().ProvisionSetServer(ctx, tx, db.ProvisionSetServerParams{ID: subID, ServerID: srv.ID, Hostname: srv.Name, Ip: ip}); err != nil {
		return fmt.Errorf("record server %d: %w", srv.ID, err)
	}
	return serverFacts(ctx, tx, subID, srv)
}

// recordActions records the Hetzner actions a call started, for the poller to watch.
func recordActions(ctx context.Context, tx db.DBTX, subID int64, actions ...*hcloud.Action) error {
	for _, a := range actions {
		if a == nil {
			continue
		}
		p := db.HetznerActionInsertParams{ID: a.ID, SubscriptionID: subID, Command: a.Command,
			Status: string(a.Status), Progress: int32(a.Progress)}
		if a.Status == hcloud.ActionStatusError {
			p.ErrorCode, p.ErrorMessage = &a.ErrorCode, &a.ErrorMessage
		}
		if err := db.New().HetznerActionInsert(ctx, tx, p); err != nil {
			return fmt.Errorf("record action %d: %w", a.ID, err)
		}
	}
	return nil
}

// awaitCallback: creating → cloud_init, the callback deadline starting now.
func (s *creatingStep) awaitCallback(ctx context.Context, sub db.Subscription, message string) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := s.q.ProvisionAwaitCallback(ctx, tx, db.ProvisionAwaitCallbackParams{ID: sub.ID, DeadlineSeconds: s.cfg.CallbackDeadline.Seconds(), Sources: state.Guard(state.ServerUp)})
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("enter cloud_init: %w", err)
		}
		if err := event(ctx, tx, sub.ID, db.ProvisioningStatusCreating, "completed", actorWorker, "%s", message); err != nil {
			return err
		}
		return event(ctx, tx, sub.ID, db.ProvisioningStatusCloudInit, "entered", actorWorker,
			"Waiting for cloud-init to call back (deadline %s)", s.cfg.CallbackDeadline)
	})
}

// ensureFirewall returns the installation's shared SSH-only firewall, creating it once. A firewall
// of that name is adopted only when its labels carry this installation. The first use in a worker
// process also brings its rules in line with SSH_ALLOWED_SOURCES and VPS_SSH_PORT (set_rules), so
// a changed setting reaches the servers that already exist; the change is shown in the
// subscription's event log and in the audit log.
func (s *creatingStep) ensureFirewall(ctx context.Context, p *hproject, inst string, subID int64) (int64, error) {
	p.fwMu.Lock()
	defer p.fwMu.Unlock()
	if p.fwID != 0 {
		return p.fwID, nil
	}
	name := FirewallName(inst)
	rules := s.firewallRules()
	row, err := s.q.SharedResourceGet(ctx, s.pool, db.SharedResourceGetParams{Project: p.name, Name: name})
	if err == nil {
		if err := s.syncFirewallRules(ctx, p, row.HetznerID, name, rules, &subID); err != nil {
			return 0, err
		}
		p.fwID = row.HetznerID
		return p.fwID, nil
	}
	if !errors.Is(err, db.ErrNotFound) {
		return 0, fmt.Errorf("read firewall record: %w", err)
	}
	res, _, err := p.hc.Firewall.Create(ctx, hcloud.FirewallCreateOpts{
		Name:   name,
		Labels: map[string]string{LabelManagedBy: LabelManagedByValue, LabelInstallation: inst},
		Rules:  rules,
	})
	var id int64
	switch {
	case err == nil:
		id = res.Firewall.ID
	case hcloud.IsError(err, hcloud.ErrorCodeUniquenessError):
		fw, _, gerr := p.hc.Firewall.GetByName(ctx, name)
		if gerr != nil || fw == nil {
			return 0, hetznerError("look up the firewall", errors.Join(err, gerr))
		}
		if fw.Labels[LabelManagedBy] != LabelManagedByValue || fw.Labels[LabelInstallation] != inst {
			return 0, fail("A firewall named %s exists in Hetzner (ID %d) that this installation did not create (its labels do not carry installation %s). It is left alone: rename or delete it there, then Retry.", name, fw.ID, inst)
		}
		if err := s.syncFirewallRules(ctx, p, fw.ID, name, rules, &subID); err != nil {
			return 0, err
		}
		id = fw.ID
	default:
		return 0, hetznerError("create the SSH-only firewall", err)
	}
	row, err = s.q.SharedResourcePut(ctx, s.pool, db.SharedResourcePutParams{Project: p.name, Name: name, Kind: "firewall", HetznerID: id})
	if err != nil {
		return 0, fmt.Errorf("record firewall %d: %w", id, err)
	}
	p.fwID = row.HetznerID
	return p.fwID, nil
}

// firewallRules is the one inbound rule the configuration asks for: SSH on VPS_SSH_PORT from
// SSH_ALLOWED_SOURCES.
func (s *creatingStep) firewallRules() []hcloud.FirewallRule {
	var sources []net.IPNet
	for _, p := range s.cfg.SSHAllowedFrom {
		bits := 32
		if p.Addr().Is6() {
			bits = 128
		}
		sources = append(sources, net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)})
	}
	port := strconv.Itoa(s.cfg.VPSSSHPort)
	return []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP,
		Port: &port, SourceIPs: sources, Description: hcloud.Ptr("SSH for the provisioner"),
	}}
}

// ruleSummary renders rules for comparison and for the event log: "in tcp 22 from 10.0.0.0/8, …".
func ruleSummary(rules []hcloud.FirewallRule) string {
	parts := make([]string, 0, len(rules))
	for _, r := range rules {
		var ips []string
		for _, n := range append(slices.Clone(r.SourceIPs), r.DestinationIPs...) {
			ips = append(ips, n.String())
		}
		slices.Sort(ips)
		port := ""
		if r.Port != nil {
			port = " " + *r.Port
		}
		parts = append(parts, fmt.Sprintf("%s %s%s from %s", r.Direction, r.Protocol, port, strings.Join(ips, ",")))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// syncFirewallRules sets the firewall's rules to want when they differ (a changed
// SSH_ALLOWED_SOURCES or VPS_SSH_PORT), and records the change for subscription subID (nil: in
// the audit log only). A firewall that is gone is forgotten, to be created again.
func (s *creatingStep) syncFirewallRules(ctx context.Context, p *hproject, id int64, name string, want []hcloud.FirewallRule, subID *int64) error {
	fw, _, err := p.hc.Firewall.GetByID(ctx, id)
	if err != nil {
		return hetznerError("read the firewall", err)
	}
	if fw == nil {
		_ = s.q.SharedResourceDelete(ctx, s.pool, db.SharedResourceDeleteParams{Project: p.name, Name: name})
		return fmt.Errorf("the shared firewall %s (%d) is gone; creating it again", name, id)
	}
	have, wantS := ruleSummary(fw.Rules), ruleSummary(want)
	if have == wantS {
		return nil
	}
	if _, _, err := p.hc.Firewall.SetRules(ctx, fw, hcloud.FirewallSetRulesOpts{Rules: want}); err != nil {
		return hetznerError("update the firewall's rules", err)
	}
	msg := fmt.Sprintf("Firewall %s (%d): rules changed to match SSH_ALLOWED_SOURCES and VPS_SSH_PORT: %s (were: %s); every server behind it follows", name, id, wantS, have)
	s.log.InfoContext(ctx, "firewall rules updated", "firewall_id", id, "rules", wantS, "were", have)
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		if subID != nil {
			if err := event(ctx, tx, *subID, db.ProvisioningStatusCreating, "info", actorWorker, "%s", msg); err != nil {
				return err
			}
		}
		return auditAction(ctx, tx, Actor{Email: actorWorker}, "firewall.set_rules", nil, subID, msg)
	})
}

func (s *creatingStep) forgetFirewall(ctx context.Context, p *hproject, inst string) {
	p.fwMu.Lock()
	defer p.fwMu.Unlock()
	p.fwID = 0
	_ = s.q.SharedResourceDelete(ctx, s.pool, db.SharedResourceDeleteParams{Project: p.name, Name: FirewallName(inst)})
}

func ipv4(srv *hcloud.Server) string {
	if srv == nil || srv.PublicNet.IPv4.IP == nil {
		return "(no IPv4)"
	}
	return srv.PublicNet.IPv4.IP.String()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
