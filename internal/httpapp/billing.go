package httpapp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/billing"
	"github.com/rachelcloud/admin/views"
)

// billingReport is the billing system's endpoint: a bearer token with the billing scope, an
// Idempotency-Key header and a JSON body {"subscription_id": 42, "billing_status": "canceled"}.
func (a *App) billingReport(c echo.Context) error {
	ctx := c.Request().Context()
	tok, err := a.Billing.Authenticate(ctx, c.Request().Header.Get("Authorization"), billing.ScopeBilling, c.RealIP())
	if errors.Is(err, billing.ErrUnauthorized) {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="billing"`)
		return c.JSON(http.StatusUnauthorized, map[string]string{"error": "a valid billing API token is required"})
	}
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10))
	if err != nil {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "could not read the body"})
	}
	resp, err := a.Billing.Report(ctx, tok, c.Request().Header.Get("Idempotency-Key"), body, c.RealIP())
	if err != nil {
		return err
	}
	if resp.Replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	return c.JSONBlob(resp.Status, resp.Body)
}

// billingRateLimit is the billing API's own limit per client address (BILLING_API_RATE a
// minute), apart from the pages', so a runaway billing system cannot load the app.
func billingRateLimit(perMinute int) echo.MiddlewareFunc {
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(float64(perMinute) / 60), Burst: perMinute, ExpiresIn: 3 * time.Minute,
		}),
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		ErrorHandler: func(c echo.Context, _ error) error {
			return c.JSON(http.StatusForbidden, map[string]string{"error": "forbidden"})
		},
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", "60")
			return c.JSON(http.StatusTooManyRequests, map[string]string{"error": "too many requests"})
		},
	})
}

// billingSettingsShow shows the policy form and the coming destroys.
func (a *App) billingSettingsShow(c echo.Context) error {
	pol, err := a.Billing.Policy(c.Request().Context())
	if err != nil {
		return err
	}
	f := billing.PolicyForm{Enabled: pol.Enabled, CanceledDays: pol.CanceledDays, PastDueDays: pol.PastDueGraceDays}
	return a.renderBillingSettings(c, http.StatusOK, pol, f, nil)
}

func (a *App) renderBillingSettings(c echo.Context, code int, pol billing.Policy, f billing.PolicyForm, errs map[string]string) error {
	scheduled, err := a.Billing.Scheduled(c.Request().Context(), 100)
	if err != nil {
		return err
	}
	v := views.BillingSettingsView{Policy: pol, Form: f, Errors: errs, Scheduled: scheduled, Now: time.Now()}
	return render(c, code, views.BillingSettings(a.page(c, "Billing policy", "settings"), v))
}

// billingSettingsSave stores the policy (audited); invalid input is answered 422, nothing stored.
func (a *App) billingSettingsSave(c echo.Context) error {
	ctx := c.Request().Context()
	f := billing.PolicyForm{Enabled: c.FormValue("enabled") == "true"}
	errs := map[string]string{}
	var err error
	if f.CanceledDays, err = strconv.Atoi(c.FormValue("canceled_grace_days")); err != nil {
		errs["canceled_grace_days"] = "Enter a number of days from 0 to 365."
	}
	if f.PastDueDays, err = strconv.Atoi(c.FormValue("past_due_grace_days")); err != nil {
		errs["past_due_grace_days"] = "Enter a number of days from 0 to 365."
	}
	for k, v := range f.Validate() {
		errs[k] = v
	}
	if len(errs) > 0 {
		pol, err := a.Billing.Policy(ctx)
		if err != nil {
			return err
		}
		return a.renderBillingSettings(c, http.StatusUnprocessableEntity, pol, f, errs)
	}
	if err := a.Billing.SetPolicy(ctx, f, actor(c)); err != nil {
		return err
	}
	a.setFlash(c, "ok", "Billing policy saved.")
	return redirect(c, "/settings/billing")
}

// billingHold keeps the policy from destroying a subscription's server.
func (a *App) billingHold(c echo.Context) error {
	return a.billingHoldAction(c, a.Billing.Hold, "Held: the billing policy will not destroy this server.")
}

// billingRelease lets the policy apply again.
func (a *App) billingRelease(c echo.Context) error {
	return a.billingHoldAction(c, a.Billing.Release, "Hold released.")
}

func (a *App) billingHoldAction(c echo.Context, do func(context.Context, int64, audit.Actor) error, done string) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if _, err := a.Status.Status(c.Request().Context(), id); err != nil {
		return err // 404 for an unknown subscription
	}
	if err := do(c.Request().Context(), id, actor(c)); err != nil {
		return err
	}
	a.setFlash(c, "ok", done)
	return redirect(c, "/subscriptions/"+itoa64(id))
}

// apiTokensShow lists the API tokens (never the tokens themselves).
func (a *App) apiTokensShow(c echo.Context) error {
	return a.renderAPITokens(c, http.StatusOK, views.APITokensView{})
}

func (a *App) renderAPITokens(c echo.Context, code int, v views.APITokensView) error {
	toks, err := a.Billing.Tokens(c.Request().Context())
	if err != nil {
		return err
	}
	v.Tokens = toks
	c.Response().Header().Set("Cache-Control", "no-store")
	return render(c, code, views.APITokens(a.page(c, "API tokens", "settings"), v))
}

// apiTokenCreate creates a token and shows it this once (answered directly, never redirected, so
// it is in no URL or flash cookie).
func (a *App) apiTokenCreate(c echo.Context) error {
	name := c.FormValue("name")
	tok, _, err := a.Billing.CreateToken(c.Request().Context(), name, actor(c))
	if errors.Is(err, billing.ErrInvalid) {
		return a.renderAPITokens(c, http.StatusUnprocessableEntity, views.APITokensView{Name: name, Error: "Give the token a name of 1 to 100 characters."})
	}
	if err != nil {
		return err
	}
	return a.renderAPITokens(c, http.StatusOK, views.APITokensView{Created: tok})
}

// apiTokenRevoke revokes a token at once.
func (a *App) apiTokenRevoke(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := a.Billing.RevokeToken(c.Request().Context(), id, actor(c)); err != nil {
		return err
	}
	a.setFlash(c, "ok", "Token revoked.")
	return redirect(c, "/settings/api-tokens")
}
