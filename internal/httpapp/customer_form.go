package httpapp

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/customer"
	"github.com/rachelcloud/admin/views"
)

// customerNew renders an empty customer form.
func (a *App) customerNew(c echo.Context) error {
	v := views.CustomerFormView{Form: customer.Form{Plan: "personal", BillingStatus: "active"}}
	return render(c, http.StatusOK, views.CustomerForm(a.page(c, "New customer", "new"), v))
}

// customerCreate validates and stores a new customer with their subscription and secrets.
func (a *App) customerCreate(c echo.Context) error {
	f, err := bindCustomerForm(c)
	if err != nil {
		return err
	}
	_, subID, err := a.Customers.Create(c.Request().Context(), f, actor(c))
	var fe customer.FieldErrors
	if errors.As(err, &fe) {
		v := views.CustomerFormView{Form: blankSecrets(f), Errors: fe}
		return render(c, http.StatusUnprocessableEntity, views.CustomerForm(a.page(c, "New customer", "new"), v))
	}
	if err != nil {
		return err
	}
	a.setFlash(c, "ok", "Customer created.")
	return redirect(c, "/subscriptions/"+strconv.FormatInt(subID, 10))
}

// customerEdit renders the form for an existing customer; secrets show only whether they are set.
func (a *App) customerEdit(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	d, err := a.Customers.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.CustomerForm(a.page(c, "Edit customer", "subscriptions"), editView(d, d.FormFor(), nil)))
}

// customerUpdate validates and saves changes to a customer.
func (a *App) customerUpdate(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	f, err := bindCustomerForm(c)
	if err != nil {
		return err
	}
	err = a.Customers.Update(c.Request().Context(), id, f, actor(c))
	var fe customer.FieldErrors
	if errors.As(err, &fe) {
		d, gerr := a.Customers.Get(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		return render(c, http.StatusUnprocessableEntity, views.CustomerForm(a.page(c, "Edit customer", "subscriptions"), editView(d, blankSecrets(f), fe)))
	}
	if err != nil {
		return err
	}
	d, err := a.Customers.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	a.setFlash(c, "ok", "Customer saved.")
	if len(d.Subscriptions) > 0 {
		return redirect(c, "/subscriptions/"+strconv.FormatInt(d.Subscriptions[len(d.Subscriptions)-1].ID, 10))
	}
	return redirect(c, "/subscriptions")
}

func editView(d *customer.Detail, f customer.Form, errs customer.FieldErrors) views.CustomerFormView {
	updated := map[string]string{"claude": views.WhenPtr(d.Claude.UpdatedAt), "telegram": views.WhenPtr(d.Telegram.UpdatedAt)}
	return views.CustomerFormView{Editing: true, CustomerID: d.Customer.ID, Form: f, Errors: errs, Secrets: d.Secrets, Updated: updated}
}

func bindCustomerForm(c echo.Context) (customer.Form, error) {
	var f customer.Form
	if err := (&echo.DefaultBinder{}).BindBody(c, &f); err != nil {
		return f, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	return f, nil
}

// blankSecrets drops the secret values before a form is shown again: they are never echoed.
func blankSecrets(f customer.Form) customer.Form {
	f.ClaudeAccessToken, f.ClaudeRefreshToken, f.ClaudeTokenExpiresAt = "", "", ""
	f.TelegramBotToken, f.OwnerTelegramUserID = "", ""
	return f
}

func pathID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusNotFound, "There is nothing here.")
	}
	return id, nil
}
