package customer

import (
	"context"
	"fmt"
	"strings"

	"github.com/rachelcloud/admin/internal/db"
)

// exportPageSize is how many rows Export reads at a time.
const exportPageSize = 500

// Export calls each for every subscription the list's search and status filter select, in
// subscription ID order, reading a page at a time after the last ID seen (so a large export holds
// one page in memory, reads each row once, and is not bounded by the list's pages). Invalid
// filters return [FieldErrors] before anything is read; the sort does not apply.
func (s *Service) Export(ctx context.Context, p ListParams, each func(db.SubscriptionExportPageRow) error) error {
	// The list's validation, on a page of one.
	if _, err := s.List(ctx, ListParams{Search: p.Search, Status: p.Status, Sort: p.Sort, PerPage: 1}); err != nil {
		return err
	}
	search := likeEscape(strings.TrimSpace(p.Search))
	var after int64
	for {
		rows, err := s.q.SubscriptionExportPage(ctx, s.pool, db.SubscriptionExportPageParams{
			AfterID: after, Status: p.Status, Search: search, Lim: exportPageSize,
		})
		if err != nil {
			return fmt.Errorf("export subscriptions after %d: %w", after, err)
		}
		for _, r := range rows {
			if err := each(r); err != nil {
				return err
			}
		}
		if len(rows) < exportPageSize {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}
