package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/secrets"
)

func env(m map[string]string) config.Getenv { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, 8080, c.Port)
	require.Equal(t, "cx23", c.ServerType)
	require.Equal(t, 15*time.Minute, c.CallbackDeadline)
	require.Equal(t, "http://127.0.0.1:8080", c.PublicBaseURL)
	require.True(t, c.SecureCookies)
	require.Len(t, c.SSHAllowedFrom, 2)
	require.Equal(t, ":8080", c.ListenAddr(c.Port), "serve binds every interface unless told otherwise")
	require.True(t, c.MetricsToken.IsZero())
	require.Equal(t, "emulated", c.SimVPS)
	require.Error(t, c.Need("DATABASE_URL", "RACHEL_KEYRING"))
}

func TestValidValues(t *testing.T) {
	t.Parallel()
	kr, err := secrets.GenerateKeyring()
	require.NoError(t, err)
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600))
	c, err := config.Load(env(map[string]string{
		"DATABASE_URL": "postgres://u@h/db", "PORT": "9000", "RACHEL_KEYRING": kr,
		"HCLOUD_TOKEN_FILE": tokenFile, "PUBLIC_BASE_URL": "https://admin.example.com/",
		"SSH_ALLOWED_SOURCES": "203.0.113.7/32, 10.0.0.0/8", "CALLBACK_DEADLINE": "90s",
	}))
	require.NoError(t, err)
	require.NoError(t, c.Need("DATABASE_URL", "RACHEL_KEYRING", "HCLOUD_TOKEN"))
	require.Equal(t, "tok-from-file", c.HCloudToken.Reveal())
	require.Equal(t, "https://admin.example.com", c.PublicBaseURL)
	require.Equal(t, 90*time.Second, c.CallbackDeadline)
	require.Equal(t, "203.0.113.7/32", c.SSHAllowedFrom[0].String())

	c, err = config.Load(env(map[string]string{"LISTEN_HOST": "::1", "PORT": "9000", "METRICS_TOKEN": "0123456789abcdef-scrape"}))
	require.NoError(t, err)
	require.Equal(t, "[::1]:9000", c.ListenAddr(c.Port))
	require.Equal(t, "0123456789abcdef-scrape", c.MetricsToken.Reveal())
}

func TestErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, value := range map[string]string{
		"PORT": "http", "DATABASE_URL": "mysql://x", "RACHEL_KEYRING": "1:c2hvcnQ=",
		"PUBLIC_BASE_URL": "ftp://x", "HCLOUD_ENDPOINT": "nope", "CALLBACK_DEADLINE": "-1m",
		"SSH_KEY_ALGORITHM": "dsa", "SSH_ALLOWED_SOURCES": "everyone", "COOKIE_SECURE": "maybe",
		"LOG_FORMAT": "xml", "HCLOUD_SERVER_TYPE": "CX 22", "HCLOUD_TOKEN": "has space",
		"LISTEN_HOST": "every interface", "METRICS_TOKEN": "short",
		"SIM_VPS":                "docker",
		"ASSISTANT_ARTIFACT_URL": "http://x/a", "ASSISTANT_ARTIFACT_SHA256": "abc",
		"ASSISTANT_COMMAND": "rachel-assistant", "VPS_PACKAGES": "curl,Bad Name",
	} {
		_, err := config.Load(env(map[string]string{name: value}))
		require.Error(t, err, name)
		require.Contains(t, err.Error(), name)
		if name == "RACHEL_KEYRING" || name == "HCLOUD_TOKEN" || name == "METRICS_TOKEN" {
			require.False(t, strings.Contains(err.Error(), value), "secret echoed for %s", name)
		}
	}
}

func TestNotifyChannels(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"NOTIFY_SMTP_URL":       "smtp://ops:s3cret-pass@mail.example.com:2525?from=rachel@example.com&to=a@example.com,b@example.com",
		"NOTIFY_WEBHOOK_URL":    "https://hooks.example.com/services/T0/B0/xyz",
		"NOTIFY_WEBHOOK_SECRET": "0123456789abcdef0123",
		"NOTIFY_DIGEST_WINDOW":  "30s",
	}))
	require.NoError(t, err)
	require.Equal(t, "mail.example.com:2525", c.NotifySMTP.Addr())
	require.Equal(t, "ops", c.NotifySMTP.Username)
	require.Equal(t, "s3cret-pass", c.NotifySMTP.Password.Reveal())
	require.Equal(t, []string{"a@example.com", "b@example.com"}, c.NotifySMTP.To)
	require.Equal(t, 30*time.Second, c.NotifyDigestWindow)

	for name, e := range map[string]map[string]string{
		"NOTIFY_SMTP_URL":       {"NOTIFY_SMTP_URL": "smtp://u:topsecret@h:25?from=x@example.com"}, // no to=
		"NOTIFY_WEBHOOK_SECRET": {"NOTIFY_WEBHOOK_URL": "https://h.example.com/x", "NOTIFY_WEBHOOK_SECRET": "short"},
		"NOTIFY_DIGEST_WINDOW":  {"NOTIFY_DIGEST_WINDOW": "soon"},
	} {
		_, err := config.Load(env(e))
		require.Error(t, err, name)
		require.Contains(t, err.Error(), name)
		require.NotContains(t, err.Error(), "topsecret")
	}
}

func TestAssistantSettings(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("AB", 32)
	c, err := config.Load(env(map[string]string{
		"ASSISTANT_ARTIFACT_URL": "http://10.213.0.1:8081/rachel-assistant", "ASSISTANT_ARTIFACT_SHA256": sum,
		"ASSISTANT_COMMAND": "/opt/rachel/bin/assistant --serve", "VPS_PACKAGES": " curl, ca-certificates ,",
	}))
	require.NoError(t, err)
	require.Equal(t, "http://10.213.0.1:8081/rachel-assistant", c.AssistantArtifactURL)
	require.Equal(t, strings.ToLower(sum), c.AssistantArtifactSHA256)
	require.Equal(t, "/opt/rachel/bin/assistant --serve", c.AssistantCommand)
	require.Equal(t, []string{"curl", "ca-certificates"}, c.VPSPackages)

	c, err = config.Load(env(nil))
	require.NoError(t, err)
	require.Empty(t, c.AssistantArtifactURL)
	require.Equal(t, "/usr/local/bin/rachel-assistant", c.AssistantCommand)
	require.Empty(t, c.VPSPackages)

	// A digest without its URL, and a URL with a digest of the wrong shape, name the variable.
	_, err = config.Load(env(map[string]string{"ASSISTANT_ARTIFACT_SHA256": sum}))
	require.ErrorContains(t, err, "ASSISTANT_ARTIFACT_URL")
	_, err = config.Load(env(map[string]string{"ASSISTANT_ARTIFACT_URL": "http://x/a", "ASSISTANT_ARTIFACT_SHA256": "zz"}))
	require.ErrorContains(t, err, "ASSISTANT_ARTIFACT_SHA256")
	_, err = config.Load(env(map[string]string{"ASSISTANT_ARTIFACT_URL": "file:///x", "ASSISTANT_ARTIFACT_SHA256": sum}))
	require.ErrorContains(t, err, "ASSISTANT_ARTIFACT_URL")
}

func TestPlans(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, []string{"fsn1", "nbg1", "hel1"}, c.Locations)
	require.Equal(t, "fsn1", c.Location)
	def := c.PlanFor("personal")
	require.Equal(t, config.Plan{Var: "HCLOUD_SERVER_TYPE", ServerType: "cx23", Locations: []string{"fsn1", "nbg1", "hel1"}, Image: "debian-12"}, def)

	c, err = config.Load(env(map[string]string{"HCLOUD_LOCATION": "nbg1", "HCLOUD_PLAN_PRO": " cx33  hel1,fsn1 ubuntu-24.04 ", "HCLOUD_PLAN_PLUS": "cpx22 fsn1"}))
	require.NoError(t, err)
	require.Equal(t, []string{"nbg1"}, c.PlanFor("personal").Locations)
	require.Equal(t, config.Plan{Var: "HCLOUD_PLAN_PRO", ServerType: "cx33", Locations: []string{"hel1", "fsn1"}, Image: "ubuntu-24.04"}, c.PlanFor("pro"))
	require.Equal(t, "debian-12", c.PlanFor("plus").Image)

	for v, want := range map[string]string{
		"cx33":                  "HCLOUD_PLAN_PRO",
		"cx33 fsn1 debian-12 x": "HCLOUD_PLAN_PRO",
		"cx33 fsn1,fsn1":        "listed twice",
		"<cx33> fsn1":           "not a Hetzner name",
		"cx33 fsn1,":            "not a Hetzner location",
	} {
		_, err := config.Load(env(map[string]string{"HCLOUD_PLAN_PRO": v}))
		require.ErrorContains(t, err, want, v)
		require.ErrorContains(t, err, "HCLOUD_PLAN_PRO", v)
	}
	_, err = config.Load(env(map[string]string{"HCLOUD_LOCATION": "fsn1;nbg1"}))
	require.ErrorContains(t, err, "HCLOUD_LOCATION")
}

func TestProjects(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"HCLOUD_TOKEN": "tok-a", "HCLOUD_PROJECTS": "eu-2=tok-b, eu-3=tok-c"}))
	require.NoError(t, err)
	require.Equal(t, []string{"default", "eu-2", "eu-3"}, c.ProjectNames())
	p, ok := c.Project("eu-3")
	require.True(t, ok)
	require.Equal(t, "tok-c", p.Token.Reveal())
	require.NoError(t, c.Need("HCLOUD_TOKEN"))

	file := filepath.Join(t.TempDir(), "projects")
	require.NoError(t, os.WriteFile(file, []byte("# ours\ndefault=tok-a\n\nb=tok-b\n"), 0o600))
	c, err = config.Load(env(map[string]string{"HCLOUD_PROJECTS_FILE": file}))
	require.NoError(t, err)
	require.Equal(t, []string{"default", "b"}, c.ProjectNames())
	require.True(t, c.HCloudToken.IsZero())

	// A Config built in code with only the token has the default project.
	require.Equal(t, []string{"default"}, (&config.Config{HCloudToken: secrets.NewSecret("x")}).ProjectNames())
	none, err := config.Load(env(nil))
	require.NoError(t, err)
	require.ErrorContains(t, none.Need("HCLOUD_TOKEN"), "HCLOUD_PROJECTS")

	for name, e := range map[string]map[string]string{
		"HCLOUD_PROJECTS":       {"HCLOUD_PROJECTS": "b"},
		"HCLOUD_PROJECTS ":      {"HCLOUD_PROJECTS": "B=secret-token-1"},
		"HCLOUD_PROJECTS  ":     {"HCLOUD_PROJECTS": "b=secret-token-1,b=secret-token-2"},
		"HCLOUD_PROJECTS   ":    {"HCLOUD_TOKEN": "secret-token-1", "HCLOUD_PROJECTS": "b=secret-token-1"},
		"HCLOUD_PROJECTS    ":   {"HCLOUD_TOKEN": "secret-token-1", "HCLOUD_PROJECTS": "default=secret-token-2"},
		"HCLOUD_PROJECTS_FILE":  {"HCLOUD_PROJECTS_FILE": "/nonexistent/projects"},
		"HCLOUD_PROJECTS_FILE ": {"HCLOUD_PROJECTS_FILE": file, "HCLOUD_PROJECTS": "c=secret-token-3"},
	} {
		_, err := config.Load(env(e))
		require.Error(t, err, name)
		require.Contains(t, err.Error(), strings.TrimSpace(name)+":", e)
		require.NotContains(t, err.Error(), "secret-token", "a token is never echoed")
	}
}
