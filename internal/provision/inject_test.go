package provision

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
	sub := b.waitStatus(t, id, happyTimeout, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
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
	sub := b.waitStatus(t, id, happyTimeout, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub))
	msg := deref(sub.ProvisioningError)
	require.Contains(t, msg, "The assistant does not run on the VPS")
	require.Contains(t, msg, "main process exited with status 203/EXEC")
	require.Contains(t, msg, "auto-restart")
}
