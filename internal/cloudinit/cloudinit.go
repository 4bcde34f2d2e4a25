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
//   - final stage: packages (none by default: they need the network), runcmd under `set -e`
//     (/etc/rachel and its root-only staging directory created, the assistant artifact
//     downloaded, checked and installed, the unit enabled — it starts when secrets are
//     injected), and last phone_home, the callback to the provisioner.
package cloudinit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxUserDataSize is Hetzner's limit on user data.
const MaxUserDataSize = 32 * 1024

// Paths and names on the VPS, fixed by docs/contracts.md.
const (
	DefaultLoginUser   = "rachel-ops"
	DefaultServiceUser = "rachel"
	// ConfigDir holds the secret files. It is root:<service user> 0750: the assistant reads it
	// but cannot create, rename or replace anything in it, so it cannot plant a symlink where
	// root later writes (the root escalation of issue 11).
	ConfigDir = "/etc/rachel"
	// StagingDir is where injection writes a secret before renaming it into ConfigDir: root-only
	// (0700) and inside ConfigDir, so the rename never crosses a file system and no path the
	// assistant controls is ever followed.
	StagingDir      = ConfigDir + "/.staging"
	CredentialsPath = ConfigDir + "/claude-credentials.json"
	TelegramEnvPath = ConfigDir + "/telegram.env"
	UnitName        = "rachel-assistant.service"
	UnitPath        = "/etc/systemd/system/" + UnitName
	SSHDDropInPath  = "/etc/ssh/sshd_config.d/50-rachel.conf"
	// StateDir is the service user's home and the assistant's working directory (systemd
	// StateDirectory, the only other place it may write).
	StateDir = "/var/lib/rachel"
	// CredentialsEnv names the environment variable that tells the assistant where the Claude
	// credentials are.
	CredentialsEnv = "RACHEL_CLAUDE_CREDENTIALS"
	// InstallDir is root's download area for the assistant artifact (and its checksum file).
	InstallDir = "/var/lib/rachel-install"
	// Locale is set explicitly: cloud-init otherwise applies the image's default (en_US.UTF-8),
	// and update-locale fails where that locale is not generated. C.UTF-8 is built into glibc and
	// needs no locale-gen (cloud-init's debian.regenerate_locale skips it).
	Locale = "C.UTF-8"
	// DefaultSSHPort is sshd's port when [Config.SSHPort] is 0.
	DefaultSSHPort = 22
)

// DefaultAssistantCommand is the unit's ExecStart when [Config.AssistantCommand] is empty.
const DefaultAssistantCommand = "/usr/local/bin/rachel-assistant"

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
	// SSHPort is the port sshd listens on (VPS_SSH_PORT); 0 means [DefaultSSHPort].
	SSHPort int
	// Packages are Debian packages to install. Any package makes cloud-init run apt-get update
	// first (cc_package_update_upgrade_install), which needs the network; none by default.
	Packages []string
	// AssistantCommand is the unit's ExecStart; default [DefaultAssistantCommand].
	AssistantCommand string
	// AssistantArtifactURL, when set, is downloaded by cloud-init (curl, which Debian's cloud
	// images carry), checked against AssistantArtifactSHA256 (hex) and installed as root 0755
	// at the program path of AssistantCommand. When empty the image must already have it.
	AssistantArtifactURL    string
	AssistantArtifactSHA256 string
}

// SecretFile is one file secret injection writes: staged from stdin in the root-only
// [StagingDir], then renamed over its final path (`mv -T`: a link there is replaced, never
// followed).
type SecretFile struct {
	Path   string // final path in ConfigDir
	Staged string // path in StagingDir
	Mode   string // octal, as install -m takes it
	Owner  string
	Group  string
}

// InstallCommand writes the staged file from stdin (the secret never appears on a command line).
// -T: the staged name is never taken for a directory to install into (GNU install would follow a
// link to a directory there); whatever is at that name is removed first and replaced.
func (f SecretFile) InstallCommand() string {
	return "/usr/bin/install -T -m " + f.Mode + " -o " + f.Owner + " -g " + f.Group + " /dev/stdin " + f.Staged
}

// MoveCommand renames the staged file into place atomically.
func (f SecretFile) MoveCommand() string {
	return "/usr/bin/mv -fT " + f.Staged + " " + f.Path
}

// SecretFiles are the files injection writes for serviceUser: the Claude credentials, which the
// assistant rewrites in place when it refreshes its tokens (0600, its own), and the Telegram
// environment, which it only reads (0640 root:<service user>).
func SecretFiles(serviceUser string) []SecretFile {
	return []SecretFile{
		{Path: CredentialsPath, Staged: StagingDir + "/claude-credentials.json", Mode: "0600", Owner: serviceUser, Group: serviceUser},
		{Path: TelegramEnvPath, Staged: StagingDir + "/telegram.env", Mode: "0640", Owner: "root", Group: serviceUser},
	}
}

// RestartCommand restarts the assistant after injection.
const RestartCommand = "/usr/bin/systemctl restart " + UnitName

// UnitProperties are the properties [ShowCommand] asks systemd for: enough to tell a running
// unit from one that failed (Result, ExecMainStatus) or keeps being restarted (NRestarts, a new
// ActiveEnterTimestampMonotonic).
var UnitProperties = []string{"ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "ActiveEnterTimestampMonotonic"}

// ShowCommand reads the unit's state as root (no D-Bus policy needed). Each property has its
// own --property: a comma would split the command in the sudoers rule.
var ShowCommand = "/usr/bin/systemctl show --property=" + strings.Join(UnitProperties, " --property=") + " " + UnitName

// SudoCommands are the exact command lines the login user may run as root — the secret
// injection of docs/contracts.md — for the given service user. The sudo rule lists these and
// nothing else; the injector must run them verbatim (after "sudo ").
func SudoCommands(serviceUser string) []string {
	var out []string
	for _, f := range SecretFiles(serviceUser) {
		out = append(out, f.InstallCommand(), f.MoveCommand())
	}
	return append(out, RestartCommand, ShowCommand)
}

// sudoRule is the sudoers rule (without the leading user name, which cloud-init adds).
func sudoRule(serviceUser string) string {
	return "ALL=(root) NOPASSWD: " + strings.Join(SudoCommands(serviceUser), ", ")
}

// ProgramPath is the program of an ExecStart command line (its first word).
func ProgramPath(command string) string {
	if f := strings.Fields(command); len(f) > 0 {
		return f[0]
	}
	return ""
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
	if c.AssistantCommand == "" {
		c.AssistantCommand = DefaultAssistantCommand
	}
	if c.SSHPort == 0 {
		c.SSHPort = DefaultSSHPort
	}
	c.AssistantArtifactSHA256 = strings.ToLower(c.AssistantArtifactSHA256)
	return c
}

func (c Config) document() *Document {
	keys := make([]string, len(c.AuthorizedKeys))
	for i, k := range c.AuthorizedKeys {
		keys[i] = strings.TrimSpace(k)
	}
	svc := c.ServiceUser
	files := []WriteFile{
		{Path: SSHDDropInPath, Owner: "root:root", Permissions: "0644", Content: sshdDropIn(c.LoginUser, c.SSHPort)},
		{Path: UnitPath, Owner: "root:root", Permissions: "0644", Content: unitFile(svc, c.AssistantCommand)},
	}
	// runcmd becomes one sh script; `set -e` makes any failing line fail the script, so
	// cloud-init reports status: error (scripts-user) instead of carrying on.
	run := []RunCmd{
		{Shell: "set -e"},
		{Argv: []string{"install", "-d", "-m", "0750", "-o", "root", "-g", svc, ConfigDir}},
		{Argv: []string{"install", "-d", "-m", "0700", "-o", "root", "-g", "root", StagingDir}},
	}
	if c.AssistantArtifactURL != "" {
		download := InstallDir + "/rachel-assistant"
		files = append(files, WriteFile{Path: download + ".sha256", Owner: "root:root", Permissions: "0644",
			Content: c.AssistantArtifactSHA256 + "  " + download + "\n"})
		run = append(run,
			RunCmd{Argv: []string{"curl", "--fail", "--silent", "--show-error", "--location", "--retry", "5",
				"--retry-connrefused", "--max-time", "600", "--output", download, c.AssistantArtifactURL}},
			RunCmd{Argv: []string{"sha256sum", "--check", "--strict", "--quiet", download + ".sha256"}},
			RunCmd{Argv: []string{"install", "-D", "-m", "0755", "-o", "root", "-g", "root", download, ProgramPath(c.AssistantCommand)}},
			RunCmd{Argv: []string{"rm", "-f", download}},
		)
	}
	run = append(run,
		RunCmd{Argv: []string{"systemctl", "daemon-reload"}},
		RunCmd{Argv: []string{"systemctl", "enable", UnitName}},
	)
	return &Document{
		Hostname: c.Hostname,
		Locale:   Locale,
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
		WriteFiles:    files,
		RunCmd:        run,
		PhoneHome:     PhoneHome{URL: c.CallbackURL, Post: slices.Clone(PhoneHomeFields), Tries: PhoneHomeTries},
	}
}

func ensureNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

func sshdDropIn(loginUser string, port int) string {
	return "# Written by cloud-init for Rachel Cloud: key-only login, for the provisioner's user only.\n" +
		"Port " + strconv.Itoa(port) + "\n" +
		"PasswordAuthentication no\n" +
		"PermitRootLogin no\n" +
		"KbdInteractiveAuthentication no\n" +
		"PubkeyAuthentication yes\n" +
		"AllowUsers " + loginUser + "\n"
}

// SSHPort is the port sshd listens on under the cloud-config doc: the last Port line of its
// sshd_config drop-ins, else sshd's default 22.
func SSHPort(doc *Document) int {
	port := 22
	for _, f := range doc.WriteFiles {
		if !strings.HasPrefix(f.Path, "/etc/ssh/sshd_config.d/") {
			continue
		}
		for _, line := range strings.Split(f.Content, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 2 && strings.EqualFold(fields[0], "Port") {
				if p, err := strconv.Atoi(fields[1]); err == nil {
					port = p
				}
			}
		}
	}
	return port
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
