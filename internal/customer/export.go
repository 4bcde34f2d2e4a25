package customer

import (
	"context"

	"github.com/rachelcloud/admin/internal/db"
)

// exportPageSize is how many rows Export reads at a time.
const exportPageSize = 200

// Export calls each for every subscription the list's filter selects, in the list's order, reading
// a page at a time so a large export holds one page in memory. Invalid filters return
// [FieldErrors] before anything is read.
func (s *Service) Export(ctx context.Context, p ListParams, each func(db.SubscriptionListRow) error) error {
	p.PerPage = exportPageSize
	for page := 1; ; page++ {
		p.Page = page
		list, err := s.List(ctx, p)
		if err != nil {
			return err
		}
		for _, r := range list.Rows {
			if err := each(r); err != nil {
				return err
			}
		}
		if page >= list.TotalPages || len(list.Rows) < exportPageSize {
			return nil
		}
	}
}
