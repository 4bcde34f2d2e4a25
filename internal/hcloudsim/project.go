package hcloudsim

import (
	"cmp"
	"fmt"
	"net/http"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// limitDetails is resource_limit_exceeded's details as the spec's example has them:
// {"limits": [{"name": "project_limit"}]}.
type limitDetails struct {
	Limits []limitName `json:"limits"`
}

type limitName struct {
	Name string `json:"name"`
}

// admitServer decides whether the project takes one more server of type st in loc, as Hetzner
// does before it creates one: the project's server limit (403 resource_limit_exceeded), the type's
// availability for order in the location at the simulated today (412 resource_unavailable, the
// spec's "not available for order"), then injected capacity faults (412 resource_unavailable or
// 422 placement_error). mu must be held.
func (s *Simulator) admitServer(st schema.ServerType, loc schema.Location) *apiError {
	if s.serverLimit > 0 && len(s.servers) >= s.serverLimit {
		return &apiError{status: http.StatusForbidden, code: hcloud.ErrorCodeResourceLimitExceeded,
			message: fmt.Sprintf("project limit exceeded: the project may hold %d servers", s.serverLimit),
			details: limitDetails{Limits: []limitName{{Name: "project_limit"}}}}
	}
	if ok, why := orderable(st, loc.Name, s.now()); !ok {
		return &apiError{status: http.StatusPreconditionFailed, code: hcloud.ErrorCodeResourceUnavailable, message: why}
	}
	f := &s.faults
	for i := range f.Capacity {
		cf := &f.Capacity[i]
		if cf.Location != loc.Name || (cf.ServerType != "" && cf.ServerType != st.Name) {
			continue
		}
		code := hcloud.ErrorCode(cmp.Or(cf.Code, string(hcloud.ErrorCodeResourceUnavailable)))
		if cf.Count > 0 {
			cf.Count--
			if cf.Count == 0 {
				f.Capacity = append(f.Capacity[:i], f.Capacity[i+1:]...)
			}
		}
		if code == hcloud.ErrorCodePlacementError {
			return &apiError{status: http.StatusUnprocessableEntity, code: code,
				message: fmt.Sprintf("no capacity to place a %s server in %s right now", st.Name, loc.Name)}
		}
		return &apiError{status: http.StatusPreconditionFailed, code: code,
			message: fmt.Sprintf("server type %s is currently unavailable in %s", st.Name, loc.Name)}
	}
	return nil
}

// SetServerLimit sets how many servers the project may hold (0: no limit). Servers being deleted
// count until they are gone, as on Hetzner.
func (s *Simulator) SetServerLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serverLimit = max(0, n)
}

// ServerLimit returns the project's server limit (0: none) and the servers it holds.
func (s *Simulator) ServerLimit() (limit, used int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverLimit, len(s.servers)
}

// SetNow moves the simulator's "today" (timestamps, and the date deprecations are checked
// against) to t; the clock runs on from there. The rate limiter keeps real time.
func (s *Simulator) SetNow(t time.Time) {
	s.clockOffset.Store(int64(t.Sub(s.cfg.Now())))
}

// Now is the simulator's "today".
func (s *Simulator) Now() time.Time {
	return s.cfg.Now().Add(time.Duration(s.clockOffset.Load())).UTC()
}
