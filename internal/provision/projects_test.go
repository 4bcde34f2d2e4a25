package provision

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/testkit"
)

// twoProjects is a setup with HCLOUD_TOKEN's project (server limit 1) and project "b" (limit 5):
// two simulated projects behind one endpoint, told apart by their tokens.
func twoProjects(o *setupOpts) {
	o.sim.ServerLimit = 1
	o.sim.Projects = []hcloudsim.ProjectConfig{{Name: "b", Token: "token-of-b", ServerLimit: 5}}
	o.env["HCLOUD_PROJECTS"] = "b=token-of-b"
}

// TestProjectsPlacementAndLifecycle: a burst goes to the project with headroom when one is full
// (each project's limit is its own, learnt separately); every subscription records its project;
// destroy and reconcile use the recorded project's token.
func TestProjectsPlacementAndLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, twoProjects)
	ctx := context.Background()
	def, pb := b.sim, b.sim.Project("b")
	var ids []int64
	for range 3 {
		id := b.newSubscription(t)
		require.NoError(t, b.svc.Provision(ctx, id, admin))
		ids = append(ids, id)
	}
	inProject := map[string]int{}
	for _, id := range ids {
		sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
		require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "events %v", b.events(t, id))
		require.NotNil(t, sub.HetznerProject)
		proj := b.sim.Project(*sub.HetznerProject)
		require.NotNil(t, proj)
		_, ok := proj.Server(*sub.HetznerServerID)
		require.True(t, ok, "subscription %d's server is in its recorded project %s", id, *sub.HetznerProject)
		inProject[*sub.HetznerProject]++
	}
	require.Equal(t, map[string]int{"default": 1, "b": 2}, inProject, "the full project's overflow went to b")
	limDef, usedDef := def.ServerLimit()
	limB, usedB := pb.ServerLimit()
	require.Equal(t, [2]int{1, 1}, [2]int{limDef, usedDef})
	require.Equal(t, [2]int{5, 2}, [2]int{limB, usedB})
	require.Len(t, def.Firewalls(), 1, "each project has its own shared firewall")
	require.Len(t, pb.Firewalls(), 1)

	fleet, err := b.svc.Fleet(ctx)
	require.NoError(t, err)
	require.Len(t, fleet.Projects, 2)
	require.Equal(t, "default", fleet.Projects[0].Name)
	require.Equal(t, 1, fleet.Projects[0].Servers)
	require.Equal(t, "b", fleet.Projects[1].Name)
	require.Equal(t, 2, fleet.Projects[1].Servers)
	if inProject["default"] == 1 && def.RequestCount("POST /servers", 403) > 0 {
		require.Equal(t, 1, fleet.Projects[0].ServerLimit, "default's limit is learnt from its refusal")
	}
	require.Zero(t, fleet.Projects[1].ServerLimit, "b's limit was never hit")
	row, err := db.New().UIStatusGet(ctx, b.pool, ids[0])
	require.NoError(t, err)
	require.Equal(t, b.sub(t, ids[0]).HetznerProject, row.HetznerProject, "the status page reads the recorded project")

	// Reconcile lists each project with its own token: nothing is an orphan or a ghost.
	w := b.startWorker(t)
	res, err := w.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, ReconcileResult{Servers: 3}, res)

	// A server of b deleted behind our back is a ghost of project b.
	var inB []int64
	for _, id := range ids {
		if deref(b.sub(t, id).HetznerProject) == "b" {
			inB = append(inB, id)
		}
	}
	gone := *b.sub(t, inB[0]).HetznerServerID
	require.True(t, pb.DeleteServerBehindBack(gone))
	testkit.Eventually(t, "the server to disappear", func() bool { _, ok := pb.Server(gone); return !ok })
	res, err = w.reconcile(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Ghosts)
	findings, err := b.svc.Findings(ctx)
	require.NoError(t, err)
	require.Len(t, findings, 1)
	require.Equal(t, "b", findings[0].Project)

	// Destroy deletes in the recorded project, with its token.
	other := inB[1]
	srvID := *b.sub(t, other).HetznerServerID
	defDeletes := def.RequestCount("DELETE /servers/{id}", 200)
	require.NoError(t, b.svc.Destroy(ctx, other, admin))
	b.waitStatus(t, other, db.ProvisioningStatusDestroyed)
	_, ok := pb.Server(srvID)
	require.False(t, ok)
	require.Equal(t, defDeletes, def.RequestCount("DELETE /servers/{id}", 200), "nothing was deleted with the other project's token")
	for _, k := range pb.SSHKeys() {
		require.NotEqual(t, b.name(other), k.Name, "b keeps no SSH key of the destroyed subscription")
	}
	require.Len(t, pb.SSHKeys(), 1, "the ghost's key is still there")
}

// TestProjectBudgetsSeparate: a subscription is placed only by its creating step, and each
// project's budget is stored on its own (the migration of old rows: internal/database).
func TestProjectBudgetsSeparate(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) { o.noWork = true })
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	require.Nil(t, b.sub(t, id).HetznerProject, "not placed before the creating step")
	q := db.New()
	require.NoError(t, q.RateLimitPut(ctx, b.pool, db.RateLimitPutParams{Project: "default", Lim: 3600, Remaining: 3000, ResetAt: time.Now()}))
	require.NoError(t, q.RateLimitPut(ctx, b.pool, db.RateLimitPutParams{Project: "b", Lim: 3600, Remaining: 10, ResetAt: time.Now()}))
	rows, err := q.RateLimitList(ctx, b.pool)
	require.NoError(t, err)
	require.Len(t, rows, 2, "one budget per project")
}

// TestPreflightEveryProject: each project's token is checked; a reason names the project and
// where its token comes from, never the token.
func TestPreflightEveryProject(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *setupOpts) {
		o.noWork = true
		o.sim.Projects = []hcloudsim.ProjectConfig{
			{Name: "b", Token: "token-of-b", ReadOnlyToken: "read-only-of-b"},
			{Name: "c", Token: "token-of-c"},
		}
		o.env["HCLOUD_PROJECTS"] = "b=read-only-of-b,c=revoked-token-of-c"
	})
	ctx := context.Background()
	var projects []HCloudProject
	for _, p := range b.cfg.HCloudProjects() {
		hc, err := NewHCloudClientFor(b.cfg, p, nil, nil)
		require.NoError(t, err)
		projects = append(projects, HCloudProject{Name: p.Name, Client: hc})
	}
	reasons, err := PreflightProjects(ctx, b.cfg, projects)
	require.NoError(t, err)
	require.Len(t, reasons, 2, joined(reasons))
	require.Contains(t, reasons[0], "HCLOUD_PROJECTS (project b): the token is read-only")
	require.Contains(t, reasons[1], "HCLOUD_PROJECTS (project c): Hetzner refused the token")
	require.NotContains(t, joined(reasons), "revoked-token-of-c")
	require.NotContains(t, joined(reasons), "read-only-of-b")
	reasons, err = PreflightProjects(ctx, b.cfg, projects[:1])
	require.NoError(t, err)
	require.Empty(t, reasons, "the default project's token is fine")
}

// TestReprovisionIsPlacedAgain: a subscription provisioned again after destroy holds nothing in
// Hetzner, so it is placed anew (in the project with room) instead of going back to the project
// of its last server, which has filled up meanwhile.
func TestReprovisionIsPlacedAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, twoProjects) // default: limit 1; b: limit 5
	ctx := context.Background()
	x := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, x, admin))
	sub := b.waitStatus(t, x, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, "default", deref(sub.HetznerProject), "a tie goes to the first project")
	require.NoError(t, b.svc.Destroy(ctx, x, admin))
	b.waitStatus(t, x, db.ProvisioningStatusDestroyed)

	y := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, y, admin))
	sub = b.waitStatus(t, y, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, "default", deref(sub.HetznerProject), "default has room again")

	require.NoError(t, b.svc.Provision(ctx, x, admin))
	sub = b.waitStatus(t, x, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "events %v", b.events(t, x))
	require.Equal(t, "b", deref(sub.HetznerProject), "placed where there is room")
	require.Zero(t, b.sim.RequestCount("POST /servers", 403), "nothing was tried in the full project")
}
