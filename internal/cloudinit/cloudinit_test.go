package cloudinit

import (
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rachelcloud/admin/internal/sshkey"
)

type keys struct {
	host  *sshkey.HostKey
	rsa   *sshkey.KeyPair // the default access key type, generated once (slow under -race)
	ed    *sshkey.KeyPair
	other *sshkey.HostKey
}

var testKeys = sync.OnceValues(func() (*keys, error) {
	var k keys
	var err error
	if k.host, err = sshkey.GenerateHostKey(); err != nil {
		return nil, err
	}
	if k.other, err = sshkey.GenerateHostKey(); err != nil {
		return nil, err
	}
	if k.rsa, err = sshkey.Generate(sshkey.RSA4096, "rachel-sub-42"); err != nil {
		return nil, err
	}
	if k.ed, err = sshkey.Generate(sshkey.Ed25519, "rachel-sub-42"); err != nil {
		return nil, err
	}
	return &k, nil
})

func getKeys(t testing.TB) *keys {
	t.Helper()
	k, err := testKeys()
	require.NoError(t, err)
	return k
}

// validConfig is a complete config with defaults left empty.
func validConfig(t testing.TB) Config {
	k := getKeys(t)
	return Config{
		Hostname:       "rachel-sub-42",
		AuthorizedKeys: []string{k.rsa.PublicKey},
		HostKeyPrivate: k.host.PrivateOpenSSH,
		HostKeyPublic:  k.host.Public,
		CallbackURL:    "https://admin.rachel.example/callback/Zm9vYmFyYmF6cXV4cXV1eA",
	}
}

func build(t *testing.T, c Config) (*Document, []byte) {
	t.Helper()
	out, err := Build(c)
	require.NoError(t, err)
	doc, err := Parse(out)
	require.NoError(t, err)
	return doc, out
}

func TestBuildStructure(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	cfg := validConfig(t)
	doc, out := build(t, cfg)

	require.True(t, strings.HasPrefix(string(out), "#cloud-config\n"))
	require.LessOrEqual(t, len(out), MaxUserDataSize)
	require.Equal(t, "rachel-sub-42", doc.Hostname)
	require.False(t, doc.PreserveHostname)

	// Login user: the provisioner's key, bash, no password, the narrow sudo rule.
	require.Len(t, doc.Users, 2)
	login := doc.User(DefaultLoginUser)
	require.NotNil(t, login)
	require.Equal(t, []string{k.rsa.PublicKey}, login.SSHAuthorizedKeys)
	require.Equal(t, "/bin/bash", login.Shell)
	require.True(t, login.LockPasswd)
	require.Equal(t, "ALL=(root) NOPASSWD: "+strings.Join(SudoCommands("rachel"), ", "), login.Sudo)
	require.False(t, login.System)

	// Service user: no login, no sudo, no keys.
	svc := doc.User(DefaultServiceUser)
	require.NotNil(t, svc)
	require.Equal(t, "/usr/sbin/nologin", svc.Shell)
	require.True(t, svc.LockPasswd)
	require.Empty(t, svc.Sudo)
	require.Empty(t, svc.SSHAuthorizedKeys)
	require.True(t, svc.System)
	require.Equal(t, "rachel", svc.PrimaryGroup)
	require.Equal(t, []string{"rachel"}, doc.Groups)

	// Host key seeded, others deleted, root and passwords off.
	require.Equal(t, k.host.PrivateOpenSSH, doc.SSHKeys.Ed25519Private)
	require.Equal(t, k.host.Public, doc.SSHKeys.Ed25519Public)
	require.True(t, doc.SSHDeleteKeys)
	require.Equal(t, []string{"ed25519"}, doc.SSHGenKeyTypes) // see the comment in document()
	require.True(t, doc.DisableRoot)
	require.False(t, doc.SSHPwauth)

	// No packages by default (they need apt's network), and the locale needs no locale-gen.
	require.False(t, doc.PackageUpdate)
	require.Empty(t, doc.Packages)
	require.Equal(t, "C.UTF-8", doc.Locale)

	// sshd drop-in.
	dropIn := doc.File(SSHDDropInPath)
	require.NotNil(t, dropIn)
	require.Equal(t, "root:root", dropIn.Owner)
	require.Equal(t, "0644", dropIn.Permissions)
	for _, line := range []string{"PasswordAuthentication no", "PermitRootLogin no",
		"KbdInteractiveAuthentication no", "AllowUsers rachel-ops", "Port 22"} {
		require.Contains(t, strings.Split(dropIn.Content, "\n"), line)
	}

	// systemd unit.
	unit := doc.File(UnitPath)
	require.NotNil(t, unit)
	require.Equal(t, "0644", unit.Permissions)
	unitLines := strings.Split(unit.Content, "\n")
	for _, line := range []string{
		"User=rachel", "Group=rachel",
		"EnvironmentFile=/etc/rachel/telegram.env",
		"Environment=RACHEL_CLAUDE_CREDENTIALS=/etc/rachel/claude-credentials.json",
		"ExecStart=" + DefaultAssistantCommand,
		"Restart=on-failure",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/etc/rachel", "PrivateTmp=yes",
		"WantedBy=multi-user.target",
	} {
		require.Contains(t, unitLines, line)
	}

	// runcmd under set -e: the root-owned config dir and its root-only staging dir, then the
	// unit enabled (not started). Without an artifact nothing is downloaded.
	require.Equal(t, []RunCmd{
		{Shell: "set -e"},
		{Argv: []string{"install", "-d", "-m", "0750", "-o", "root", "-g", "rachel", "/etc/rachel"}},
		{Argv: []string{"install", "-d", "-m", "0700", "-o", "root", "-g", "root", "/etc/rachel/.staging"}},
		{Argv: []string{"systemctl", "daemon-reload"}},
		{Argv: []string{"systemctl", "enable", "rachel-assistant.service"}},
	}, doc.RunCmd)
	require.Nil(t, doc.File(InstallDir+"/rachel-assistant.sha256"))

	// phone_home as docs/contracts.md says.
	require.Equal(t, PhoneHome{
		URL:   cfg.CallbackURL,
		Post:  []string{"pub_key_ed25519", "instance_id", "hostname", "fqdn"},
		Tries: 10,
	}, doc.PhoneHome)
}

// TestBuildTopLevelKeys pins the exact set and order of keys, so nothing unexpected slips in and
// phone_home stays last.
func TestBuildTopLevelKeys(t *testing.T) {
	t.Parallel()
	_, out := build(t, validConfig(t))
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal(out, &root))
	m := root.Content[0]
	var keys []string
	for i := 0; i < len(m.Content); i += 2 {
		keys = append(keys, m.Content[i].Value)
	}
	require.Equal(t, []string{
		"hostname", "preserve_hostname", "locale", "groups", "users",
		"disable_root", "ssh_pwauth", "ssh_deletekeys", "ssh_genkeytypes", "ssh_keys",
		"package_update", "write_files", "runcmd", "phone_home",
	}, keys)
}

// TestSudoRuleMatchesContract reads the command lines from docs/contracts.md, so the sudo rule
// and the contract cannot drift apart.
func TestSudoRuleMatchesContract(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docs/contracts.md")
	require.NoError(t, err)
	stdinNote := regexp.MustCompile(`\s+\(.*\)\s*$`)
	var want []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if cmd, ok := strings.CutPrefix(line, "sudo /"); ok {
			want = append(want, "/"+strings.TrimSpace(stdinNote.ReplaceAllString(cmd, "")))
		}
	}
	require.Len(t, want, 6)
	require.NotContains(t, strings.Join(want, "\n"), "is-active", "is-active right after a restart proves nothing")
	require.Equal(t, want, SudoCommands(DefaultServiceUser))

	doc, _ := build(t, validConfig(t))
	rule := doc.User(DefaultLoginUser).Sudo
	require.Equal(t, "ALL=(root) NOPASSWD: "+strings.Join(want, ", "), rule)
	require.NotContains(t, rule, "*")
	require.NotContains(t, rule, "ALL=(ALL")
	require.Equal(t, 1, strings.Count(rule, "NOPASSWD"))
}

func TestBuildCustomValues(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	cfg := validConfig(t)
	cfg.Hostname = "vps-7.customers.rachel.example"
	cfg.LoginUser = "ops"
	cfg.ServiceUser = "assistant"
	cfg.AuthorizedKeys = []string{k.rsa.PublicKey, "  " + k.ed.PublicKey + "\n"}
	cfg.Packages = []string{"python3", "libstdc++6"}
	cfg.AssistantCommand = "/opt/rachel/bin/rachel --config=/etc/rachel/config.json -v"
	cfg.CallbackURL = "http://127.0.0.1:8080/callback/abc?x=1"
	cfg.HostKeyPrivate = strings.TrimSuffix(k.host.PrivateOpenSSH, "\n")

	doc, _ := build(t, cfg)
	require.Equal(t, cfg.Hostname, doc.Hostname)
	require.Equal(t, []string{k.rsa.PublicKey, k.ed.PublicKey}, doc.User("ops").SSHAuthorizedKeys)
	require.Contains(t, doc.User("ops").Sudo, "-o assistant -g assistant")
	require.Contains(t, doc.User("ops").Sudo, "-o root -g assistant")
	require.NotNil(t, doc.User("assistant"))
	require.Equal(t, []string{"python3", "libstdc++6"}, doc.Packages)
	require.Contains(t, doc.File(UnitPath).Content, "\nExecStart="+cfg.AssistantCommand+"\n")
	require.Contains(t, doc.File(UnitPath).Content, "\nUser=assistant\n")
	require.Contains(t, doc.File(SSHDDropInPath).Content, "\nAllowUsers ops\n")
	require.Equal(t, k.host.PrivateOpenSSH, doc.SSHKeys.Ed25519Private, "trailing newline restored")
	require.Equal(t, cfg.CallbackURL, doc.PhoneHome.URL)
	require.Contains(t, doc.RunCmd[1].Argv, "assistant")
	require.True(t, doc.PackageUpdate, "cloud-init updates apt's lists for any package anyway")

	// An explicit empty package list installs nothing.
	cfg.Packages = []string{}
	doc, _ = build(t, cfg)
	require.Empty(t, doc.Packages)
	require.False(t, doc.PackageUpdate)
}

// TestBuildAssistantArtifact: the artifact is downloaded, checked against its digest and
// installed at the unit's program path, all under set -e so any failure is cloud-init's error.
func TestBuildAssistantArtifact(t *testing.T) {
	t.Parallel()
	cfg := validConfig(t)
	cfg.SSHPort = 2222
	cfg.AssistantCommand = "/opt/rachel/bin/assistant --serve"
	cfg.AssistantArtifactURL = "http://10.213.0.1:8080/assistant?v=1&x=$HOME"
	cfg.AssistantArtifactSHA256 = strings.Repeat("AB", 32)
	doc, _ := build(t, cfg)

	sum := doc.File("/var/lib/rachel-install/rachel-assistant.sha256")
	require.NotNil(t, sum)
	require.Equal(t, strings.Repeat("ab", 32)+"  /var/lib/rachel-install/rachel-assistant\n", sum.Content)
	require.Equal(t, "root:root", sum.Owner)
	require.Equal(t, []RunCmd{
		{Shell: "set -e"},
		{Argv: []string{"install", "-d", "-m", "0750", "-o", "root", "-g", "rachel", "/etc/rachel"}},
		{Argv: []string{"install", "-d", "-m", "0700", "-o", "root", "-g", "root", "/etc/rachel/.staging"}},
		{Argv: []string{"curl", "--fail", "--silent", "--show-error", "--location", "--retry", "5", "--retry-connrefused",
			"--max-time", "600", "--output", "/var/lib/rachel-install/rachel-assistant", cfg.AssistantArtifactURL}},
		{Argv: []string{"sha256sum", "--check", "--strict", "--quiet", "/var/lib/rachel-install/rachel-assistant.sha256"}},
		{Argv: []string{"install", "-D", "-m", "0755", "-o", "root", "-g", "root", "/var/lib/rachel-install/rachel-assistant", "/opt/rachel/bin/assistant"}},
		{Argv: []string{"rm", "-f", "/var/lib/rachel-install/rachel-assistant"}},
		{Argv: []string{"systemctl", "daemon-reload"}},
		{Argv: []string{"systemctl", "enable", "rachel-assistant.service"}},
	}, doc.RunCmd)
	require.Contains(t, strings.Split(doc.File(SSHDDropInPath).Content, "\n"), "Port 2222")

	for name, mutate := range map[string]func(*Config){
		"URL without digest":   func(c *Config) { c.AssistantArtifactSHA256 = "" },
		"digest without URL":   func(c *Config) { c.AssistantArtifactURL = "" },
		"short digest":         func(c *Config) { c.AssistantArtifactSHA256 = "abc" },
		"file URL":             func(c *Config) { c.AssistantArtifactURL = "file:///etc/shadow" },
		"URL newline":          func(c *Config) { c.AssistantArtifactURL = "http://x/a\nruncmd: [x]" },
		"URL space":            func(c *Config) { c.AssistantArtifactURL = "http://x/a b" },
		"port 0 after default": func(c *Config) { c.SSHPort = 70000 },
	} {
		c := cfg
		mutate(&c)
		_, err := Build(c)
		require.Error(t, err, name)
	}
}

func TestBuildSizeLimit(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	cfg := validConfig(t)
	cfg.AuthorizedKeys = nil
	for len(cfg.AuthorizedKeys)*len(k.rsa.PublicKey) < MaxUserDataSize {
		cfg.AuthorizedKeys = append(cfg.AuthorizedKeys, k.rsa.PublicKey)
	}
	_, err := Build(cfg)
	require.ErrorContains(t, err, "over the 32768-byte limit")

	// Just under the limit is fine.
	for len(cfg.AuthorizedKeys) > 0 {
		cfg.AuthorizedKeys = cfg.AuthorizedKeys[:len(cfg.AuthorizedKeys)-1]
		out, err := Build(cfg)
		if err == nil {
			require.LessOrEqual(t, len(out), MaxUserDataSize)
			require.Greater(t, len(out), MaxUserDataSize-2*len(k.rsa.PublicKey))
			return
		}
		require.ErrorContains(t, err, "limit")
	}
	t.Fatal("no number of keys fit")
}

func TestBuildValidation(t *testing.T) {
	t.Parallel()
	k := getKeys(t)
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"empty hostname", func(c *Config) { c.Hostname = "" }, "hostname: is empty"},
		{"hostname newline", func(c *Config) { c.Hostname = "a\nb" }, "hostname: \"a\\nb\" is not an RFC 1123"},
		{"hostname yaml injection", func(c *Config) { c.Hostname = "x\nruncmd: [reboot]" }, "not an RFC 1123"},
		{"hostname quote", func(c *Config) { c.Hostname = `rachel"x` }, "not an RFC 1123"},
		{"hostname underscore", func(c *Config) { c.Hostname = "rachel_sub" }, "not an RFC 1123"},
		{"hostname leading hyphen", func(c *Config) { c.Hostname = "-rachel" }, "not an RFC 1123"},
		{"hostname trailing hyphen", func(c *Config) { c.Hostname = "rachel-" }, "not an RFC 1123"},
		{"hostname empty label", func(c *Config) { c.Hostname = "a..b" }, "not an RFC 1123"},
		{"hostname long label", func(c *Config) { c.Hostname = strings.Repeat("a", 64) }, "not an RFC 1123"},
		{"hostname too long", func(c *Config) { c.Hostname = strings.Repeat("abcdefghi.", 26) + "a" }, "over 253"},
		{"hostname IP", func(c *Config) { c.Hostname = "10.0.0.1" }, "looks like an IP address"},
		{"login user uppercase", func(c *Config) { c.LoginUser = "Ops" }, "login user: \"Ops\" is not a valid user name"},
		{"login user newline", func(c *Config) { c.LoginUser = "ops\nsudo: ALL" }, "login user"},
		{"login user too long", func(c *Config) { c.LoginUser = strings.Repeat("a", 33) }, "login user"},
		{"login user root", func(c *Config) { c.LoginUser = "root" }, `"root" is not allowed`},
		{"service user digit first", func(c *Config) { c.ServiceUser = "1rachel" }, "service user"},
		{"service user space", func(c *Config) { c.ServiceUser = "rachel ALL" }, "service user"},
		{"same users", func(c *Config) { c.ServiceUser = DefaultLoginUser }, "they must differ"},
		{"no keys", func(c *Config) { c.AuthorizedKeys = nil }, "at least one public key"},
		{"empty key", func(c *Config) { c.AuthorizedKeys = []string{" "} }, "authorized key 1: is empty"},
		{"garbage key", func(c *Config) { c.AuthorizedKeys = []string{k.ed.PublicKey, "ssh-rsa notbase64"} }, "authorized key 2: is not an OpenSSH public key"},
		{"two keys in one", func(c *Config) { c.AuthorizedKeys = []string{k.ed.PublicKey + "\n" + k.rsa.PublicKey} }, "line break"},
		{"key with options", func(c *Config) { c.AuthorizedKeys = []string{"restrict,pty " + k.ed.PublicKey} }, "options"},
		{"key quote", func(c *Config) { c.AuthorizedKeys = []string{`command="sh" ` + k.ed.PublicKey} }, "quote"},
		{"key yaml injection", func(c *Config) { c.AuthorizedKeys = []string{k.ed.PublicKey + "'\nruncmd: [x]"} }, "authorized key 1"},
		{"key non-ASCII comment", func(c *Config) { c.AuthorizedKeys = []string{k.ed.PublicKey + "é"} }, "non-ASCII"},
		{"no host key", func(c *Config) { c.HostKeyPrivate = "" }, "host key: both"},
		{"no host public", func(c *Config) { c.HostKeyPublic = "" }, "host key: both"},
		{"host key PKCS8", func(c *Config) { c.HostKeyPrivate = string(k.ed.PrivateKeyPEM) }, "not in OpenSSH format"},
		{"host key mismatch", func(c *Config) { c.HostKeyPublic = k.other.Public }, "does not match"},
		{"host key not ed25519", func(c *Config) { c.HostKeyPublic = k.rsa.PublicKey }, "want ssh-ed25519"},
		{"host public newline", func(c *Config) { c.HostKeyPublic = k.host.Public + "\nx: y" }, "line break"},
		{"host private garbage", func(c *Config) {
			c.HostKeyPrivate = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
		}, "parse private key"},
		{"no URL", func(c *Config) { c.CallbackURL = "" }, "callback URL: is empty"},
		{"ftp URL", func(c *Config) { c.CallbackURL = "ftp://x/callback/t" }, `scheme "ftp" is not http or https`},
		{"file URL", func(c *Config) { c.CallbackURL = "file:///etc/passwd" }, "scheme"},
		{"relative URL", func(c *Config) { c.CallbackURL = "/callback/t" }, "scheme"},
		{"no host URL", func(c *Config) { c.CallbackURL = "https:///callback/t" }, "has no host"},
		{"URL newline", func(c *Config) { c.CallbackURL = "https://x/c\nruncmd: [x]" }, "line break"},
		{"URL quote", func(c *Config) { c.CallbackURL = `https://x/c"` }, "quote"},
		{"URL dollar", func(c *Config) { c.CallbackURL = "https://x/c/$INSTANCE_ID" }, "$"},
		{"URL space", func(c *Config) { c.CallbackURL = "https://x/c t" }, "space"},
		{"URL userinfo", func(c *Config) { c.CallbackURL = "https://u:p@x/c" }, "user info"},
		{"URL fragment", func(c *Config) { c.CallbackURL = "https://x/c#f" }, "fragment"},
		{"URL too long", func(c *Config) { c.CallbackURL = "https://x/" + strings.Repeat("a", 2048) }, "over 2048"},
		{"package option", func(c *Config) { c.Packages = []string{"-oDpkg::x"} }, "packages: \"-oDpkg::x\" is not a Debian package name"},
		{"package newline", func(c *Config) { c.Packages = []string{"curl\n- x"} }, "not a Debian package name"},
		{"package uppercase", func(c *Config) { c.Packages = []string{"Curl"} }, "not a Debian package name"},
		{"package twice", func(c *Config) { c.Packages = []string{"curl", "curl"} }, "listed twice"},
		{"too many packages", func(c *Config) {
			c.Packages = nil
			for i := range 101 {
				c.Packages = append(c.Packages, "p"+strings.Repeat("x", i%50)+string(rune('a'+i/50)))
			}
		}, "over 100"},
		{"command relative", func(c *Config) { c.AssistantCommand = "rachel-assistant" }, "assistant command"},
		{"command newline", func(c *Config) { c.AssistantCommand = "/bin/x\nExecStartPre=/bin/sh" }, "assistant command"},
		{"command specifier", func(c *Config) { c.AssistantCommand = "/bin/x %h" }, "assistant command"},
		{"command variable", func(c *Config) { c.AssistantCommand = "/bin/x $TELEGRAM_BOT_TOKEN" }, "assistant command"},
		{"command semicolon", func(c *Config) { c.AssistantCommand = "/bin/x ; /bin/y" }, "assistant command"},
		{"command quote", func(c *Config) { c.AssistantCommand = `/bin/sh -c "x"` }, "assistant command"},
		{"command backslash", func(c *Config) { c.AssistantCommand = `/bin/x \` }, "assistant command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := validConfig(t)
			tt.mutate(&cfg)
			out, err := Build(cfg)
			require.Nil(t, out)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "cloud-init ")
			require.Equal(t, err.Error(), cfg.Validate().Error())
			// Errors never carry the host private key.
			require.NotContains(t, err.Error(), strings.Split(k.host.PrivateOpenSSH, "\n")[1])
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	err := Config{LoginUser: "X", Packages: []string{"Bad"}, AssistantCommand: "x"}.Validate()
	require.Error(t, err)
	for _, field := range []string{"hostname", "login user", "authorized keys", "host key", "callback URL",
		"packages", "assistant command"} {
		require.ErrorContains(t, err, "cloud-init "+field+":")
	}
	require.NoError(t, validConfig(t).Validate())
}

func TestParse(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("hostname: x\n"))
	require.ErrorContains(t, err, "does not start with #cloud-config")
	_, err = Parse([]byte("#cloud-config\nusers: {\n"))
	require.ErrorContains(t, err, "parse user data")

	doc, _ := build(t, validConfig(t))
	require.Nil(t, doc.File("/nope"))
	require.Nil(t, doc.User("nobody"))

	// Marshal and Parse are inverse.
	again, err := doc.Marshal()
	require.NoError(t, err)
	doc2, err := Parse(again)
	require.NoError(t, err)
	require.Equal(t, doc, doc2)
}

func TestDefaultsAreNotShared(t *testing.T) {
	t.Parallel()
	doc := validConfig(t).withDefaults().document()
	doc.PhoneHome.Post[0] = "mutated"
	require.Equal(t, "pub_key_ed25519", PhoneHomeFields[0])
}

func TestSSHPortInDropIn(t *testing.T) {
	t.Parallel()
	for _, port := range []int{0, 22, 2222} {
		c := validConfig(t)
		c.SSHPort = port
		ud, err := Build(c)
		require.NoError(t, err)
		doc, err := Parse(ud)
		require.NoError(t, err)
		want := port
		if port == 0 {
			want = 22
		}
		require.Equal(t, want, SSHPort(doc))
		require.Equal(t, port == 2222, strings.Contains(doc.File(SSHDDropInPath).Content, "Port 2222\n"))
	}
}
