package bench

import (
	"context"
	"fmt"

	"github.com/rachelcloud/admin/internal/hcloudsim"
)

// ProjectsResult is the several-projects burst: N provisionings at once spread over Projects
// simulated Hetzner projects (HCLOUD_TOKEN's and HCLOUD_PROJECTS), each with its own server limit
// and rate-limit budget (issue 14).
type ProjectsResult struct {
	ProvisionResult
	Projects    int `json:"projects"`
	ServerLimit int `json:"server_limit"`
	// Servers is how many servers each project held when all were ready.
	Servers map[string]int `json:"servers"`
	// LimitRefusals counts 403 resource_limit_exceeded answers (placement avoids them).
	LimitRefusals int `json:"limit_refusals"`
}

// projectsPhase provisions ProjectsBurst subscriptions at once across Projects projects with a
// server limit of ProjectLimit each, on a stack of its own, and destroys them afterwards.
func (b *bench) projectsPhase(ctx context.Context) error {
	n, np, limit := b.o.ProjectsBurst, max(b.o.Projects, 1), b.o.ProjectLimit
	cfg := hcloudsim.Config{ServerLimit: limit}
	for i := 2; i <= np; i++ {
		cfg.Projects = append(cfg.Projects, hcloudsim.ProjectConfig{Name: fmt.Sprintf("p%d", i), Token: fmt.Sprintf("%s-p%d", benchToken, i), ServerLimit: limit})
	}
	s, err := b.newStack(ctx, "bench_projects", cfg, "rsa-4096")
	if err != nil {
		return err
	}
	defer s.close()
	b.progress("several projects: %d projects, server limit %d each, simulator at %s", np, limit, s.sim.URL())
	if err := b.startWorker(ctx, s, "worker-projects", ""); err != nil {
		return err
	}
	p, ids, err := b.provisionBurst(ctx, s, n, false)
	if err != nil {
		return err
	}
	r := &ProjectsResult{ProvisionResult: p, Projects: np, ServerLimit: limit, Servers: map[string]int{},
		LimitRefusals: requestCount(s.sim, "POST /servers", 403)}
	for _, pr := range s.sim.Projects() {
		_, used := pr.ServerLimit()
		r.Servers[pr.Name()] = used
	}
	b.report.Projects = r
	b.progress("several projects: servers per project %v, %d limit refusals", r.Servers, r.LimitRefusals)
	d, err := b.destroyBurst(ctx, s, ids)
	if err != nil {
		return err
	}
	if d.ServersLeft > 0 {
		return fmt.Errorf("several projects: %d servers left after destroying", d.ServersLeft)
	}
	return nil
}
