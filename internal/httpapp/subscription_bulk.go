package httpapp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/views"
)

// bulkMax is the most subscriptions one bulk action takes (a full list page).
const bulkMax = 200

// bulkActions are the actions that can be run on many subscriptions at once, each through the
// service method (and state guard) of the single action.
var bulkActions = map[string]struct {
	label string
	done  string
}{
	"retry":    {"Retry", "Retry started."},
	"reinject": {"Re-inject secrets", "Re-injection of secrets started."},
}

// bulkForm is the list's selection: an action and the checked subscriptions.
type bulkForm struct {
	Action  string
	IDs     []int64
	Confirm bool
}

// bindBulkForm reads and validates the selection; a bad one is answered 422 and runs nothing.
func bindBulkForm(c echo.Context) (bulkForm, error) {
	f := bulkForm{Action: c.FormValue("action"), Confirm: c.FormValue("confirm") == "yes"}
	if _, ok := bulkActions[f.Action]; !ok {
		return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "Choose Retry or Re-inject for the selected subscriptions.")
	}
	form, err := c.FormParams()
	if err != nil {
		return f, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	seen := map[int64]bool{}
	for _, s := range form["id"] {
		id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || id <= 0 {
			return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "A selected subscription ID is not a positive number.")
		}
		if !seen[id] {
			seen[id] = true
			f.IDs = append(f.IDs, id)
		}
	}
	switch {
	case len(f.IDs) == 0:
		return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "Select at least one subscription.")
	case len(f.IDs) > bulkMax:
		return f, echo.NewHTTPError(http.StatusUnprocessableEntity, "Select at most "+strconv.Itoa(bulkMax)+" subscriptions at once.")
	}
	return f, nil
}

// subscriptionBulk runs Retry or Re-inject on the selected subscriptions: first a confirmation
// page listing them, then, confirmed, each through the service (one audit entry each, its state
// guard deciding), answered with every row's outcome.
func (a *App) subscriptionBulk(c echo.Context) error {
	f, err := bindBulkForm(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	act := bulkActions[f.Action]
	v := views.BulkView{Action: f.Action, Label: act.label}
	if !f.Confirm {
		for _, id := range f.IDs {
			item := views.BulkItem{ID: id}
			st, err := a.Status.Status(ctx, id)
			switch {
			case isNotFound(err):
				item.Outcome = "not found"
			case err != nil:
				return err
			default:
				item.Name, item.State = st.CustomerName, st.State
			}
			v.Items = append(v.Items, item)
		}
		return render(c, http.StatusOK, views.BulkConfirm(a.page(c, act.label+" selected", "subscriptions"), v))
	}
	do := map[string]func(context.Context, int64, provision.Actor) error{"retry": a.Provision.Retry, "reinject": a.Provision.Reinject}[f.Action]
	for _, id := range f.IDs {
		item := views.BulkItem{ID: id}
		err := do(ctx, id, actor(c))
		switch {
		case err == nil:
			item.OK, item.Outcome = true, act.done
		case errors.Is(err, provision.ErrInvalidState):
			item.Outcome = "Not possible in its current state; nothing was done."
		case isNotFound(err):
			item.Outcome = "Not found; nothing was done."
		default:
			// One failure does not stop the others; details go to the log.
			a.Log.LogAttrs(ctx, slog.LevelError, "bulk action failed", slog.String("action", f.Action),
				slog.Int64("subscription_id", id), slog.String("error", err.Error()))
			item.Outcome = "Failed on our side; it has been logged. Nothing was done."
		}
		if st, err := a.Status.Status(ctx, id); err == nil {
			item.Name, item.State = st.CustomerName, st.State
		}
		v.Items = append(v.Items, item)
	}
	v.Done = true
	return render(c, http.StatusOK, views.BulkConfirm(a.page(c, act.label+" selected", "subscriptions"), v))
}

func isNotFound(err error) bool {
	return errors.Is(err, db.ErrNotFound)
}
