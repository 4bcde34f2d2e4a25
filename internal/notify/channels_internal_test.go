package notify

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/secrets"
)

func loadConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	c, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	return c
}

// TestEmailIsAnRFC5322Message: headers a mail client shows correctly (an encoded non-ASCII
// subject), CRLF line ends, lines starting with a dot left for the SMTP client to stuff, a Message-ID at the sender's domain.
func TestEmailIsAnRFC5322Message(t *testing.T) {
	t.Parallel()
	e := &emailSender{s: &config.SMTPSettings{From: "ops@rachel.example", To: []string{"a@example.com", "b@example.com"}}}
	raw := string(e.compose(message{ID: 42, Subject: "Provisioning failed: Zoë's VPS", Body: "line one\n.starts with a dot\r\nlast"}))
	head, body, ok := strings.Cut(raw, "\r\n\r\n")
	require.True(t, ok, raw)
	headers := map[string]string{}
	for _, line := range strings.Split(head, "\r\n") {
		k, v, ok := strings.Cut(line, ": ")
		require.True(t, ok, line)
		headers[k] = v
	}
	require.Equal(t, "ops@rachel.example", headers["From"])
	require.Equal(t, "a@example.com, b@example.com", headers["To"])
	require.Equal(t, "=?utf-8?q?Provisioning_failed:_Zo=C3=AB's_VPS?=", headers["Subject"])
	require.Regexp(t, `^<rachel-notify-42-[0-9a-f]{16}@rachel\.example>$`, headers["Message-ID"])
	_, err := time.Parse(time.RFC1123Z, headers["Date"])
	require.NoError(t, err)
	require.Equal(t, "text/plain; charset=utf-8", headers["Content-Type"])
	require.Equal(t, "line one\r\n.starts with a dot\r\nlast\r\n", body)
	require.NotContains(t, strings.ReplaceAll(raw, "\r\n", ""), "\n", "no bare line feeds")

	other := string(e.compose(message{ID: 42, Subject: "s", Body: "b"}))
	require.NotEqual(t, headers["Message-ID"], strings.Split(strings.Split(other, "Message-ID: ")[1], "\r\n")[0], "unique per message")
}

func TestWebhookIsSignedAndErrorsHideTheURL(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got *http.Request
	var gotBody []byte
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, gotBody = r, b
		st := status
		mu.Unlock()
		w.WriteHeader(st)
	}))
	defer srv.Close()
	now := time.Unix(1_764_590_400, 0)
	w := &webhookSender{url: secrets.NewSecret(srv.URL + "/services/T0/B0/secret-path"), secret: secrets.NewSecret("0123456789abcdef"),
		client: srv.Client(), now: func() time.Time { return now }}

	require.NoError(t, w.send(context.Background(), message{ID: 7, Subject: "Subject", Body: "Body"}))
	mu.Lock()
	require.Equal(t, "/services/T0/B0/secret-path", got.URL.Path)
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	require.Equal(t, "7", got.Header.Get("X-Rachel-Message-ID"))
	require.Equal(t, "1764590400", got.Header.Get(HeaderTimestamp))
	require.True(t, Verify([]byte("0123456789abcdef"), "1764590400", gotBody, got.Header.Get(HeaderSignature)), "the receiver can verify it")
	var wb WebhookBody
	require.NoError(t, json.Unmarshal(gotBody, &wb))
	require.Equal(t, "Subject\nBody", wb.Text)
	status = http.StatusInternalServerError
	mu.Unlock()

	err := w.send(context.Background(), message{ID: 8, Subject: "s", Body: "b"})
	require.ErrorContains(t, err, "answered 500 Internal Server Error")
	require.NotContains(t, err.Error(), "secret-path")
	require.Contains(t, err.Error(), srv.URL+"/…")

	// A refused connection says why, never the path.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String() + "/hooks/secret-path"
	require.NoError(t, ln.Close())
	w.url = secrets.NewSecret(dead)
	err = w.send(context.Background(), message{ID: 9})
	require.ErrorContains(t, err, "connection refused")
	require.NotContains(t, err.Error(), "secret-path")

	w.url = secrets.NewSecret("http://[::1/secret-path")
	err = w.send(context.Background(), message{ID: 10})
	require.ErrorContains(t, err, "bad URL")
	require.NotContains(t, err.Error(), "secret-path")
}

func TestRedactURLKeepsSchemeAndHostOnly(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/xyz": "https://hooks.slack.com/…",
		"https://hooks.example.com":                  "https://hooks.example.com",
		"https://hooks.example.com/":                 "https://hooks.example.com",
		"https://hooks.example.com?token=abc":        "https://hooks.example.com",
		"not a url":                                  "(invalid URL)",
		"http://[::1":                                "(invalid URL)",
	} {
		require.Equal(t, want, redactURL(in), in)
	}
}

// TestScrubberRemovesSecrets: configured secret values and token-shaped runs never reach a
// stored or sent message.
func TestScrubberRemovesSecrets(t *testing.T) {
	t.Parallel()
	cfg := loadConfig(t, map[string]string{
		"HCLOUD_TOKEN":          "hc-short-tok",
		"NOTIFY_WEBHOOK_URL":    "https://hooks.example.com/x/hook-path",
		"NOTIFY_WEBHOOK_SECRET": "whsec-0123456789",
		"NOTIFY_SMTP_URL":       "smtp://u:mail-pass@mail.example.com?from=a@example.com&to=b@example.com",
	})
	s := newScrubber(cfg)
	in := "token hc-short-tok, hook https://hooks.example.com/x/hook-path, secret whsec-0123456789, pass mail-pass, " +
		"claude sk-ant-oat01-" + strings.Repeat("A", 40) + " ok"
	out := s.clean(in)
	for _, secret := range []string{"hc-short-tok", "hook-path", "whsec-0123456789", "mail-pass", strings.Repeat("A", 40)} {
		require.NotContains(t, out, secret)
	}
	require.Contains(t, out, "token "+secrets.Redacted)
	require.True(t, strings.HasSuffix(out, " ok"))
	require.Equal(t, "Server rachel-abc-sub-42 failed at creating (server_error)", s.clean("Server rachel-abc-sub-42 failed at creating (server_error)"),
		"ordinary text is left alone")
	require.Equal(t, "nothing configured", newScrubber(loadConfig(t, nil)).clean("nothing configured"))
}

func TestChannelsDescribeWithoutSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want []ChannelInfo
	}{
		{nil, nil},
		{map[string]string{"NOTIFY_SMTP_URL": "smtp://ops:pw-secret@mail.example.com?from=a@example.com&to=b@example.com,c@example.com"},
			[]ChannelInfo{{Name: ChannelEmail, Target: "b@example.com, c@example.com", Detail: "via mail.example.com:587, STARTTLS, as ops, from a@example.com"}}},
		{map[string]string{"NOTIFY_SMTP_URL": "smtps://mail.example.com?from=a@example.com&to=b@example.com"},
			[]ChannelInfo{{Name: ChannelEmail, Target: "b@example.com", Detail: "via mail.example.com:465, TLS, no authentication, from a@example.com"}}},
		{map[string]string{"NOTIFY_SMTP_URL": "smtp://relay:25?starttls=false&from=a@example.com&to=b@example.com",
			"NOTIFY_WEBHOOK_URL": "https://hooks.example.com/secret-path", "NOTIFY_WEBHOOK_SECRET": "0123456789abcdef"},
			[]ChannelInfo{{Name: ChannelEmail, Target: "b@example.com", Detail: "via relay:25, no TLS, no authentication, from a@example.com"},
				{Name: ChannelWebhook, Target: "https://hooks.example.com/…", Detail: `JSON {"text": …}, signed with HMAC-SHA256 (X-Rachel-Signature)`}}},
	} {
		n := &Notifier{cfg: loadConfig(t, tc.env)}
		got := n.Channels()
		require.Equal(t, tc.want, got, "%v", tc.env)
		for _, c := range got {
			require.NotContains(t, c.Target+c.Detail, "secret")
		}
	}
	n := &Notifier{cfg: loadConfig(t, map[string]string{"NOTIFY_SMTP_URL": "smtp://relay:25?from=a@example.com&to=b@example.com",
		"NOTIFY_WEBHOOK_URL": "https://h.example.com/x", "NOTIFY_WEBHOOK_SECRET": "0123456789abcdef"})}
	require.Equal(t, ChannelEmail+", "+ChannelWebhook, n.channelList())
}
