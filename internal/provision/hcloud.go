package provision

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rachelcloud/admin/internal/config"
)

// RateLimitState is what Hetzner's RateLimit-* headers said last.
type RateLimitState struct {
	Limit, Remaining int
	Reset            time.Time // when the bucket is full again
	Seen             time.Time
	Limited          bool // the response was a 429
}

// RateLimitTracker records the RateLimit-* headers of every Hetzner response that passes
// through its transport, so the poller can slow down before it runs into 429s.
type RateLimitTracker struct {
	mu    sync.Mutex
	state RateLimitState
	ok    bool
}

// Latest returns the last state seen; ok is false before the first response.
func (t *RateLimitTracker) Latest() (RateLimitState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state, t.ok
}

// Transport wraps base (nil: http.DefaultTransport) to record the headers.
func (t *RateLimitTracker) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if err == nil {
			t.observe(resp)
		}
		return resp, err
	})
}

func (t *RateLimitTracker) observe(resp *http.Response) {
	limit, err1 := strconv.Atoi(resp.Header.Get("RateLimit-Limit"))
	remaining, err2 := strconv.Atoi(resp.Header.Get("RateLimit-Remaining"))
	reset, err3 := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.state = RateLimitState{Limit: limit, Remaining: remaining, Reset: time.Unix(reset, 0),
		Seen: time.Now(), Limited: resp.StatusCode == http.StatusTooManyRequests}
	t.ok = true
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// HCloudMaxRetries is how often hcloud-go retries a request it considers retryable (conflict,
// rate_limit_exceeded, bad_gateway, timeout, network timeouts). It must be set explicitly: zero
// turns retries off.
const HCloudMaxRetries = 5

// NewHCloudClient builds the Hetzner client of the first configured project (HCLOUD_TOKEN's)
// and HCLOUD_ENDPOINT, with retries, a request timeout, and a transport feeding tracker (which
// may be nil). registry, when not nil, receives hcloud-go's request metrics.
func NewHCloudClient(cfg *config.Config, tracker *RateLimitTracker, registry prometheus.Registerer) (*hcloud.Client, error) {
	ps := cfg.HCloudProjects()
	if len(ps) == 0 {
		return nil, fmt.Errorf("hcloud client: HCLOUD_TOKEN: required but not set")
	}
	return newHCloudClient(cfg, ps[0], tracker, registry)
}

// NewHCloudClientFor builds the client of one configured project, as [NewHCloudClient] does.
func NewHCloudClientFor(cfg *config.Config, p config.Project, tracker *RateLimitTracker, registry prometheus.Registerer) (*hcloud.Client, error) {
	return newHCloudClient(cfg, p, tracker, registry)
}

func newHCloudClient(cfg *config.Config, p config.Project, tracker *RateLimitTracker, registry prometheus.Registerer) (*hcloud.Client, error) {
	if p.Token.IsZero() {
		return nil, fmt.Errorf("hcloud client: project %q has no token", p.Name)
	}
	var rt http.RoundTripper = http.DefaultTransport
	if tracker != nil {
		rt = tracker.Transport(rt)
	}
	opts := []hcloud.ClientOption{
		hcloud.WithToken(p.Token.Reveal()),
		hcloud.WithApplication("rachel-cloud-admin", "1"),
		hcloud.WithHTTPClient(&http.Client{Transport: rt, Timeout: 30 * time.Second}),
		hcloud.WithRetryOpts(hcloud.RetryOpts{
			MaxRetries:  HCloudMaxRetries,
			BackoffFunc: hcloud.ExponentialBackoffWithOpts(hcloud.ExponentialBackoffOpts{Base: 200 * time.Millisecond, Multiplier: 2, Cap: 10 * time.Second, Jitter: true}),
		}),
	}
	if cfg.HCloudEndpoint != "" {
		opts = append(opts, hcloud.WithEndpoint(cfg.HCloudEndpoint))
	}
	if registry != nil {
		opts = append(opts, hcloud.WithInstrumentation(registry))
	}
	return hcloud.NewClient(opts...), nil
}
