package hcloudsim

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/testkit"
)

func TestMainServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	stderr := &testkit.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"-listen", "127.0.0.1:0", "-token", "tok", "-time-scale", "0.001",
			"-ssh-port", "0", "-faults", `{"rate_limit_storm": 1}`}, pw, stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	_, endpoint, ok := strings.Cut(strings.TrimSpace(line), "HCLOUD_ENDPOINT=")
	require.True(t, ok, line)
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	c := hcloud.NewClient(hcloud.WithToken("tok"), hcloud.WithEndpoint(endpoint),
		hcloud.WithRetryOpts(hcloud.RetryOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond), MaxRetries: 2}))
	locs, err := c.Location.All(ctx)
	require.NoError(t, err, "the initial 429 storm is retried")
	require.Len(t, locs, 6)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not return after cancel")
	}
}

func TestMainFlags(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.NoError(t, Main(context.Background(), []string{"-h"}, &stdout, &stderr))
	for _, flag := range []string{"-listen", "-token", "-time-scale", "-create", "-start", "-cloud-init", "-delete",
		"-rate-limit", "-rate-refill", "-ssh-port", "-seed", "-faults"} {
		require.Contains(t, stderr.String(), flag)
	}
	require.Error(t, Main(context.Background(), []string{"-faults", "{not json"}, &stdout, &stderr))
	require.Error(t, Main(context.Background(), []string{"-faults", `{"errors":[{"status":200}]}`}, &stdout, &stderr))
	require.Error(t, Main(context.Background(), []string{"extra"}, &stdout, &stderr))
}
