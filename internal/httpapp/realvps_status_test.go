package httpapp_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/testkit"
)

// TestRealVPSNeverBootsStatusPage: a real VPS whose init is damaged (fault never_boot) never
// boots; the server shows `off` at Hetzner, and the status page shows that cause — not the
// callback deadline, which is minutes away. Destroy leaves no container, mount, namespace or link.
func TestRealVPSNeverBootsStatusPage(t *testing.T) {
	if why := realvps.Available(); why != "" {
		realvps.NoteSkip("internal/httpapp", why)
		t.Skipf("skipping real-VPS test: %s", why)
	}
	t.Parallel()
	require.NoError(t, realvps.EnsureGateway())
	b := setupStack(t, hcloudsim.Config{VPS: hcloudsim.VPSReal,
		Faults: hcloudsim.Faults{Servers: []hcloudsim.ServerFault{{NeverBoot: true}}}})
	tok := b.signIn(t)
	id := b.createCustomer(t, tok, customerForm("never-boots@example.com"))
	sid := itoa(id)
	resp, body := b.post(t, "/subscriptions/"+sid+"/provision", url.Values{"_csrf": {tok}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	b.waitState(t, id, db.ProvisioningStatusFailed)

	status, body, _ := b.get(t, "/subscriptions/"+sid)
	require.Equal(t, http.StatusOK, status)
	reason := strings.Join(strings.Fields(doc(t, body).Find(".failure-reason").Text()), " ")
	require.Contains(t, reason, "is off at Hetzner: the VPS went down while it booted")
	require.Contains(t, reason, "SSH at ")
	require.Contains(t, reason, "console")
	require.NotContains(t, reason, "CALLBACK_DEADLINE")

	servers := b.sim.Servers()
	require.Len(t, servers, 1)
	require.Equal(t, "off", string(servers[0].Status))
	slot, ok := realvps.SlotOf(servers[0].IP)
	require.True(t, ok)
	resp, body = b.post(t, "/subscriptions/"+sid+"/destroy", url.Values{"_csrf": {tok}, "confirm_name": {serverName(t, b.pool, id)}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
	b.waitState(t, id, db.ProvisioningStatusDestroyed)
	require.Empty(t, b.sim.Servers())
	testkit.Eventually(t, "nothing of the VPS left", func() error {
		if left := realvps.SlotLeftovers(slot); len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
}
