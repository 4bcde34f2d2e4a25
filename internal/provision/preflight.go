package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/config"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// ErrPreflight is returned by Provision (and Retry of a create) while the last preflight failed:
// the configuration cannot work against Hetzner, so nothing is started.
var ErrPreflight = errors.New("the preflight check failed")

// hetznerHost is the host of Hetzner's own API (hcloud-go's default endpoint).
const hetznerHost = "api.hetzner.cloud"

// Preflight checks, before anything is provisioned, what would make every provisioning fail on
// Hetzner as it is today. It returns every reason found, each naming the variable to change;
// none means the configuration can work:
//
//   - the token works and may write (a read-only token is refused with 401 token_readonly on
//     anything but GET, as the spec's error table says);
//   - each plan's server type is offered today (retired types are no longer listed: the spec's
//     DeprecationInfo), is neither deprecated nor unavailable in each of the plan's locations, and
//     its image exists for the type's architecture;
//   - PUBLIC_BASE_URL is reachable from a VPS (not loopback, private or link-local) when the
//     endpoint is Hetzner's own;
//   - the firewall admits SSH from somewhere, and VPS_SSH_PORT is the port the cloud-config
//     makes sshd listen on.
//
// err is set when Hetzner could not be asked (network trouble, 5xx, rate limit): the checks did
// not complete and nothing is concluded from them.
func Preflight(ctx context.Context, cfg *config.Config, hc *hcloud.Client) (reasons []string, err error) {
	name := config.DefaultProject
	if ps := cfg.HCloudProjects(); len(ps) > 0 {
		name = ps[0].Name
	}
	return PreflightProjects(ctx, cfg, []HCloudProject{{Name: name, Client: hc}})
}

// PreflightProjects is [Preflight] for several Hetzner projects: each project's token is
// checked (it works, it may write) and each plan against each project (a project's images may
// differ). A reason about a token names HCLOUD_TOKEN for the default project, else
// HCLOUD_PROJECTS and the project's name; never the token.
func PreflightProjects(ctx context.Context, cfg *config.Config, projects []HCloudProject) (reasons []string, err error) {
	add := func(format string, args ...any) {
		r := fmt.Sprintf(format, args...)
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	checkPublicURL(cfg, add)
	checkSSH(cfg, add)
	for _, p := range projects {
		if err := preflightProject(ctx, cfg, p, add); err != nil {
			if len(projects) > 1 {
				err = fmt.Errorf("project %s: %w", p.Name, err)
			}
			return reasons, err
		}
	}
	return reasons, nil
}

// tokenVar names where a project's token comes from, for reasons.
func tokenVar(project string) string {
	if project == config.DefaultProject {
		return "HCLOUD_TOKEN"
	}
	return fmt.Sprintf("HCLOUD_PROJECTS (project %s)", project)
}

func preflightProject(ctx context.Context, cfg *config.Config, p HCloudProject, add func(string, ...any)) error {
	hc := p.Client
	types, err := hc.ServerType.All(ctx)
	if hcloud.IsError(err, hcloud.ErrorCodeUnauthorized) {
		add("%s: Hetzner refused the token (unauthorized): check that it is a valid API token of the project", tokenVar(p.Name))
		return nil
	}
	if err != nil {
		return fmt.Errorf("read Hetzner's server types: %w", err)
	}
	if err := checkWritable(ctx, hc, tokenVar(p.Name), add); err != nil {
		return err
	}
	locations, err := hc.Location.All(ctx)
	if err != nil {
		return fmt.Errorf("read Hetzner's locations: %w", err)
	}
	for _, name := range config.PlanNames {
		if err := checkPlan(ctx, hc, cfg.PlanFor(name), types, locations, add); err != nil {
			return err
		}
	}
	return nil
}

// checkWritable sends a write Hetzner must refuse as invalid (a firewall without a name): a
// token that may write gets 422 invalid_input, a read-only one 401 token_readonly, one without
// the permission 403 forbidden. Nothing is created either way.
func checkWritable(ctx context.Context, hc *hcloud.Client, tokenVar string, add func(string, ...any)) error {
	req, err := hc.NewRequest(ctx, "POST", "/firewalls", bytes.NewReader([]byte(`{}`)))
	if err != nil {
		return fmt.Errorf("build the write check: %w", err)
	}
	_, err = hc.Do(req, nil)
	switch {
	case err == nil, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput):
		return nil // may write (and nothing was created: the request lacks a name)
	case hcloud.IsError(err, errorCodeTokenReadonly):
		add("%s: the token is read-only (token_readonly): create one with Read & Write permission", tokenVar)
	case hcloud.IsError(err, hcloud.ErrorCodeForbidden, hcloud.ErrorCodeUnauthorized):
		add("%s: the token may not create resources (%s): give it Read & Write permission", tokenVar, errCode(err))
	default:
		var herr hcloud.Error
		if !errors.As(err, &herr) || transientHetzner(err) {
			return fmt.Errorf("check that the token may write: %w", err)
		}
	}
	return nil
}

// checkPlan checks one plan's server type, locations and image.
func checkPlan(ctx context.Context, hc *hcloud.Client, p config.Plan, types []*hcloud.ServerType, locations []*hcloud.Location, add func(string, ...any)) error {
	typeVar, locVar, imageVar := p.Var, p.Var, p.Var
	if p.Var == "HCLOUD_SERVER_TYPE" {
		typeVar, locVar, imageVar = "HCLOUD_SERVER_TYPE", "HCLOUD_LOCATION", "HCLOUD_IMAGE"
	}
	var st *hcloud.ServerType
	for _, t := range types {
		if t.Name == p.ServerType {
			st = t
		}
	}
	if st == nil {
		add("%s: Hetzner offers no server type %q today (unknown, or retired and no longer listed): use a current type such as cx23", typeVar, p.ServerType)
		return nil
	}
	for _, loc := range p.Locations {
		if !slices.ContainsFunc(locations, func(l *hcloud.Location) bool { return l.Name == loc }) {
			add("%s: Hetzner has no location %q", locVar, loc)
			continue
		}
		i := slices.IndexFunc(st.Locations, func(l hcloud.ServerTypeLocation) bool { return l.Location != nil && l.Location.Name == loc })
		switch {
		case i < 0:
			add("%s: server type %s is not offered in %s", locVar, st.Name, loc)
		case st.Locations[i].IsDeprecated():
			add("%s: server type %s is deprecated in %s (unavailable after %s): use a current type such as cx23",
				typeVar, st.Name, loc, st.Locations[i].UnavailableAfter().Format(time.DateOnly))
		case !st.Locations[i].Available:
			add("%s: server type %s is not available for order in %s right now", locVar, st.Name, loc)
		}
	}
	im, _, err := hc.Image.GetByNameAndArchitecture(ctx, p.Image, st.Architecture)
	if err != nil {
		return fmt.Errorf("look up image %q: %w", p.Image, err)
	}
	if im == nil {
		add("%s: Hetzner has no image %q for %s, the architecture of server type %s", imageVar, p.Image, st.Architecture, st.Name)
	}
	return nil
}

// checkPublicURL: a VPS on Hetzner calls PUBLIC_BASE_URL back over the internet, so an address
// only this machine or its private network can reach never gets the callback. (Against another
// endpoint — the simulator — loopback is what works.)
func checkPublicURL(cfg *config.Config, add func(string, ...any)) {
	if cfg.HCloudEndpoint != "" {
		if u, err := url.Parse(cfg.HCloudEndpoint); err != nil || u.Hostname() != hetznerHost {
			return
		}
	}
	u, err := url.Parse(cfg.PublicBaseURL)
	if err != nil {
		add("PUBLIC_BASE_URL: %q is not a URL", cfg.PublicBaseURL)
		return
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		add("PUBLIC_BASE_URL: %s is this machine's loopback name: VPSes on Hetzner cannot call it back; use the app's public URL", cfg.PublicBaseURL)
		return
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return // a DNS name: its resolution is the operator's business
	}
	switch {
	case a.IsLoopback(), a.IsUnspecified():
		add("PUBLIC_BASE_URL: %s is a loopback address: VPSes on Hetzner cannot call it back; use the app's public URL", cfg.PublicBaseURL)
	case a.IsPrivate(), a.IsLinkLocalUnicast(), a.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(a):
		add("PUBLIC_BASE_URL: %s is a private or link-local address: VPSes on Hetzner cannot call it back; use the app's public URL", cfg.PublicBaseURL)
	}
}

// checkSSH: the shared firewall admits SSH only from SSH_ALLOWED_SOURCES, on VPS_SSH_PORT, and
// the worker reaches sshd there, so sshd must listen on that port: the port the cloud-config
// sets (sshd's default 22 when it sets none).
func checkSSH(cfg *config.Config, add func(string, ...any)) {
	if len(cfg.SSHAllowedFrom) == 0 {
		add("SSH_ALLOWED_SOURCES: the firewall would admit SSH from nowhere, so the worker could never reach a VPS")
	}
	hk, err := sshkey.GenerateHostKey()
	if err != nil {
		add("VPS_SSH_PORT: cannot build a sample cloud-config to check the port: %v", err)
		return
	}
	ud, err := cloudinit.Build(userDataConfig(cfg, "rachel-preflight", hk.Public, hk.PrivateOpenSSH, hk.Public, callbackURL(cfg.PublicBaseURL, "preflight")))
	if err != nil {
		add("VPS_SSH_PORT: cannot build a sample cloud-config to check the port: %v", err)
		return
	}
	doc, err := cloudinit.Parse(ud)
	if err != nil {
		add("VPS_SSH_PORT: cannot read the sample cloud-config back: %v", err)
		return
	}
	if p := cloudinit.SSHPort(doc); p != cfg.VPSSSHPort {
		add("VPS_SSH_PORT: is %d, but the cloud-config makes sshd listen on port %d", cfg.VPSSSHPort, p)
	}
}

// userDataConfig is the cloud-config of a new VPS, shared by the create and the preflight check.
func userDataConfig(cfg *config.Config, hostname, authorizedKey, hostKeyPriv, hostKeyPub, callback string) cloudinit.Config {
	return cloudinit.Config{
		Hostname: hostname, AuthorizedKeys: []string{authorizedKey},
		HostKeyPrivate: hostKeyPriv, HostKeyPublic: hostKeyPub,
		CallbackURL: callback, SSHPort: cfg.VPSSSHPort, Packages: cfg.VPSPackages, AssistantCommand: cfg.AssistantCommand,
		AssistantArtifactURL: cfg.AssistantArtifactURL, AssistantArtifactSHA256: cfg.AssistantArtifactSHA256,
	}
}

// RunPreflight runs Preflight and stores its result for every process (the dashboard, and the
// web process's Provision, which may run elsewhere).
// When Hetzner could not be asked, nothing is stored (the last result stands) and err says why.
func RunPreflight(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config, hc *hcloud.Client) ([]string, error) {
	name := config.DefaultProject
	if ps := cfg.HCloudProjects(); len(ps) > 0 {
		name = ps[0].Name
	}
	return RunPreflightProjects(ctx, pool, cfg, []HCloudProject{{Name: name, Client: hc}})
}

// RunPreflightProjects is [RunPreflight] over every project ([PreflightProjects]).
func RunPreflightProjects(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config, projects []HCloudProject) ([]string, error) {
	reasons, err := PreflightProjects(ctx, cfg, projects)
	if err != nil {
		return reasons, fmt.Errorf("preflight incomplete: %w", err)
	}
	if err := db.New().PreflightPut(ctx, pool, nonNilStrings(reasons)); err != nil {
		return reasons, fmt.Errorf("store the preflight result: %w", err)
	}
	return reasons, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// PreflightResult is the last stored preflight, for the dashboard.
type PreflightResult struct {
	Checked   bool // false: no worker has run it yet
	OK        bool
	Reasons   []string
	CheckedAt time.Time
}

// Preflight returns the last stored preflight result.
func (s *Service) Preflight(ctx context.Context) (PreflightResult, error) {
	row, err := s.q.PreflightGet(ctx, s.pool)
	if errors.Is(err, db.ErrNotFound) {
		return PreflightResult{}, nil
	}
	if err != nil {
		return PreflightResult{}, fmt.Errorf("read the preflight result: %w", err)
	}
	return PreflightResult{Checked: true, OK: row.Ok, Reasons: row.Reasons, CheckedAt: row.CheckedAt}, nil
}

// preflightRefusal is the error Provision answers while the stored preflight failed; nil when
// it passed or never ran.
func (s *Service) preflightRefusal(ctx context.Context, tx db.DBTX) error {
	row, err := s.q.PreflightGet(ctx, tx)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the preflight result: %w", err)
	}
	if row.Ok {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrPreflight, strings.Join(row.Reasons, "; "))
}

// preflightEvery is how often a worker runs the preflight again: a deprecation date passes, a
// token is revoked.
const preflightEvery = 15 * time.Minute

// preflightLoop runs the preflight at the worker's start and then periodically.
func (w *Worker) preflightLoop(ctx context.Context) error {
	for {
		reasons, err := RunPreflightProjects(ctx, w.pool, w.cfg, w.hcloudProjects())
		next := preflightEvery
		switch {
		case err != nil && ctx.Err() == nil:
			w.o.log.Warn("preflight", "err", err)
			next = max(w.o.timings.PollMax, time.Second) // Hetzner unreachable: try again soon
		case err != nil:
		case len(reasons) > 0:
			w.o.log.Error("preflight failed: provisioning is refused until the configuration is fixed", "reasons", reasons)
		default:
			w.o.log.Info("preflight passed")
		}
		if !sleep(ctx, next) {
			return nil
		}
	}
}
