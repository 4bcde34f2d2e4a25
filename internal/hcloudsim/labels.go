package hcloudsim

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

var (
	labelNameRE   = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?$`)
	labelValueRE  = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?$`)
	dnsLabelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hostnameLabel = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)
)

// validateLabels applies Hetzner's label rules (info.description, "Labels") and returns one
// message per offending label, so the invalid_input details name every problem at once.
func validateLabels(labels map[string]string) []string {
	var msgs []string
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := validateLabelKey(k); err != nil {
			msgs = append(msgs, err.Error())
		}
		if !labelValueRE.MatchString(labels[k]) {
			msgs = append(msgs, fmt.Sprintf("label value %q of key %q is invalid", labels[k], k))
		}
	}
	return msgs
}

func validateLabelKey(k string) error {
	name := k
	if prefix, rest, ok := strings.Cut(k, "/"); ok {
		name = rest
		if prefix == "hetzner.cloud" || strings.HasSuffix(prefix, ".hetzner.cloud") {
			return fmt.Errorf("label key %q uses the reserved prefix hetzner.cloud/", k)
		}
		if len(prefix) > 253 || prefix == "" {
			return fmt.Errorf("label key %q has an invalid prefix", k)
		}
		for _, l := range strings.Split(prefix, ".") {
			if !dnsLabelRE.MatchString(l) {
				return fmt.Errorf("label key %q has an invalid prefix", k)
			}
		}
	}
	if !labelNameRE.MatchString(name) {
		return fmt.Errorf("label key %q is invalid", k)
	}
	return nil
}

// validHostname reports whether name is an RFC 1123 hostname, which Hetzner requires of server
// names because the name becomes the machine's hostname.
func validHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if !hostnameLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// selectorTerm is one comma-separated requirement of a label selector.
type selectorTerm struct {
	key    string
	op     string // "=", "!=", "exists", "!exists", "in", "notin"
	values []string
}

// labelSelector is a parsed label_selector; the zero value matches everything.
type labelSelector []selectorTerm

// parseLabelSelector parses Hetzner's selector language: k=v, k==v, k!=v, k, !k, k in (a,b),
// k notin (a,b), joined by commas (commas inside parentheses belong to the set).
func parseLabelSelector(s string) (labelSelector, error) {
	var sel labelSelector
	s = strings.TrimSpace(s)
	if s == "" {
		return sel, nil
	}
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced parentheses in label selector %q", s)
	}
	parts = append(parts, s[start:])
	for _, p := range parts {
		t, err := parseSelectorTerm(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		sel = append(sel, t)
	}
	return sel, nil
}

func parseSelectorTerm(p string) (selectorTerm, error) {
	bad := fmt.Errorf("invalid label selector term %q", p)
	if p == "" {
		return selectorTerm{}, bad
	}
	if k, ok := strings.CutPrefix(p, "!"); ok {
		k = strings.TrimSpace(k)
		if validateLabelKey(k) != nil {
			return selectorTerm{}, bad
		}
		return selectorTerm{key: k, op: "!exists"}, nil
	}
	for _, op := range []string{" notin ", " in "} {
		if k, rest, ok := strings.Cut(p, op); ok {
			rest = strings.TrimSpace(rest)
			if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
				return selectorTerm{}, bad
			}
			var vals []string
			for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
				vals = append(vals, strings.TrimSpace(v))
			}
			return selectorTerm{key: strings.TrimSpace(k), op: strings.TrimSpace(op), values: vals}, nil
		}
	}
	for _, op := range []string{"!=", "==", "="} {
		if k, v, ok := strings.Cut(p, op); ok {
			if op == "==" {
				op = "="
			}
			return selectorTerm{key: strings.TrimSpace(k), op: op, values: []string{strings.TrimSpace(v)}}, nil
		}
	}
	if validateLabelKey(p) != nil {
		return selectorTerm{}, bad
	}
	return selectorTerm{key: p, op: "exists"}, nil
}

// matches reports whether labels satisfy every term.
func (sel labelSelector) matches(labels map[string]string) bool {
	for _, t := range sel {
		v, ok := labels[t.key]
		switch t.op {
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		case "=":
			if !ok || v != t.values[0] {
				return false
			}
		case "!=":
			if ok && v == t.values[0] {
				return false
			}
		case "in":
			if !ok || !slices.Contains(t.values, v) {
				return false
			}
		case "notin":
			if ok && slices.Contains(t.values, v) {
				return false
			}
		}
	}
	return true
}
