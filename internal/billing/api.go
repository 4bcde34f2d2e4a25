package billing

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/audit"
	"github.com/rachelcloud/admin/internal/db"
)

// ScopeBilling is the scope of tokens that may report billing status changes.
const ScopeBilling = "billing"

// tokenPrefix marks Rachel billing tokens (so a leaked one is recognisable in a scan).
const tokenPrefix = "rcb_"

// Token is an API token as listed (never the token itself).
type Token = db.ApiToken

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// CreateToken makes a token with the billing scope and returns it: the only time it is shown.
func (s *Service) CreateToken(ctx context.Context, name string, actor audit.Actor) (string, Token, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return "", Token{}, fmt.Errorf("token name: %w", ErrInvalid)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", Token{}, fmt.Errorf("generate token: %w", err)
	}
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	var row Token
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		row, err = s.q.APITokenCreate(ctx, tx, db.APITokenCreateParams{Name: name, Scope: ScopeBilling,
			TokenHash: hashToken(tok), Prefix: tok[:len(tokenPrefix)+6], CreatedBy: actor.Email})
		if err != nil {
			return fmt.Errorf("store token: %w", err)
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "api_token.create",
			Detail: fmt.Sprintf("API token %q (%s…, scope %s) created", name, row.Prefix, ScopeBilling)})
	})
	return tok, row, err
}

// RevokeToken revokes a token at once, audited. Revoking twice changes nothing.
func (s *Service) RevokeToken(ctx context.Context, id int64, actor audit.Actor) error {
	return inTx(ctx, s.pool, func(tx pgx.Tx) error {
		row, err := s.q.APITokenRevoke(ctx, tx, db.APITokenRevokeParams{ID: id, RevokedBy: actor.Email})
		if errors.Is(err, db.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("revoke token %d: %w", id, err)
		}
		return audit.Record(ctx, tx, actor, audit.Entry{Action: "api_token.revoke",
			Detail: fmt.Sprintf("API token %q (%s…) revoked", row.Name, row.Prefix)})
	})
}

// Tokens lists the tokens, live first.
func (s *Service) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.q.APITokenList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return rows, nil
}

// ErrUnauthorized means the request's token is missing, unknown, revoked or of another scope. The
// refusal is audited (without the token).
var ErrUnauthorized = errors.New("unauthorized")

// Authenticate finds the live token with scope for the Authorization header's bearer token; a
// refusal is audited with the client's address.
func (s *Service) Authenticate(ctx context.Context, authorization, scope, ip string) (*Token, error) {
	reason := ""
	var tok Token
	bearer, ok := strings.CutPrefix(authorization, "Bearer ")
	bearer = strings.TrimSpace(bearer)
	switch {
	case !ok || bearer == "":
		reason = "no bearer token"
	default:
		var err error
		tok, err = s.q.APITokenByHash(ctx, s.pool, hashToken(bearer))
		switch {
		case errors.Is(err, db.ErrNotFound):
			reason = "unknown token"
		case err != nil:
			return nil, fmt.Errorf("look up API token: %w", err)
		case tok.RevokedAt != nil:
			reason = fmt.Sprintf("revoked token %q (%s…)", tok.Name, tok.Prefix)
		case tok.Scope != scope:
			reason = fmt.Sprintf("token %q (%s…) lacks scope %s", tok.Name, tok.Prefix, scope)
		}
	}
	if reason != "" {
		if err := audit.Record(ctx, s.pool, audit.Actor{Email: "api", IP: ip}, audit.Entry{Action: "api.refused",
			Detail: "Billing API request refused: " + reason}); err != nil {
			return nil, err
		}
		return nil, ErrUnauthorized
	}
	if err := s.q.APITokenTouch(ctx, s.pool, tok.ID); err != nil {
		return nil, fmt.Errorf("touch API token: %w", err)
	}
	return &tok, nil
}

// StatusReport is the billing system's request body.
type StatusReport struct {
	SubscriptionID int64  `json:"subscription_id"`
	BillingStatus  string `json:"billing_status"`
}

// StatusAnswer is the response body of an accepted report.
type StatusAnswer struct {
	SubscriptionID int64      `json:"subscription_id"`
	BillingStatus  string     `json:"billing_status"`
	Changed        bool       `json:"changed"`
	DestroyAfter   *time.Time `json:"destroy_after,omitempty"`
	Error          string     `json:"error,omitempty"`
}

// Response is what the handler writes.
type Response struct {
	Status   int
	Body     []byte
	Replayed bool // answered from an earlier request with the same Idempotency-Key
}

var billingStatuses = map[string]bool{"trialing": true, "active": true, "past_due": true, "canceled": true}

func errorResponse(status int, msg string) Response {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return Response{Status: status, Body: b}
}

// Report applies a status report from the billing system. The same Idempotency-Key with the same
// body is answered as the first time and changes nothing; with another body it is refused.
// Invalid requests are refused with nothing stored, so they may be corrected and sent again.
func (s *Service) Report(ctx context.Context, tok *Token, key string, body []byte, ip string) (Response, error) {
	if key == "" || len(key) > 200 || !utf8.ValidString(key) {
		return errorResponse(http.StatusBadRequest, "an Idempotency-Key header of 1 to 200 characters is required"), nil
	}
	var rep StatusReport
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil || dec.More() {
		return errorResponse(http.StatusBadRequest, `the body must be JSON: {"subscription_id": 42, "billing_status": "canceled"}`), nil
	}
	if rep.SubscriptionID <= 0 {
		return errorResponse(http.StatusUnprocessableEntity, "subscription_id must be a positive integer"), nil
	}
	if !billingStatuses[rep.BillingStatus] {
		return errorResponse(http.StatusUnprocessableEntity, "billing_status must be one of trialing, active, past_due, canceled"), nil
	}
	sum := sha256.Sum256(body)
	var out Response
	err := inTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := s.q.BillingReportClaim(ctx, tx, db.BillingReportClaimParams{TokenID: tok.ID, IdempotencyKey: key, RequestHash: sum[:]})
		if errors.Is(err, db.ErrNotFound) {
			prev, err := s.q.BillingReportGet(ctx, tx, db.BillingReportGetParams{TokenID: tok.ID, IdempotencyKey: key})
			if err != nil {
				return fmt.Errorf("read earlier report: %w", err)
			}
			if !bytes.Equal(prev.RequestHash, sum[:]) {
				out = errorResponse(http.StatusUnprocessableEntity, "this Idempotency-Key was used with a different request")
				return nil
			}
			out = Response{Status: int(prev.ResponseStatus), Body: []byte(prev.ResponseBody), Replayed: true}
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		out, err = s.apply(ctx, tx, tok, rep, ip)
		if err != nil {
			return err
		}
		if out.Status == http.StatusNotFound {
			return errRollback // nothing stored: the key stays free
		}
		return s.q.BillingReportAnswer(ctx, tx, db.BillingReportAnswerParams{TokenID: tok.ID, IdempotencyKey: key,
			ResponseStatus: int32(out.Status), ResponseBody: string(out.Body)})
	})
	if errors.Is(err, errRollback) {
		return out, nil
	}
	return out, err
}

var errRollback = errors.New("rollback")

// apply changes the billing status in tx, audited with the token as actor.
func (s *Service) apply(ctx context.Context, tx pgx.Tx, tok *Token, rep StatusReport, ip string) (Response, error) {
	sub, err := s.q.BillingSubscriptionForUpdate(ctx, tx, rep.SubscriptionID)
	if errors.Is(err, db.ErrNotFound) {
		return errorResponse(http.StatusNotFound, fmt.Sprintf("no subscription %d", rep.SubscriptionID)), nil
	}
	if err != nil {
		return Response{}, fmt.Errorf("read subscription %d: %w", rep.SubscriptionID, err)
	}
	ans := StatusAnswer{SubscriptionID: sub.ID, BillingStatus: rep.BillingStatus}
	if sub.BillingStatus != rep.BillingStatus {
		if err := s.q.BillingStatusSet(ctx, tx, db.BillingStatusSetParams{ID: sub.ID, BillingStatus: rep.BillingStatus}); err != nil {
			return Response{}, fmt.Errorf("set billing status of subscription %d: %w", sub.ID, err)
		}
		now := s.now()
		if err := s.q.BillingSince(ctx, tx, db.BillingSinceParams{SubscriptionID: sub.ID, Since: now}); err != nil {
			return Response{}, fmt.Errorf("record billing change of subscription %d: %w", sub.ID, err)
		}
		ans.Changed = true
		pol, err := s.q.BillingPolicyGet(ctx, tx)
		if err != nil {
			return Response{}, fmt.Errorf("read billing policy: %w", err)
		}
		if pol.Enabled && (rep.BillingStatus == "canceled" || rep.BillingStatus == "past_due") {
			days := pol.CanceledGraceDays
			if rep.BillingStatus == "past_due" {
				days = pol.PastDueGraceDays
			}
			at := now.Add(time.Duration(days) * 24 * time.Hour)
			ans.DestroyAfter = &at
		}
		if err := audit.Record(ctx, tx, audit.Actor{Email: "api-token:" + tok.Name, IP: ip}, audit.Entry{
			Action: "billing.status", CustomerID: &sub.CustomerID, SubscriptionID: &sub.ID,
			Detail: fmt.Sprintf("billing %s → %s (reported by the billing system)", sub.BillingStatus, rep.BillingStatus)}); err != nil {
			return Response{}, err
		}
	}
	b, err := json.Marshal(ans)
	if err != nil {
		return Response{}, fmt.Errorf("encode answer: %w", err)
	}
	return Response{Status: http.StatusOK, Body: b}, nil
}
