package hcloudsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/testkit"
	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// callback is one phone_home request as the app's callback endpoint would see it.
type callback struct {
	path        string
	contentType string
	form        url.Values
	remote      string // the caller's IP
}

// e2eFixture is what the provisioner would prepare: a login key, a seeded host key, a
// callback endpoint, and cloud-config user data shaped like docs/contracts.md.
type e2eFixture struct {
	client    ssh.Signer
	hostPub   ssh.PublicKey
	userData  string
	callbacks chan callback
	sinkURL   string // the callback endpoint's base URL
}

func newE2EFixture(t *testing.T) *e2eFixture {
	t.Helper()
	return newE2EFixtureOn(t, "127.0.0.1:0")
}

// newE2EFixtureOn serves the callback endpoint on listen (real VPSes reach only the gateway).
func newE2EFixtureOn(t *testing.T, listen string) *e2eFixture {
	t.Helper()
	f := &e2eFixture{callbacks: make(chan callback, 20)}
	clientPub, clientSigner := newPublicKey(t)
	f.client = clientSigner
	hostPubRaw, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	require.NoError(t, err)
	f.hostPub, err = ssh.NewPublicKey(hostPubRaw)
	require.NoError(t, err)

	sink := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == assistantfixture.Path {
			assistantfixture.Handler().ServeHTTP(w, r) // what cloud-init downloads
			return
		}
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		remote, _, _ := net.SplitHostPort(r.RemoteAddr)
		f.callbacks <- callback{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), form: form, remote: remote}
		w.WriteHeader(http.StatusOK)
	}))
	ln, err := net.Listen("tcp", listen)
	require.NoError(t, err)
	sink.Listener = ln
	sink.Start()
	t.Cleanup(sink.Close)
	f.sinkURL = sink.URL

	cc := map[string]any{
		"users": []any{map[string]any{
			"name": "rachel-ops", "shell": "/bin/bash", "lock_passwd": true,
			"ssh_authorized_keys": []string{strings.TrimSpace(clientPub)},
		}},
		"ssh_keys": map[string]any{
			"ed25519_private": string(pem.EncodeToMemory(block)),
			"ed25519_public":  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(f.hostPub))),
		},
		"ssh_deletekeys":  true,
		"ssh_genkeytypes": []string{},
		"disable_root":    true,
		"ssh_pwauth":      false,
		"write_files":     []any{map[string]any{"path": "/etc/motd", "permissions": "0644", "owner": "root:root", "content": "hello\n"}},
		"phone_home": map[string]any{
			"url":   sink.URL + "/callback/tok123",
			"post":  []string{"pub_key_ed25519", "instance_id", "hostname", "fqdn"},
			"tries": 10,
		},
	}
	raw, err := yaml.Marshal(cc)
	require.NoError(t, err)
	f.userData = "#cloud-config\n" + string(raw)
	return f
}

// dial logs in as rachel-ops with the host key pinned.
func (f *e2eFixture) dial(addr string) (*ssh.Client, error) {
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            "rachel-ops",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(f.client)},
		HostKeyCallback: ssh.FixedHostKey(f.hostPub),
		Timeout:         5 * time.Second,
	})
}

func TestEndToEndWithVPS(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	f := newE2EFixture(t)
	key, _, err := b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "rachel-ops",
		PublicKey: string(ssh.MarshalAuthorizedKey(f.client.PublicKey()))})
	require.NoError(t, err)
	res := b.createServer(t, hcloud.ServerCreateOpts{Name: "rachel-e2e", SSHKeys: []*hcloud.SSHKey{key}, UserData: f.userData})
	require.NoError(t, b.client.Action.WaitFor(ctx, res.Action, res.NextActions[0]))

	var cb callback
	select {
	case cb = <-f.callbacks:
	case <-time.After(10 * time.Second):
		t.Fatal("no phone_home callback")
	}
	require.Equal(t, "/callback/tok123", cb.path)
	require.Equal(t, "application/x-www-form-urlencoded", cb.contentType)
	require.Equal(t, strconv.FormatInt(res.Server.ID, 10), cb.form.Get("instance_id"))
	require.Equal(t, "rachel-e2e", cb.form.Get("hostname"))
	require.Equal(t, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(f.hostPub))), strings.TrimSpace(cb.form.Get("pub_key_ed25519")))
	require.Contains(t, cb.form, "fqdn")

	// The public IPv4 the API reported is where sshd listens.
	addr := net.JoinHostPort(res.Server.PublicNet.IPv4.IP.String(), strconv.Itoa(b.sim.cfg.SSHPort))
	var conn *ssh.Client
	testkit.Eventually(t, "sshd accepts the authorized key with the seeded host key", func() bool {
		conn, err = f.dial(addr)
		return err == nil
	})
	defer conn.Close()
	sess, err := conn.NewSession()
	require.NoError(t, err)
	out, err := sess.Output("id -un")
	require.NoError(t, err)
	require.Equal(t, "rachel-ops", strings.TrimSpace(string(out)))

	m := b.sim.Machine(res.Server.ID)
	require.NotNil(t, m)
	require.Equal(t, addr, m.SSHAddr())
	require.Empty(t, m.State().BootError)
	var paths []string
	for _, file := range m.Files() {
		paths = append(paths, file.Path)
	}
	require.Contains(t, paths, "/etc/motd")

	// An unknown key is refused.
	_, stranger := newPublicKey(t)
	_, err = ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "rachel-ops", Auth: []ssh.AuthMethod{ssh.PublicKeys(stranger)},
		HostKeyCallback: ssh.FixedHostKey(f.hostPub), Timeout: 5 * time.Second})
	require.Error(t, err)

	// The /_sim/ view shows the machine too.
	resp, err := http.Get(fmt.Sprintf("%s/_sim/servers/%d", b.url, res.Server.ID))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "/etc/motd")
	require.Contains(t, string(body), `"SSHReady":true`)
}

func TestEndToEndFaults(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.Faults.Servers = []ServerFault{{Server: "swapped", SwapHostKey: true}, {Server: "silent", LoseCallback: true}}
	})
	ctx := context.Background()
	f := newE2EFixture(t)
	ips := map[string]string{}
	for _, name := range []string{"swapped", "silent"} {
		res := b.createServer(t, hcloud.ServerCreateOpts{Name: name, UserData: f.userData})
		require.NoError(t, b.client.Action.WaitFor(ctx, res.NextActions[0]))
		ips[name] = net.JoinHostPort(res.Server.PublicNet.IPv4.IP.String(), strconv.Itoa(b.sim.cfg.SSHPort))
	}
	// Swapped host key: the pinned client refuses the server.
	testkit.Eventually(t, "the pinned host key does not match", func() bool {
		_, err := f.dial(ips["swapped"])
		return err != nil && strings.Contains(err.Error(), "host key mismatch")
	})

	// Lost callback: cloud-init finishes but only "swapped" phones home.
	var silent int64
	for _, si := range b.sim.Servers() {
		if si.Name == "silent" {
			silent = si.ID
		}
	}
	testkit.Eventually(t, "cloud-init done on the silent server", func() bool {
		m := b.sim.Machine(silent)
		return m != nil && m.State().CloudInitDone
	})
	select {
	case cb := <-f.callbacks:
		require.Equal(t, "swapped", cb.form.Get("hostname"))
	case <-time.After(10 * time.Second):
		t.Fatal("the swapped server should still phone home")
	}
	require.Zero(t, b.sim.Machine(silent).State().CallbackAttempts)
	require.Empty(t, f.callbacks)
}
