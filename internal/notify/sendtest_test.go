package notify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestSendTestReachesEveryChannel: the settings page's test button sends one message to each
// configured channel, saying who sent it, audited; without a channel it says what to configure.
func TestSendTestReachesEveryChannel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	owner := audit.Actor{Email: "owner@example.com", IP: "192.0.2.9"}
	require.NoError(t, b.n.SendTest(ctx, owner))
	testkit.Eventually(t, "the test email and webhook", func() bool { return len(b.smtp.Mails()) == 1 && len(b.hook.Hooks()) == 1 })
	mail := b.smtp.Mails()[0].Data
	require.Contains(t, mail, "Test notification")
	require.Contains(t, mail, "A test sent by owner@example.com")
	require.Contains(t, mail, "https://admin.example.com/settings/notifications")
	hook := b.hook.Hooks()[0].Text
	require.True(t, strings.HasPrefix(hook, "[Rachel Cloud] Test notification\n"), hook)
	b.noSecrets(t)
	var detail string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT detail FROM audit_log WHERE action = 'notify.test'`).Scan(&detail))
	require.Equal(t, "Test notification to email, webhook", detail)
	recent, err := b.n.Recent(ctx, 10)
	require.NoError(t, err)
	require.NotEmpty(t, recent)

	// No channel: refused with the variables to set, nothing stored or audited.
	pool := dbtest.New(t)
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	bare, err := notify.New(pool, cfg, notify.Options{})
	require.NoError(t, err)
	err = bare.SendTest(ctx, owner)
	require.ErrorIs(t, err, notify.ErrNoChannel)
	require.ErrorContains(t, err, "NOTIFY_SMTP_URL")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n))
	require.Zero(t, n)
	require.Empty(t, bare.Channels())
}
