package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadCountsRequestsAndErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "s=1" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	res, err := Load(context.Background(), "x", srv.URL, http.Header{"Cookie": {"s=1"}}, 4, 200, http.StatusOK)
	require.NoError(t, err)
	require.Equal(t, 200, res.Requests)
	require.Zero(t, res.Errors)
	require.Positive(t, res.RPS)
	require.LessOrEqual(t, res.P50ms, res.P99ms)

	res, err = Load(context.Background(), "x", srv.URL, http.Header{"Cookie": {"s=1"}}, 2, 50, http.StatusTeapot)
	require.Error(t, err, "the warm-up request already has the wrong status")
	_ = res
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, percentile(d, 0.5))
	require.Equal(t, 99*time.Millisecond, percentile(d, 0.99))
	require.Equal(t, time.Duration(0), percentile(nil, 0.5))
}

func TestLoadURLsTakesTheURLsInTurn(t *testing.T) {
	t.Parallel()
	var a, b atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a":
			a.Add(1)
		case "/b":
			b.Add(1)
		}
	}))
	defer srv.Close()
	res, err := LoadURLs(context.Background(), "x", []string{srv.URL + "/a", srv.URL + "/b"}, nil, 3, 100, http.StatusOK)
	require.NoError(t, err)
	require.Zero(t, res.Errors)
	require.Equal(t, int64(51), a.Load(), "the warm-up request and every other one")
	require.Equal(t, int64(50), b.Load())

	_, err = LoadURLs(context.Background(), "x", nil, nil, 1, 1, http.StatusOK)
	require.Error(t, err)
}
