package customer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/secrets"
)

// Service creates, edits, lists and shows customers with their subscription.
type Service struct {
	pool    *pgxpool.Pool
	q       *db.Queries
	keyring *secrets.Keyring
}

// NewService returns a Service encrypting secrets with keyring.
func NewService(pool *pgxpool.Pool, keyring *secrets.Keyring) *Service {
	return &Service{pool: pool, q: db.New(), keyring: keyring}
}

// SecretState says whether a secret is stored, and since when, without revealing it.
type SecretState struct {
	Set       bool
	UpdatedAt *time.Time
}

// Detail is a customer with their subscriptions and the state of their secrets.
type Detail struct {
	Customer      db.Customer
	Subscriptions []db.Subscription
	Claude        SecretState // access token, refresh token, expiry
	Telegram      SecretState // bot token, owner user ID
	Secrets       map[string]bool
}

// FormFor returns the edit form for a customer: everything but the secrets, which stay blank.
func (d *Detail) FormFor() Form {
	f := Form{Email: d.Customer.Email, Name: d.Customer.Name}
	if d.Customer.TelegramUserID != nil {
		f.TelegramUserID = strconv.FormatInt(*d.Customer.TelegramUserID, 10)
	}
	if len(d.Subscriptions) > 0 {
		s := d.Subscriptions[len(d.Subscriptions)-1]
		f.Plan, f.BillingStatus = s.Plan, s.BillingStatus
	}
	return f
}

// Create stores a new customer, their subscription and any secrets given, audited, in one
// transaction. Invalid input returns [FieldErrors] and writes nothing.
func (s *Service) Create(ctx context.Context, f Form, actor audit.Actor) (customerID, subscriptionID int64, err error) {
	f.Normalize()
	if errs := f.Validate(); errs != nil {
		return 0, 0, errs
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := s.q.CustomerCreate(ctx, tx, db.CustomerCreateParams{Email: f.Email, Name: f.Name, TelegramUserID: optInt(f.TelegramUserID)})
		if err != nil {
			return uniqueEmail(err)
		}
		sub, err := s.q.SubscriptionCreate(ctx, tx, db.SubscriptionCreateParams{CustomerID: c.ID, Plan: f.Plan, BillingStatus: f.BillingStatus})
		if err != nil {
			return fmt.Errorf("create subscription: %w", err)
		}
		if err := s.storeSecrets(ctx, tx, c.ID, f); err != nil {
			return err
		}
		customerID, subscriptionID = c.ID, sub.ID
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "customer_create", CustomerID: &c.ID, SubscriptionID: &sub.ID,
			Detail: fmt.Sprintf("plan %s, billing %s%s", f.Plan, f.BillingStatus, secretNote(f))})
	})
	return customerID, subscriptionID, err
}

// Update changes a customer, their latest subscription's plan and billing status, and the
// secrets that were filled in.
func (s *Service) Update(ctx context.Context, customerID int64, f Form, actor audit.Actor) error {
	f.Normalize()
	if errs := f.Validate(); errs != nil {
		return errs
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.q.CustomerUpdate(ctx, tx, db.CustomerUpdateParams{ID: customerID, Email: f.Email, Name: f.Name, TelegramUserID: optInt(f.TelegramUserID)}); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return database.ErrNotFound
			}
			return uniqueEmail(err)
		}
		subs, err := s.q.SubscriptionListByCustomer(ctx, tx, customerID)
		if err != nil {
			return fmt.Errorf("list subscriptions: %w", err)
		}
		var subID *int64
		if len(subs) > 0 {
			last := subs[len(subs)-1]
			subID = &last.ID
			if _, err := s.q.SubscriptionUpdatePlan(ctx, tx, db.SubscriptionUpdatePlanParams{ID: last.ID, Plan: f.Plan, BillingStatus: f.BillingStatus}); err != nil {
				return fmt.Errorf("update subscription: %w", err)
			}
		}
		if err := s.storeSecrets(ctx, tx, customerID, f); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "customer_update", CustomerID: &customerID, SubscriptionID: subID,
			Detail: fmt.Sprintf("plan %s, billing %s%s", f.Plan, f.BillingStatus, secretNote(f))})
	})
}

// Get returns a customer's detail, or [database.ErrNotFound].
func (s *Service) Get(ctx context.Context, customerID int64) (*Detail, error) {
	c, err := s.q.CustomerGet(ctx, s.pool, customerID)
	if err != nil {
		return nil, database.NotFound(err)
	}
	subs, err := s.q.SubscriptionListByCustomer(ctx, s.pool, customerID)
	if err != nil {
		return nil, err
	}
	d := &Detail{Customer: c, Subscriptions: subs, Secrets: map[string]bool{}}
	sec, err := s.q.CustomerSecretsGet(ctx, s.pool, customerID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, err
	default:
		d.Secrets["claude_access_token"] = sec.ClaudeAccessToken != nil
		d.Secrets["claude_refresh_token"] = sec.ClaudeRefreshToken != nil
		d.Secrets["claude_token_expires_at"] = sec.ClaudeTokenExpiresAt != nil
		d.Secrets["telegram_bot_token"] = sec.TelegramBotToken != nil
		d.Secrets["owner_telegram_user_id"] = sec.OwnerTelegramUserID != nil
		d.Claude = SecretState{Set: sec.ClaudeAccessToken != nil, UpdatedAt: sec.ClaudeUpdatedAt}
		d.Telegram = SecretState{Set: sec.TelegramBotToken != nil, UpdatedAt: sec.TelegramUpdatedAt}
	}
	return d, nil
}

// ListParams selects a page of the subscriptions list.
type ListParams struct {
	Search  string
	Status  string // "" all, "none" never provisioned, or a provisioning status
	Sort    string // "", "email", "name", "status", "updated"
	Page    int    // from 1
	PerPage int
}

// ListPage is one page of subscriptions with their customers.
type ListPage struct {
	Rows       []db.SubscriptionListRow
	Total      int64
	Page       int
	PerPage    int
	TotalPages int
}

// Sorts lists the accepted sort keys.
var Sorts = []string{"", "email", "name", "status", "updated"}

// List returns one page of the subscriptions list. Unknown filters are rejected.
func (s *Service) List(ctx context.Context, p ListParams) (*ListPage, error) {
	p.Search = strings.TrimSpace(p.Search)
	if len(p.Search) > 200 {
		return nil, FieldErrors{"q": "Search for at most 200 characters."}
	}
	if !utf8.ValidString(p.Search) || strings.ContainsRune(p.Search, 0) {
		return nil, FieldErrors{"q": "The search contains characters that are not allowed."}
	}
	if p.Status != "" && p.Status != "none" && !db.ProvisioningStatus(p.Status).Valid() {
		return nil, FieldErrors{"status": "Unknown status."}
	}
	if !contains(Sorts, p.Sort) {
		return nil, FieldErrors{"sort": "Unknown sort order."}
	}
	if p.PerPage <= 0 || p.PerPage > 200 {
		p.PerPage = 50
	}
	if p.Page < 1 {
		p.Page = 1
	}
	search := likeEscape(p.Search)
	total, err := s.q.SubscriptionCount(ctx, s.pool, db.SubscriptionCountParams{Status: p.Status, Search: search})
	if err != nil {
		return nil, fmt.Errorf("count subscriptions: %w", err)
	}
	rows, err := s.q.SubscriptionList(ctx, s.pool, db.SubscriptionListParams{
		Status: p.Status, Search: search, Sort: p.Sort, Lim: int32(p.PerPage), Off: int32((p.Page - 1) * p.PerPage),
	})
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	pages := int((total + int64(p.PerPage) - 1) / int64(p.PerPage))
	return &ListPage{Rows: rows, Total: total, Page: p.Page, PerPage: p.PerPage, TotalPages: max(pages, 1)}, nil
}

// storeSecrets encrypts the secret fields that were filled in, bound to the customer's row.
func (s *Service) storeSecrets(ctx context.Context, tx pgx.Tx, customerID int64, f Form) error {
	params := db.CustomerSecretsUpsertParams{CustomerID: customerID}
	enc := func(column, value string) ([]byte, error) {
		if value == "" {
			return nil, nil
		}
		ct, err := s.keyring.Encrypt([]byte(value), secrets.AD{Table: "customer_secrets", Column: column, RowID: customerID})
		if err != nil {
			return nil, fmt.Errorf("encrypt %s: %w", column, err)
		}
		return ct, nil
	}
	expires := ""
	if f.ClaudeTokenExpiresAt != "" {
		t, _ := f.ExpiresAt()
		expires = t.Format(time.RFC3339)
	}
	var err error
	for _, c := range []struct {
		dst    *[]byte
		column string
		value  string
	}{
		{&params.ClaudeAccessToken, "claude_access_token", f.ClaudeAccessToken},
		{&params.ClaudeRefreshToken, "claude_refresh_token", f.ClaudeRefreshToken},
		{&params.ClaudeTokenExpiresAt, "claude_token_expires_at", expires},
		{&params.TelegramBotToken, "telegram_bot_token", f.TelegramBotToken},
		{&params.OwnerTelegramUserID, "owner_telegram_user_id", f.OwnerTelegramUserID},
	} {
		if *c.dst, err = enc(c.column, c.value); err != nil {
			return err
		}
	}
	if _, err := s.q.CustomerSecretsUpsert(ctx, tx, params); err != nil {
		return fmt.Errorf("store secrets: %w", err)
	}
	return nil
}

// secretNote names (never shows) the secrets an action changed, for the audit log.
func secretNote(f Form) string {
	var names []string
	for _, c := range []struct{ name, v string }{
		{"Claude access token", f.ClaudeAccessToken}, {"Claude refresh token", f.ClaudeRefreshToken},
		{"Claude token expiry", f.ClaudeTokenExpiresAt}, {"Telegram bot token", f.TelegramBotToken},
		{"owner Telegram ID", f.OwnerTelegramUserID},
	} {
		if c.v != "" {
			names = append(names, c.name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; secrets set: " + strings.Join(names, ", ")
}

func uniqueEmail(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && strings.Contains(pgErr.ConstraintName, "email") {
		return FieldErrors{"email": "A customer with this email address already exists."}
	}
	return fmt.Errorf("save customer: %w", err)
}

func optInt(s string) *int64 {
	if s == "" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// StatusCount is how many subscriptions are in one provisioning status ("none": never provisioned).
type StatusCount struct {
	Status string
	Count  int64
}

// CountByStatus counts subscriptions per provisioning status.
func (s *Service) CountByStatus(ctx context.Context) ([]StatusCount, error) {
	rows, err := s.q.SubscriptionCountByStatus(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("count subscriptions by status: %w", err)
	}
	out := make([]StatusCount, 0, len(rows))
	for _, r := range rows {
		out = append(out, StatusCount{Status: r.Status, Count: r.N})
	}
	return out, nil
}
