package httpapp

import (
	"context"
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/provision"
)

// subscriptionProvision starts provisioning a subscription's VPS.
func (a *App) subscriptionProvision(c echo.Context) error {
	return a.subscriptionAction(c, a.Provision.Provision, "Provisioning started.")
}

// subscriptionRetry resumes a failed provisioning at its failed step.
func (a *App) subscriptionRetry(c echo.Context) error {
	return a.subscriptionAction(c, a.Provision.Retry, "Retry started.")
}

// subscriptionReinject writes the customer's current secrets to the ready VPS again.
func (a *App) subscriptionReinject(c echo.Context) error {
	return a.subscriptionAction(c, a.Provision.Reinject, "Re-injection of secrets started.")
}

// subscriptionReboot reboots a ready VPS (through a worker job) once the admin confirmed it.
func (a *App) subscriptionReboot(c echo.Context) error {
	if c.FormValue("confirm") != "reboot" {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		a.setFlash(c, "error", "Confirm the reboot with the Reboot now button. Nothing was rebooted.")
		return redirect(c, "/subscriptions/"+itoa64(id))
	}
	return a.subscriptionAction(c, a.Provision.Reboot, "Reboot requested; the worker sends it to Hetzner.")
}

// subscriptionDestroy deletes the VPS once the admin has typed its server name.
func (a *App) subscriptionDestroy(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	want, err := a.Provision.ServerName(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(c.FormValue("confirm_name")); got != want {
		st, err := a.Status.Status(c.Request().Context(), id)
		if err != nil {
			return err
		}
		msg := "Type the server name " + want + " exactly to confirm. Nothing was destroyed."
		if got == "" {
			msg = "Type the server name " + want + " to confirm. Nothing was destroyed."
		}
		return a.renderStatusPage(c, 422, st, msg)
	}
	return a.subscriptionAction(c, a.Provision.Destroy, "Destroying the server.")
}

// subscriptionAction runs one provisioning action and goes back to the status page, which polls
// again while the new state is not terminal. The service makes a repeated press do nothing more;
// an action the state no longer allows (it changed meanwhile) is explained in a flash message.
func (a *App) subscriptionAction(c echo.Context, do func(context.Context, int64, provision.Actor) error, done string) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	err = do(c.Request().Context(), id, actor(c))
	switch {
	case errors.Is(err, provision.ErrInvalidState):
		a.setFlash(c, "error", "That action is not possible in the subscription's current state; the page shows what it is now.")
	case errors.Is(err, provision.ErrPreflight):
		// The reasons name configuration variables and Hetzner's findings, never a secret.
		a.setFlash(c, "error", "Not started, because "+err.Error()+". Fix the configuration and restart the worker; nothing was changed.")
	case err != nil:
		return err
	default:
		a.setFlash(c, "ok", done)
	}
	return redirect(c, "/subscriptions/"+itoa64(id))
}
