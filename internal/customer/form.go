// Package customer creates and edits customers, their subscription and their secrets. Secrets
// are write-only: they are encrypted on the way in and never read back for display.
package customer

import (
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Plans and billing statuses a subscription can have (the schema checks the same lists).
var (
	Plans           = []string{"personal", "plus", "pro"}
	BillingStatuses = []string{"trialing", "active", "past_due", "canceled"}
)

// Form is the customer form as submitted. Secret fields left blank keep what is stored.
type Form struct {
	Email          string `form:"email"`
	Name           string `form:"name"`
	TelegramUserID string `form:"telegram_user_id"`
	Plan           string `form:"plan"`
	BillingStatus  string `form:"billing_status"`

	ClaudeAccessToken    string `form:"claude_access_token"`
	ClaudeRefreshToken   string `form:"claude_refresh_token"`
	ClaudeTokenExpiresAt string `form:"claude_token_expires_at"`
	TelegramBotToken     string `form:"telegram_bot_token"`
	OwnerTelegramUserID  string `form:"owner_telegram_user_id"`
}

// FieldErrors maps a form field name to what is wrong with it.
type FieldErrors map[string]string

func (e FieldErrors) Error() string {
	parts := make([]string, 0, len(e))
	for k, v := range e {
		parts = append(parts, k+": "+v)
	}
	return "invalid form: " + strings.Join(parts, "; ")
}

var (
	botTokenRe    = regexp.MustCompile(`^[0-9]{5,12}:[A-Za-z0-9_-]{30,64}$`)
	oauthTokenRe  = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{8,}$`)
	expiresLayout = "2006-01-02T15:04"
)

// Normalize trims the fields and lower-cases the email.
func (f *Form) Normalize() {
	f.Email = strings.ToLower(strings.TrimSpace(f.Email))
	f.Name = strings.TrimSpace(f.Name)
	f.TelegramUserID = strings.TrimSpace(f.TelegramUserID)
	f.Plan = strings.TrimSpace(f.Plan)
	f.BillingStatus = strings.TrimSpace(f.BillingStatus)
	f.ClaudeAccessToken = strings.TrimSpace(f.ClaudeAccessToken)
	f.ClaudeRefreshToken = strings.TrimSpace(f.ClaudeRefreshToken)
	f.ClaudeTokenExpiresAt = strings.TrimSpace(f.ClaudeTokenExpiresAt)
	f.TelegramBotToken = strings.TrimSpace(f.TelegramBotToken)
	f.OwnerTelegramUserID = strings.TrimSpace(f.OwnerTelegramUserID)
}

// Validate returns a message per invalid field, or nil.
func (f *Form) Validate() FieldErrors {
	errs := FieldErrors{}
	switch {
	case f.Email == "":
		errs["email"] = "Enter the customer's email address."
	case len(f.Email) > 254:
		errs["email"] = "An email address has at most 254 characters."
	default:
		if a, err := mail.ParseAddress(f.Email); err != nil || a.Address != f.Email || !strings.Contains(f.Email[strings.LastIndex(f.Email, "@"):], ".") {
			errs["email"] = "Enter an email address like name@example.com."
		}
	}
	switch {
	case f.Name == "":
		errs["name"] = "Enter the customer's name."
	case utf8.RuneCountInString(f.Name) > 200:
		errs["name"] = "A name has at most 200 characters."
	case !utf8.ValidString(f.Name) || strings.IndexFunc(f.Name, unicode.IsControl) >= 0:
		errs["name"] = "The name contains characters that are not allowed."
	}
	if f.TelegramUserID != "" {
		if _, err := parsePositive(f.TelegramUserID); err != nil {
			errs["telegram_user_id"] = "A Telegram user ID is a positive number, like 123456789."
		}
	}
	if !contains(Plans, f.Plan) {
		errs["plan"] = "Choose a plan."
	}
	if !contains(BillingStatuses, f.BillingStatus) {
		errs["billing_status"] = "Choose a billing status."
	}
	if f.ClaudeAccessToken != "" && (len(f.ClaudeAccessToken) > 4096 || !oauthTokenRe.MatchString(f.ClaudeAccessToken)) {
		errs["claude_access_token"] = "This does not look like a Claude access token (8 to 4096 characters, no spaces)."
	}
	if f.ClaudeRefreshToken != "" && (len(f.ClaudeRefreshToken) > 4096 || !oauthTokenRe.MatchString(f.ClaudeRefreshToken)) {
		errs["claude_refresh_token"] = "This does not look like a Claude refresh token (8 to 4096 characters, no spaces)."
	}
	if f.ClaudeTokenExpiresAt != "" {
		if _, err := f.ExpiresAt(); err != nil {
			errs["claude_token_expires_at"] = "Enter a date and time, like 2027-01-31T12:00."
		}
	}
	if f.TelegramBotToken != "" && !botTokenRe.MatchString(f.TelegramBotToken) {
		errs["telegram_bot_token"] = "A Telegram bot token looks like 123456789:AA… (digits, a colon, then 30 or more letters)."
	}
	if f.OwnerTelegramUserID != "" {
		if _, err := parsePositive(f.OwnerTelegramUserID); err != nil {
			errs["owner_telegram_user_id"] = "A Telegram user ID is a positive number, like 123456789."
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// ExpiresAt parses the token expiry (an HTML datetime-local value, taken as UTC, or RFC 3339).
func (f *Form) ExpiresAt() (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, f.ClaudeTokenExpiresAt); err == nil {
		return t.UTC(), nil
	}
	t, err := time.ParseInLocation(expiresLayout, f.ClaudeTokenExpiresAt, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse expiry: %w", err)
	}
	return t, nil
}

func parsePositive(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive number", s)
	}
	return n, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
