package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
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
	LoadListMix:   {16: 2000},
	LoadAudit:     {16: 1000},
	LoadReconcile: {16: 1000},
}

// listMixURLs are the list pages the list-mix run cycles through: every sort with each status
// filter on the first and a deep page, and substring searches (an email, a name, a server name,
// an IP) with a status filter and on a later page. The seeded names are queries/bench.sql's.
func listMixURLs(base string) []string {
	var out []string
	for _, sort := range []string{"", "email", "name", "status", "updated"} {
		for _, status := range []string{"", "ready", "failed", "none"} {
			for _, page := range []string{"1", "40"} {
				out = append(out, fmt.Sprintf("%s/subscriptions?sort=%s&status=%s&page=%s", base, sort, status, page))
			}
		}
	}
	for _, q := range []string{"load-4242", "Load customer 77", "rachel-load-1234", "10.0.3."} {
		for _, status := range []string{"", "ready"} {
			for _, page := range []string{"1", "10"} {
				out = append(out, fmt.Sprintf("%s/subscriptions?q=%s&status=%s&page=%s", base, url.QueryEscape(q), status, page))
			}
		}
	}
	return out
}

// auditURLs are the audit log pages the audit run cycles through (the seeded admin and actions).
func auditURLs(base string) []string {
	return []string{
		base + "/audit", base + "/audit?page=40", base + "/audit?action=provision", base + "/audit?action=destroy&page=40",
		base + "/audit?admin=" + url.QueryEscape("bench@rachel.local") + "&page=20", base + "/audit?subscription=4242",
		base + "/audit?from=" + time.Now().AddDate(0, -1, 0).Format("2006-01-02"),
	}
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
		{LoadListMix, listMixURLs(s.webURL), http.StatusOK},
		{LoadAudit, auditURLs(s.webURL), http.StatusOK},
		{LoadReconcile, []string{s.webURL + "/reconcile"}, http.StatusOK},
	}
	for _, c := range []int{1, 16, 64} {
		for _, p := range pages {
			count, ok := loadCounts[p.name][c]
			if !ok {
				continue
			}
			n := max(int(float64(count)*b.o.LoadScale), c)
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
