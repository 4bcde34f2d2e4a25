package vps

import (
	"strings"
)

// cmdSudo checks the command against the caller's rules like sudoers, then runs it as root.
func cmdSudo(p *proc, args []string) int {
	target := "root"
options:
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-n", "--non-interactive":
			args = args[1:]
		case "-u":
			if len(args) < 2 {
				p.errf("sudo: option requires an argument -- 'u'")
				return 1
			}
			target, args = args[1], args[2:]
		case "--":
			args = args[1:]
			break options
		default:
			p.errf("sudo: option %s is not simulated", args[0])
			return 1
		}
	}
	if len(args) == 0 {
		p.errf("usage: sudo [-n] [-u user] command [arg ...]")
		return 1
	}
	full, ok := resolveCommand(args[0])
	if !ok {
		p.errf("sudo: %s: command not found", args[0])
		return 1
	}
	m := p.m
	m.mu.Lock()
	acct, isUser := m.users[target]
	var rules []sudoRule
	if u := m.users[p.cred.user]; u != nil {
		rules = u.sudo
	}
	m.mu.Unlock()
	if !isUser {
		p.errf("sudo: unknown user %s", target)
		return 1
	}
	if !p.cred.root() {
		cmdline := strings.Join(append([]string{full}, args[1:]...), " ")
		switch checkSudo(rules, m.hostname, full, args[1:], target) {
		case sudoNeedsPassword:
			p.errf("sudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper")
			p.errf("sudo: a password is required")
			return 1
		case sudoDenied:
			if len(rules) == 0 {
				p.errf("%s is not in the sudoers file.", p.cred.user)
			} else {
				p.errf("Sorry, user %s is not allowed to execute '%s' as %s on %s.", p.cred.user, cmdline, target, m.hostname)
			}
			return 1
		}
	}
	sub := *p
	sub.cred = acct.cred()
	return sub.run(append([]string{full}, args[1:]...))
}
