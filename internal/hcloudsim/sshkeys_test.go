package hcloudsim

import (
	"context"
	"fmt"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestSSHKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	pub, signer := newPublicKey(t)

	k, _, err := b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "rachel-1", PublicKey: pub,
		Labels: map[string]string{"app": "rachel", "sub": "1"}})
	require.NoError(t, err)
	require.NotZero(t, k.ID)
	require.Equal(t, ssh.FingerprintLegacyMD5(signer.PublicKey()), k.Fingerprint)
	require.Regexp(t, `^([0-9a-f]{2}:){15}[0-9a-f]{2}$`, k.Fingerprint)
	require.False(t, k.Created.IsZero())

	got, _, err := b.client.SSHKey.GetByID(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, k.Name, got.Name)
	got, _, err = b.client.SSHKey.GetByName(ctx, "rachel-1")
	require.NoError(t, err)
	require.Equal(t, k.ID, got.ID)
	got, _, err = b.client.SSHKey.GetByFingerprint(ctx, k.Fingerprint)
	require.NoError(t, err)
	require.Equal(t, k.ID, got.ID)

	// Same name, different key; same key, different name: both refused.
	other, _ := newPublicKey(t)
	_, _, err = b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "rachel-1", PublicKey: other})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUniquenessError), "got %v", err)
	_, _, err = b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "rachel-other", PublicKey: pub})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeUniquenessError), "got %v", err)

	_, _, err = b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "bad", PublicKey: "ssh-ed25519 notbase64"})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)
	_, _, err = b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "bad-labels", PublicKey: other, Labels: map[string]string{"-x": "y"}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "got %v", err)

	k2 := b.createKey(t, "rachel-2")
	list, err := b.client.SSHKey.AllWithOpts(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "app=rachel"}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, k.ID, list[0].ID)
	list, err = b.client.SSHKey.AllWithOpts(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "!app"}})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, k2.ID, list[0].ID)

	_, err = b.client.SSHKey.Delete(ctx, k)
	require.NoError(t, err)
	got, _, err = b.client.SSHKey.GetByID(ctx, k.ID)
	require.NoError(t, err)
	require.Nil(t, got)
	_, err = b.client.SSHKey.Delete(ctx, k)
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeNotFound), "got %v", err)
	// The name is free again.
	_, _, err = b.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{Name: "rachel-1", PublicKey: pub})
	require.NoError(t, err)
	require.Len(t, b.sim.SSHKeys(), 2)
}

func TestPagination(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	for i := range 60 {
		b.createKey(t, fmt.Sprintf("key-%02d", i))
	}
	page, resp, err := b.client.SSHKey.List(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{Page: 2, PerPage: 25}})
	require.NoError(t, err)
	require.Len(t, page, 25)
	require.Equal(t, "key-25", page[0].Name)
	p := resp.Meta.Pagination
	require.Equal(t, hcloud.Pagination{Page: 2, PerPage: 25, PreviousPage: 1, NextPage: 3, LastPage: 3, TotalEntries: 60}, *p)

	page, resp, err = b.client.SSHKey.List(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{Page: 3, PerPage: 25}})
	require.NoError(t, err)
	require.Len(t, page, 10)
	require.Zero(t, resp.Meta.Pagination.NextPage, "null on the last page")

	// per_page is capped at 50, and All walks the pages.
	page, resp, err = b.client.SSHKey.List(ctx, hcloud.SSHKeyListOpts{ListOpts: hcloud.ListOpts{PerPage: 100}})
	require.NoError(t, err)
	require.Len(t, page, 50)
	require.Equal(t, 50, resp.Meta.Pagination.PerPage)

	b.sim.ResetRequests()
	all, err := b.client.SSHKey.All(ctx)
	require.NoError(t, err)
	require.Len(t, all, 60)
	require.Equal(t, 2, b.sim.RequestCount("GET /ssh_keys", 200))
}
