package httpapp

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/views"
)

// reconcileShow lists the reconciler's open findings (orphans and ghosts) with their actions.
func (a *App) reconcileShow(c echo.Context) error {
	return a.renderReconcile(c, http.StatusOK, nil)
}

func (a *App) renderReconcile(c echo.Context, code int, errs map[int64]string) error {
	findings, err := a.Provision.Findings(c.Request().Context())
	if err != nil {
		return err
	}
	v := views.ReconcileView{Findings: findings, Errors: errs, Now: time.Now()}
	return render(c, code, views.Reconcile(a.page(c, "Reconcile", "reconcile"), v))
}

// reconcileRun asks a worker to compare Hetzner with the database now.
func (a *App) reconcileRun(c echo.Context) error {
	if err := a.Provision.ReconcileNow(c.Request().Context(), actor(c)); err != nil {
		return err
	}
	a.setFlash(c, "ok", "A reconciliation has been queued; reload this page in a moment.")
	return redirect(c, "/reconcile")
}

// findingDestroy deletes an orphan server in Hetzner, once the admin typed its name.
func (a *App) findingDestroy(c echo.Context) error {
	return a.findingAction(c, "orphan", a.Provision.DestroyOrphan, "Deleting the orphan server.")
}

// findingGone makes the database forget a server Hetzner no longer has, once confirmed.
func (a *App) findingGone(c echo.Context) error {
	return a.findingAction(c, "ghost", a.Provision.MarkGhostGone, "Marked as gone.")
}

// findingAction checks the typed confirmation against the open finding, then runs do. A finding
// that is no longer open (a second press, or another admin) is reported, not an error.
func (a *App) findingAction(c echo.Context, kind string, do func(context.Context, int64, provision.Actor) error, done string) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	f, err := a.Provision.OpenFinding(c.Request().Context(), id)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return err
	}
	if f == nil || f.Kind != kind {
		a.setFlash(c, "error", "That finding is already resolved.")
		return redirect(c, "/reconcile")
	}
	want := views.FindingConfirmName(*f)
	if strings.TrimSpace(c.FormValue("confirm_name")) != want {
		return a.renderReconcile(c, http.StatusUnprocessableEntity,
			map[int64]string{id: "Type " + want + " exactly to confirm. Nothing was changed."})
	}
	err = do(c.Request().Context(), id, actor(c))
	switch {
	case errors.Is(err, provision.ErrInvalidState), errors.Is(err, db.ErrNotFound):
		a.setFlash(c, "error", "That finding is already resolved.")
	case err != nil:
		return err
	default:
		a.setFlash(c, "ok", done)
	}
	return redirect(c, "/reconcile")
}
