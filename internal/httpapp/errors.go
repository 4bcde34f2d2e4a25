package httpapp

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/views"
)

// errorHandler logs the error with its request and renders a friendly page that leaks nothing.
func (a *App) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	message := "Something went wrong on our side. It has been logged; try again in a moment."
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		code = he.Code
		if m, ok := he.Message.(string); ok && code < 500 {
			message = m
		} else if code < 500 {
			message = http.StatusText(code)
		}
	case errors.Is(err, db.ErrNotFound):
		code, message = http.StatusNotFound, "There is nothing here. It may have been removed, or the address is wrong."
	}
	level := slog.LevelWarn
	if code >= 500 {
		level = slog.LevelError
	}
	a.Log.Log(c.Request().Context(), level, "request failed", "route", c.Path(),
		"status", code, "error", err.Error())

	if c.Request().Header.Get("HX-Request") == "true" && code < 500 {
		_ = c.String(code, message)
		return
	}
	heading := map[int]string{
		http.StatusNotFound:  "Not found",
		http.StatusForbidden: "Not allowed",
	}[code]
	if heading == "" {
		if code >= 500 {
			heading = "Server error"
		} else {
			heading = http.StatusText(code)
		}
	}
	p := views.Page{Title: heading}
	if s := session(c); s != nil {
		p.AdminEmail, p.CSRFToken = s.AdminEmail, s.CSRFToken
	}
	if err := render(c, code, views.ErrorPage(p, code, heading, message)); err != nil {
		_ = c.String(code, message)
	}
}
