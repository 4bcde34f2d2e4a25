package provision

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
)

// TestWriteCheckReadsHetznersAnswer: the preflight's write check sends a firewall without a
// name, which Hetzner must refuse; how it refuses says what the token may do. Nothing is ever
// created, and an answer that says nothing about the token leaves the check incomplete.
func TestWriteCheckReadsHetznersAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status       int
		code, reason string
		incomplete   bool
	}{
		{422, "invalid_input", "", false},
		{401, "token_readonly", "HCLOUD_TOKEN: the token is read-only (token_readonly): create one with Read & Write permission", false},
		{403, "forbidden", "HCLOUD_TOKEN: the token may not create resources (forbidden): give it Read & Write permission", false},
		{401, "unauthorized", "HCLOUD_TOKEN: the token may not create resources (unauthorized): give it Read & Write permission", false},
		{503, "unavailable", "", true},
		{429, "rate_limit_exceeded", "", true},
		{409, "uniqueness_error", "", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/firewalls" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			fmt.Fprintf(w, `{"error": {"code": %q, "message": "m", "details": null}}`, tc.code)
		}))
		hc := hcloud.NewClient(hcloud.WithToken("t"), hcloud.WithEndpoint(srv.URL), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
		var reasons []string
		err := checkWritable(context.Background(), hc, "HCLOUD_TOKEN", func(f string, a ...any) { reasons = append(reasons, fmt.Sprintf(f, a...)) })
		srv.Close()
		if tc.incomplete {
			require.ErrorContains(t, err, "check that the token may write", tc.code)
			require.Empty(t, reasons, tc.code)
			continue
		}
		require.NoError(t, err, tc.code)
		if tc.reason == "" {
			require.Empty(t, reasons, tc.code)
		} else {
			require.Equal(t, []string{tc.reason}, reasons, tc.code)
		}
	}
}
