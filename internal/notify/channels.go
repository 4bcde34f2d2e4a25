package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/secrets"
)

// Channel names (notify_deliveries.channel).
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

var channelOrder = []string{ChannelEmail, ChannelWebhook}

// Webhook signature headers: the receiver recomputes
// hex(HMAC-SHA256(NOTIFY_WEBHOOK_SECRET, timestamp + "." + body)) and compares it with the
// signature's v1= value, and refuses timestamps far from its clock (replays).
const (
	HeaderTimestamp = "X-Rachel-Timestamp"
	HeaderSignature = "X-Rachel-Signature"
)

// Sign returns the signature header value of body sent at timestamp (Unix seconds).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature made by [Sign] in constant time.
func Verify(secret []byte, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

// message is what a sender sends.
type message struct {
	ID      int64
	Subject string
	Body    string
}

type sender interface {
	send(ctx context.Context, m message) error
}

// emailSender sends plain-text email over SMTP, with STARTTLS when offered (smtp://) or TLS from
// the start (smtps://), authenticating with PLAIN when a user is configured.
type emailSender struct {
	s *config.SMTPSettings
	// tlsConfig is nil in production (system roots); tests may set one.
	tlsConfig *tls.Config
}

func (e *emailSender) send(ctx context.Context, m message) error {
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", e.s.Addr())
	if err != nil {
		return fmt.Errorf("connect to the SMTP server %s: %w", e.s.Addr(), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	tc := e.tlsConfig
	if tc == nil {
		tc = &tls.Config{ServerName: e.s.Host, MinVersion: tls.VersionTLS12}
	}
	var c *smtp.Client
	switch {
	case e.s.ImplicitTLS:
		c = smtp.NewClient(tls.Client(conn, tc))
	case e.s.Plain:
		c = smtp.NewClient(conn)
	default:
		if c, err = smtp.NewClientStartTLS(conn, tc); err != nil {
			_ = conn.Close()
			return fmt.Errorf("SMTP STARTTLS with %s: %w", e.s.Addr(), err)
		}
	}
	defer c.Close()
	if e.s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", e.s.Username, e.s.Password.Reveal())); err != nil {
			return fmt.Errorf("SMTP authentication as %s: %w", e.s.Username, err)
		}
	}
	if err := c.SendMail(e.s.From, e.s.To, bytes.NewReader(e.compose(m))); err != nil {
		return fmt.Errorf("SMTP send: %w", err)
	}
	return c.Quit()
}

// compose builds the RFC 5322 message.
func (e *emailSender) compose(m message) []byte {
	var b bytes.Buffer
	host := e.s.From[strings.LastIndex(e.s.From, "@")+1:]
	rnd := make([]byte, 8)
	_, _ = rand.Read(rnd)
	fmt.Fprintf(&b, "From: %s\r\n", e.s.From)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(e.s.To, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <rachel-notify-%d-%s@%s>\r\n", m.ID, hex.EncodeToString(rnd), host)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	// No dot-stuffing here: go-smtp's DATA writer (net/textproto's DotWriter) does it, and doing
	// it twice would show the reader a doubled dot.
	for _, line := range strings.Split(m.Body, "\n") {
		b.WriteString(strings.TrimRight(line, "\r") + "\r\n")
	}
	return b.Bytes()
}

// webhookSender POSTs {"text": …} signed with HMAC-SHA256 over the timestamp and the body.
type webhookSender struct {
	url    secrets.Secret
	secret secrets.Secret
	client *http.Client
	now    func() time.Time
}

// WebhookBody is the JSON a webhook receives (Slack's incoming-webhook shape).
type WebhookBody struct {
	Text string `json:"text"`
}

func (w *webhookSender) send(ctx context.Context, m message) error {
	body, err := json.Marshal(WebhookBody{Text: m.Subject + "\n" + m.Body})
	if err != nil {
		return fmt.Errorf("encode webhook body: %w", err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url.Reveal(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request to %s: bad URL", redactURL(w.url.Reveal()))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rachel-admin-notify")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign([]byte(w.secret.Reveal()), ts, body))
	req.Header.Set("X-Rachel-Message-ID", strconv.FormatInt(m.ID, 10))
	resp, err := w.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, which may be a secret (Slack's are): say only where.
		return fmt.Errorf("webhook POST to %s: %s", redactURL(w.url.Reveal()), rootCause(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook POST to %s: answered %s", redactURL(w.url.Reveal()), resp.Status)
	}
	return nil
}

// rootCause is the innermost error of a url.Error, without the URL.
func rootCause(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// redactURL keeps the scheme and host of a URL: its path and query may be a secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	if u.Path != "" && u.Path != "/" {
		return u.Scheme + "://" + u.Host + "/…"
	}
	return u.Scheme + "://" + u.Host
}

// ChannelInfo describes a configured channel for the settings page, without any secret.
type ChannelInfo struct {
	Name   string
	Target string
	Detail string
}

// Channels lists the configured channels.
func (n *Notifier) Channels() []ChannelInfo {
	var out []ChannelInfo
	if s := n.cfg.NotifySMTP; s != nil {
		tlsMode := "STARTTLS"
		if s.ImplicitTLS {
			tlsMode = "TLS"
		} else if s.Plain {
			tlsMode = "no TLS"
		}
		user := "no authentication"
		if s.Username != "" {
			user = "as " + s.Username
		}
		out = append(out, ChannelInfo{Name: ChannelEmail, Target: strings.Join(s.To, ", "),
			Detail: fmt.Sprintf("via %s, %s, %s, from %s", s.Addr(), tlsMode, user, s.From)})
	}
	if !n.cfg.NotifyWebhookURL.IsZero() {
		out = append(out, ChannelInfo{Name: ChannelWebhook, Target: redactURL(n.cfg.NotifyWebhookURL.Reveal()),
			Detail: "JSON {\"text\": …}, signed with HMAC-SHA256 (" + HeaderSignature + ")"})
	}
	return out
}

func (n *Notifier) channelList() string {
	var names []string
	for _, c := range n.Channels() {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// scrubber removes secrets from text before it is stored or sent: the configured secret values,
// and anything shaped like a token (a long run of token characters).
type scrubber struct {
	values []string
}

var tokenLike = regexp.MustCompile(`[A-Za-z0-9_\-+/=]{32,}`)

func newScrubber(cfg *config.Config) *scrubber {
	s := &scrubber{}
	for _, v := range []secrets.Secret{cfg.HCloudToken, cfg.NotifyWebhookURL, cfg.NotifyWebhookSecret} {
		if v.Reveal() != "" {
			s.values = append(s.values, v.Reveal())
		}
	}
	for _, p := range cfg.HCloudProjects() {
		if p.Token.Reveal() != "" {
			s.values = append(s.values, p.Token.Reveal())
		}
	}
	if cfg.NotifySMTP != nil && cfg.NotifySMTP.Password.Reveal() != "" {
		s.values = append(s.values, cfg.NotifySMTP.Password.Reveal())
	}
	return s
}

func (s *scrubber) clean(text string) string {
	for _, v := range s.values {
		text = strings.ReplaceAll(text, v, secrets.Redacted)
	}
	return tokenLike.ReplaceAllString(text, secrets.Redacted)
}
