package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/sshkey"
)

// fragmentPages is how many different subscriptions' fragments the load runs poll.
const fragmentPages = 500

// loadCounts are the requests per (page, clients) of the page-load phase.
var loadCounts = map[string]map[int]int{
	LoadStatic:    {1: 1000, 16: 5000, 64: 10000},
	LoadFragment:  {1: 500, 16: 3000, 64: 6000},
	LoadList:      {1: 200, 16: 2000, 64: 2000},
	LoadDashboard: {1: 200, 16: 2000, 64: 2000},
}

// HistoryPerSubscription is how many provisioning events and audit entries the page-load phase
// puts in the database per subscription (1,000,000 of each at 100,000 subscriptions).
const HistoryPerSubscription = 10

// loadPhase fills the database with subscriptions and measures the polled pages beside a
// static file.
func (b *bench) loadPhase(ctx context.Context, s *stack) error {
	b.progress("inserting %d subscriptions", b.o.Subscriptions)
	start := time.Now()
	access, err := sshkey.GenerateHostKey()
	if err != nil {
		return err
	}
	host, err := sshkey.GenerateHostKey()
	if err != nil {
		return err
	}
	q := db.New()
	// Customers with a subscription each in a realistic mix of states (queries/bench.sql), then
	// the event timeline and the Hetzner actions a real provisioning leaves, then older history.
	seed := db.BenchSeedSubscriptionsParams{Column1: int32(b.o.Subscriptions), Column2: access.Public + " rachel-provisioner", Column3: host.Public}
	if err := q.BenchSeedSubscriptions(ctx, s.pool, seed); err != nil {
		return fmt.Errorf("seed subscriptions: %w", err)
	}
	fullTimeline := []string{string(db.ProvisioningStatusReady), string(db.ProvisioningStatusDestroyed)}
	if err := q.BenchSeedEvents(ctx, s.pool, fullTimeline); err != nil {
		return fmt.Errorf("seed events: %w", err)
	}
	if err := q.BenchSeedHistory(ctx, s.pool, int32(b.o.Subscriptions*HistoryPerSubscription)); err != nil {
		return fmt.Errorf("seed history: %w", err)
	}
	if err := q.BenchAnalyze(ctx, s.pool); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	counts, err := q.BenchCounts(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("count the seeded rows: %w", err)
	}
	total := int(counts.Subscriptions)
	b.report.Subscriptions = total
	b.report.Events, b.report.AuditEntries = int(counts.Events), int(counts.AuditEntries)
	// The fragments of subscriptions in progress: what open status pages poll. Each request asks
	// for the next one, as many admins watching different provisionings would.
	fragIDs, err := q.BenchInProgress(ctx, s.pool, db.BenchInProgressParams{
		States: []string{string(db.ProvisioningStatusCreating), string(db.ProvisioningStatusCloudInit)}, N: fragmentPages})
	if err != nil || len(fragIDs) == 0 {
		return fmt.Errorf("pick subscriptions in progress: %d found: %w", len(fragIDs), err)
	}
	b.report.FragmentPages = len(fragIDs)
	b.progress("%d subscriptions, %d events, %d audit entries in the database (%.1f s)", total, b.report.Events, b.report.AuditEntries, time.Since(start).Seconds())

	var token string
	authSvc := auth.NewService(s.pool, s.cfg.SessionIdle, s.cfg.SessionMaxAge)
	password := auth.GeneratePassword()
	if _, err := authSvc.CreateAdmin(ctx, benchAdmin, password); err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	token, _, err = authSvc.SignIn(ctx, benchAdmin, password, "127.0.0.1", "rachel-bench")
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	// The web app's session cookie (httpapp's sessionCookie).
	header := http.Header{"Cookie": {"rachel_session=" + token}}

	var fragURLs []string
	for _, id := range fragIDs {
		fragURLs = append(fragURLs, fmt.Sprintf("%s/subscriptions/%d/status", s.webURL, id))
	}
	pages := []struct {
		name string
		urls []string
		want int
	}{
		{LoadStatic, []string{s.webURL + "/static/app.css"}, http.StatusOK},
		{LoadFragment, fragURLs, http.StatusOK},
		{LoadList, []string{s.webURL + "/subscriptions"}, http.StatusOK},
		{LoadDashboard, []string{s.webURL + "/"}, http.StatusOK},
	}
	for _, c := range []int{1, 16, 64} {
		for _, p := range pages {
			n := max(int(float64(loadCounts[p.name][c])*b.o.LoadScale), c)
			stopProfile := func() {}
			if b.o.WebProfile != "" && p.name == LoadFragment && c == 64 {
				stopProfile = startCPUProfile(b.o.WebProfile)
			}
			res, err := LoadURLs(ctx, p.name, p.urls, header, c, n, p.want)
			stopProfile()
			if err != nil {
				return err
			}
			b.report.Load = append(b.report.Load, res)
			b.progress("%-8s c=%-2d %6d requests: %7.0f req/s, p50 %6.2f ms, p99 %6.2f ms, %d errors",
				p.name, c, res.Requests, res.RPS, res.P50ms, res.P99ms, res.Errors)
		}
	}
	return nil
}
