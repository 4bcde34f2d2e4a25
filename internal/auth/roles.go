package auth

import "fmt"

// Role is what an admin may do. Each role may do everything the roles below it may.
type Role string

// The roles, least first.
const (
	// RoleViewer reads every page and changes nothing but their own password and second factor.
	RoleViewer Role = "viewer"
	// RoleOperator also provisions, retries, re-injects, reboots and edits customers.
	RoleOperator Role = "operator"
	// RoleOwner also destroys, acts on reconcile findings, sets policies and notifications, and
	// manages admins.
	RoleOwner Role = "owner"
)

// Roles lists the roles, least first.
var Roles = []Role{RoleViewer, RoleOperator, RoleOwner}

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleOwner:
		return 3
	}
	return 0 // unknown: below every role, so it may do nothing
}

// AtLeast reports whether r may do what least may.
func (r Role) AtLeast(least Role) bool { return r.rank() > 0 && r.rank() >= least.rank() }

// Valid reports whether r is one of [Roles].
func (r Role) Valid() bool { return r.rank() > 0 }

// ParseRole returns the role named s, or an error naming the accepted ones.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.Valid() {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: use viewer, operator or owner", s)
}
