package hcloudsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// apiError is an error answered in Hetzner's envelope {"error": {code, message, details}}.
type apiError struct {
	status  int
	code    hcloud.ErrorCode
	message string
	details any
}

func (e *apiError) Error() string { return string(e.code) + ": " + e.message }

// fieldError is one entry of invalid_input / uniqueness_error details.
type fieldError struct {
	Name     string   `json:"name"`
	Messages []string `json:"messages,omitempty"`
}

type fieldDetails struct {
	Fields []fieldError `json:"fields"`
}

func errNotFound(what string) *apiError {
	return &apiError{status: http.StatusNotFound, code: hcloud.ErrorCodeNotFound, message: what + " not found"}
}

// errInvalid builds invalid_input for one or more fields; the message follows Hetzner's
// "invalid input in field 'x'" wording so that humans reading logs see the same text.
func errInvalid(fields ...fieldError) *apiError {
	msg := "invalid input"
	if len(fields) > 0 {
		msg = fmt.Sprintf("invalid input in field '%s'", fields[0].Name)
		if len(fields[0].Messages) > 0 {
			msg += ": " + fields[0].Messages[0]
		}
	}
	return &apiError{status: http.StatusUnprocessableEntity, code: hcloud.ErrorCodeInvalidInput, message: msg,
		details: fieldDetails{Fields: fields}}
}

func errUniqueness(message, field string) *apiError {
	return &apiError{status: http.StatusConflict, code: hcloud.ErrorCodeUniquenessError, message: message,
		details: fieldDetails{Fields: []fieldError{{Name: field}}}}
}

// codeUnavailable is Hetzner's 503 unavailable, "A service or product is currently not
// available" (the error table of cloud.spec.json); hcloud-go has no ErrorCode constant for it.
const codeUnavailable hcloud.ErrorCode = "unavailable"

// codeTokenReadonly is Hetzner's 401 token_readonly, "The token is only allowed to perform GET
// requests" (the error table of cloud.spec.json); hcloud-go has no ErrorCode constant for it.
const codeTokenReadonly hcloud.ErrorCode = "token_readonly"

// statusCodes maps fault statuses to the code Hetzner sends with them.
var statusCodes = map[int]hcloud.ErrorCode{
	http.StatusInternalServerError: hcloud.ErrorCodeServerError,
	http.StatusBadGateway:          hcloud.ErrorCodeBadGateway,
	http.StatusServiceUnavailable:  codeUnavailable,
	http.StatusGatewayTimeout:      hcloud.ErrorCodeTimeout,
	http.StatusTooManyRequests:     hcloud.ErrorCodeRateLimitExceeded,
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"server_error","message":"encoding the response failed","details":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) {
	type envelope struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details any    `json:"details"`
	}
	writeJSON(w, e.status, map[string]envelope{"error": {Code: string(e.code), Message: e.message, Details: e.details}})
}

// decodeBody reads a JSON request body: malformed JSON is json_error (400) as the spec's error
// table says, a well-formed body with a wrongly typed field is invalid_input naming the field.
func decodeBody(r *http.Request, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			name := te.Field
			if name == "" {
				name = "body"
			}
			return errInvalid(fieldError{Name: name, Messages: []string{"has the wrong type, expected " + te.Type.String()}})
		}
		return &apiError{status: http.StatusBadRequest, code: hcloud.ErrorCodeJSONError, message: "invalid JSON input in your request: " + err.Error()}
	}
	return nil
}

// pagination is meta.pagination; the nullable fields are pointers so that the first and last
// pages carry null, as the spec describes.
type pagination struct {
	Page         int  `json:"page"`
	PerPage      int  `json:"per_page"`
	PreviousPage *int `json:"previous_page"`
	NextPage     *int `json:"next_page"`
	LastPage     *int `json:"last_page"`
	TotalEntries *int `json:"total_entries"`
}

type listMeta struct {
	Pagination pagination `json:"pagination"`
}

// paginate reads page/per_page (default 25, at most 50) and returns the bounds of the
// requested page within total items.
func paginate(r *http.Request, total int) (lo, hi int, meta listMeta, aerr *apiError) {
	q := r.URL.Query()
	page, perPage := 1, 25
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, meta, errInvalid(fieldError{Name: "page", Messages: []string{"must be a positive integer"}})
		}
		page = n
	}
	if s := q.Get("per_page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, meta, errInvalid(fieldError{Name: "per_page", Messages: []string{"must be a positive integer"}})
		}
		perPage = min(n, 50)
	}
	last := max(1, (total+perPage-1)/perPage)
	lo = min(total, (page-1)*perPage)
	hi = min(total, lo+perPage)
	p := pagination{Page: page, PerPage: perPage, TotalEntries: &total}
	if page > 1 {
		prev := min(page-1, last)
		p.PreviousPage = &prev
	}
	if page < last {
		next := page + 1
		p.NextPage = &next
		p.LastPage = &last
	}
	return lo, hi, listMeta{Pagination: p}, nil
}

// pageOf slices items by the request's pagination parameters.
func pageOf[T any](r *http.Request, items []T) ([]T, listMeta, *apiError) {
	lo, hi, meta, err := paginate(r, len(items))
	if err != nil {
		return nil, meta, err
	}
	return items[lo:hi], meta, nil
}

// pathID parses the {id} path value; a non-numeric ID cannot exist, so it is not_found.
func pathID(r *http.Request, name, what string) (int64, *apiError) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id < 1 {
		return 0, errNotFound(what)
	}
	return id, nil
}

// selectorParam parses ?label_selector=.
func selectorParam(r *http.Request) (labelSelector, *apiError) {
	sel, err := parseLabelSelector(r.URL.Query().Get("label_selector"))
	if err != nil {
		return nil, errInvalid(fieldError{Name: "label_selector", Messages: []string{err.Error()}})
	}
	return sel, nil
}

// nameMatches applies ?name= (exact match, as Hetzner does).
func nameMatches(r *http.Request, name string) bool {
	n := r.URL.Query().Get("name")
	return n == "" || n == name
}

// bearerToken extracts the token of an "Authorization: Bearer X" header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}
