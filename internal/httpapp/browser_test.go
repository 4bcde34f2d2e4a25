package httpapp_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/browsertest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
)

const (
	browserStep  = 15 * time.Second
	browserWatch = 45 * time.Second
)

// browserSignIn signs the tab in through the sign-in form.
func browserSignIn(tab *browsertest.Tab, base string) {
	tab.Do(browserStep, "open the sign-in page",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), adminEmail),
		chromedp.SendKeys(chromedp.CSS("#password"), adminPassword),
	)
	tab.ClickAndLoad(browserStep, "sign in", `form[action="/signin"] button[type=submit]`,
		`document.querySelector('nav[aria-label="Main"]') !== null`)
}

// markPage tags the current document; the tag survives htmx swaps but not a page load, so a
// later check proves the page changed without being reloaded.
func markPage(tab *browsertest.Tab) {
	browsertest.Eval[bool](tab, `(window.__notReloaded = true)`)
}

// liveState is a JavaScript condition: the status page's live part shows state.
func liveState(state string) string {
	return `document.querySelector('#live') !== null && document.querySelector('#live').dataset.state === '` + state + `'`
}

// waitLiveState waits until the status page shows state, in the same document (no reload).
func waitLiveState(tab *browsertest.Tab, state string) {
	tab.WaitJS(browserWatch, "status page reaches "+state+" without a reload", `window.__notReloaded === true && `+liveState(state))
}

func fillCustomer(email string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Clear(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#claude_access_token"), "sk-ant-oat01-browser-access"),
		chromedp.SendKeys(chromedp.CSS("#claude_refresh_token"), "sk-ant-ort01-browser-refresh"),
		chromedp.SendKeys(chromedp.CSS("#telegram_bot_token"), "123456789:AAEhBP0av28browserbottoken0123456"),
		chromedp.SendKeys(chromedp.CSS("#owner_telegram_user_id"), "4242"),
	)
}

// TestBrowserProvisionWatchDestroy: sign in → a customer form with an error, corrected → provision
// → the page reaches ready by polling → a wrong, then the right Destroy confirmation → destroyed.
func TestBrowserProvisionWatchDestroy(t *testing.T) {
	t.Parallel()
	tab := browsertest.NewTab(t) // first: it skips or fails at once without Chromium
	b := setupStack(t, hcloudsim.Config{})
	base := b.server.URL
	browserSignIn(tab, base)

	// A form error shows its message and keeps what was typed, except the secrets.
	tab.Do(browserStep, "fill an invalid customer",
		chromedp.Navigate(base+"/customers/new"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#name"), "Browser Customer"),
		fillCustomer("not-an-email"),
	)
	tab.ClickAndLoad(browserStep, "submit the invalid customer", `form.grid-form button[type=submit]`,
		`document.querySelector('#email-error') !== null`)
	require.Contains(t, tab.Text("#email-error"), "Enter an email address like name@example.com.")
	require.Equal(t, "true", browsertest.Eval[string](tab, `document.querySelector('#email').getAttribute('aria-invalid')`))
	require.Equal(t, "Browser Customer", browsertest.Eval[string](tab, `document.querySelector('#name').value`))
	require.Empty(t, browsertest.Eval[string](tab, `document.querySelector('#claude_access_token').value`))

	tab.Do(browserStep, "correct the customer", fillCustomer("browser@example.com"))
	tab.ClickAndLoad(browserStep, "create the customer", `form.grid-form button[type=submit]`, liveState("none"))
	require.Contains(t, tab.Text(".flash-ok"), "Customer created.")
	id := b.latestSubscription(t)

	// Provision, then watch: the test never reloads the page.
	tab.ClickAndLoad(browserStep, "press Provision", `form[action$="/provision"] button`,
		`document.querySelector('#live[data-polling="true"]') !== null`)
	markPage(tab)
	// What the admin types into the Destroy confirmation survives the polling swaps.
	tab.Do(browserStep, "start typing a confirmation while the page polls",
		chromedp.Click(chromedp.CSS("#destroy-box summary")),
		chromedp.WaitVisible(chromedp.CSS("#confirm_name")),
		chromedp.SendKeys(chromedp.CSS("#confirm_name"), "half-typed"),
	)
	waitLiveState(tab, "ready")
	require.Equal(t, "half-typed", browsertest.Eval[string](tab, `document.querySelector('#confirm_name').value`))
	require.True(t, browsertest.Eval[bool](tab, `document.querySelector('#destroy-box').open`))
	require.Contains(t, tab.Text("dl.facts"), serverName(t, b.pool, id))
	require.Contains(t, tab.Text("dl.facts"), "SHA256:")
	require.Contains(t, tab.Text(".timeline"), "injecting secrets")
	require.False(t, browsertest.Eval[bool](tab, `document.querySelector('#live').hasAttribute('hx-trigger')`), "polling stopped at ready")

	// A wrong server name is refused with its message; the right one destroys.
	tab.Do(browserStep, "type a wrong server name",
		chromedp.Clear(chromedp.CSS("#confirm_name")),
		chromedp.SendKeys(chromedp.CSS("#confirm_name"), "rachel-sub-0"),
	)
	tab.ClickAndLoad(browserStep, "destroy with a wrong name", `#destroy-box button[type=submit]`,
		`document.querySelector('#confirm_name-error') !== null`)
	require.Contains(t, tab.Text("#confirm_name-error"), "Type the server name "+serverName(t, b.pool, id)+" exactly")
	require.True(t, browsertest.Eval[bool](tab, `document.activeElement === document.querySelector('#confirm_name')`), "focus on the field to correct")
	tab.Do(browserStep, "type the right server name", chromedp.SendKeys(chromedp.CSS("#confirm_name"), serverName(t, b.pool, id)))
	tab.ClickAndLoad(browserStep, "destroy with the right name", `#destroy-box button[type=submit]`,
		`document.querySelector('.flash-ok') !== null`)
	markPage(tab)
	waitLiveState(tab, "destroyed")
	require.Contains(t, tab.Text(".state-line"), "The server was destroyed")
	require.Empty(t, b.sim.Servers(), "nothing left in Hetzner")
	tab.Screenshot(t.Name())
}

// TestBrowserFailedThenRetry: a failed provisioning shows its step and reason; Retry brings it to
// ready, the page following along by itself.
func TestBrowserFailedThenRetry(t *testing.T) {
	t.Parallel()
	tab := browsertest.NewTab(t)
	b := setupStack(t, hcloudsim.Config{})
	id := b.createCustomer(t, b.signIn(t), customerForm("retry@example.com"))
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.ActionFailures = append(f.ActionFailures, hcloudsim.ActionFailure{Command: "create_server", Server: serverName(t, b.pool, id), Count: 1})
	}))

	base := b.server.URL
	browserSignIn(tab, base)
	tab.Do(browserStep, "open the status page",
		chromedp.Navigate(base+"/subscriptions/"+itoa(id)),
		chromedp.WaitVisible(chromedp.CSS(`#live[data-state="none"]`)),
	)
	tab.ClickAndLoad(browserStep, "press Provision", `form[action$="/provision"] button`,
		`document.querySelector('#live[data-polling="true"]') !== null`)
	markPage(tab)
	waitLiveState(tab, "failed")
	require.Contains(t, tab.Text("#failure"), "Failed at step creating.")
	require.Contains(t, tab.Text("#failure"), "Hetzner could not create server")
	require.Contains(t, tab.Text(".timeline .step-failed"), "creating")

	tab.ClickAndLoad(browserStep, "press Retry", `form[action$="/retry"] button`, `document.querySelector('.flash-ok') !== null`)
	markPage(tab)
	waitLiveState(tab, "ready")
	require.Zero(t, browsertest.Eval[int](tab, `document.querySelectorAll('#failure').length`))
	tab.Screenshot(t.Name())
}
