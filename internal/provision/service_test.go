package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testkit"
)

func TestHappyPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	id := b.newSubscription(t)

	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "error: %v; events: %v", deref(sub.ProvisioningError), b.events(t, id))
	require.NotNil(t, sub.ProvisionedAt)
	b.assertOnly(t, id)

	// The stored private key is encrypted, bound to the row.
	require.NotContains(t, string(sub.SshPrivateKey), "PRIVATE KEY")
	pem, err := b.cfg.Keyring.Decrypt(sub.SshPrivateKey, secrets.AD{Table: "subscriptions", Column: "ssh_private_key", RowID: id})
	require.NoError(t, err)
	require.Contains(t, string(pem), "-----BEGIN PRIVATE KEY-----")

	// The VPS holds the secrets as contracts.md says, in a directory the assistant cannot write,
	// runs the assistant cloud-init downloaded and checked, and cloud-init ended without error.
	srv, ok := b.sim.Server(*sub.HetznerServerID)
	require.True(t, ok)
	require.Equal(t, map[string]string{LabelManagedBy: LabelManagedByValue, LabelInstallation: b.inst(t),
		LabelSubscription: itoa(id), LabelTag: b.sub(t, id).HetznerTag}, srv.Labels)
	require.Len(t, srv.Firewalls, 1)
	m := b.sim.Machine(srv.ID)
	require.NotNil(t, m)
	for _, sf := range cloudinit.SecretFiles("rachel") {
		f, ok := m.File(sf.Path)
		require.True(t, ok, sf.Path)
		require.Equal(t, sf.Mode, fmt.Sprintf("%04o", uint32(f.Mode)), sf.Path)
		require.Equal(t, sf.Owner, f.Owner, sf.Path)
		require.Equal(t, sf.Group, f.Group, sf.Path)
	}
	dir, ok := m.Dir(cloudinit.ConfigDir)
	require.True(t, ok)
	require.Equal(t, []any{fs.ModeDir | 0o750, "root", "rachel"}, []any{dir.Mode, dir.Owner, dir.Group})
	prog, ok := m.File(cloudinit.DefaultAssistantCommand)
	require.True(t, ok, "cloud-init installed the assistant")
	require.Equal(t, assistantfixture.SHA256, prog.SHA256)
	require.EqualValues(t, 0o755, prog.Mode)
	require.Empty(t, m.State().CloudInitErrors)
	env, _ := m.File(cloudinit.TelegramEnvPath)
	require.Equal(t, "TELEGRAM_BOT_TOKEN=123456:ABC-bot\nTELEGRAM_OWNER_ID=424242\n", string(env.Content))
	creds, _ := m.File(cloudinit.CredentialsPath)
	require.Contains(t, string(creds.Content), `"accessToken":"sk-ant-oat01-access"`)
	require.Equal(t, "active", m.Services()[cloudinit.UnitName])
	for _, c := range m.Commands() {
		require.NotContains(t, c.Line, "sk-ant", "a secret went over a command line")
	}

	// The event log shows every step with times, the receipt what was written, the host key is
	// pinned: what the status page shows (package statusview).
	ready := b.sub(t, id)
	require.NotNil(t, ready.SshHostKeyPublic)
	row, err := db.New().UIStatusGet(ctx, b.pool, id)
	require.NoError(t, err)
	var receipt struct {
		Files []ReceiptFile `json:"files"`
	}
	require.NoError(t, json.Unmarshal(row.Receipt, &receipt))
	require.Len(t, receipt.Files, 2)
	require.Equal(t, env.SHA256, receipt.Files[1].SHA256)
	evs, err := db.New().ProvisioningEventList(ctx, b.pool, id)
	require.NoError(t, err)
	entered := map[string]bool{}
	for _, e := range evs {
		require.False(t, e.OccurredAt.IsZero())
		if e.Kind == "entered" {
			entered[string(e.Step)] = true
		}
	}
	require.Equal(t, map[string]bool{"pending": true, "creating": true, "cloud_init": true, "injecting_secrets": true, "ready": true}, entered)

	// Re-inject after the secrets change.
	q := db.New()
	ct, err := b.cfg.Keyring.Encrypt([]byte("999:NEW-bot"), secrets.AD{Table: "customer_secrets", Column: "telegram_bot_token", RowID: sub.CustomerID})
	require.NoError(t, err)
	_, err = q.CustomerSecretsUpsert(ctx, b.pool, db.CustomerSecretsUpsertParams{CustomerID: sub.CustomerID, TelegramBotToken: ct})
	require.NoError(t, err)
	require.NoError(t, b.svc.Reinject(ctx, id, admin))
	testkit.Eventually(t, "re-injected file", func() bool {
		f, _ := m.File(cloudinit.TelegramEnvPath)
		return string(f.Content) == "TELEGRAM_BOT_TOKEN=999:NEW-bot\nTELEGRAM_OWNER_ID=424242\n"
	})
	b.waitStatus(t, id, db.ProvisioningStatusReady)

	// Destroy, then provision again.
	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	sub = b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	require.NotNil(t, sub.DeprovisionedAt)
	b.assertOnly(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusReady)
	b.assertOnly(t, id)

	var audits int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE subscription_id = $1`, id).Scan(&audits))
	require.Equal(t, 4, audits) // provision, re-inject, destroy, provision
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
