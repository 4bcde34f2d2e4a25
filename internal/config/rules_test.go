package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
)

// TestEveryProblemIsReportedAtOnce: an operator fixes the environment in one go, not one
// variable per start.
func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{"PORT": "0", "LOG_FORMAT": "yaml", "TRUST_PROXY": "on", "VPS_SSH_PORT": "70000"}))
	require.Error(t, err)
	for _, name := range []string{"PORT", "LOG_FORMAT", "TRUST_PROXY", "VPS_SSH_PORT"} {
		require.Contains(t, err.Error(), name)
	}
}

func TestNumbersAndSwitchesInRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		bad  string // the variable named, "" when valid
		want func(*testing.T, *config.Config)
	}{
		{env: map[string]string{"SSH_KEY_POOL_SIZE": "0"}, want: func(t *testing.T, c *config.Config) { require.Zero(t, c.SSHKeyPoolSize) }},
		{env: map[string]string{"SSH_KEY_POOL_SIZE": "10000"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, 10000, c.SSHKeyPoolSize) }},
		{env: map[string]string{"SSH_KEY_POOL_SIZE": "10001"}, bad: "SSH_KEY_POOL_SIZE"},
		{env: map[string]string{"SSH_KEY_POOL_SIZE": "-1"}, bad: "SSH_KEY_POOL_SIZE"},
		{env: map[string]string{"SSH_KEY_POOL_SIZE": "many"}, bad: "SSH_KEY_POOL_SIZE"},
		{env: map[string]string{"BILLING_API_RATE": "1"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, 1, c.BillingAPIRate) }},
		{env: map[string]string{"BILLING_API_RATE": "0"}, bad: "BILLING_API_RATE"},
		{env: map[string]string{"BILLING_API_RATE": "100001"}, bad: "BILLING_API_RATE"},
		{env: map[string]string{"SIM_TIME_SCALE": "1"}, want: func(t *testing.T, c *config.Config) { require.InDelta(t, 1.0, c.SimTimeScale, 1e-9) }},
		{env: map[string]string{"SIM_TIME_SCALE": "0"}, bad: "SIM_TIME_SCALE"},
		{env: map[string]string{"SIM_TIME_SCALE": "11"}, bad: "SIM_TIME_SCALE"},
		{env: map[string]string{"SIM_TIME_SCALE": "fast"}, bad: "SIM_TIME_SCALE"},
		{env: map[string]string{"SIM_VPS": "real"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, "real", c.SimVPS) }},
		{env: map[string]string{"VPS_SSH_PORT": "2222"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, 2222, c.VPSSSHPort) }},
		{env: map[string]string{"VPS_SSH_PORT": "0"}, bad: "VPS_SSH_PORT"},
		{env: map[string]string{"METRICS_PORT": "9100"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, 9100, c.MetricsPort) }},
		{env: map[string]string{"METRICS_PORT": "65536"}, bad: "METRICS_PORT"},
		{env: map[string]string{"TRUST_PROXY": "true", "REQUIRE_2FA": "true", "COOKIE_SECURE": "false"}, want: func(t *testing.T, c *config.Config) {
			require.True(t, c.TrustProxy)
			require.True(t, c.Require2FA)
			require.False(t, c.SecureCookies)
		}},
		{env: map[string]string{"REQUIRE_2FA": "enabled"}, bad: "REQUIRE_2FA"},
		{env: map[string]string{"REQUIRE_2FA": "yes", "TRUST_PROXY": "1"}, want: func(t *testing.T, c *config.Config) { require.True(t, c.Require2FA && c.TrustProxy) }},
		{env: map[string]string{"LOG_FORMAT": "text"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, "text", c.LogFormat) }},
		{env: map[string]string{"SSH_KEY_ALGORITHM": "ed25519"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, "ed25519", c.SSHKeyAlgorithm) }},
		{env: map[string]string{"SESSION_IDLE_TIMEOUT": "13h"}, bad: "SESSION_IDLE_TIMEOUT"},
		{env: map[string]string{"SESSION_IDLE_TIMEOUT": "1h", "SESSION_MAX_AGE": "1h"}, want: func(t *testing.T, c *config.Config) {
			require.Equal(t, time.Hour, c.SessionIdle)
			require.Equal(t, time.Hour, c.SessionMaxAge)
		}},
		{env: map[string]string{"HEALTH_CHECK_INTERVAL": "0s"}, bad: "HEALTH_CHECK_INTERVAL"},
		{env: map[string]string{"CLAUDE_TOKEN_WARN": "24h"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, 24*time.Hour, c.ClaudeTokenWarn) }},
		{env: map[string]string{"CREATE_DEADLINE": "10"}, bad: "CREATE_DEADLINE"},
		{env: map[string]string{"LISTEN_HOST": "localhost"}, want: func(t *testing.T, c *config.Config) { require.Equal(t, "localhost:8080", c.ListenAddr(8080)) }},
		{env: map[string]string{"LISTEN_HOST": "10.0.0.5", "METRICS_PORT": "9100"}, want: func(t *testing.T, c *config.Config) {
			require.Equal(t, "10.0.0.5:9100", c.ListenAddr(c.MetricsPort))
		}},
		{env: map[string]string{"PORT": "9000"}, want: func(t *testing.T, c *config.Config) {
			require.Equal(t, "http://127.0.0.1:9000", c.PublicBaseURL, "the default follows PORT")
		}},
		{env: map[string]string{"HCLOUD_ENDPOINT": "http://127.0.0.1:8090/v1"}, want: func(t *testing.T, c *config.Config) {
			require.Equal(t, "http://127.0.0.1:8090/v1", c.HCloudEndpoint)
		}},
		{env: map[string]string{"HCLOUD_ENDPOINT": "ftp://x"}, bad: "HCLOUD_ENDPOINT"},
		{env: map[string]string{"SSH_ALLOWED_SOURCES": "203.0.113.7/24"}, want: func(t *testing.T, c *config.Config) {
			require.Equal(t, "203.0.113.0/24", c.SSHAllowedFrom[0].String(), "host bits are masked off")
		}},
	} {
		c, err := config.Load(env(tc.env))
		if tc.bad != "" {
			require.ErrorContains(t, err, tc.bad, "%v", tc.env)
			continue
		}
		require.NoError(t, err, "%v", tc.env)
		tc.want(t, c)
	}
}

func TestTokenFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte("  file-token \n"), 0o600))

	c, err := config.Load(env(map[string]string{"HCLOUD_TOKEN_FILE": file}))
	require.NoError(t, err)
	require.Equal(t, "file-token", c.HCloudToken.Reveal(), "surrounding white space is trimmed")

	_, err = config.Load(env(map[string]string{"HCLOUD_TOKEN_FILE": file, "HCLOUD_TOKEN": "also-set"}))
	require.ErrorContains(t, err, "set either HCLOUD_TOKEN or HCLOUD_TOKEN_FILE, not both")
	require.NotContains(t, err.Error(), "also-set")

	_, err = config.Load(env(map[string]string{"HCLOUD_TOKEN_FILE": filepath.Join(dir, "missing")}))
	require.ErrorContains(t, err, "HCLOUD_TOKEN_FILE")
	require.ErrorContains(t, err, "cannot read")

	c, err = config.Load(env(nil))
	require.NoError(t, err)
	require.ErrorContains(t, c.Need("HCLOUD_TOKEN"), "HCLOUD_TOKEN: required but not set")
	err = c.Need("DATABASE_URL", "HCLOUD_TOKEN")
	require.ErrorContains(t, err, "DATABASE_URL")
	require.ErrorContains(t, err, "HCLOUD_TOKEN")
	require.NoError(t, c.Need())
}

func TestSMTPURLForms(t *testing.T) {
	t.Parallel()
	load := func(u string) (*config.Config, error) {
		return config.Load(env(map[string]string{"NOTIFY_SMTP_URL": u}))
	}
	c, err := load("smtp://mail.example.com?from=a@example.com&to=b@example.com")
	require.NoError(t, err)
	require.Equal(t, "mail.example.com:587", c.NotifySMTP.Addr(), "submission port by default")
	require.False(t, c.NotifySMTP.ImplicitTLS)
	require.False(t, c.NotifySMTP.Plain)
	require.Empty(t, c.NotifySMTP.Username)

	c, err = load("smtps://u:p@mail.example.com?from=Ops%20<ops@example.com>&to=b@example.com")
	require.NoError(t, err)
	require.Equal(t, "mail.example.com:465", c.NotifySMTP.Addr(), "implicit TLS port by default")
	require.True(t, c.NotifySMTP.ImplicitTLS)
	require.Equal(t, "ops@example.com", c.NotifySMTP.From, "the address of a named sender")

	c, err = load("smtp://relay.internal:25?starttls=false&from=a@example.com&to=b@example.com")
	require.NoError(t, err)
	require.True(t, c.NotifySMTP.Plain, "a relay on a private network without STARTTLS")
	c, err = load("smtps://relay.internal?starttls=false&from=a@example.com&to=b@example.com")
	require.NoError(t, err)
	require.False(t, c.NotifySMTP.Plain, "implicit TLS is never plain")

	for u, want := range map[string]string{
		"http://mail.example.com?from=a@example.com&to=b@example.com":           "scheme must be smtp or smtps",
		"smtp://?from=a@example.com&to=b@example.com":                           "has no host",
		"smtp://h:99999?from=a@example.com&to=b@example.com":                    "is not a port number",
		"smtp://h?starttls=maybe&from=a@example.com&to=b@example.com":           "starttls= must be true or false",
		"smtp://h?from=nobody&to=b@example.com":                                 "from= must be an email address",
		"smtp://h?from=a@example.com&to=b@example.com,not-an-address":           "is not an email address",
		"smtp://h?from=a@example.com&to=,":                                      "to= must list at least one email address",
		"smtp://user:hunter2-secret@h:port?from=a@example.com&to=b@example.com": "is not a URL",
	} {
		_, err := load(u)
		require.ErrorContains(t, err, "NOTIFY_SMTP_URL", u)
		require.ErrorContains(t, err, want, u)
		require.NotContains(t, err.Error(), "hunter2", "the password is never echoed")
	}
}

func TestWebhookNeedsItsSecret(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{"NOTIFY_WEBHOOK_URL": "https://hooks.example.com/x"}))
	require.ErrorContains(t, err, "NOTIFY_WEBHOOK_SECRET")
	_, err = config.Load(env(map[string]string{"NOTIFY_WEBHOOK_URL": "ftp://hooks.example.com/secret-path", "NOTIFY_WEBHOOK_SECRET": strings.Repeat("s", 16)}))
	require.ErrorContains(t, err, "NOTIFY_WEBHOOK_URL")
	require.NotContains(t, err.Error(), "secret-path", "the URL itself may be a secret")
	c, err := config.Load(env(map[string]string{"NOTIFY_WEBHOOK_URL": "https://hooks.example.com/x", "NOTIFY_WEBHOOK_SECRET": strings.Repeat("s", 16)}))
	require.NoError(t, err)
	require.Equal(t, "https://hooks.example.com/x", c.NotifyWebhookURL.Reveal())
}

func TestPlanVarsAndNames(t *testing.T) {
	t.Parallel()
	require.Equal(t, "HCLOUD_PLAN_PERSONAL", config.PlanVar("personal"))
	names := map[string]bool{}
	for _, v := range config.Vars {
		names[v.Name] = true
	}
	for _, p := range config.PlanNames {
		require.True(t, names[config.PlanVar(p)], "every plan has its documented variable: %s", p)
	}
	_, err := config.Load(env(map[string]string{"HCLOUD_PLAN_PLUS": "cx23 fsn1 Debian 12"}))
	require.ErrorContains(t, err, "HCLOUD_PLAN_PLUS")
	_, err = config.Load(env(map[string]string{"HCLOUD_PLAN_PLUS": "cx23 fsn1 <debian>"}))
	require.ErrorContains(t, err, `image "<debian>" is not a Hetzner name`)
}
