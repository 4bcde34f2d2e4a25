// Package views holds the templ components of the admin app. Components receive view models and
// never query anything.
package views

import (
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/rachelcloud/admin/internal/statusview"
)

func itoa(n int) string { return strconv.Itoa(n) }

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// When formats a time for tables (UTC, minute precision).
func When(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// WhenPtr formats an optional time, "—" when absent.
func WhenPtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return When(*t)
}

// Ago says how long ago t was, roughly.
func Ago(t time.Time, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	default:
		return strconv.Itoa(int(d.Hours()/24)) + " days ago"
	}
}

// Duration formats a step duration compactly.
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.Itoa(int(d.Milliseconds())) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	default:
		return strconv.Itoa(int(d.Minutes())) + " min " + strconv.Itoa(int(d.Seconds())%60) + " s"
	}
}

// Clock formats a time to the second, for timelines and event logs.
func Clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// money formats euros with two decimals.
func money(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// Countdown says how long until something, roughly ("in 1 d 23 h"); "now" once due.
func Countdown(left time.Duration) string {
	switch {
	case left <= 0:
		return "now"
	case left < time.Hour:
		return "in " + strconv.Itoa(int(left.Minutes())+1) + " min"
	case left < 48*time.Hour:
		return "in " + strconv.Itoa(int(left.Hours())) + " h " + strconv.Itoa(int(left.Minutes())%60) + " min"
	default:
		return "in " + strconv.Itoa(int(left.Hours()/24)) + " d " + strconv.Itoa(int(left.Hours())%24) + " h"
	}
}

// Count writes n with thousands separators (100,000).
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// EUR formats a euro amount for the fleet's cost ("€12.34").
func EUR(v float64) string {
	return "€" + strconv.FormatFloat(v, 'f', 2, 64)
}

// ServerFacts is a server's type, location and image in one line ("cx23 in fsn1, debian-12").
func ServerFacts(f *statusview.ServerFacts) string {
	if f == nil {
		return "—"
	}
	s := f.Type
	if f.Location != "" {
		s += " in " + f.Location
	}
	if f.Image != "" {
		s += ", " + f.Image
	}
	return s
}

// MonthlyPrice is a server's catalog price a month, or a dash.
func MonthlyPrice(p *float64) string {
	if p == nil {
		return "—"
	}
	return EUR(*p) + "/month"
}

// rowServer is a list row's server type, location and monthly price ("cx23 · fsn1 · €3.99/month").
func rowServer(typ, loc *string, price pgtype.Numeric) string {
	var f statusview.ServerFacts
	if typ != nil {
		f.Type = *typ
	}
	if loc != nil {
		f.Location = *loc
	}
	out := f.Type
	if f.Location != "" {
		out += " · " + f.Location
	}
	if price.Valid {
		if v, err := price.Float64Value(); err == nil && v.Valid {
			out += " · " + MonthlyPrice(&v.Float64)
		}
	}
	return out
}
