package hcloudsim

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
)

// TestProjectsAreSeparate: each project has its own servers, keys, firewalls, server limit and
// rate-limit bucket; a token of one project neither sees nor touches another's resources (404
// not_found, as a token belongs to one project on Hetzner), and IDs stay unique across them.
func TestProjectsAreSeparate(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.ServerLimit = 1
		c.Projects = []ProjectConfig{{Name: "b", Token: "token-b", ServerLimit: 2, RateLimit: 100}}
	})
	ctx := context.Background()
	clientB := hcloud.NewClient(hcloud.WithToken("token-b"), hcloud.WithEndpoint(b.url+"/v1"),
		hcloud.WithRetryOpts(hcloud.RetryOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond), MaxRetries: 0}))
	pb := b.sim.Project("b")
	require.NotNil(t, pb)
	require.Same(t, b.sim, b.sim.Project("default"))
	require.Nil(t, b.sim.Project("nope"))

	resA, _, err := b.client.Server.Create(ctx, createOpts("same-name", ""))
	require.NoError(t, err)
	// The same name is free in the other project; its limit is its own.
	resB, _, err := clientB.Server.Create(ctx, createOpts("same-name", ""))
	require.NoError(t, err)
	require.NotEqual(t, resA.Server.ID, resB.Server.ID)
	_, _, err = b.client.Server.Create(ctx, createOpts("second", ""))
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeResourceLimitExceeded), "%v", err)
	_, _, err = clientB.Server.Create(ctx, createOpts("second", ""))
	require.NoError(t, err)

	// B's token does not see A's server, cannot delete or reboot it.
	got, _, err := clientB.Server.GetByID(ctx, resA.Server.ID)
	require.NoError(t, err)
	require.Nil(t, got)
	_, _, err = clientB.Server.DeleteWithResult(ctx, &hcloud.Server{ID: resA.Server.ID})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeNotFound), "%v", err)
	_, _, err = clientB.Server.Reboot(ctx, &hcloud.Server{ID: resA.Server.ID})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeNotFound), "%v", err)
	act, _, err := clientB.Action.GetByID(ctx, resA.Action.ID)
	require.NoError(t, err)
	require.Nil(t, act)
	listB, err := clientB.Server.All(ctx)
	require.NoError(t, err)
	require.Len(t, listB, 2)
	listA, err := b.client.Server.All(ctx)
	require.NoError(t, err)
	require.Len(t, listA, 1)
	require.Equal(t, resA.Server.ID, listA[0].ID)
	_, ok := b.sim.Server(resA.Server.ID)
	require.True(t, ok)
	_, ok = pb.Server(resA.Server.ID)
	require.False(t, ok)

	// SSH keys and firewalls are per project too.
	pubA, _ := newPublicKey(t)
	_, _, err = b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "k", PublicKey: pubA})
	require.NoError(t, err)
	keysB, err := clientB.SSHKey.All(ctx)
	require.NoError(t, err)
	require.Empty(t, keysB)
	_, _, err = clientB.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "fw"})
	require.NoError(t, err)
	fwsA, err := b.client.Firewall.All(ctx)
	require.NoError(t, err)
	require.Empty(t, fwsA)

	// Budgets: B's requests are counted in B's bucket, with B's headers.
	_, resp, err := clientB.Server.List(ctx, hcloud.ServerListOpts{})
	require.NoError(t, err)
	require.Equal(t, "100", resp.Header.Get("RateLimit-Limit"))
	remB, _ := strconv.Atoi(resp.Header.Get("RateLimit-Remaining"))
	require.Equal(t, pb.RateLimit().Remaining, remB)
	_, resp, err = b.client.Server.List(ctx, hcloud.ServerListOpts{})
	require.NoError(t, err)
	require.Equal(t, "3600", resp.Header.Get("RateLimit-Limit"))
	pb.SetRateLimitRemaining(0)
	_, _, err = clientB.Server.List(ctx, hcloud.ServerListOpts{})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeRateLimitExceeded), "%v", err)
	_, _, err = b.client.Server.List(ctx, hcloud.ServerListOpts{})
	require.NoError(t, err, "A's budget is its own")
	limit, used := pb.ServerLimit()
	require.Equal(t, [2]int{2, 2}, [2]int{limit, used})

	// An unknown token is refused; the /_sim/ endpoints of a project are under its name.
	req, _ := http.NewRequest(http.MethodGet, b.url+"/v1/servers", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res, err = http.Get(b.url + "/_sim/projects/b/limits")
	require.NoError(t, err)
	var lim struct {
		Servers     int `json:"servers"`
		ServersUsed int `json:"servers_used"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&lim))
	res.Body.Close()
	require.Equal(t, 2, lim.Servers)
	require.Equal(t, 2, lim.ServersUsed)
	res, err = http.Get(b.url + "/_sim/projects")
	require.NoError(t, err)
	var list struct {
		Projects []struct {
			Name        string `json:"name"`
			ServerLimit int    `json:"server_limit"`
			Servers     int    `json:"servers"`
		} `json:"projects"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
	res.Body.Close()
	require.Len(t, list.Projects, 2)
	require.Equal(t, "default", list.Projects[0].Name)
	require.Equal(t, 1, list.Projects[0].Servers)
	require.Equal(t, "b", list.Projects[1].Name)
}

func TestProjectsConfigRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{Projects: []ProjectConfig{{Name: "b", Token: "x"}}},                                      // first project without a token
		{Token: "a", Projects: []ProjectConfig{{Name: "b", Token: "a"}}},                          // token reused
		{Token: "a", Projects: []ProjectConfig{{Name: "default", Token: "b"}}},                    // name reused
		{Token: "a", Projects: []ProjectConfig{{Name: "b", Token: "b", ServerLimit: -1}}},         // negative limit
		{Token: "a", Projects: []ProjectConfig{{Name: "b", Token: "b"}, {Name: "b", Token: "c"}}}, // duplicate
	} {
		_, err := New(c)
		require.Error(t, err, "%+v", c)
	}
}

func TestParseProjectFlag(t *testing.T) {
	t.Parallel()
	p, err := ParseProjectFlag("b=tok-b:100")
	require.NoError(t, err)
	require.Equal(t, ProjectConfig{Name: "b", Token: "tok-b", ServerLimit: 100}, p)
	p, err = ParseProjectFlag("c=tok-c")
	require.NoError(t, err)
	require.Equal(t, ProjectConfig{Name: "c", Token: "tok-c"}, p)
	for _, bad := range []string{"", "b", "=t", "b=", "b=t:x", "b=:3", "b=t:-1"} {
		_, err := ParseProjectFlag(bad)
		require.Error(t, err, bad)
	}
}
