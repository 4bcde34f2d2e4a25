package httpapp_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/browsertest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps/realvpstest"
)

// realWatch bounds a wait for a real VPS to move on (boot, real cloud-init, injection); it is a
// hang guard, not an expectation.
const realWatch = 8 * time.Minute

// TestBrowserRealVPS drives the admin app in Chromium against a real Debian 12 VPS behind the
// simulator: sign in → a customer → Provision → the page follows to ready → Re-inject → ready
// again → Destroy → destroyed, and nothing is left running.
func TestBrowserRealVPS(t *testing.T) {
	realvpstest.Require(t, "internal/httpapp")
	t.Parallel()
	tab := browsertest.NewTab(t)
	require.NoError(t, realvps.EnsureGateway())
	b := setupStack(t, hcloudsim.Config{VPS: hcloudsim.VPSReal})
	base := b.server.URL
	browserSignIn(tab, base)

	tab.Do(browserStep, "fill a customer",
		chromedp.Navigate(base+"/customers/new"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#name"), "Real VPS Customer"),
		fillCustomer("real@example.com"),
	)
	tab.ClickAndLoad(browserStep, "create the customer", `form.grid-form button[type=submit]`, liveState("none"))
	id := b.latestSubscription(t)

	tab.ClickAndLoad(browserStep, "press Provision", `form[action$="/provision"] button`,
		`document.querySelector('#live[data-polling="true"]') !== null`)
	markPage(tab)
	tab.WaitJS(realWatch, "the real VPS reaches ready", `window.__notReloaded === true && `+liveState("ready"))
	require.Contains(t, tab.Text("dl.facts"), serverName(t, b.pool, id))
	require.Contains(t, tab.Text("dl.facts"), "10.213.", "the VPS's own address")
	srv := b.sim.Servers()
	require.Len(t, srv, 1)
	m := b.sim.RealMachine(srv[0].ID)
	require.NotNil(t, m, "a real container runs behind the server")

	tab.ClickAndLoad(browserStep, "press Re-inject", `form[action$="/reinject"] button`,
		`document.querySelector('.flash-ok') !== null`)
	markPage(tab)
	tab.WaitJS(realWatch, "ready again after re-injecting", `window.__notReloaded === true && `+liveState("ready")+
		` && (document.body.innerText.match(/VPS ready at/g) || []).length >= 2`)
	require.True(t, strings.Contains(tab.Text(".timeline"), "injecting secrets"))

	tab.Do(browserStep, "confirm the destroy",
		chromedp.Click(chromedp.CSS("#destroy-box summary")),
		chromedp.WaitVisible(chromedp.CSS("#confirm_name")),
		chromedp.SendKeys(chromedp.CSS("#confirm_name"), serverName(t, b.pool, id)),
	)
	tab.ClickAndLoad(browserStep, "destroy", `#destroy-box button[type=submit]`, `document.querySelector('.flash-ok') !== null`)
	markPage(tab)
	tab.WaitJS(realWatch, "destroyed", `window.__notReloaded === true && `+liveState("destroyed"))
	select {
	case <-m.Done():
	case <-time.After(time.Minute):
		t.Fatal("the container still runs after destroy")
	}
	require.Empty(t, b.sim.Servers())
	tab.Screenshot(t.Name())
}
