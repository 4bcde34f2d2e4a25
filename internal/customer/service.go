package customer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
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
			if errors.Is(err, db.ErrNotFound) {
				return db.ErrNotFound
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

// Get returns a customer's detail, or [db.ErrNotFound].
func (s *Service) Get(ctx context.Context, customerID int64) (*Detail, error) {
	c, err := s.q.CustomerGet(ctx, s.pool, customerID)
	if err != nil {
		return nil, err
	}
	subs, err := s.q.SubscriptionListByCustomer(ctx, s.pool, customerID)
	if err != nil {
		return nil, err
	}
	d := &Detail{Customer: c, Subscriptions: subs, Secrets: map[string]bool{}}
	sec, err := s.q.CustomerSecretsGet(ctx, s.pool, customerID)
	switch {
	case errors.Is(err, db.ErrNotFound):
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
	Rows []db.SubscriptionListRow
	// Total is how many subscriptions match; when TotalAtLeast is set, at least that many (a
	// search's count stops past MaxSearchRows, so a search of a large fleet costs no more).
	Total        int64
	TotalAtLeast bool
	Page         int
	PerPage      int
	// TotalPages is how many pages can be shown: no more than Window subscriptions.
	TotalPages int
	// Window is how many subscriptions the pages reach (MaxListRows, or MaxSearchRows for a search).
	Window int
	// Truncated is set when more subscriptions match than the pages reach.
	Truncated bool
}

// setPages works out the pages from Total and Window, and shows page (from 1) or the nearest.
func (p *ListPage) setPages(page int) {
	reachable := min(p.Total, int64(p.Window))
	p.Truncated = p.Total > int64(p.Window) || p.TotalAtLeast
	p.TotalPages = max(int((reachable+int64(p.PerPage)-1)/int64(p.PerPage)), 1)
	p.Page = min(max(page, 1), p.TotalPages)
}

// MaxListRows bounds how deep the list pages: reading a page costs the rows before it, so pages
// stop after the first MaxListRows subscriptions of a sort (a search or filter finds the others),
// and a request costs the same at 10,000 subscriptions as at 1,000,000.
const MaxListRows = 2000

// MaxSearchRows is MaxListRows for a search, which costs more per row (the trigram match): pages
// reach the first MaxSearchRows matches, and a search's count stops there.
const MaxSearchRows = 500

// MinSearchLength is the shortest search: a substring search is served by trigrams (three
// characters); a shorter one would read the whole table.
const MinSearchLength = 3

// Sorts lists the accepted sort keys.
var Sorts = []string{"", "email", "name", "status", "updated"}

// List returns one page of the subscriptions list. Unknown filters are rejected. A page past the
// last is shown as the last.
func (s *Service) List(ctx context.Context, p ListParams) (*ListPage, error) {
	return s.list(ctx, p, MaxListRows, MaxSearchRows)
}

// list is List with the windows the pages reach, without and with a search.
func (s *Service) list(ctx context.Context, p ListParams, window, searchWindow int) (*ListPage, error) {
	p.Search = strings.TrimSpace(p.Search)
	if len(p.Search) > 200 {
		return nil, FieldErrors{"q": "Search for at most 200 characters."}
	}
	if !utf8.ValidString(p.Search) || strings.IndexFunc(p.Search, unicode.IsControl) >= 0 {
		return nil, FieldErrors{"q": "The search contains characters that are not allowed."}
	}
	if p.Search != "" && utf8.RuneCountInString(p.Search) < MinSearchLength {
		return nil, FieldErrors{"q": fmt.Sprintf("Search for at least %d characters.", MinSearchLength)}
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
	search := likeEscape(p.Search)
	out := &ListPage{PerPage: p.PerPage, Window: window}
	if search == "" {
		// The maintained counts: exact, and no row is counted.
		counts, err := s.CountByStatus(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range counts {
			if p.Status == "" || p.Status == c.Status {
				out.Total += c.Count
			}
		}
		out.setPages(p.Page)
		rows, err := s.q.SubscriptionList(ctx, database.PlanPerCall(s.pool), db.SubscriptionListParams{
			Status: p.Status, Sort: p.Sort, Lim: int32(p.PerPage), Off: int32((out.Page - 1) * p.PerPage)})
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out.Rows = rows
		return out, nil
	}
	out.Window = searchWindow
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.PlannerPreferIndexes(ctx, tx); err != nil {
			return fmt.Errorf("prefer indexes: %w", err)
		}
		n, err := s.q.SubscriptionCountUpTo(ctx, database.PlanPerCall(tx), db.SubscriptionCountUpToParams{
			Status: p.Status, Search: search, Cap: int32(searchWindow + 1)})
		if err != nil {
			return fmt.Errorf("count subscriptions: %w", err)
		}
		out.Total, out.TotalAtLeast = min(n, int64(searchWindow)), n > int64(searchWindow)
		out.setPages(p.Page)
		if !out.TotalAtLeast {
			// Few matches: read them all and sort, rather than walk the sort's index for them.
			if err := s.q.PlannerReadMatches(ctx, tx); err != nil {
				return fmt.Errorf("read matches: %w", err)
			}
		}
		out.Rows, err = s.q.SubscriptionList(ctx, database.PlanPerCall(tx), db.SubscriptionListParams{
			Status: p.Status, Search: search, Sort: p.Sort, Lim: int32(p.PerPage), Off: int32((out.Page - 1) * p.PerPage)})
		if err != nil {
			return fmt.Errorf("list subscriptions: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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

// statusCountsFoldAt is how many unfolded deltas make a reader fold them into the counts.
const statusCountsFoldAt = 100

// CountByStatus counts subscriptions per provisioning status (statuses with none are left out),
// from the counts the database maintains: the cost does not grow with the table.
func (s *Service) CountByStatus(ctx context.Context) ([]StatusCount, error) {
	rows, err := s.q.SubscriptionCountByStatus(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("count subscriptions by status: %w", err)
	}
	out := make([]StatusCount, 0, len(rows))
	var deltas int64
	for _, r := range rows {
		deltas += r.Deltas
		if r.N != 0 {
			out = append(out, StatusCount{Status: r.Status, Count: r.N})
		}
	}
	if deltas >= statusCountsFoldAt {
		if err := s.q.SubscriptionStatusCountsFold(ctx, s.pool); err != nil {
			return nil, fmt.Errorf("fold subscription counts: %w", err)
		}
	}
	return out, nil
}
