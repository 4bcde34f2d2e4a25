package hcloudsim

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"golang.org/x/crypto/ssh"
)

type sshKey struct {
	schema.SSHKey
}

func (k *sshKey) wire() schema.SSHKey {
	w := k.SSHKey
	w.Labels = maps.Clone(k.Labels)
	return w
}

// sortedKeys returns the SSH keys ordered by ID, as Hetzner lists them; mu must be held.
func (s *Simulator) sortedKeys() []*sshKey {
	keys := slices.Collect(maps.Values(s.sshKeys))
	slices.SortFunc(keys, func(a, b *sshKey) int { return int(a.ID - b.ID) })
	return keys
}

func (s *Simulator) createSSHKey(w http.ResponseWriter, r *http.Request) *apiError {
	var req schema.SSHKeyCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	var fields []fieldError
	if strings.TrimSpace(req.Name) == "" {
		fields = append(fields, fieldError{Name: "name", Messages: []string{"Missing data for required field."}})
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(req.PublicKey))
	if err != nil {
		fields = append(fields, fieldError{Name: "public_key", Messages: []string{"invalid public key"}})
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = *req.Labels
		if msgs := validateLabels(labels); len(msgs) > 0 {
			fields = append(fields, fieldError{Name: "labels", Messages: msgs})
		}
	}
	if len(fields) > 0 {
		return errInvalid(fields...)
	}
	fp := ssh.FingerprintLegacyMD5(pub)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.sshKeys {
		if k.Name == req.Name {
			return errUniqueness("SSH key with the same name already exists", "name")
		}
		if k.Fingerprint == fp {
			return errUniqueness("SSH key with the same fingerprint already exists", "public_key")
		}
	}
	k := &sshKey{schema.SSHKey{ID: s.id("ssh_key"), Name: req.Name, Fingerprint: fp,
		PublicKey: strings.TrimSpace(req.PublicKey), Labels: maps.Clone(labels), Created: s.now()}}
	s.sshKeys[k.ID] = k
	writeJSON(w, http.StatusCreated, schema.SSHKeyCreateResponse{SSHKey: k.wire()})
	return nil
}

func (s *Simulator) listSSHKeys(w http.ResponseWriter, r *http.Request) *apiError {
	sel, aerr := selectorParam(r)
	if aerr != nil {
		return aerr
	}
	fp := r.URL.Query().Get("fingerprint")
	s.mu.Lock()
	var out []schema.SSHKey
	for _, k := range s.sortedKeys() {
		if nameMatches(r, k.Name) && (fp == "" || fp == k.Fingerprint) && sel.matches(k.Labels) {
			out = append(out, k.wire())
		}
	}
	s.mu.Unlock()
	page, meta, aerr := pageOf(r, out)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, struct {
		SSHKeys []schema.SSHKey `json:"ssh_keys"`
		Meta    listMeta        `json:"meta"`
	}{nonNil(page), meta})
	return nil
}

func (s *Simulator) getSSHKey(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "SSH key")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.sshKeys[id]
	if !ok {
		return errNotFound("SSH key")
	}
	writeJSON(w, http.StatusOK, schema.SSHKeyGetResponse{SSHKey: k.wire()})
	return nil
}

func (s *Simulator) updateSSHKey(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "SSH key")
	if aerr != nil {
		return aerr
	}
	var req schema.SSHKeyUpdateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Labels != nil {
		if msgs := validateLabels(*req.Labels); len(msgs) > 0 {
			return errInvalid(fieldError{Name: "labels", Messages: msgs})
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.sshKeys[id]
	if !ok {
		return errNotFound("SSH key")
	}
	if req.Name != "" && req.Name != k.Name {
		for _, o := range s.sshKeys {
			if o.Name == req.Name {
				return errUniqueness("SSH key with the same name already exists", "name")
			}
		}
		k.Name = req.Name
	}
	if req.Labels != nil {
		k.Labels = maps.Clone(*req.Labels)
	}
	writeJSON(w, http.StatusOK, schema.SSHKeyUpdateResponse{SSHKey: k.wire()})
	return nil
}

func (s *Simulator) deleteSSHKey(w http.ResponseWriter, r *http.Request) *apiError {
	id, aerr := pathID(r, "id", "SSH key")
	if aerr != nil {
		return aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sshKeys[id]; !ok {
		return errNotFound("SSH key")
	}
	delete(s.sshKeys, id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// now is the simulator's clock, truncated to seconds as Hetzner's timestamps are.
func (s *Simulator) now() time.Time {
	return s.Now().Truncate(time.Second)
}

// nonNil makes empty lists encode as [] rather than null, as Hetzner sends them.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
