package httpapp_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
)

// TestAdminsInviteRoleDisable: an owner invites an operator with a one-time password shown once;
// the invitee must replace it at first sign-in; roles change; the last owner can be neither
// demoted nor disabled; a disabled admin cannot sign in and loses their sessions; all audited.
func TestAdminsInviteRoleDisable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.signIn(t)

	// Bad input: 422, nobody invited.
	resp, body := b.post(t, "/admins", url.Values{"_csrf": {tok}, "email": {"not-an-email"}, "role": {"king"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "Enter an email address like name@example.com.")
	require.Contains(t, body, "Choose viewer, operator or owner.")
	resp, body = b.post(t, "/admins", url.Values{"_csrf": {tok}, "email": {adminEmail}, "role": {"viewer"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "already exists")

	resp, body = b.post(t, "/admins", url.Values{"_csrf": {tok}, "email": {"New@Example.com"}, "role": {"operator"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	password := doc(t, body).Find("#invite-password").Text()
	require.Len(t, password, 24)
	_, body, _ = b.get(t, "/admins")
	require.NotContains(t, body, password, "shown once")
	require.Contains(t, body, "new@example.com")

	// The invitee signs in with it and sees nothing but the password change until it is done.
	invitee := *b
	jar, _ := cookiejar.New(nil)
	invitee.client = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: b.client.CheckRedirect}
	itok := invitee.signInWith(t, "new@example.com", password)
	status, _, _ := invitee.get(t, "/subscriptions")
	require.Equal(t, http.StatusSeeOther, status)
	resp, body = invitee.post(t, "/account/password", url.Values{"_csrf": {itok}, "current_password": {"wrong one"},
		"new_password": {"my own long password"}, "confirm_password": {"my own long password"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "The current password is wrong.")
	resp, body = invitee.post(t, "/account/password", url.Values{"_csrf": {itok}, "current_password": {password},
		"new_password": {"my own long password"}, "confirm_password": {"not the same password"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	require.Contains(t, body, "The two new passwords differ.")
	resp, _ = invitee.post(t, "/account/password", url.Values{"_csrf": {itok}, "current_password": {password},
		"new_password": {"my own long password"}, "confirm_password": {"my own long password"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	status, _, _ = invitee.get(t, "/subscriptions")
	require.Equal(t, http.StatusOK, status)

	var inviteeID, ownerID int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT id FROM admins WHERE email = 'new@example.com'`).Scan(&inviteeID))
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT id FROM admins WHERE email = $1`, adminEmail).Scan(&ownerID))

	// The only owner cannot demote or disable themself.
	resp, _ = b.post(t, "/admins/"+itoa(ownerID)+"/role", url.Values{"_csrf": {tok}, "role": {"viewer"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body, _ = b.get(t, "/admins")
	require.Contains(t, body, "That would leave no owner")
	resp, _ = b.post(t, "/admins/"+itoa(ownerID)+"/disable", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	var role string
	var disabled bool
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT role, disabled_at IS NOT NULL FROM admins WHERE id = $1`, ownerID).Scan(&role, &disabled))
	require.Equal(t, "owner", role)
	require.False(t, disabled)
	resp, _ = b.post(t, "/admins/"+itoa(ownerID)+"/role", url.Values{"_csrf": {tok}, "role": {"god"}})
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)

	// Role change takes effect: the invitee, made a viewer, is refused an operator's action.
	resp, _ = b.post(t, "/admins/"+itoa(inviteeID)+"/role", url.Values{"_csrf": {tok}, "role": {"viewer"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	status, _, _ = invitee.get(t, "/customers/new")
	require.Equal(t, http.StatusForbidden, status)

	// Disabled: sessions gone, sign-in refused like a wrong password.
	resp, _ = b.post(t, "/admins/"+itoa(inviteeID)+"/disable", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	status, _, _ = invitee.get(t, "/subscriptions")
	require.Equal(t, http.StatusSeeOther, status)
	_, _, stok := invitee.get(t, "/signin")
	resp, _ = invitee.post(t, "/signin", url.Values{"_csrf": {stok}, "email": {"new@example.com"}, "password": {"my own long password"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A second owner makes demoting the first possible.
	resp, _ = b.post(t, "/admins/"+itoa(inviteeID)+"/enable", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = b.post(t, "/admins/"+itoa(inviteeID)+"/role", url.Values{"_csrf": {tok}, "role": {"owner"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = b.post(t, "/admins/"+itoa(ownerID)+"/role", url.Values{"_csrf": {tok}, "role": {"operator"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT role FROM admins WHERE id = $1`, ownerID).Scan(&role))
	require.Equal(t, "operator", role)

	rows, err := b.pool.Query(context.Background(), `SELECT action FROM audit_log WHERE action LIKE 'admin_%' OR action LIKE 'password_%' ORDER BY id`)
	require.NoError(t, err)
	var actions []string
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		actions = append(actions, a)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"admin_invite", "password_change_failed", "password_change", "admin_role", "admin_disable",
		"admin_enable", "admin_role", "admin_role"}, actions)
}

// TestPasswordChangeEndsOtherSessions: the session that changes the password stays, others end.
func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := *b
	jar, _ := cookiejar.New(nil)
	other.client = &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: b.client.CheckRedirect}
	other.signIn(t)
	tok := b.signIn(t)
	resp, _ := b.post(t, "/account/password", url.Values{"_csrf": {tok}, "current_password": {adminPassword},
		"new_password": {"another long password"}, "confirm_password": {"another long password"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	status, _, _ := b.get(t, "/")
	require.Equal(t, http.StatusOK, status, "this session stays")
	// The other session is gone from the database; its process forgets it within the cache TTL,
	// here at once because the change cleared the cache of the only process.
	status, _, _ = other.get(t, "/")
	require.Equal(t, http.StatusSeeOther, status, "the other session ended")
	_, err := auth.NewService(b.pool, time.Hour, time.Hour).CreateAdmin(context.Background(), "x@example.com", "short")
	require.Error(t, err)
}
