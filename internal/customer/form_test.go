package customer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/customer"
)

func formForRules() customer.Form {
	return customer.Form{Email: "ada@example.com", Name: "Ada Lovelace", Plan: "personal", BillingStatus: "active"}
}

// TestFormValidationSaysWhatToFix: each field's rule, with the message the form shows next to
// the field; a valid form has no errors.
func TestFormValidationSaysWhatToFix(t *testing.T) {
	t.Parallel()
	f := formForRules()
	require.Nil(t, f.Validate())

	for _, tc := range []struct {
		edit  func(*customer.Form)
		field string
		want  string // part of the message; "" means the form is valid
	}{
		{func(f *customer.Form) { f.Email = "" }, "email", "Enter the customer's email address."},
		{func(f *customer.Form) { f.Email = "ada" }, "email", "like name@example.com"},
		{func(f *customer.Form) { f.Email = "ada@localhost" }, "email", "like name@example.com"},
		{func(f *customer.Form) { f.Email = "Ada <ada@example.com>" }, "email", "like name@example.com"},
		{func(f *customer.Form) { f.Email = strings.Repeat("a", 250) + "@example.com" }, "email", "at most 254 characters"},
		{func(f *customer.Form) { f.Email = "first.last+tag@sub.example.co.uk" }, "", ""},
		{func(f *customer.Form) { f.Name = "" }, "name", "Enter the customer's name."},
		{func(f *customer.Form) { f.Name = strings.Repeat("ä", 201) }, "name", "at most 200 characters"},
		{func(f *customer.Form) { f.Name = strings.Repeat("ä", 200) }, "", ""},
		{func(f *customer.Form) { f.Name = "Ada\x00" }, "name", "not allowed"},
		{func(f *customer.Form) { f.Name = "Ada\nLovelace" }, "name", "not allowed"},
		{func(f *customer.Form) { f.Name = "Zoë Ōtani 大谷" }, "", ""},
		{func(f *customer.Form) { f.TelegramUserID = "0" }, "telegram_user_id", "positive number"},
		{func(f *customer.Form) { f.TelegramUserID = "-5" }, "telegram_user_id", "positive number"},
		{func(f *customer.Form) { f.TelegramUserID = "@ada" }, "telegram_user_id", "positive number"},
		{func(f *customer.Form) { f.TelegramUserID = "123456789" }, "", ""},
		{func(f *customer.Form) { f.Plan = "enterprise" }, "plan", "Choose a plan."},
		{func(f *customer.Form) { f.Plan = "" }, "plan", "Choose a plan."},
		{func(f *customer.Form) { f.BillingStatus = "free" }, "billing_status", "Choose a billing status."},
		{func(f *customer.Form) { f.ClaudeAccessToken = "short" }, "claude_access_token", "Claude access token"},
		{func(f *customer.Form) { f.ClaudeAccessToken = "has a space inside" }, "claude_access_token", "no spaces"},
		{func(f *customer.Form) { f.ClaudeAccessToken = "sk-ant-" + strings.Repeat("x", 4096) }, "claude_access_token", "4096"},
		{func(f *customer.Form) { f.ClaudeAccessToken = "sk-ant-oat01-AbC_123.~+/=" }, "", ""},
		{func(f *customer.Form) { f.ClaudeRefreshToken = "tab\there" }, "claude_refresh_token", "Claude refresh token"},
		{func(f *customer.Form) { f.ClaudeTokenExpiresAt = "tomorrow" }, "claude_token_expires_at", "like 2027-01-31T12:00"},
		{func(f *customer.Form) { f.ClaudeTokenExpiresAt = "2027-01-31T12:00" }, "", ""},
		{func(f *customer.Form) { f.ClaudeTokenExpiresAt = "2027-01-31T12:00:00+02:00" }, "", ""},
		{func(f *customer.Form) { f.TelegramBotToken = "123:short" }, "telegram_bot_token", "Telegram bot token"},
		{func(f *customer.Form) { f.TelegramBotToken = "1234567:" + strings.Repeat("A", 35) }, "", ""},
		{func(f *customer.Form) { f.TelegramBotToken = "1234567:" + strings.Repeat("A", 65) }, "telegram_bot_token", "Telegram bot token"},
		{func(f *customer.Form) { f.OwnerTelegramUserID = "12x" }, "owner_telegram_user_id", "positive number"},
	} {
		f := formForRules()
		tc.edit(&f)
		errs := f.Validate()
		if tc.field == "" {
			require.Nil(t, errs, "%+v", f)
			continue
		}
		require.Len(t, errs, 1, "%+v: %v", f, errs)
		require.Contains(t, errs[tc.field], tc.want)
		require.Contains(t, errs.Error(), "invalid form: "+tc.field+": ")
	}

	// Every problem at once.
	errs := (&customer.Form{}).Validate()
	require.Len(t, errs, 4)
	for _, field := range []string{"email", "name", "plan", "billing_status"} {
		require.Contains(t, errs, field)
	}
}

func TestNormalizeTrimsAndLowercasesTheEmail(t *testing.T) {
	t.Parallel()
	f := customer.Form{Email: "  Ada@Example.COM ", Name: " Ada ", Plan: " pro ", BillingStatus: " trialing ",
		TelegramUserID: " 42 ", ClaudeAccessToken: " tok-123456 ", ClaudeRefreshToken: "\tref-123456\n",
		ClaudeTokenExpiresAt: " 2027-01-31T12:00 ", TelegramBotToken: " 1:x ", OwnerTelegramUserID: " 7 "}
	f.Normalize()
	require.Equal(t, customer.Form{Email: "ada@example.com", Name: "Ada", Plan: "pro", BillingStatus: "trialing",
		TelegramUserID: "42", ClaudeAccessToken: "tok-123456", ClaudeRefreshToken: "ref-123456",
		ClaudeTokenExpiresAt: "2027-01-31T12:00", TelegramBotToken: "1:x", OwnerTelegramUserID: "7"}, f)
}

func TestExpiresAtIsUTC(t *testing.T) {
	t.Parallel()
	f := customer.Form{ClaudeTokenExpiresAt: "2027-01-31T12:00"}
	got, err := f.ExpiresAt()
	require.NoError(t, err)
	require.Equal(t, time.Date(2027, 1, 31, 12, 0, 0, 0, time.UTC), got, "the form's datetime-local is taken as UTC")
	f.ClaudeTokenExpiresAt = "2027-01-31T12:00:00+02:00"
	got, err = f.ExpiresAt()
	require.NoError(t, err)
	require.Equal(t, time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC), got)
	require.Equal(t, time.UTC, got.Location())
	f.ClaudeTokenExpiresAt = "31.01.2027"
	_, err = f.ExpiresAt()
	require.Error(t, err)
}
