package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/db"
)

// TestArtifactThatDoesNotCheckOutSendsNoSecret: the artifact's digest does not match, so
// cloud-init's runcmd fails; injection reads cloud-init's own error and fails the step before a
// single secret leaves the worker.
func TestArtifactThatDoesNotCheckOutSendsNoSecret(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.env["ASSISTANT_ARTIFACT_SHA256"] = strings.Repeat("0", 64)
		o.env["ASSISTANT_ARTIFACT_URL"] = "" // filled in by setup with the fixture's URL
	})
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub))
	require.Contains(t, deref(sub.ProvisioningError), "cloud-init on the VPS ended with an error, so no secret was sent")
	require.Contains(t, deref(sub.ProvisioningError), "Runparts: 1 failures (runcmd)")

	m := b.sim.Machine(*sub.HetznerServerID)
	require.NotNil(t, m)
	_, installed := m.File(cloudinit.DefaultAssistantCommand)
	require.False(t, installed)
	for _, c := range m.Commands() {
		if c.Source == "ssh" {
			require.NotContains(t, c.Line, "install", "no secret was written")
			require.Zero(t, c.StdinBytes)
		}
	}
	for _, f := range cloudinit.SecretFiles("rachel") {
		_, ok := m.File(f.Path)
		require.False(t, ok, f.Path)
	}
}

// TestAssistantThatCannotRunFailsWithSystemdsWords: no artifact, and the image has no program
// at ASSISTANT_COMMAND: the restart "succeeds", then systemd shows 203/EXEC and the step fails
// with that, instead of spinning until INJECT_DEADLINE.
func TestAssistantThatCannotRunFailsWithSystemdsWords(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.env["ASSISTANT_ARTIFACT_URL"], o.env["ASSISTANT_ARTIFACT_SHA256"] = "", ""
		o.env["INJECT_DEADLINE"] = "10m" // the failure must not wait for it
	})
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub))
	msg := deref(sub.ProvisioningError)
	require.Contains(t, msg, "The assistant does not run on the VPS")
	require.Contains(t, msg, "main process exited with status 203/EXEC")
	require.Contains(t, msg, "auto-restart")
}

// TestRealVPSAssistantStartsWithItsConfiguration provisions on a real Debian 12 container: real
// cloud-init downloads the assistant fixture from this machine, checks its digest and installs
// it; injection writes the secrets; systemd runs the fixture, which records that it started
// with them. The step waited for the unit to stay up, and cloud-init reports no error.
func TestRealVPSAssistantStartsWithItsConfiguration(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real)
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(context.Background(), id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "error %q, events %v", deref(sub.ProvisioningError), b.events(t, id))

	m := b.realMachine(t, id)
	status := vpsRun(t, m, "cat "+assistantfixture.StatusPath)
	sum := sha256.Sum256([]byte("123456:ABC-bot"))
	require.Contains(t, status, "user=rachel\n")
	require.Contains(t, status, "telegram_owner_id=424242\n")
	require.Contains(t, status, "telegram_bot_token_sha256="+hex.EncodeToString(sum[:])+"\n")
	require.Contains(t, status, "credentials="+cloudinit.CredentialsPath+"\n")
	require.NotContains(t, status, "ABC-bot")

	show := vpsRun(t, m, "systemctl show --property=ActiveState --property=NRestarts "+cloudinit.UnitName)
	require.Equal(t, "NRestarts=0\nActiveState=active\n", show)
	require.Contains(t, vpsRun(t, m, "cloud-init status --format json || true"), `"status": "done"`)
	require.Equal(t, "750 root:rachel\n", vpsRun(t, m, "stat -c '%a %U:%G' "+cloudinit.ConfigDir))
	require.Equal(t, "600 rachel:rachel\n640 root:rachel\n",
		vpsRun(t, m, "stat -c '%a %U:%G' "+cloudinit.CredentialsPath+" "+cloudinit.TelegramEnvPath))
	require.Equal(t, assistantfixture.SHA256+"  "+cloudinit.DefaultAssistantCommand+"\n",
		vpsRun(t, m, "sha256sum "+cloudinit.DefaultAssistantCommand))
}

// TestRealVPSArtifactMismatchSendsNoSecret: on a real container the digest check in cloud-init's
// runcmd fails, real cloud-init records it, and injection fails with its words, sending nothing.
func TestRealVPSArtifactMismatchSendsNoSecret(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real, func(o *setupOpts) {
		o.env["ASSISTANT_ARTIFACT_SHA256"] = strings.Repeat("0", 64)
		o.env["ASSISTANT_ARTIFACT_URL"] = "" // the fixture's URL, with the wrong digest
	})
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(context.Background(), id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub), "events %v", b.events(t, id))
	msg := deref(sub.ProvisioningError)
	require.Contains(t, msg, "cloud-init on the VPS ended with an error, so no secret was sent")
	require.Contains(t, msg, "scripts-user")

	m := b.realMachine(t, id)
	require.Empty(t, strings.TrimSpace(vpsRun(t, m, "find /etc/rachel -type f")), "no secret file on the VPS")
	require.Contains(t, vpsRun(t, m, "cat /var/log/cloud-init-output.log"), "computed checksum did NOT match")
}
