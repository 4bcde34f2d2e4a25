// Package bench measures the product where its users feel it: what one provisioned server costs
// in Hetzner API requests and time, how fast the pages every admin polls are, and how much memory
// the worker needs with many provisionings in flight. `rachel-admin bench` runs it.
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LoadResult is what one load run measured.
type LoadResult struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
}

// Load sends total GET requests to url from concurrency clients and measures throughput and
// latency. header is added to every request (e.g. the session cookie). A response whose status is
// not wantStatus counts as an error.
func Load(ctx context.Context, name, url string, header http.Header, concurrency, total, wantStatus int) (LoadResult, error) {
	return LoadURLs(ctx, name, []string{url}, header, concurrency, total, wantStatus)
}

// LoadURLs is [Load] over several URLs taken in turn, so that many clients polling different
// pages are not answered by one shared (coalesced or cached) result.
func LoadURLs(ctx context.Context, name string, urls []string, header http.Header, concurrency, total, wantStatus int) (LoadResult, error) {
	if len(urls) == 0 {
		return LoadResult{}, fmt.Errorf("%s: no URL", name)
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// Warm the connections so the run measures requests, not dials.
	if err := get(ctx, client, urls[0], header, wantStatus); err != nil {
		return LoadResult{}, fmt.Errorf("%s: warm-up request: %w", name, err)
	}

	latencies := make([]time.Duration, total)
	var next, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := get(ctx, client, urls[i%int64(len(urls))], header, wantStatus); err != nil {
					errs.Add(1)
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return LoadResult{}, err
	}
	slices.Sort(latencies)
	return LoadResult{
		Name: name, Concurrency: concurrency, Requests: total, Errors: int(errs.Load()),
		RPS:   float64(total) / elapsed.Seconds(),
		P50ms: ms(percentile(latencies, 0.50)), P99ms: ms(percentile(latencies, 0.99)),
	}, nil
}

func get(ctx context.Context, client *http.Client, url string, header http.Header, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	return nil
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
