// Package notifytest gives tests real notification receivers: an SMTP server in process
// (github.com/emersion/go-smtp) that requires PLAIN authentication, and an HTTP webhook receiver
// that verifies the signature. Either can be switched down to test retries.
package notifytest

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/rachelcloud/admin/internal/notify"
)

// Credentials the SMTP server accepts.
const (
	SMTPUser     = "notify-user"
	SMTPPassword = "smtp-password-do-not-leak"
	// WebhookSecret signs the webhook in tests.
	WebhookSecret = "webhook-secret-do-not-leak-0123"
)

// Mail is one message the SMTP server received.
type Mail struct {
	From string
	To   []string
	Data string
}

// SMTPServer is an SMTP server on a loopback port.
type SMTPServer struct {
	Addr string
	Down atomic.Bool // answer 421 to MAIL FROM (a temporary failure)

	mu    sync.Mutex
	mails []Mail
}

// NewSMTPServer starts a server, stopped when the test ends.
func NewSMTPServer(t testing.TB) *SMTPServer {
	t.Helper()
	s := &SMTPServer{}
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // loopback only
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// URL is the NOTIFY_SMTP_URL of this server.
func (s *SMTPServer) URL(to ...string) string {
	if len(to) == 0 {
		to = []string{"ops@example.com"}
	}
	q := url.Values{"from": {"rachel@example.com"}, "starttls": {"false"}}
	toList := ""
	for i, a := range to {
		if i > 0 {
			toList += ","
		}
		toList += a
	}
	q.Set("to", toList)
	return (&url.URL{Scheme: "smtp", User: url.UserPassword(SMTPUser, SMTPPassword), Host: s.Addr, RawQuery: q.Encode()}).String()
}

// Mails returns what was received so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

type backend struct{ s *SMTPServer }

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *SMTPServer
	auth bool
	m    Mail
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != SMTPUser || pass != SMTPPassword {
			return errors.New("invalid credentials")
		}
		se.auth = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if !se.auth {
		return smtp.ErrAuthRequired
	}
	if se.s.Down.Load() {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "service not available"}
	}
	se.m = Mail{From: from}
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.m.To = append(se.m.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.m.Data = string(b)
	se.s.mu.Lock()
	se.s.mails = append(se.s.mails, se.m)
	se.s.mu.Unlock()
	return nil
}

func (se *session) Reset()        { se.m = Mail{} }
func (se *session) Logout() error { return nil }

// Hook is one webhook request that carried a valid signature.
type Hook struct {
	Timestamp int64
	Text      string
}

// WebhookReceiver answers 204 to a correctly signed POST and 401 otherwise; 503 while Down.
type WebhookReceiver struct {
	URL  string
	Down atomic.Bool

	mu       sync.Mutex
	hooks    []Hook
	rejected int
}

// NewWebhookReceiver starts a receiver, stopped when the test ends.
func NewWebhookReceiver(t testing.TB) *WebhookReceiver {
	t.Helper()
	r := &WebhookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hooks/T000/B000/path-secret-do-not-leak"
	return r
}

func (r *WebhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.Down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(req.Body)
	ts := req.Header.Get(notify.HeaderTimestamp)
	sec, tsErr := strconv.ParseInt(ts, 10, 64)
	var payload notify.WebhookBody
	if err != nil || tsErr != nil || req.Method != http.MethodPost ||
		req.Header.Get("Content-Type") != "application/json" ||
		!notify.Verify([]byte(WebhookSecret), ts, body, req.Header.Get(notify.HeaderSignature)) ||
		notifyJSON(body, &payload) != nil {
		r.mu.Lock()
		r.rejected++
		r.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.hooks = append(r.hooks, Hook{Timestamp: sec, Text: payload.Text})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Hooks returns the accepted requests so far.
func (r *WebhookReceiver) Hooks() []Hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Hook(nil), r.hooks...)
}

// Rejected counts requests refused for a bad signature or body.
func (r *WebhookReceiver) Rejected() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected
}

func notifyJSON(b []byte, v *notify.WebhookBody) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if v.Text == "" {
		return errors.New("empty text")
	}
	return nil
}

// Clock is a clock a test moves by hand.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
