package notify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rachelcloud/admin/internal/db"
)

// digestLines bounds the lines of a digest; the rest are counted.
const digestLines = 60

// Dispatch turns the waiting events into messages once the oldest has waited a digest window
// (NOTIFY_DIGEST_WINDOW), so events close together go out together: one event makes a message of
// its own, several make one digest. Each message gets a delivery job per channel, in the same
// transaction that marks its events sent. It reports how many messages it made.
func (n *Notifier) Dispatch(ctx context.Context) (int, error) {
	made := 0
	for {
		ok, err := n.dispatchOne(ctx)
		if err != nil || !ok {
			return made, err
		}
		made++
	}
}

func (n *Notifier) dispatchOne(ctx context.Context) (bool, error) {
	oldest, err := n.q.NotifyEventOldestUnsent(ctx, n.pool)
	if errors.Is(err, db.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("notify: oldest waiting event: %w", err)
	}
	if oldest.After(n.now().Add(-n.cfg.NotifyDigestWindow)) {
		return false, nil // nothing waits, or the window is still open for more to join
	}
	made := false
	err = inTx(ctx, n.pool, func(tx pgx.Tx) error {
		events, err := n.q.NotifyEventTakeUnsent(ctx, tx, 1000)
		if err != nil {
			return fmt.Errorf("notify: take waiting events: %w", err)
		}
		if len(events) == 0 {
			return nil // another worker took them
		}
		kind, subject, body := n.compose(events)
		id, err := n.enqueueMessage(ctx, tx, kind, subject, body, len(events))
		if err != nil {
			return err
		}
		ids := make([]int64, len(events))
		for i, e := range events {
			ids[i] = e.ID
		}
		if err := n.q.NotifyEventAttach(ctx, tx, db.NotifyEventAttachParams{MessageID: id, Ids: ids}); err != nil {
			return fmt.Errorf("notify: attach events to message %d: %w", id, err)
		}
		made = true
		return nil
	})
	return made, err
}

// compose writes the message of some events: the incident itself when there is one, a digest
// grouped by kind when there are several.
func (n *Notifier) compose(events []db.NotifyEventTakeUnsentRow) (kind, subject, body string) {
	if len(events) == 1 {
		e := events[0]
		title := titles[Kind(e.Kind)]
		if e.What == "resolved" {
			subject = "[Rachel Cloud] Resolved: " + title
			body = fmt.Sprintf("Resolved at %s (opened %s, %s ago):\n%s\n",
				fmtTime(e.OccurredAt), fmtTime(e.OpenedAt), e.OccurredAt.Sub(e.OpenedAt).Round(time.Second), e.Summary)
		} else {
			subject = "[Rachel Cloud] " + title
			body = fmt.Sprintf("%s\nSince %s.\n", e.Summary, fmtTime(e.OpenedAt))
		}
		if link := n.link(e); link != "" {
			body += "\n" + link + "\n"
		}
		if e.SubscriptionID != nil {
			subject += fmt.Sprintf(": subscription #%d", *e.SubscriptionID)
		}
		return "incident", subject, body
	}

	opened, resolved := 0, 0
	type group struct {
		kind  Kind
		what  string
		lines []string
	}
	groups := map[string]*group{}
	for _, e := range events {
		if e.What == "resolved" {
			resolved++
		} else {
			opened++
		}
		k := e.What + " " + e.Kind
		g := groups[k]
		if g == nil {
			g = &group{kind: Kind(e.Kind), what: e.What}
			groups[k] = g
		}
		line := "- " + e.Summary
		if link := n.link(e); link != "" {
			line += " (" + link + ")"
		}
		g.lines = append(g.lines, line)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys) // "opened …" before "resolved …"
	var b strings.Builder
	fmt.Fprintf(&b, "%d incident(s) opened and %d resolved between %s and %s.\n", opened, resolved,
		fmtTime(events[0].OccurredAt), fmtTime(events[len(events)-1].OccurredAt))
	left := digestLines
	for _, k := range keys {
		g := groups[k]
		what := "Opened"
		if g.what == "resolved" {
			what = "Resolved"
		}
		fmt.Fprintf(&b, "\n%s — %s (%d):\n", what, titles[g.kind], len(g.lines))
		for i, l := range g.lines {
			if left == 0 {
				fmt.Fprintf(&b, "… and %d more\n", len(g.lines)-i)
				break
			}
			b.WriteString(l + "\n")
			left--
		}
	}
	fmt.Fprintf(&b, "\nDashboard: %s/\n", n.cfg.PublicBaseURL)
	subject = fmt.Sprintf("[Rachel Cloud] Digest: %d incidents opened, %d resolved", opened, resolved)
	return "digest", subject, b.String()
}

// link is the admin page where an incident is acted on.
func (n *Notifier) link(e db.NotifyEventTakeUnsentRow) string {
	switch Kind(e.Kind) {
	case KindOrphan, KindGhost:
		return n.cfg.PublicBaseURL + "/reconcile"
	}
	if e.SubscriptionID != nil {
		return fmt.Sprintf("%s/subscriptions/%d", n.cfg.PublicBaseURL, *e.SubscriptionID)
	}
	return n.cfg.PublicBaseURL + "/"
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
