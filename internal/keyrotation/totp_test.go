package keyrotation_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/keyrotation"
	"github.com/rachelcloud/admin/internal/secrets"
)

// An admin's TOTP secret (on, and another's pending enrolment) moves to the new key with the rest,
// and the second factor still works with the new key alone.
func TestRotateReencryptsTOTPSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.New(t)
	oldKey, err := secrets.GenerateKey()
	require.NoError(t, err)
	newKey, err := secrets.GenerateKey()
	require.NoError(t, err)
	old := auth.NewService(pool, time.Hour, time.Hour, auth.WithKeyring(keyring(t, "1:"+oldKey)))
	a, err := old.CreateAdmin(ctx, "totp@example.com", "a long enough password")
	require.NoError(t, err)
	e, err := old.BeginEnrolment(ctx, a.ID)
	require.NoError(t, err)
	code, err := auth.TOTPCode(e.Secret.Reveal(), time.Now())
	require.NoError(t, err)
	_, err = old.ConfirmEnrolment(ctx, audit.Actor{AdminID: a.ID, Email: a.Email}, code)
	require.NoError(t, err)
	b, err := old.CreateAdmin(ctx, "pending@example.com", "a long enough password")
	require.NoError(t, err)
	pending, err := old.BeginEnrolment(ctx, b.ID)
	require.NoError(t, err)

	n, err := keyrotation.Rotate(ctx, pool, keyring(t, "2:"+newKey+",1:"+oldKey))
	require.NoError(t, err)
	require.Equal(t, 2, n)

	fresh := auth.NewService(pool, time.Hour, time.Hour, auth.WithKeyring(keyring(t, "2:"+newKey)))
	again, err := fresh.BeginEnrolment(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, pending.Secret.Reveal(), again.Secret.Reveal(), "the pending secret reads under the new key")
	token, _, err := fresh.SignIn(ctx, "totp@example.com", "a long enough password", "192.0.2.9", "ua")
	require.NoError(t, err)
	next, err := auth.TOTPCode(e.Secret.Reveal(), time.Now().Add(auth.TOTPPeriod*time.Second))
	require.NoError(t, err)
	_, sess, err := fresh.VerifySecondFactor(ctx, token, next, "192.0.2.9", "ua")
	require.NoError(t, err)
	require.True(t, sess.SecondFactor)
}
