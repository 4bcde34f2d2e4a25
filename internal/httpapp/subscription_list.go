package httpapp

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/views"
)

// subscriptionList shows the searchable, filterable, paginated list of subscriptions.
func (a *App) subscriptionList(c echo.Context) error {
	p := customer.ListParams{Search: c.QueryParam("q"), Status: c.QueryParam("status"), Sort: c.QueryParam("sort"), Page: parsePage(c.QueryParam("page"))}
	list, err := a.Customers.List(c.Request().Context(), p)
	if err == nil && list.Page > list.TotalPages {
		// Past the end (an old link, a hand-typed number): show the last page.
		p.Page = list.TotalPages
		list, err = a.Customers.List(c.Request().Context(), p)
	}
	var fe customer.FieldErrors
	if errors.As(err, &fe) {
		return render(c, http.StatusUnprocessableEntity, views.Subscriptions(a.page(c, "Subscriptions", "subscriptions"), views.SubscriptionsView{Params: p, Errors: fe}))
	}
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Subscriptions(a.page(c, "Subscriptions", "subscriptions"), views.SubscriptionsView{Params: p, Page: list}))
}

// maxPage bounds the page number so that no page's offset overflows (maxPage times the largest
// page size stays far below 2^31); a larger number means "past the end" all the same.
const maxPage = 1_000_000

// parsePage reads ?page=: missing, malformed or below 1 is the first page; above maxPage is
// maxPage, which the handler then answers with the last page.
func parsePage(s string) int {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(s, "-"):
		return maxPage
	case err != nil || n < 1:
		return 1
	case n > maxPage:
		return maxPage
	}
	return n
}
