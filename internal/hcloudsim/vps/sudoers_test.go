package vps

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSudoRulesMatchLikeSudoers(t *testing.T) {
	t.Parallel()
	type check struct {
		cmdline string
		target  string
		want    sudoVerdict
	}
	for name, tc := range map[string]struct {
		rules  []string
		checks []check
	}{
		"everything without password": {
			rules: []string{"ALL=(ALL) NOPASSWD:ALL"},
			checks: []check{
				{"/usr/bin/cat /etc/shadow", "root", sudoAllowed},
				{"/usr/bin/id", "rachel", sudoAllowed},
			},
		},
		"everything with password": {
			rules:  []string{"ALL=(ALL:ALL) ALL"},
			checks: []check{{"/usr/bin/id", "root", sudoNeedsPassword}},
		},
		"exact command lines": {
			rules: []string{"ALL=(root) NOPASSWD: /usr/bin/install -m 0600 -o rachel -g rachel /dev/stdin /etc/rachel/a.tmp, /usr/bin/systemctl restart x.service"},
			checks: []check{
				{"/usr/bin/install -m 0600 -o rachel -g rachel /dev/stdin /etc/rachel/a.tmp", "root", sudoAllowed},
				{"/usr/bin/install -m 0600 -o rachel -g rachel /dev/stdin /etc/rachel/b.tmp", "root", sudoDenied},
				{"/usr/bin/install -m 0600 -o rachel -g rachel /dev/stdin /etc/rachel/a.tmp extra", "root", sudoDenied},
				{"/usr/bin/systemctl restart x.service", "root", sudoAllowed},
				{"/usr/bin/systemctl restart x.service", "rachel", sudoDenied},
				{"/usr/bin/systemctl stop x.service", "root", sudoDenied},
			},
		},
		"tag carries over to later commands, runas defaults to root": {
			rules: []string{"ALL=NOPASSWD: /usr/bin/true, /usr/bin/id"},
			checks: []check{
				{"/usr/bin/id -un", "root", sudoAllowed},
				{"/usr/bin/id -un", "rachel", sudoDenied},
			},
		},
		"wildcards in arguments cross slashes and spaces": {
			rules: []string{`ALL=(root) NOPASSWD: /usr/bin/mv -f /etc/rachel/.*.tmp /etc/rachel/*, /usr/bin/systemctl is-active rachel-?.service`},
			checks: []check{
				{"/usr/bin/mv -f /etc/rachel/.x.tmp /etc/rachel/x", "root", sudoAllowed},
				{"/usr/bin/mv -f /etc/rachel/.x.tmp /etc/rachel/../shadow", "root", sudoAllowed}, // as in real sudoers: `*` is dangerous
				{"/usr/bin/mv -f /tmp/.x.tmp /etc/rachel/x", "root", sudoDenied},
				{"/usr/bin/systemctl is-active rachel-a.service", "root", sudoAllowed},
				{"/usr/bin/systemctl is-active rachel-ab.service", "root", sudoDenied},
			},
		},
		"no arguments named: any; empty quotes: none": {
			rules: []string{`ALL=(root) NOPASSWD: /usr/bin/systemctl, /usr/bin/id ""`},
			checks: []check{
				{"/usr/bin/systemctl restart anything", "root", sudoAllowed},
				{"/usr/bin/id", "root", sudoAllowed},
				{"/usr/bin/id -un", "root", sudoDenied},
			},
		},
		"negation, last match wins": {
			rules: []string{"ALL=(ALL) NOPASSWD: ALL, !/usr/bin/cat"},
			checks: []check{
				{"/usr/bin/cat /etc/shadow", "root", sudoDenied},
				{"/usr/bin/id", "root", sudoAllowed},
			},
		},
		"several rules, later PASSWD entry overrides": {
			rules:  []string{"ALL=(root) NOPASSWD: /usr/bin/id", "ALL=(root) PASSWD: /usr/bin/id"},
			checks: []check{{"/usr/bin/id", "root", sudoNeedsPassword}},
		},
		"other hosts do not count": {
			rules:  []string{"otherhost=(ALL) NOPASSWD:ALL"},
			checks: []check{{"/usr/bin/id", "root", sudoDenied}},
		},
		"merged /usr: /bin paths match /usr/bin rules": {
			rules:  []string{"ALL=(root) NOPASSWD: /bin/systemctl restart x.service"},
			checks: []check{{"/usr/bin/systemctl restart x.service", "root", sudoAllowed}},
		},
		"escaped comma stays in the argument": {
			rules: []string{`ALL=(root) NOPASSWD: /usr/bin/echo a\,b, /usr/bin/true`},
			checks: []check{
				{"/usr/bin/echo a,b", "root", sudoAllowed},
				{"/usr/bin/true", "root", sudoAllowed},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var rules []sudoRule
			for _, raw := range tc.rules {
				r, err := parseSudoRule(raw)
				require.NoError(t, err)
				rules = append(rules, r)
			}
			for _, c := range tc.checks {
				words := strings.Fields(c.cmdline)
				require.Equal(t, c.want, checkSudo(rules, "rachel-sub-1", words[0], words[1:], c.target), "%s as %s", c.cmdline, c.target)
			}
		})
	}
}

func TestParseSudoRuleRejectsWhatSudoWould(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"NOPASSWD: ALL":                  `missing "HOSTS="`,
		"ALL=(root NOPASSWD: ALL":        "unclosed runas",
		"ALL=(root) NOPASSWD: systemctl": "not a full path",
		"ALL=(root) NOPASSWD: /bin/a,":   "empty command",
	} {
		_, err := parseSudoRule(raw)
		require.ErrorContains(t, err, want, raw)
	}
}

func TestSplitWords(t *testing.T) {
	t.Parallel()
	for line, want := range map[string][]string{
		"sudo /usr/bin/install -m 0600 /dev/stdin /etc/x": {"sudo", "/usr/bin/install", "-m", "0600", "/dev/stdin", "/etc/x"},
		`echo 'a b'  "c \"d\"" e\ f`:                      {"echo", "a b", `c "d"`, "e f"},
		"  true  # comment":                               {"true"},
		`echo 'it'\''s'`:                                  {"echo", "it's"},
		`echo "*" a~b`:                                    {"echo", "*", "a~b"},
	} {
		got, err := splitWords(line)
		require.NoError(t, err, line)
		require.Equal(t, want, got, line)
	}
	for _, line := range []string{"a | b", "a; b", "a > f", "echo $HOME", "echo `id`", `echo "$x"`, "ls *", "cd ~", "echo 'open"} {
		_, err := splitWords(line)
		require.Error(t, err, line)
	}
	require.Equal(t, `install -m 0600 'a b' 'it'\''s'`, quoteArgs([]string{"install", "-m", "0600", "a b", "it's"}))
}
