package provision

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// FuzzCallback feeds arbitrary tokens and bodies to the VPS callback as the web handler receives
// them (the body parsed as a form, then HandleCallback). Whatever comes in, the answer is either
// acceptance — only for the issued token with the server's instance_id and the seeded host key —
// or ErrCallbackRejected with nothing changed; never another error (a 500) or a panic.
//
// In a body, {key} stands for the seeded host key and {other} for another key, so the corpus
// can reach the acceptance path; useToken sends the issued token instead of token.
func FuzzCallback(f *testing.F) {
	b := setup(f, func(o *setupOpts) { o.noWork = true })
	// The bundle's logger writes to f, which the fuzz target may not use.
	svc, err := NewService(b.pool, b.cfg, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	id := b.newSubscription(f)
	hk, err := sshkey.GenerateHostKey()
	if err != nil {
		f.Fatal(err)
	}
	other, err := sshkey.GenerateHostKey()
	if err != nil {
		f.Fatal(err)
	}
	token, hash, err := newCallbackToken()
	if err != nil {
		f.Fatal(err)
	}
	// arm puts the subscription back to waiting for its callback.
	arm := func(tb testing.TB) {
		_, err := b.pool.Exec(ctx, `UPDATE subscriptions SET provisioning_status = 'cloud_init', step_started_at = now(),
			hetzner_server_id = 4242, vps_ip_address = '127.0.0.9', ssh_host_key_public = $2, ssh_host_key_private = '\x00',
			callback_token_hash = $3, callback_expires_at = now() + interval '1 hour', callback_received_at = NULL,
			provisioning_error = NULL, failed_step = NULL WHERE id = $1`, id, hk.Public, hash)
		if err != nil {
			tb.Fatal(err)
		}
	}
	arm(f)

	for _, s := range []struct {
		token    string
		useToken bool
		body     string
	}{
		{"", true, "instance_id=4242&pub_key_ed25519={key}&hostname=rachel-sub-1&fqdn=rachel-sub-1"},
		{"", true, "pub_key_ed25519={key}&instance_id=4242"},
		{"", true, "instance_id=+4242+&pub_key_ed25519=%20{key}%20comment"},
		{"", true, "instance_id=4243&pub_key_ed25519={key}"},
		{"", true, "instance_id=4242&pub_key_ed25519={other}"},
		{"", true, "instance_id=4242&instance_id=1&pub_key_ed25519={key}"},
		{"", true, "instance_id=04242&pub_key_ed25519={key}"},
		{"", true, "instance_id=4242&pub_key_ed25519=ssh-ed25519+AAAA"},
		{"", true, "instance_id=%zz&pub_key_ed25519=%"},
		{"", true, "instance_id=4242;pub_key_ed25519={key}"},
		{"", true, ""},
		{"", true, "instance_id=9223372036854775808&pub_key_ed25519={key}"},
		{"", true, "instance_id=4242&pub_key_ed25519={key}%00&hostname=%00%ff%fe"},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false, "instance_id=4242&pub_key_ed25519={key}"},
		{"not-base64!", false, "instance_id=4242&pub_key_ed25519={key}"},
		{"' OR 1=1 --", false, "instance_id=4242"},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", false, ""},
		{"\x00", false, "\x00=\x00"},
	} {
		f.Add(s.token, s.useToken, s.body)
	}

	f.Fuzz(func(t *testing.T, tok string, useToken bool, body string) {
		if useToken {
			tok = token
		}
		body = strings.NewReplacer("{key}", hk.Public, "{other}", other.Public).Replace(body)
		// What the handler does: parse the form; a malformed one is answered 400 before the service.
		r := httptest.NewRequest(http.MethodPost, "/callback/x", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := r.ParseForm(); err != nil {
			return
		}
		err := svc.HandleCallback(ctx, tok, r.PostForm, "127.0.0.9")
		sub := b.sub(t, id)
		if err == nil {
			defer arm(t) // wait for the callback again, for the next input
			instance, perr := strconv.ParseInt(strings.TrimSpace(r.PostForm.Get("instance_id")), 10, 64)
			if tok != token || perr != nil || instance != 4242 || !sameKey(r.PostForm.Get("pub_key_ed25519"), hk.Public) {
				t.Fatalf("accepted a callback that is not the VPS's: token %q form %q", tok, r.PostForm)
			}
			if statusOf(sub) != db.ProvisioningStatusInjectingSecrets || sub.CallbackReceivedAt == nil {
				t.Fatalf("accepted, but the subscription is %s", statusOf(sub))
			}
			// Spent: the same callback again is refused.
			if err := svc.HandleCallback(ctx, tok, r.PostForm, "127.0.0.9"); !errors.Is(err, ErrCallbackRejected) {
				t.Fatalf("replayed callback: %v", err)
			}
			return
		}
		if !errors.Is(err, ErrCallbackRejected) {
			t.Fatalf("callback answered with an error other than a rejection (a 500): %v", err)
		}
		if statusOf(sub) != db.ProvisioningStatusCloudInit || sub.CallbackReceivedAt != nil {
			t.Fatalf("a rejected callback changed the subscription to %s", statusOf(sub))
		}
	})
}
