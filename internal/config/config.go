// Package config reads the service's configuration from the environment, once, and validates it.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/secrets"
)

// Config is every setting of the service. It is parsed once at start and passed explicitly.
type Config struct {
	DatabaseURL string // DATABASE_URL
	Port        int    // PORT
	ListenHost  string // LISTEN_HOST: address the web (and metrics) listener binds; "" every interface

	HCloudToken    secrets.Secret // HCLOUD_TOKEN or the file named by HCLOUD_TOKEN_FILE
	HCloudEndpoint string         // HCLOUD_ENDPOINT
	// Projects are the Hetzner projects servers go to, one API token each: HCLOUD_TOKEN's as
	// DefaultProject first, then HCLOUD_PROJECTS (or HCLOUD_PROJECTS_FILE) in order. Each has its
	// own rate-limit budget and server limit on Hetzner; the database records a subscription's
	// project by name, so a name must not change while servers live in the project.
	Projects []Project

	Keyring       *secrets.Keyring // RACHEL_KEYRING
	PublicBaseURL string           // PUBLIC_BASE_URL: where VPSes call back

	ServerType string   // HCLOUD_SERVER_TYPE
	Image      string   // HCLOUD_IMAGE
	Location   string   // HCLOUD_LOCATION's first location
	Locations  []string // HCLOUD_LOCATION: first choice, then fallbacks
	// Plans maps a subscription plan to its server (HCLOUD_PLAN_PERSONAL, _PLUS, _PRO); a plan
	// without its variable gets HCLOUD_SERVER_TYPE, HCLOUD_LOCATION and HCLOUD_IMAGE.
	Plans            map[string]Plan
	SSHKeyAlgorithm  string         // SSH_KEY_ALGORITHM: rsa-4096 or ed25519
	SSHKeyPoolSize   int            // SSH_KEY_POOL_SIZE: pre-generated key pairs kept ready
	SSHAllowedFrom   []netip.Prefix // SSH_ALLOWED_SOURCES: who may reach a VPS's sshd
	VPSSSHPort       int            // VPS_SSH_PORT
	CallbackDeadline time.Duration  // CALLBACK_DEADLINE
	CreateDeadline   time.Duration  // CREATE_DEADLINE
	InjectDeadline   time.Duration  // INJECT_DEADLINE

	// What the VPS runs: cloud-init downloads AssistantArtifactURL, checks it against
	// AssistantArtifactSHA256 and installs it at AssistantCommand's program path.
	AssistantArtifactURL    string   // ASSISTANT_ARTIFACT_URL
	AssistantArtifactSHA256 string   // ASSISTANT_ARTIFACT_SHA256 (lower-case hex)
	AssistantCommand        string   // ASSISTANT_COMMAND: the unit's ExecStart
	VPSPackages             []string // VPS_PACKAGES: Debian packages cloud-init installs
	// AssistantStableFor is how long the unit must stay up after injection (ASSISTANT_STABLE_FOR).
	AssistantStableFor time.Duration

	SessionIdle   time.Duration // SESSION_IDLE_TIMEOUT
	SessionMaxAge time.Duration // SESSION_MAX_AGE
	SecureCookies bool          // COOKIE_SECURE
	TrustProxy    bool          // TRUST_PROXY: take the client address from X-Forwarded-For
	Require2FA    bool          // REQUIRE_2FA: every admin must have a TOTP second factor
	LogFormat     string        // LOG_FORMAT: json or text

	MetricsPort  int            // METRICS_PORT: a separate listener for /metrics and /healthz (0: off)
	MetricsToken secrets.Secret // METRICS_TOKEN: bearer token for /metrics; set, /metrics is also on PORT
	SimTimeScale float64        // SIM_TIME_SCALE: the dev simulator's time scale
	SimVPS       string         // SIM_VPS: what the dev simulator runs behind a server, "emulated" or "real"
	SimProjects  int            // SIM_PROJECTS: how many Hetzner projects the dev simulator runs

	NotifySMTP          *SMTPSettings  // NOTIFY_SMTP_URL (nil: no email channel)
	NotifyWebhookURL    secrets.Secret // NOTIFY_WEBHOOK_URL: may hold a secret path (Slack's do)
	NotifyWebhookSecret secrets.Secret // NOTIFY_WEBHOOK_SECRET: HMAC key of the webhook signature
	NotifyDigestWindow  time.Duration  // NOTIFY_DIGEST_WINDOW: incidents within it go out as one message

	BillingAPIRate int // BILLING_API_RATE: billing API requests a minute per client address

	HealthCheckInterval time.Duration // HEALTH_CHECK_INTERVAL: how often ready VPSes are checked
	ClaudeTokenWarn     time.Duration // CLAUDE_TOKEN_WARN: list Claude tokens expiring within it
}

// DefaultProject is the name of HCLOUD_TOKEN's project; subscriptions from before several
// projects were possible are recorded in it.
const DefaultProject = "default"

// Project is one Hetzner project: a name the database records and its API token.
type Project struct {
	Name  string
	Token secrets.Secret
}

// HCloudProjects returns Projects; a Config built in code with only HCloudToken set has the
// one project DefaultProject.
func (c *Config) HCloudProjects() []Project {
	if len(c.Projects) == 0 && !c.HCloudToken.IsZero() {
		return []Project{{Name: DefaultProject, Token: c.HCloudToken}}
	}
	return c.Projects
}

// Project returns the configured project named name.
func (c *Config) Project(name string) (Project, bool) {
	for _, p := range c.HCloudProjects() {
		if p.Name == name {
			return p, true
		}
	}
	return Project{}, false
}

// ProjectNames lists the configured projects' names in order.
func (c *Config) ProjectNames() []string {
	ps := c.HCloudProjects()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

var projectNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,29}$`)

// parseProjects reads HCLOUD_PROJECTS' form, `NAME=TOKEN` entries separated by commas or new
// lines (blank lines and # comments skipped). Messages name entries by position, never a token.
func parseProjects(v string) ([]Project, string) {
	var out []Project
	n := 0
	for line := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == '\n' }) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n++
		name, token, ok := strings.Cut(line, "=")
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		if !ok || token == "" {
			return nil, fmt.Sprintf("entry %d is not NAME=TOKEN", n)
		}
		if !projectNameRe.MatchString(name) {
			return nil, fmt.Sprintf("entry %d: project name %q must be 1-30 lower-case letters, digits and dashes", n, name)
		}
		if strings.ContainsAny(token, " \t\r") {
			return nil, fmt.Sprintf("entry %d (%s): the token contains white space", n, name)
		}
		out = append(out, Project{Name: name, Token: secrets.NewSecret(token)})
	}
	return out, ""
}

// SMTPSettings is the email channel, parsed from NOTIFY_SMTP_URL
// (smtp://user:pass@host:port?from=a@x&to=b@y,c@z; smtps:// for TLS from the first byte).
type SMTPSettings struct {
	Host        string
	Port        int
	Username    string
	Password    secrets.Secret
	From        string
	To          []string
	ImplicitTLS bool // smtps://; smtp:// upgrades with STARTTLS
	Plain       bool // smtp://…?starttls=false: no TLS (a relay on a private network)
}

// Addr is host:port.
func (s *SMTPSettings) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Plan is the server a subscription plan gets in Hetzner.
type Plan struct {
	// Var is the variable it came from (HCLOUD_PLAN_PRO, or HCLOUD_SERVER_TYPE for the default),
	// so that preflight names what to change.
	Var        string
	ServerType string
	// Locations are tried in order: a later one is used when Hetzner has no capacity in the
	// earlier ones.
	Locations []string
	Image     string
}

// PlanNames are the subscription plans (the subscriptions.plan check constraint).
var PlanNames = []string{"personal", "plus", "pro"}

// PlanVar is the variable that configures a plan's server.
func PlanVar(plan string) string { return "HCLOUD_PLAN_" + strings.ToUpper(plan) }

// PlanFor returns the server of a plan: its own variable's, else the default.
func (c *Config) PlanFor(plan string) Plan {
	if p, ok := c.Plans[plan]; ok {
		return p
	}
	return Plan{Var: "HCLOUD_SERVER_TYPE", ServerType: c.ServerType, Locations: slices.Clone(c.Locations), Image: c.Image}
}

// Var documents one environment variable, for the README and `-h`.
type Var struct{ Name, Default, Meaning string }

// Vars lists every variable the service reads.
var Vars = []Var{
	{"DATABASE_URL", "(private cluster in `make run`)", "PostgreSQL URL. Required for serve, work, migrate."},
	{"PORT", "8080", "HTTP port of the web process."},
	{"LISTEN_HOST", "(every interface; 127.0.0.1 in `make run`)", "Address the web process (and the METRICS_PORT listener) binds, e.g. 127.0.0.1 or 10.0.0.5."},
	{"HCLOUD_TOKEN", "(simulator in `make run`)", "Hetzner Cloud API token. Required for work unless HCLOUD_TOKEN_FILE is set."},
	{"HCLOUD_TOKEN_FILE", "", "File holding the Hetzner token (e.g. a mounted secret) instead of HCLOUD_TOKEN."},
	{"HCLOUD_PROJECTS", "(none)", "Further Hetzner projects, one API token each: `NAME=TOKEN,NAME=TOKEN` (names: lower-case letters, digits, dashes). HCLOUD_TOKEN's project is named `default` (subscriptions from before are recorded in it); without HCLOUD_TOKEN, name one entry `default` to keep those. Never rename a project that holds servers."},
	{"HCLOUD_PROJECTS_FILE", "", "File holding HCLOUD_PROJECTS' entries (one `NAME=TOKEN` a line, # comments) instead of the variable."},
	{"HCLOUD_ENDPOINT", "Hetzner's API", "Point the client elsewhere, e.g. at the standalone simulator."},
	{"RACHEL_KEYRING", "(generated and kept in .data/ by `make run`)", "Encryption keyring `3:BASE64,2:BASE64`: 32-byte keys, first is primary."},
	{"PUBLIC_BASE_URL", "http://127.0.0.1:$PORT", "Public URL of the web process, used in the VPS callback URL."},
	{"HCLOUD_SERVER_TYPE", "cx23", "Server type of new VPSes (a current one: the CX Gen2 and CPX Gen1 types were retired after 2025-12-31)."},
	{"HCLOUD_IMAGE", "debian-12", "Image of new VPSes (resolved for the server type's architecture)."},
	{"HCLOUD_LOCATION", "fsn1,nbg1,hel1", "Locations of new VPSes, in order: the next one is used when Hetzner has no capacity in the earlier ones."},
	{"HCLOUD_PLAN_PERSONAL", "(the three above)", "Server of the personal plan: `TYPE LOCATION[,LOCATION...] [IMAGE]`, e.g. `cx23 fsn1,nbg1 debian-12`."},
	{"HCLOUD_PLAN_PLUS", "(the three above)", "Server of the plus plan, same form as HCLOUD_PLAN_PERSONAL."},
	{"HCLOUD_PLAN_PRO", "(the three above)", "Server of the pro plan, same form as HCLOUD_PLAN_PERSONAL (e.g. `cx33 fsn1,nbg1,hel1`)."},
	{"SSH_KEY_ALGORITHM", "rsa-4096", "Provisioner key pair algorithm: rsa-4096 or ed25519."},
	{"SSH_KEY_POOL_SIZE", "100", "Provisioner key pairs generated ahead, while idle, so a burst of provisionings does not wait for RSA key generation (0: generate on demand)."},
	{"SSH_ALLOWED_SOURCES", "0.0.0.0/0,::/0", "CIDRs the VPS firewall admits to SSH (nothing else is admitted)."},
	{"VPS_SSH_PORT", "22", "SSH port of the VPSes."},
	{"ASSISTANT_ARTIFACT_URL", "(none: the image has the program)", "http(s) URL of the assistant program; cloud-init downloads it (curl), checks ASSISTANT_ARTIFACT_SHA256 and installs it (root, 0755) at ASSISTANT_COMMAND's program path."},
	{"ASSISTANT_ARTIFACT_SHA256", "(required with the URL)", "SHA-256 (hex) of the artifact; a mismatch fails cloud-init and the provisioning, before any secret is sent."},
	{"ASSISTANT_COMMAND", "/usr/local/bin/rachel-assistant", "The assistant unit's ExecStart: an absolute program path and plain arguments."},
	{"ASSISTANT_STABLE_FOR", "5s", "After injection the assistant's unit must stay running this long, in one start and without automatic restarts, before the VPS counts as ready."},
	{"VPS_PACKAGES", "(none)", "Comma-separated Debian packages cloud-init installs; any package makes it run apt-get update first, which needs the network."},
	{"CALLBACK_DEADLINE", "15m", "How long a new VPS has to call back before the provisioning fails."},
	{"CREATE_DEADLINE", "10m", "How long the server create and start actions may take."},
	{"INJECT_DEADLINE", "5m", "How long secret injection may retry while sshd comes up."},
	{"SESSION_IDLE_TIMEOUT", "30m", "Admin session idle expiry."},
	{"SESSION_MAX_AGE", "12h", "Admin session absolute expiry."},
	{"COOKIE_SECURE", "true", "Mark cookies Secure (set false only for plain-HTTP development)."},
	{"LOG_FORMAT", "json", "json or text."},
	{"REQUIRE_2FA", "false", "Require a TOTP second factor of every admin: one without it is sent to enrolment after the password."},
	{"TRUST_PROXY", "false", "Behind a reverse proxy on a private network: take client addresses from X-Forwarded-For."},
	{"METRICS_PORT", "(off)", "Port of a separate listener for /metrics and /healthz, in the web and the worker process (keep it off the public network)."},
	{"METRICS_TOKEN", "(none)", "Bearer token scrapers must send for /metrics (16+ characters). Set, the web process also serves /metrics on PORT; unset, /metrics is only on METRICS_PORT."},
	{"SIM_TIME_SCALE", "0.1", "`make run` only: time scale of the built-in simulator (1 = Hetzner's real timings)."},
	{"SIM_VPS", "emulated", "`make run` only: what stands behind a simulated server: `emulated` (in-process imitation) or `real` (a Debian 12 container per server; needs root and systemd-container)."},
	{"SIM_PROJECTS", "1", "`make run` only: how many Hetzner projects the built-in simulator runs (1-10): `default` and `p2`, `p3`, … each with its own token, servers, rate limit and server limit."},
	{"NOTIFY_SMTP_URL", "(no email)", "Email channel of notifications: `smtp://user:pass@host:587?from=ops@x.example&to=a@x.example,b@x.example` (STARTTLS; `smtps://` for implicit TLS; `starttls=false` for a relay on a private network)."},
	{"NOTIFY_WEBHOOK_URL", "(no webhook)", "Webhook channel of notifications: JSON `{\"text\":…}` (Slack-compatible) POSTed here, signed (see Notifications)."},
	{"NOTIFY_WEBHOOK_SECRET", "", "HMAC-SHA256 key of the webhook signature (at least 16 characters). Required with NOTIFY_WEBHOOK_URL."},
	{"BILLING_API_RATE", "60", "Requests a minute (per client address) the billing API accepts before answering 429."},
	{"HEALTH_CHECK_INTERVAL", "5m", "How often the worker checks over SSH that the assistant of every ready VPS runs (two failures in a row: down, notified); a run checks at most 10,000, those checked longest ago first, so a larger fleet is checked in rotation."},
	{"CLAUDE_TOKEN_WARN", "168h", "Claude tokens expiring within this are listed on the Assistants page (expired ones always)."},
	{"NOTIFY_DIGEST_WINDOW", "1m", "Incidents within this window after the first go out as one message (a digest when several)."},
}

// Getenv reads one variable; os.Getenv in production, a map in tests.
type Getenv func(string) string

var locationRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// Load parses and validates the environment. Every problem found is reported, each naming its
// variable; secret values are never echoed.
func Load(getenv Getenv) (*Config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	str := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name, def string) time.Duration {
		v := str(name, def)
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(name, "%q is not a positive duration such as 15m or 90s", v)
		}
		return d
	}
	port := func(name, def string) int {
		v := str(name, def)
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			bad(name, "%q is not a port number (1-65535)", v)
		}
		return p
	}

	c := &Config{
		DatabaseURL:        str("DATABASE_URL", ""),
		Port:               port("PORT", "8080"),
		HCloudEndpoint:     str("HCLOUD_ENDPOINT", ""),
		ServerType:         str("HCLOUD_SERVER_TYPE", "cx23"),
		Image:              str("HCLOUD_IMAGE", "debian-12"),
		Location:           str("HCLOUD_LOCATION", "fsn1,nbg1,hel1"),
		SSHKeyAlgorithm:    str("SSH_KEY_ALGORITHM", "rsa-4096"),
		VPSSSHPort:         port("VPS_SSH_PORT", "22"),
		CallbackDeadline:   dur("CALLBACK_DEADLINE", "15m"),
		CreateDeadline:     dur("CREATE_DEADLINE", "10m"),
		InjectDeadline:     dur("INJECT_DEADLINE", "5m"),
		AssistantStableFor: dur("ASSISTANT_STABLE_FOR", "5s"),
		SessionIdle:        dur("SESSION_IDLE_TIMEOUT", "30m"),
		SessionMaxAge:      dur("SESSION_MAX_AGE", "12h"),
		LogFormat:          str("LOG_FORMAT", "json"),
	}

	if v := str("SSH_KEY_POOL_SIZE", "100"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 10000 {
			bad("SSH_KEY_POOL_SIZE", "%q is not a number from 0 to 10000", v)
		}
		c.SSHKeyPoolSize = n
	}
	c.AssistantArtifactURL = str("ASSISTANT_ARTIFACT_URL", "")
	c.AssistantArtifactSHA256 = strings.ToLower(str("ASSISTANT_ARTIFACT_SHA256", ""))
	switch {
	case c.AssistantArtifactURL != "" && c.AssistantArtifactSHA256 == "":
		bad("ASSISTANT_ARTIFACT_SHA256", "required with ASSISTANT_ARTIFACT_URL")
	case c.AssistantArtifactURL == "" && c.AssistantArtifactSHA256 != "":
		bad("ASSISTANT_ARTIFACT_URL", "required with ASSISTANT_ARTIFACT_SHA256")
	default:
		if err := cloudinit.ValidateArtifact(c.AssistantArtifactURL, c.AssistantArtifactSHA256); err != nil {
			name := "ASSISTANT_ARTIFACT_URL"
			if strings.Contains(err.Error(), "SHA-256") {
				name = "ASSISTANT_ARTIFACT_SHA256"
			}
			bad(name, "%v", err)
		}
	}
	c.AssistantCommand = str("ASSISTANT_COMMAND", cloudinit.DefaultAssistantCommand)
	if err := cloudinit.ValidateCommand(c.AssistantCommand); err != nil {
		bad("ASSISTANT_COMMAND", "%v", err)
	}
	for p := range strings.SplitSeq(str("VPS_PACKAGES", ""), ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.VPSPackages = append(c.VPSPackages, p)
		}
	}
	if err := cloudinit.ValidatePackages(c.VPSPackages); err != nil {
		bad("VPS_PACKAGES", "%v", err)
	}
	if v := str("METRICS_PORT", ""); v != "" {
		c.MetricsPort = port("METRICS_PORT", v)
	}
	if v := getenv("METRICS_TOKEN"); v != "" {
		if len(v) < 16 || strings.IndexFunc(v, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			bad("METRICS_TOKEN", "must be at least 16 printable ASCII characters without spaces")
		}
		c.MetricsToken = secrets.NewSecret(v)
	}
	c.ListenHost = str("LISTEN_HOST", "")
	if c.ListenHost != "" {
		if _, err := netip.ParseAddr(c.ListenHost); err != nil && c.ListenHost != "localhost" {
			bad("LISTEN_HOST", "%q is not an IP address (or localhost)", c.ListenHost)
		}
	}
	switch c.SimVPS = str("SIM_VPS", "emulated"); c.SimVPS {
	case "emulated", "real":
	default:
		bad("SIM_VPS", "%q is neither emulated nor real", c.SimVPS)
	}
	if v := str("SIM_PROJECTS", "1"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10 {
			bad("SIM_PROJECTS", "%q is not a number from 1 to 10", v)
		}
		c.SimProjects = n
	}
	if v := str("SIM_TIME_SCALE", "0.1"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 10 {
			bad("SIM_TIME_SCALE", "%q is not a number between 0 and 10", v)
		}
		c.SimTimeScale = f
	}

	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("DATABASE_URL", "must be a postgres:// URL")
		}
	}

	token := getenv("HCLOUD_TOKEN")
	if file := str("HCLOUD_TOKEN_FILE", ""); file != "" {
		if token != "" {
			bad("HCLOUD_TOKEN_FILE", "set either HCLOUD_TOKEN or HCLOUD_TOKEN_FILE, not both")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			bad("HCLOUD_TOKEN_FILE", "cannot read %s: %v", file, errors.Unwrap(err))
		}
		token = strings.TrimSpace(string(b))
	}
	if strings.ContainsAny(token, " \t\r\n") {
		bad("HCLOUD_TOKEN", "contains white space")
	}
	c.HCloudToken = secrets.NewSecret(token)
	if token != "" {
		c.Projects = append(c.Projects, Project{Name: DefaultProject, Token: c.HCloudToken})
	}
	projects := getenv("HCLOUD_PROJECTS")
	projVar := "HCLOUD_PROJECTS"
	if file := str("HCLOUD_PROJECTS_FILE", ""); file != "" {
		projVar = "HCLOUD_PROJECTS_FILE"
		if strings.TrimSpace(projects) != "" {
			bad("HCLOUD_PROJECTS_FILE", "set either HCLOUD_PROJECTS or HCLOUD_PROJECTS_FILE, not both")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			bad("HCLOUD_PROJECTS_FILE", "cannot read %s: %v", file, errors.Unwrap(err))
		}
		projects = string(b)
	}
	if more, msg := parseProjects(projects); msg != "" {
		bad(projVar, "%s", msg)
	} else {
		seenName, seenToken := map[string]bool{}, map[string]bool{}
		for _, p := range c.Projects {
			seenName[p.Name], seenToken[p.Token.Reveal()] = true, true
		}
		for _, p := range more {
			switch {
			case seenName[p.Name] && p.Name == DefaultProject && token != "":
				bad(projVar, "project %q is HCLOUD_TOKEN's; name this one differently", p.Name)
			case seenName[p.Name]:
				bad(projVar, "project %q is named twice", p.Name)
			case seenToken[p.Token.Reveal()]:
				bad(projVar, "project %q has the token of an earlier project (one token per project)", p.Name)
			}
			seenName[p.Name], seenToken[p.Token.Reveal()] = true, true
			c.Projects = append(c.Projects, p)
		}
	}

	if c.HCloudEndpoint != "" {
		if u, err := url.Parse(c.HCloudEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("HCLOUD_ENDPOINT", "%q is not an http(s) URL", c.HCloudEndpoint)
		}
	}

	if v := getenv("RACHEL_KEYRING"); v != "" {
		kr, err := secrets.ParseKeyring(v)
		if err != nil {
			bad("RACHEL_KEYRING", "%v", err)
		}
		c.Keyring = kr
	}

	c.PublicBaseURL = strings.TrimRight(str("PUBLIC_BASE_URL", fmt.Sprintf("http://127.0.0.1:%d", c.Port)), "/")
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("PUBLIC_BASE_URL", "%q is not an http(s) base URL", c.PublicBaseURL)
	}

	var locErr string
	c.Locations, locErr = parseLocations(c.Location)
	if locErr != "" {
		bad("HCLOUD_LOCATION", "%s", locErr)
	}
	if len(c.Locations) > 0 {
		c.Location = c.Locations[0]
	}
	for _, kv := range []struct{ name, v string }{{"HCLOUD_SERVER_TYPE", c.ServerType}, {"HCLOUD_IMAGE", c.Image}} {
		if !locationRe.MatchString(kv.v) {
			bad(kv.name, "%q is not a Hetzner name", kv.v)
		}
	}
	c.Plans = map[string]Plan{}
	for _, plan := range PlanNames {
		name := PlanVar(plan)
		v := str(name, "")
		if v == "" {
			continue
		}
		p, msg := parsePlan(name, v, c.Image)
		if msg != "" {
			bad(name, "%s", msg)
			continue
		}
		c.Plans[plan] = p
	}
	if c.SSHKeyAlgorithm != "rsa-4096" && c.SSHKeyAlgorithm != "ed25519" {
		bad("SSH_KEY_ALGORITHM", "%q: use rsa-4096 or ed25519", c.SSHKeyAlgorithm)
	}
	for _, s := range strings.Split(str("SSH_ALLOWED_SOURCES", "0.0.0.0/0,::/0"), ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			bad("SSH_ALLOWED_SOURCES", "%q is not a CIDR", s)
			continue
		}
		c.SSHAllowedFrom = append(c.SSHAllowedFrom, p.Masked())
	}

	switch v := str("COOKIE_SECURE", "true"); v {
	case "true", "1", "yes":
		c.SecureCookies = true
	case "false", "0", "no":
	default:
		bad("COOKIE_SECURE", "%q: use true or false", v)
	}
	switch v := str("TRUST_PROXY", "false"); v {
	case "true", "1", "yes":
		c.TrustProxy = true
	case "false", "0", "no":
	default:
		bad("TRUST_PROXY", "%q: use true or false", v)
	}
	switch v := str("REQUIRE_2FA", "false"); v {
	case "true", "1", "yes":
		c.Require2FA = true
	case "false", "0", "no":
	default:
		bad("REQUIRE_2FA", "%q: use true or false", v)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("LOG_FORMAT", "%q: use json or text", c.LogFormat)
	}
	if c.SessionIdle > c.SessionMaxAge {
		bad("SESSION_IDLE_TIMEOUT", "is longer than SESSION_MAX_AGE")
	}
	c.NotifyDigestWindow = dur("NOTIFY_DIGEST_WINDOW", "1m")
	c.HealthCheckInterval = dur("HEALTH_CHECK_INTERVAL", "5m")
	c.ClaudeTokenWarn = dur("CLAUDE_TOKEN_WARN", "168h")
	if v := str("BILLING_API_RATE", "60"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			bad("BILLING_API_RATE", "%q is not a number from 1 to 100000", v)
		}
		c.BillingAPIRate = n
	}
	if v := strings.TrimSpace(getenv("NOTIFY_SMTP_URL")); v != "" {
		smtp, err := parseSMTPURL(v)
		if err != nil {
			bad("NOTIFY_SMTP_URL", "%v", err)
		}
		c.NotifySMTP = smtp
	}
	if v := strings.TrimSpace(getenv("NOTIFY_WEBHOOK_URL")); v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("NOTIFY_WEBHOOK_URL", "is not an http(s) URL") // the URL itself may be a secret
		}
		c.NotifyWebhookURL = secrets.NewSecret(v)
		sec := getenv("NOTIFY_WEBHOOK_SECRET")
		if len(sec) < 16 {
			bad("NOTIFY_WEBHOOK_SECRET", "required with NOTIFY_WEBHOOK_URL, at least 16 characters")
		}
		c.NotifyWebhookSecret = secrets.NewSecret(sec)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// ListenAddr is the host:port a listener on port binds: LISTEN_HOST, or every interface.
func (c *Config) ListenAddr(port int) string {
	return net.JoinHostPort(c.ListenHost, strconv.Itoa(port))
}

// parseSMTPURL reads the email channel's URL; errors never repeat the password.
func parseSMTPURL(v string) (*SMTPSettings, error) {
	u, err := url.Parse(v)
	if err != nil {
		return nil, errors.New("is not a URL such as smtp://user:pass@host:587?from=a@x.example&to=b@x.example")
	}
	s := &SMTPSettings{Host: u.Hostname()}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.ImplicitTLS = true
	default:
		return nil, errors.New("scheme must be smtp or smtps")
	}
	if s.Host == "" {
		return nil, errors.New("has no host")
	}
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "587", true: "465"}[s.ImplicitTLS]
	}
	if s.Port, err = strconv.Atoi(port); err != nil || s.Port < 1 || s.Port > 65535 {
		return nil, fmt.Errorf("port %q is not a port number", port)
	}
	if u.User != nil {
		s.Username = u.User.Username()
		pw, _ := u.User.Password()
		s.Password = secrets.NewSecret(pw)
	}
	q := u.Query()
	switch q.Get("starttls") {
	case "", "true":
	case "false":
		s.Plain = !s.ImplicitTLS
	default:
		return nil, errors.New("starttls= must be true or false")
	}
	from, err := mail.ParseAddress(q.Get("from"))
	if err != nil {
		return nil, errors.New("from= must be an email address")
	}
	s.From = from.Address
	for _, t := range strings.Split(q.Get("to"), ",") {
		if strings.TrimSpace(t) == "" {
			continue
		}
		a, err := mail.ParseAddress(strings.TrimSpace(t))
		if err != nil {
			return nil, fmt.Errorf("to=: %q is not an email address", t)
		}
		s.To = append(s.To, a.Address)
	}
	if len(s.To) == 0 {
		return nil, errors.New("to= must list at least one email address")
	}
	return s, nil
}

// parseLocations reads a comma-separated list of distinct location names.
func parseLocations(v string) ([]string, string) {
	var out []string
	for _, l := range strings.Split(v, ",") {
		l = strings.TrimSpace(l)
		if !locationRe.MatchString(l) {
			return nil, fmt.Sprintf("%q is not a Hetzner location name (list them comma-separated, e.g. fsn1,nbg1)", l)
		}
		if slices.Contains(out, l) {
			return nil, fmt.Sprintf("location %s is listed twice", l)
		}
		out = append(out, l)
	}
	return out, ""
}

// parsePlan reads `TYPE LOCATION[,LOCATION...] [IMAGE]`.
func parsePlan(name, v, defaultImage string) (Plan, string) {
	f := strings.Fields(v)
	if len(f) < 2 || len(f) > 3 {
		return Plan{}, fmt.Sprintf("%q: want `SERVER_TYPE LOCATION[,LOCATION...] [IMAGE]`, e.g. `cx23 fsn1,nbg1 debian-12`", v)
	}
	p := Plan{Var: name, ServerType: f[0], Image: defaultImage}
	if !locationRe.MatchString(p.ServerType) {
		return Plan{}, fmt.Sprintf("server type %q is not a Hetzner name", p.ServerType)
	}
	locs, msg := parseLocations(f[1])
	if msg != "" {
		return Plan{}, msg
	}
	p.Locations = locs
	if len(f) == 3 {
		p.Image = f[2]
		if !locationRe.MatchString(p.Image) {
			return Plan{}, fmt.Sprintf("image %q is not a Hetzner name", p.Image)
		}
	}
	return p, ""
}

// Need reports a missing variable that a subcommand cannot run without.
func (c *Config) Need(names ...string) error {
	var errs []error
	for _, n := range names {
		missing := false
		switch n {
		case "DATABASE_URL":
			missing = c.DatabaseURL == ""
		case "RACHEL_KEYRING":
			missing = c.Keyring == nil
		case "HCLOUD_TOKEN":
			if len(c.HCloudProjects()) == 0 {
				errs = append(errs, fmt.Errorf("%s: required but not set (or HCLOUD_PROJECTS)", n))
			}
		}
		if missing {
			errs = append(errs, fmt.Errorf("%s: required but not set", n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}
