package cloudinit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rachelcloud/admin/internal/testkit"
)

// cloudInit returns the cloud-init binary. Validating against the real schema is the point of
// these tests, so a missing binary fails them.
func cloudInit(t *testing.T) string {
	t.Helper()
	return testkit.Require(t, "cloud-init")
}

// schemaCheck runs `cloud-init schema --config-file` and fails on errors and on warnings.
//
// cloud-init 22.4 (Debian 12) exits 1 and prints "Cloud config schema errors: …" on stderr for
// errors, but exits 0 for deprecations, printing "Cloud config schema deprecations: …" on stdout
// before "Valid cloud-config: FILE". Newer releases print "Valid schema …" and may add warnings.
// So: non-zero exit, or any line mentioning deprecation, warning, error or invalid, fails.
func schemaCheck(ctx context.Context, bin string, userData []byte, dir string) error {
	path := filepath.Join(dir, "user-data.yaml")
	if err := os.WriteFile(path, userData, 0o600); err != nil {
		return fmt.Errorf("write user data: %w", err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "schema", "--config-file", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cloud-init schema failed (%w):\n%s", err, out.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	for sc.Scan() {
		l := strings.ToLower(sc.Text())
		for _, bad := range []string{"deprecat", "warn", "error", "invalid", "not valid"} {
			if strings.Contains(l, bad) {
				return fmt.Errorf("cloud-init schema reported a problem:\n%s", out.String())
			}
		}
	}
	if !strings.Contains(out.String(), "Valid") {
		return fmt.Errorf("cloud-init schema did not report the file valid:\n%s", out.String())
	}
	return nil
}

func TestCloudInitSchema(t *testing.T) {
	t.Parallel()
	bin := cloudInit(t)
	k := getKeys(t)

	full := validConfig(t)
	full.Hostname = "vps-7.customers.rachel.example"
	full.LoginUser, full.ServiceUser = "ops", "assistant"
	full.AuthorizedKeys = []string{k.rsa.PublicKey, k.ed.PublicKey}
	full.Packages = []string{"python3"}
	full.AssistantCommand = "/opt/rachel/bin/rachel --verbose"
	full.CallbackURL = "http://10.0.0.2:8080/callback/tok?x=1"
	full.SSHPort = 2222
	full.AssistantArtifactURL = "http://10.213.0.1:8081/rachel-assistant"
	full.AssistantArtifactSHA256 = strings.Repeat("0f", 32)

	noPackages := validConfig(t)
	noPackages.Packages = []string{}

	for name, cfg := range map[string]Config{"defaults": validConfig(t), "custom": full, "no packages": noPackages} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, err := Build(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			require.NoError(t, schemaCheck(ctx, bin, out, t.TempDir()))
		})
	}
}

// TestSchemaCheckCatchesProblems proves the checker fails on what this cloud-init version
// reports: an error (ssh_genkeytypes: [] is "too short") and a deprecation (sudo: false).
func TestSchemaCheckCatchesProblems(t *testing.T) {
	t.Parallel()
	bin := cloudInit(t)
	for name, doc := range map[string]string{
		"error":       "#cloud-config\nhostname: x\nssh_genkeytypes: []\n",
		"wrong type":  "#cloud-config\nusers:\n  - name: x\n    lock_passwd: \"yes\"\n",
		"deprecation": "#cloud-config\nusers:\n  - name: x\n    lock-passwd: true\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			require.Error(t, schemaCheck(ctx, bin, []byte(doc), t.TempDir()))
		})
	}
}

// TestTopLevelKeysKnownToCloudInit guards against misspelt keys, which `cloud-init schema`
// silently accepts at the top level: every key we write must be a property in its schema.
// (Nested objects we use — users, ssh_keys, write_files, phone_home — forbid unknown keys in
// the schema itself, so TestCloudInitSchema covers them.)
func TestTopLevelKeysKnownToCloudInit(t *testing.T) {
	t.Parallel()
	bin := cloudInit(t)
	schemaPath, err := schemaFile(bin)
	require.NoError(t, err, "cloud-init's JSON schema, which the installed cloud-init must carry")
	raw, err := os.ReadFile(schemaPath)
	require.NoError(t, err)
	var schema any
	require.NoError(t, json.Unmarshal(raw, &schema))
	known := map[string]bool{}
	collectProperties(schema, known)

	out, err := Build(validConfig(t))
	require.NoError(t, err)
	var top map[string]any
	require.NoError(t, yaml.Unmarshal(out, &top))
	for key := range top {
		require.True(t, known[key], "cloud-init's schema has no key %q", key)
	}
}

// schemaFile asks cloud-init's own Python where its schema is.
func schemaFile(bin string) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	python, ok := strings.CutPrefix(strings.TrimSpace(line), "#!")
	if !ok {
		return "", fmt.Errorf("%s has no #! line", bin)
	}
	out, err := exec.Command(strings.Fields(python)[0], "-c",
		"from cloudinit.config.schema import get_schema_dir; print(get_schema_dir())").Output()
	if err != nil {
		return "", fmt.Errorf("ask cloud-init for its schema dir: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "schema-cloud-config-v1.json"), nil
}

func collectProperties(v any, known map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok {
			for k := range props {
				known[k] = true
			}
		}
		for _, child := range v {
			collectProperties(child, known)
		}
	case []any:
		for _, child := range v {
			collectProperties(child, known)
		}
	}
}

// TestSudoersSyntax checks the rule as cloud-init writes it (/etc/sudoers.d/90-cloud-init-users:
// "<user> <rule>") with visudo.
func TestSudoersSyntax(t *testing.T) {
	t.Parallel()
	visudo := testkit.Require(t, "visudo")
	doc, _ := build(t, validConfig(t))
	path := filepath.Join(t.TempDir(), "90-cloud-init-users")
	require.NoError(t, os.WriteFile(path, []byte(DefaultLoginUser+" "+doc.User(DefaultLoginUser).Sudo+"\n"), 0o440))
	out, err := exec.Command(visudo, "-c", "-f", path).CombinedOutput()
	require.NoError(t, err, "visudo: %s", out)
	require.Contains(t, string(out), "parsed OK")
}

// TestUnitVerifies runs systemd-analyze verify on the unit (with a program that exists here).
func TestUnitVerifies(t *testing.T) {
	t.Parallel()
	analyze := testkit.Require(t, "systemd-analyze")
	cfg := validConfig(t)
	cfg.AssistantCommand = "/bin/true"
	doc, _ := build(t, cfg)
	path := filepath.Join(t.TempDir(), UnitName)
	require.NoError(t, os.WriteFile(path, []byte(doc.File(UnitPath).Content), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify: %s", out)
	require.NotContains(t, string(out), UnitName+":", "systemd-analyze complained: %s", out)
}
