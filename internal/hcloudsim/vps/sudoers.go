package vps

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// sudoRule is one cloud-config `sudo` string, i.e. a sudoers user specification without the
// leading user name: `Host_List = [(Runas)] [TAG:]... Cmnd, [(Runas)] [TAG:]... Cmnd, ...`.
type sudoRule struct {
	raw     string
	hosts   []string
	entries []sudoEntry
}

type sudoEntry struct {
	runAs    []string // target users; sudoers' default when absent is root only
	nopasswd bool
	negate   bool
	all      bool   // the command ALL
	cmd      string // absolute path, may hold wildcards
	anyArgs  bool   // the rule names no arguments: any are allowed
	args     string // argument pattern ("" with anyArgs false: no arguments allowed)
}

var sudoTags = map[string]bool{
	"NOPASSWD": true, "PASSWD": true, "NOEXEC": true, "EXEC": true, "SETENV": true,
	"NOSETENV": true, "LOG_INPUT": true, "NOLOG_INPUT": true, "LOG_OUTPUT": true,
	"NOLOG_OUTPUT": true, "MAIL": true, "NOMAIL": true, "FOLLOW": true, "NOFOLLOW": true,
	"INTERCEPT": true, "NOINTERCEPT": true,
}

func parseSudoRule(raw string) (sudoRule, error) {
	r := sudoRule{raw: raw}
	hosts, rest, ok := strings.Cut(raw, "=")
	if !ok {
		return r, fmt.Errorf("sudo rule %q: missing \"HOSTS=\"", raw)
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			r.hosts = append(r.hosts, h)
		}
	}
	if len(r.hosts) == 0 {
		return r, fmt.Errorf("sudo rule %q: empty host list", raw)
	}
	runAs := []string{"root"}
	nopasswd := false
	for _, item := range splitUnescaped(rest, ',') {
		item = strings.TrimSpace(item)
		if strings.HasPrefix(item, "(") {
			end := strings.Index(item, ")")
			if end < 0 {
				return r, fmt.Errorf("sudo rule %q: unclosed runas list", raw)
			}
			users, _, _ := strings.Cut(item[1:end], ":")
			runAs = nil
			for u := range strings.SplitSeq(users, ",") {
				if u = strings.TrimSpace(u); u != "" {
					runAs = append(runAs, u)
				}
			}
			if len(runAs) == 0 { // "(:group)" runs as the invoking user only
				runAs = []string{""}
			}
			item = strings.TrimSpace(item[end+1:])
		}
		for {
			tag, after, found := strings.Cut(item, ":")
			if !found || !sudoTags[strings.TrimSpace(tag)] {
				break
			}
			switch strings.TrimSpace(tag) {
			case "NOPASSWD":
				nopasswd = true
			case "PASSWD":
				nopasswd = false
			}
			item = strings.TrimSpace(after)
		}
		e := sudoEntry{runAs: runAs, nopasswd: nopasswd}
		for strings.HasPrefix(item, "!") {
			e.negate = !e.negate
			item = strings.TrimSpace(item[1:])
		}
		if item == "" {
			return r, fmt.Errorf("sudo rule %q: empty command", raw)
		}
		if item == "ALL" {
			e.all = true
		} else {
			cmd, args, hasArgs := strings.Cut(item, " ")
			cmd = unescapeSudoers(cmd)
			if !strings.HasPrefix(cmd, "/") {
				return r, fmt.Errorf("sudo rule %q: command %q is not a full path (aliases are not simulated)", raw, cmd)
			}
			e.cmd = canonicalBinPath(cmd)
			words := strings.Fields(unescapeSudoers(args))
			switch {
			case !hasArgs || len(words) == 0:
				e.anyArgs = true
			case len(words) == 1 && words[0] == `""`:
				e.args = ""
			default:
				e.args = strings.Join(words, " ")
			}
		}
		r.entries = append(r.entries, e)
	}
	return r, nil
}

// splitUnescaped cuts s at sep, except where sep is escaped or inside a parenthesised Runas
// list: `(root, rachel) /usr/bin/id` is one entry, as sudoers' grammar has it.
func splitUnescaped(s string, sep byte) []string {
	var out []string
	start, depth := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth = max(depth-1, 0)
		case sep:
			if depth > 0 {
				continue
			}
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescapeSudoers(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`,:=\ `, s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sudoVerdict is what sudo decides for one command line.
type sudoVerdict int

const (
	sudoDenied sudoVerdict = iota
	sudoNeedsPassword
	sudoAllowed
)

// checkSudo applies the rules the way sudoers does: the last matching entry wins.
func checkSudo(rules []sudoRule, host, cmd string, args []string, target string) sudoVerdict {
	verdict := sudoDenied
	for _, r := range rules {
		if !slices.Contains(r.hosts, "ALL") && !slices.Contains(r.hosts, host) {
			continue
		}
		for _, e := range r.entries {
			if !e.matches(cmd, args, target) {
				continue
			}
			switch {
			case e.negate:
				verdict = sudoDenied
			case e.nopasswd:
				verdict = sudoAllowed
			default:
				verdict = sudoNeedsPassword
			}
		}
	}
	return verdict
}

func (e sudoEntry) matches(cmd string, args []string, target string) bool {
	if !slices.Contains(e.runAs, "ALL") && !slices.Contains(e.runAs, target) {
		return false
	}
	if e.all {
		return true
	}
	if ok, err := path.Match(e.cmd, cmd); err != nil || !ok {
		return false
	}
	if e.anyArgs {
		return true
	}
	if e.args == "" {
		return len(args) == 0
	}
	return globMatch(e.args, strings.Join(args, " "))
}

// globMatch is fnmatch(3) without FNM_PATHNAME, as sudoers uses for arguments: `*` also
// matches `/` and spaces.
func globMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for len(pattern) > 0 && pattern[0] == '*' {
				pattern = pattern[1:]
			}
			if pattern == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if globMatch(pattern, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		case '[':
			end := strings.IndexByte(pattern[1:], ']')
			if end < 0 || s == "" {
				return false
			}
			class := pattern[:end+2]
			// fnmatch negates a class with `!` (POSIX), path.Match with `^`.
			if strings.HasPrefix(class, "[!") {
				class = "[^" + class[2:]
			}
			if ok, err := path.Match(class, s[:1]); err != nil || !ok {
				return false
			}
			pattern, s = pattern[end+2:], s[1:]
		case '\\':
			if len(pattern) > 1 {
				pattern = pattern[1:]
			}
			fallthrough
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

// sudoersFile renders the rules as cloud-init writes /etc/sudoers.d/90-cloud-init-users.
func sudoersFile(users []userSpec) []byte {
	var b strings.Builder
	b.WriteString("# Created by cloud-init v. 22.4.2 on " + time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\n")
	for _, u := range users {
		if len(u.sudo) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n# User rules for %s\n", u.name)
		for _, rule := range u.sudo {
			fmt.Fprintf(&b, "%s %s\n", u.name, rule)
		}
	}
	return []byte(b.String())
}
