package vps

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// oldInjection is the injection before issue 11: a temp file written next to the target in a
// directory the assistant owns, then `mv -f` (which follows a link to a directory).
var oldInjection = []string{
	"sudo /usr/bin/install -m 0600 -o rachel -g rachel /dev/stdin /etc/rachel/.telegram.env.tmp",
	"sudo /usr/bin/mv -f /etc/rachel/.telegram.env.tmp /etc/rachel/telegram.env",
}

const perBoot = "/var/lib/cloud/scripts/per-boot"

// TestOldInjectionLetsTheAssistantPlaceRootFiles shows, on the emulated VPS, the hole the
// emulation used to hide: with /etc/rachel owned by the assistant, a link planted at the target
// makes root's `mv -f` put the assistant's own executable into cloud-init's per-boot scripts,
// which run as root at the next boot — as coreutils does on a real VPS.
func TestOldInjectionLetsTheAssistantPlaceRootFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ *Config, cc map[string]any) {
		users := cc["users"].([]any)
		users[0].(map[string]any)["sudo"] = "ALL=(root) NOPASSWD: " + strings.Join([]string{
			strings.TrimPrefix(oldInjection[0], "sudo "), strings.TrimPrefix(oldInjection[1], "sudo "),
		}, ", ")
		cc["runcmd"] = []any{[]string{"install", "-d", "-m", "0700", "-o", serviceUser, "-g", serviceUser, "/etc/rachel"}}
	})
	<-b.m.Done()
	c := b.login(t)

	// The compromised assistant plants a link where root will write.
	_, stderr, status := b.m.RunAs(serviceUser, "ln -s "+perBoot+" /etc/rachel/telegram.env", nil)
	require.Equal(t, 0, status, stderr)
	require.Equal(t, result{}, run(t, c, oldInjection[0], []byte("TELEGRAM_BOT_TOKEN=1\n")))
	// Between the two SSH sessions: the temp file is its own, in its own directory.
	_, stderr, status = b.m.RunAs(serviceUser, "install -m 0755 /dev/stdin /etc/rachel/.telegram.env.tmp", []byte("#!/bin/sh\nid > /root/owned\n"))
	require.Equal(t, 0, status, stderr)
	require.Equal(t, result{}, run(t, c, oldInjection[1], nil))

	planted, ok := b.m.File(perBoot + "/.telegram.env.tmp")
	require.True(t, ok, "mv -f followed the link into the per-boot scripts")
	require.Equal(t, "#!/bin/sh\nid > /root/owned\n", string(planted.Content))
	require.EqualValues(t, 0o755, planted.Mode)
}

// TestInjectionNeverFollowsALinkTheAssistantControls: with the contract's layout the assistant
// can plant nothing in /etc/rachel or its staging directory; and even a link that is there
// (root's mistake, say) is replaced by `mv -T`, not followed.
func TestInjectionNeverFollowsALinkTheAssistantControls(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	<-b.m.Done()
	c := b.login(t)

	for _, line := range []string{
		"ln -s " + perBoot + " /etc/rachel/telegram.env",
		"ln -s " + perBoot + " /etc/rachel/.staging/telegram.env",
		"install -m 0755 /dev/stdin /etc/rachel/.staging/telegram.env",
		"mv -f /etc/rachel /etc/rachel-old",
	} {
		_, stderr, status := b.m.RunAs(serviceUser, line, []byte("#!/bin/sh\n"))
		require.Equal(t, 1, status, line)
		require.Contains(t, stderr, "Permission denied", line)
	}
	out, _, status := b.m.RunAs(serviceUser, "test -d /etc/rachel", nil)
	require.Equal(t, 0, status, "the assistant still reaches its directory: %s", out)

	// Worst case: links already at both the staging name and the target.
	for _, link := range []string{"/etc/rachel/telegram.env", "/etc/rachel/.staging/telegram.env"} {
		_, stderr, status := b.m.RunAs("root", "ln -s "+perBoot+" "+link, nil)
		require.Equal(t, 0, status, stderr)
	}
	require.Equal(t, result{}, run(t, c, injectionCommands[2], []byte("TELEGRAM_BOT_TOKEN=1\n")))
	require.Equal(t, result{}, run(t, c, injectionCommands[3], nil))
	env, ok := b.m.File("/etc/rachel/telegram.env")
	require.True(t, ok, "a regular file replaced the link")
	require.Equal(t, "TELEGRAM_BOT_TOKEN=1\n", string(env.Content))
	require.Equal(t, []any{"root", serviceUser}, []any{env.Owner, env.Group})
	_, isLink := b.m.Link("/etc/rachel/telegram.env")
	require.False(t, isLink)
	for _, f := range b.m.Files() {
		require.False(t, strings.HasPrefix(f.Path, perBoot+"/"), "nothing reached %s: %s", perBoot, f.Path)
	}
}
