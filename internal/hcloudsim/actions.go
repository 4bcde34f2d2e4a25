package hcloudsim

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// action is a Hetzner action with what the simulator needs to report its progress.
type action struct {
	schema.Action
	realStart time.Time
	realDur   time.Duration
}

// newAction registers a running action expected to take the simulated duration d; mu must be
// held.
func (s *Simulator) newAction(command string, d time.Duration, resources ...schema.ActionResourceReference) *action {
	a := &action{
		Action: schema.Action{ID: s.id("action"), Status: string(hcloud.ActionStatusRunning), Command: command,
			Started: s.now(), Resources: resources},
		realStart: time.Now(),
		realDur:   s.scale(d),
	}
	s.actions[a.ID] = a
	return a
}

// finish ends a running action, in error when code is set; mu must be held.
func (s *Simulator) finish(a *action, code, message string) {
	if a == nil || a.Status != string(hcloud.ActionStatusRunning) {
		return
	}
	now := s.now()
	a.Finished = &now
	a.Progress = 100
	a.Status = string(hcloud.ActionStatusSuccess)
	if code != "" {
		a.Status = string(hcloud.ActionStatusError)
		a.Error = &schema.ActionError{Code: code, Message: message}
	}
}

// wire renders the action with its progress estimated from the elapsed real time.
func (a *action) wire() schema.Action {
	w := a.Action
	w.Resources = slices.Clone(nonNil(a.Resources))
	if w.Status == string(hcloud.ActionStatusRunning) && a.realDur > 0 {
		w.Progress = min(99, int(100*time.Since(a.realStart)/a.realDur))
	}
	return w
}

func serverRef(id int64) schema.ActionResourceReference {
	return schema.ActionResourceReference{ID: id, Type: string(hcloud.ActionResourceTypeServer)}
}

// listActions answers GET /actions?id=1&id=2: the poller reads many actions in one request. As
// the spec has it (since listing arbitrary actions was removed on 2025-01-30), it takes only id
// and answers every requested action that exists, without pagination meta; an ID it does not
// know is simply missing from the answer.
func (s *Simulator) listActions(w http.ResponseWriter, r *http.Request) *apiError {
	ids, aerr := actionIDs(r)
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	var out []schema.Action
	for id := range ids {
		if a, ok := s.actions[id]; ok {
			out = append(out, a.wire())
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b schema.Action) int { return cmp.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, struct {
		Actions []schema.Action `json:"actions"`
	}{nonNil(out)})
	return nil
}

// ForgetAction drops an action, as Hetzner eventually does with old ones: GET /actions no longer
// returns it and GET /actions/{id} answers 404. It reports whether the action existed.
func (s *Simulator) ForgetAction(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.actions[id]
	delete(s.actions, id)
	return ok
}

// listServerTypeActions answers GET /servers/actions?id=…: like GET /actions, restricted to
// actions on servers.
func (s *Simulator) listServerTypeActions(w http.ResponseWriter, r *http.Request) *apiError {
	ids, aerr := actionIDs(r)
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	out := s.filterActions(r, func(a *action) bool { return ids[a.ID] && onServer(a) })
	s.mu.Unlock()
	return writeActions(w, r, out)
}

func (s *Simulator) getServerTypeAction(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "action")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.actions[id]
	if !ok || !onServer(a) {
		return errNotFound("action")
	}
	writeJSON(w, http.StatusOK, schema.ActionGetResponse{Action: a.wire()})
	return nil
}

func onServer(a *action) bool {
	return slices.ContainsFunc(a.Resources, func(rr schema.ActionResourceReference) bool { return rr.Type == "server" })
}

// actionIDs reads the required, repeatable ?id= of action lists.
func actionIDs(r *http.Request) (map[int64]bool, *apiError) {
	ids := map[int64]bool{}
	for _, v := range r.URL.Query()["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 1 {
			return nil, errInvalid(fieldError{Name: "id", Messages: []string{"must be a positive integer"}})
		}
		ids[id] = true
	}
	if len(ids) == 0 {
		return nil, errInvalid(fieldError{Name: "id", Messages: []string{"Missing data for required field."}})
	}
	return ids, nil
}

func touches(a *action, serverID int64) bool {
	return slices.ContainsFunc(a.Resources, func(rr schema.ActionResourceReference) bool {
		return rr.Type == "server" && rr.ID == serverID
	})
}

// filterActions applies keep and ?status=, ordered by ID; mu must be held.
func (s *Simulator) filterActions(r *http.Request, keep func(*action) bool) []schema.Action {
	statuses := r.URL.Query()["status"]
	var out []schema.Action
	for _, a := range s.actions {
		if keep(a) && (len(statuses) == 0 || slices.Contains(statuses, a.Status)) {
			out = append(out, a.wire())
		}
	}
	slices.SortFunc(out, func(a, b schema.Action) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func writeActions(w http.ResponseWriter, r *http.Request, all []schema.Action) *apiError {
	page, meta, aerr := pageOf(r, all)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, struct {
		Actions []schema.Action `json:"actions"`
		Meta    listMeta        `json:"meta"`
	}{nonNil(page), meta})
	return nil
}

func (s *Simulator) getAction(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "action")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.actions[id]
	if !ok {
		return errNotFound("action")
	}
	writeJSON(w, http.StatusOK, schema.ActionGetResponse{Action: a.wire()})
	return nil
}

func (s *Simulator) getServerAction(w http.ResponseWriter, r *http.Request) *apiError {
	sid, aerr := pathID(r, "id", "server")
	if aerr != nil {
		return aerr
	}
	aid, aerr := pathID(r, "action_id", "action")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.actions[aid]
	if !ok || !touches(a, sid) {
		return errNotFound("action")
	}
	writeJSON(w, http.StatusOK, schema.ActionGetResponse{Action: a.wire()})
	return nil
}

// actionFailure consumes a matching ActionFailure fault; mu must be held.
// actionStalled reports whether an ActionStall fault holds command on server; mu must be held.
func (s *Simulator) actionStalled(command, server string) bool {
	for _, st := range s.faults.ActionStalls {
		if st.Command == command && (st.Server == "" || st.Server == server) {
			return true
		}
	}
	return false
}

func (s *Simulator) actionFailure(command, server string) (code, message string) {
	f := &s.faults
	for i := range f.ActionFailures {
		af := &f.ActionFailures[i]
		if af.Command != command || (af.Server != "" && af.Server != server) {
			continue
		}
		code, message = cmp.Or(af.Code, "resource_unavailable"), cmp.Or(af.Message, "injected fault: "+command+" failed")
		if af.Count > 0 {
			af.Count--
			if af.Count == 0 {
				f.ActionFailures = slices.Delete(f.ActionFailures, i, i+1)
			}
		}
		return code, message
	}
	return "", ""
}
