package provision

import (
	"errors"
	"fmt"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// stepFailure ends a step at once as failed, with a reason an admin can act on.
type stepFailure struct{ reason string }

func (f *stepFailure) Error() string { return f.reason }

func fail(format string, args ...any) error {
	return &stepFailure{reason: fmt.Sprintf(format, args...)}
}

// ReasonLimitReached starts the failure reason of a step Hetzner refused because the project's
// server limit is reached (notifications look for it).
const ReasonLimitReached = "Hetzner's project limit is reached"

// errorCodeTokenReadonly is Hetzner's 401 token_readonly: "The token is only allowed to perform
// GET requests" (the error table of cloud.spec.json). hcloud-go has no ErrorCode constant for it.
const errorCodeTokenReadonly hcloud.ErrorCode = "token_readonly"

// transientCodes are Hetzner errors worth retrying with backoff (hcloud-go already retries some
// of them a few times per request).
var transientCodes = []hcloud.ErrorCode{
	hcloud.ErrorCodeLocked, hcloud.ErrorCodeServerError, hcloud.ErrorCodeBadGateway,
	hcloud.ErrorCodeTimeout, hcloud.ErrorCodeConflict, hcloud.ErrorCodeRateLimitExceeded,
	hcloud.ErrorCodeResourceUnavailable, hcloud.ErrorCodeMaintenance, hcloud.ErrorCodeRobotUnavailable,
	hcloud.ErrorCodeServiceError, hcloud.ErrorCodeUnknownError,
}

// transientHetzner reports whether an error Hetzner answered is worth retrying: one of
// [transientCodes], or any 5xx answer. The latter covers 503 `unavailable` ("A service or product
// is currently not available", the error table of Hetzner's cloud.spec.json), a code hcloud-go
// has no ErrorCode constant for, so it is recognised by its status rather than a made-up constant.
func transientHetzner(err error) bool {
	if hcloud.IsError(err, transientCodes...) {
		return true
	}
	var herr hcloud.Error
	if !errors.As(err, &herr) {
		return false
	}
	resp := herr.Response()
	return resp != nil && resp.StatusCode >= 500
}

// hetznerError classifies an error of a Hetzner call made while doing what: transient errors come
// back wrapped (the step is retried), anything else becomes a [stepFailure] saying what to do.
func hetznerError(doing string, err error) error {
	if err == nil {
		return nil
	}
	var herr hcloud.Error
	if !errors.As(err, &herr) {
		// Network trouble, timeouts, a 5xx without Hetzner's envelope: try again.
		return fmt.Errorf("%s: %w", doing, err)
	}
	if transientHetzner(err) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	switch herr.Code {
	case hcloud.ErrorCodeUnauthorized:
		return fail("Hetzner refused the API token while trying to %s (unauthorized). Check HCLOUD_TOKEN, then Retry.", doing)
	case hcloud.ErrorCodeForbidden:
		return fail("The Hetzner API token may not %s (forbidden: %s). Give the token read & write permission, then Retry.", doing, herr.Message)
	case hcloud.ErrorCodeResourceLimitExceeded:
		return fail(ReasonLimitReached+", so it would not %s (%s). Ask Hetzner to raise the limit or remove unused servers, then Retry.", doing, herr.Message)
	case hcloud.ErrorCodeInvalidInput:
		return fail("Hetzner rejected the request to %s as invalid (%s). Check the server type, image and location settings, then Retry.", doing, herr.Message)
	}
	return fail("Hetzner refused to %s (%s: %s). Retry, or Destroy to clean up.", doing, herr.Code, herr.Message)
}
