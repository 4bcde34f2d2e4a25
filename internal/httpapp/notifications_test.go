package httpapp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/notify"
	"github.com/rachelcloud/admin/internal/notify/notifytest"
	"github.com/rachelcloud/admin/internal/testkit"
)

// The settings page shows the channels without secrets, sends a test, and shows a channel that
// is down as retrying with its error until a retry gets through.
func TestNotificationSettings(t *testing.T) {
	t.Parallel()
	mail := notifytest.NewSMTPServer(t)
	hook := notifytest.NewWebhookReceiver(t)
	hook.Down.Store(true)
	env := map[string]string{"NOTIFY_SMTP_URL": mail.URL(), "NOTIFY_WEBHOOK_URL": hook.URL,
		"NOTIFY_WEBHOOK_SECRET": notifytest.WebhookSecret}
	b := setup(t, func(o *setupOpts) {
		for k, v := range env {
			o.env[k] = v
		}
	})
	tok := b.signIn(t)

	status, body, _ := b.get(t, "/settings/notifications")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `id="channel-email"`)
	require.Contains(t, body, `id="channel-webhook"`)
	require.Contains(t, body, "ops@example.com")
	for _, secret := range []string{notifytest.SMTPPassword, notifytest.WebhookSecret, "path-secret-do-not-leak"} {
		require.NotContains(t, body, secret)
	}

	resp, _ := b.post(t, "/settings/notifications/test", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)

	// A worker delivers: email gets through, the webhook is down and retried.
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	n, err := notify.New(b.pool, cfg, notify.Options{RetryBase: 10 * time.Millisecond})
	require.NoError(t, err)
	workers := river.NewWorkers()
	require.NoError(t, n.Register(workers))
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues: map[string]river.QueueConfig{notify.Queue: {MaxWorkers: 2}}, Workers: workers,
		FetchPollInterval: 50 * time.Millisecond, FetchCooldown: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() {
		cancel()
		stopCtx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = rc.Stop(stopCtx)
	})

	pollPage(t, b, "the webhook shown as retrying", func(body string) bool {
		return strings.Contains(body, `class="delivery-retrying"`) && strings.Contains(body, "503 Service Unavailable") &&
			strings.Contains(body, `class="delivery-sent"`)
	})
	require.Len(t, mail.Mails(), 1)
	require.Contains(t, mail.Mails()[0].Data, "Test notification")

	hook.Down.Store(false)
	pollPage(t, b, "the webhook shown as sent", func(body string) bool {
		return strings.Count(body, `class="delivery-sent"`) == 2
	})
	require.Len(t, hook.Hooks(), 1)

	_, body, _ = b.get(t, "/audit")
	require.Contains(t, body, "notify.test")
}

func pollPage(t *testing.T, b *testBundle, what string, ok func(string) bool) {
	t.Helper()
	testkit.Eventually(t, what, func() error {
		status, body, _ := b.get(t, "/settings/notifications")
		require.Equal(t, http.StatusOK, status)
		if ok(body) {
			return nil
		}
		return fmt.Errorf("the page reads:\n%s", body)
	})
}
