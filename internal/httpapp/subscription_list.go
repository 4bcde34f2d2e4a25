package httpapp

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/views"
)

// subscriptionList shows the searchable, filterable, paginated list of subscriptions.
func (a *App) subscriptionList(c echo.Context) error {
	page, _ := strconv.Atoi(c.QueryParam("page"))
	p := customer.ListParams{Search: c.QueryParam("q"), Status: c.QueryParam("status"), Sort: c.QueryParam("sort"), Page: page}
	list, err := a.Customers.List(c.Request().Context(), p)
	var fe customer.FieldErrors
	if errors.As(err, &fe) {
		return render(c, http.StatusUnprocessableEntity, views.Subscriptions(a.page(c, "Subscriptions", "subscriptions"), views.SubscriptionsView{Params: p, Errors: fe}))
	}
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.Subscriptions(a.page(c, "Subscriptions", "subscriptions"), views.SubscriptionsView{Params: p, Page: list}))
}
