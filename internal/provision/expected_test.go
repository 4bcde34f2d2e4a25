package provision

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/provision/state"
)

// TestEveryWorkingStateHasAnExpectedDuration: the stuck-provisioning notices and the status
// page's "taking longer than usual" hint compare a step's age with its expected duration; a
// working state without one would be flagged at once, a terminal state with one would be flagged
// forever. The steps bounded by a deadline are expected to end well before it.
func TestEveryWorkingStateHasAnExpectedDuration(t *testing.T) {
	t.Parallel()
	for _, s := range db.AllProvisioningStatusValues() {
		if state.InProgress(s) {
			require.Positive(t, ExpectedDuration(s), "%s", s)
			require.LessOrEqual(t, ExpectedDuration(s), 10*time.Minute, "%s", s)
		} else {
			require.Zero(t, ExpectedDuration(s), "%s is not worked on", s)
		}
	}
	require.Zero(t, ExpectedDuration(""), "never provisioned")
	require.Equal(t, "admin", actorLabel(Actor{}), "an actor without an email is named by role")
	require.Equal(t, "ops@example.com", actorLabel(Actor{Email: "ops@example.com"}))
}
