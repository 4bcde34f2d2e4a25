// Package cloudinit builds the cloud-init user data that turns a fresh VPS into one the
// provisioner can reach and the assistant can run on (docs/contracts.md, "The VPS as the
// provisioner sees it").
//
// The user data is a Go [Document] marshalled with yaml.v3, never text pasted into a template,
// and every input is validated first, so nothing a caller passes can add YAML keys, sudoers
// rules, authorized_keys lines or unit directives.
//
// What the VPS gets, in the order cloud-init runs it:
//
//   - init stage: write_files (sshd drop-in, systemd unit), the groups and users (login user with
//     the provisioner's key and the narrow sudo rule, service user without login or sudo), the
//     seeded Ed25519 host key with every other host key deleted, root and password login off;
//   - final stage: packages, runcmd (/etc/rachel created, unit enabled — it starts when secrets
//     are injected), and last phone_home, the callback to the provisioner.
package cloudinit

import (
	"fmt"
	"slices"
	"strings"
)

// MaxUserDataSize is Hetzner's limit on user data.
const MaxUserDataSize = 32 * 1024

// Paths and names on the VPS, fixed by docs/contracts.md.
const (
	DefaultLoginUser   = "rachel-ops"
	DefaultServiceUser = "rachel"
	ConfigDir          = "/etc/rachel"
	CredentialsPath    = ConfigDir + "/claude-credentials.json"
	TelegramEnvPath    = ConfigDir + "/telegram.env"
	UnitName           = "rachel-assistant.service"
	UnitPath           = "/etc/systemd/system/" + UnitName
	SSHDDropInPath     = "/etc/ssh/sshd_config.d/50-rachel.conf"
	// StateDir is the service user's home and the assistant's working directory (systemd
	// StateDirectory, the only other place it may write).
	StateDir = "/var/lib/rachel"
	// CredentialsEnv names the environment variable that tells the assistant where the Claude
	// credentials are.
	CredentialsEnv = "RACHEL_CLAUDE_CREDENTIALS"
)

// DefaultAssistantCommand is the unit's ExecStart when [Config.AssistantCommand] is empty.
const DefaultAssistantCommand = "/usr/local/bin/rachel-assistant"

// DefaultPackages is installed when [Config.Packages] is nil: TLS roots and curl for the
// assistant's HTTPS calls (Telegram, Anthropic), git, and Node.js with npm for the Claude tooling.
var DefaultPackages = []string{"ca-certificates", "curl", "git", "nodejs", "npm"}

// PhoneHomeFields are the fields cloud-init posts to the callback (docs/contracts.md).
var PhoneHomeFields = []string{"pub_key_ed25519", "instance_id", "hostname", "fqdn"}

// PhoneHomeTries is how often cloud-init tries the callback.
const PhoneHomeTries = 10

// Config is what one VPS's user data is built from.
type Config struct {
	// Hostname is an RFC 1123 host name (e.g. "rachel-sub-42").
	Hostname string
	// LoginUser is the provisioner's SSH login; default [DefaultLoginUser].
	LoginUser string
	// ServiceUser runs the assistant; default [DefaultServiceUser].
	ServiceUser string
	// AuthorizedKeys are the provisioner's public keys in OpenSSH authorized_keys form.
	AuthorizedKeys []string
	// HostKeyPrivate and HostKeyPublic are the seeded Ed25519 host key: the OpenSSH private PEM
	// and the "ssh-ed25519 AAAA…" public line (see sshkey.GenerateHostKey).
	HostKeyPrivate, HostKeyPublic string
	// CallbackURL is the http(s) phone_home target, <PUBLIC_BASE_URL>/callback/<token>.
	CallbackURL string
	// Packages to install; nil means [DefaultPackages], an empty non-nil slice installs nothing.
	Packages []string
	// AssistantCommand is the unit's ExecStart; default [DefaultAssistantCommand].
	AssistantCommand string
}

// SudoCommands are the exact command lines the login user may run as root — the secret
// injection of docs/contracts.md — for the given service user. The sudo rule lists these and
// nothing else; the injector must run them verbatim (after "sudo ").
func SudoCommands(serviceUser string) []string {
	own := "-o " + serviceUser + " -g " + serviceUser
	return []string{
		"/usr/bin/install -m 0600 " + own + " /dev/stdin " + ConfigDir + "/.claude-credentials.json.tmp",
		"/usr/bin/mv -f " + ConfigDir + "/.claude-credentials.json.tmp " + CredentialsPath,
		"/usr/bin/install -m 0600 " + own + " /dev/stdin " + ConfigDir + "/.telegram.env.tmp",
		"/usr/bin/mv -f " + ConfigDir + "/.telegram.env.tmp " + TelegramEnvPath,
		"/usr/bin/systemctl restart " + UnitName,
		"/usr/bin/systemctl is-active " + UnitName,
	}
}

// sudoRule is the sudoers rule (without the leading user name, which cloud-init adds).
func sudoRule(serviceUser string) string {
	return "ALL=(root) NOPASSWD: " + strings.Join(SudoCommands(serviceUser), ", ")
}

// Build validates c and renders the user data, at most [MaxUserDataSize] bytes.
func Build(c Config) ([]byte, error) {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	doc := c.document()
	out, err := doc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("build user data: %w", err)
	}
	if len(out) > MaxUserDataSize {
		return nil, fmt.Errorf("build user data: %d bytes, over the %d-byte limit (too many or too long authorized keys or packages?)",
			len(out), MaxUserDataSize)
	}
	return out, nil
}

func (c Config) withDefaults() Config {
	if c.LoginUser == "" {
		c.LoginUser = DefaultLoginUser
	}
	if c.ServiceUser == "" {
		c.ServiceUser = DefaultServiceUser
	}
	if c.Packages == nil {
		c.Packages = DefaultPackages
	}
	if c.AssistantCommand == "" {
		c.AssistantCommand = DefaultAssistantCommand
	}
	return c
}

func (c Config) document() *Document {
	keys := make([]string, len(c.AuthorizedKeys))
	for i, k := range c.AuthorizedKeys {
		keys[i] = strings.TrimSpace(k)
	}
	svc := c.ServiceUser
	return &Document{
		Hostname: c.Hostname,
		// The service user's group is created explicitly so `install -g` and the unit's Group=
		// never depend on the image's USERGROUPS_ENAB.
		Groups: []string{svc},
		Users: []User{
			{
				Name:              c.LoginUser,
				Gecos:             "Rachel Cloud provisioner",
				Shell:             "/bin/bash",
				LockPasswd:        true,
				Sudo:              sudoRule(svc),
				SSHAuthorizedKeys: keys,
			},
			{
				Name:         svc,
				Gecos:        "Rachel assistant",
				PrimaryGroup: svc,
				System:       true,
				Homedir:      StateDir,
				NoCreateHome: true, // systemd's StateDirectory creates it with the right owner
				Shell:        "/usr/sbin/nologin",
				LockPasswd:   true,
			},
		},
		DisableRoot:   true,
		SSHPwauth:     false,
		SSHDeleteKeys: true,
		// docs/contracts.md asks for ssh_genkeytypes: [], but cloud-init's schema requires at
		// least one item. cc_ssh ignores ssh_genkeytypes whenever ssh_keys is given, and would
		// skip ed25519 anyway because the seeded key file exists: so no other host key is made.
		SSHGenKeyTypes: []string{"ed25519"},
		SSHKeys: SSHKeys{
			Ed25519Private: ensureNewline(c.HostKeyPrivate),
			Ed25519Public:  strings.TrimSpace(c.HostKeyPublic),
		},
		PackageUpdate: len(c.Packages) > 0,
		Packages:      slices.Clone(c.Packages),
		WriteFiles: []WriteFile{
			{Path: SSHDDropInPath, Owner: "root:root", Permissions: "0644", Content: sshdDropIn(c.LoginUser)},
			{Path: UnitPath, Owner: "root:root", Permissions: "0644", Content: unitFile(svc, c.AssistantCommand)},
		},
		RunCmd: [][]string{
			{"install", "-d", "-m", "0700", "-o", svc, "-g", svc, ConfigDir},
			{"systemctl", "daemon-reload"},
			{"systemctl", "enable", UnitName},
		},
		PhoneHome: PhoneHome{URL: c.CallbackURL, Post: slices.Clone(PhoneHomeFields), Tries: PhoneHomeTries},
	}
}

func ensureNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func sshdDropIn(loginUser string) string {
	return "# Written by cloud-init for Rachel Cloud: key-only login, for the provisioner's user only.\n" +
		"PasswordAuthentication no\n" +
		"PermitRootLogin no\n" +
		"KbdInteractiveAuthentication no\n" +
		"PubkeyAuthentication yes\n" +
		"AllowUsers " + loginUser + "\n"
}

// unitFile is the assistant's systemd unit. The Condition lines keep it from failing (and
// restart-looping) before the secrets are injected; once they are, the injector's restart
// starts it.
func unitFile(serviceUser, command string) string {
	lines := []string{
		"[Unit]",
		"Description=Rachel personal assistant",
		"Wants=network-online.target",
		"After=network-online.target",
		"ConditionPathExists=" + TelegramEnvPath,
		"ConditionPathExists=" + CredentialsPath,
		"",
		"[Service]",
		"Type=simple",
		"User=" + serviceUser,
		"Group=" + serviceUser,
		"EnvironmentFile=" + TelegramEnvPath,
		"Environment=" + CredentialsEnv + "=" + CredentialsPath,
		"Environment=HOME=" + StateDir,
		"ExecStart=" + command,
		"Restart=on-failure",
		"RestartSec=5s",
		"WorkingDirectory=" + StateDir,
		"StateDirectory=rachel",
		"StateDirectoryMode=0700",
		"UMask=0077",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		// The assistant refreshes its Claude tokens, so it may rewrite its credentials file;
		// StateDirectory= is writable under ProtectSystem=strict without being listed.
		"ReadWritePaths=" + ConfigDir,
		"PrivateTmp=yes",
		"PrivateDevices=yes",
		"ProtectKernelTunables=yes",
		"ProtectKernelModules=yes",
		"ProtectKernelLogs=yes",
		"ProtectControlGroups=yes",
		"ProtectClock=yes",
		"ProtectHostname=yes",
		"RestrictSUIDSGID=yes",
		"RestrictRealtime=yes",
		"RestrictNamespaces=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
		"LockPersonality=yes",
		"SystemCallArchitectures=native",
		"CapabilityBoundingSet=",
		"",
		"[Install]",
		"WantedBy=multi-user.target",
	}
	return strings.Join(lines, "\n") + "\n"
}
