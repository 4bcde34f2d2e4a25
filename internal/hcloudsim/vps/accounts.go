package vps

import (
	"cmp"
	"maps"
	"slices"
)

// User is an account of the machine as getent and id(1) would show it.
type User struct {
	Name   string
	UID    int
	Groups []string // primary first
	Home   string
	Shell  string
}

// Users returns the machine's accounts ordered by name, for comparison with a real machine.
func (m *Machine) Users() []User {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]User, 0, len(m.users))
	for _, a := range m.users {
		out = append(out, User{Name: a.name, UID: a.uid, Groups: slices.Clone(a.groups), Home: a.home, Shell: a.shell})
	}
	slices.SortFunc(out, func(a, b User) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Groups returns the machine's groups and their GIDs.
func (m *Machine) Groups() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.groups)
}
