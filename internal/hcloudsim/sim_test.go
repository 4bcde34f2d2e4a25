package hcloudsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/rachelcloud/admin/internal/hcloudsim/vps"
)

const testToken = "test-token"

// testBundle is a simulator served over HTTP with a real hcloud-go client pointed at it.
type testBundle struct {
	sim    *Simulator
	url    string
	client *hcloud.Client
	// started records the configuration of every simulated VPS started.
	mu      sync.Mutex
	started []vps.Config
}

// setup starts a fast simulator (timings scaled by 0.001) with a client that polls every
// 5 ms; edit adjusts the config.
func setup(t *testing.T, edit func(*Config), opts ...hcloud.ClientOption) *testBundle {
	t.Helper()
	b := &testBundle{}
	cfg := Config{Token: testToken, TimeScale: 0.001, SSHPort: freeHighPort(t), Seed: 1}
	cfg.StartMachine = func(ctx context.Context, c vps.Config) (*vps.Machine, error) {
		b.mu.Lock()
		b.started = append(b.started, c)
		b.mu.Unlock()
		return vps.Start(ctx, c)
	}
	if edit != nil {
		edit(&cfg)
	}
	sim, err := New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, sim.Close())
	})
	b.sim, b.url = sim, srv.URL
	b.client = hcloud.NewClient(append([]hcloud.ClientOption{
		hcloud.WithToken(testToken),
		hcloud.WithEndpoint(srv.URL + "/v1"),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(5 * time.Millisecond)}),
		hcloud.WithRetryOpts(hcloud.RetryOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond), MaxRetries: 5}),
	}, opts...)...)
	return b
}

func (b *testBundle) startedConfigs() []vps.Config {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]vps.Config(nil), b.started...)
}

// freeHighPort picks a port number for the simulated sshds; each server has its own loopback
// address, so the number only has to be free on those.
func freeHighPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newPublicKey(t *testing.T) (string, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return string(ssh.MarshalAuthorizedKey(signer.PublicKey())), signer
}

func (b *testBundle) createKey(t *testing.T, name string) *hcloud.SSHKey {
	t.Helper()
	pub, _ := newPublicKey(t)
	k, _, err := b.client.SSHKey.Create(context.Background(), hcloud.SSHKeyCreateOpts{Name: name, PublicKey: pub})
	require.NoError(t, err)
	return k
}

func (b *testBundle) createServer(t *testing.T, opts hcloud.ServerCreateOpts) hcloud.ServerCreateResult {
	t.Helper()
	if opts.ServerType == nil {
		opts.ServerType = &hcloud.ServerType{Name: "cx23"}
	}
	if opts.Image == nil {
		opts.Image = &hcloud.Image{Name: "debian-12"}
	}
	res, _, err := b.client.Server.Create(context.Background(), opts)
	require.NoError(t, err)
	return res
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tok := range []string{"", "wrong"} {
		req, err := http.NewRequest(http.MethodGet, b.url+"/v1/servers", nil)
		require.NoError(t, err)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		require.NotEmpty(t, resp.Header.Get("RateLimit-Remaining"), "unauthenticated requests are rate-limited too")
	}
	c := hcloud.NewClient(hcloud.WithToken("wrong"), hcloud.WithEndpoint(b.url+"/v1"))
	_, _, err := c.Server.List(context.Background(), hcloud.ServerListOpts{})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUnauthorized), "got %v", err)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	s, _, err := b.client.Server.GetByID(ctx, 12345)
	require.NoError(t, err)
	require.Nil(t, s)
	k, _, err := b.client.SSHKey.GetByID(ctx, 12345)
	require.NoError(t, err)
	require.Nil(t, k)
	a, _, err := b.client.Action.GetByID(ctx, 12345)
	require.NoError(t, err)
	require.Nil(t, a)
	f, _, err := b.client.Firewall.GetByID(ctx, 12345)
	require.NoError(t, err)
	require.Nil(t, f)
	_, _, err = b.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: 12345})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeNotFound), "got %v", err)
}
