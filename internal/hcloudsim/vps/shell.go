package vps

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
)

// commands are the programs installed on the simulated machine, all living in /usr/bin. It is
// filled in init because sudo looks programs up in it.
var commands map[string]func(*proc, []string) int

func init() {
	commands = map[string]func(*proc, []string) int{
		"true":       func(*proc, []string) int { return 0 },
		"false":      func(*proc, []string) int { return 1 },
		"echo":       cmdEcho,
		"id":         cmdID,
		"whoami":     cmdWhoami,
		"hostname":   cmdHostname,
		"cat":        cmdCat,
		"test":       cmdTest,
		"install":    cmdInstall,
		"mv":         cmdMv,
		"rm":         cmdRm,
		"mkdir":      cmdMkdir,
		"chmod":      cmdChmod,
		"chown":      cmdChown,
		"systemctl":  cmdSystemctl,
		"sudo":       cmdSudo,
		"cloud-init": cmdCloudInit,
		"ln":         cmdLn,
		"readlink":   cmdReadlink,
		"curl":       cmdCurl,
		"sha256sum":  cmdSha256sum,
		"sh":         cmdSh,
		"bash":       cmdSh,
	}
}

// canonicalBinPath maps /bin/x, /sbin/x and /usr/sbin/x to /usr/bin/x, as on a merged-/usr
// Debian where sudoers compares the files, not the spellings.
func canonicalBinPath(p string) string {
	for _, prefix := range []string{"/bin/", "/sbin/", "/usr/sbin/"} {
		if rest, ok := strings.CutPrefix(p, prefix); ok && !strings.Contains(rest, "/") {
			return "/usr/bin/" + rest
		}
	}
	return p
}

// resolveCommand finds the program for argv[0]: a bare name via PATH, or a full path.
func resolveCommand(name string) (string, bool) {
	if !strings.Contains(name, "/") {
		_, ok := commands[name]
		return "/usr/bin/" + name, ok
	}
	p := canonicalBinPath(path.Clean(name))
	base, ok := strings.CutPrefix(p, "/usr/bin/")
	if !ok {
		return p, false
	}
	_, known := commands[base]
	return p, known
}

// proc is one running command: who runs it, its streams and the machine it runs on.
type proc struct {
	ctx    context.Context
	m      *Machine
	cred   cred
	cwd    string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (p *proc) errf(format string, args ...any) {
	fmt.Fprintf(p.stderr, format+"\n", args...)
}

// run executes one simple command and returns its exit status.
func (p *proc) run(argv []string) int {
	if len(argv) == 0 {
		return 0
	}
	full, ok := resolveCommand(argv[0])
	if !ok {
		if strings.Contains(argv[0], "/") {
			p.errf("bash: %s: No such file or directory", argv[0])
		} else {
			p.errf("bash: %s: command not found", argv[0])
		}
		return 127
	}
	return commands[path.Base(full)](p, argv[1:])
}

// runLine executes a command line: simple commands joined by `;`, `&&`, `||` or newlines,
// as a runcmd script would run them.
func (p *proc) runLine(line string) int {
	parts, ops, err := splitList(line)
	if err != nil {
		p.errf("bash: %v (the simulated machine runs simple commands only)", err)
		return 2
	}
	status := 0
	for i, part := range parts {
		if i > 0 && (ops[i-1] == "&&" && status != 0 || ops[i-1] == "||" && status == 0) {
			continue
		}
		argv, err := splitWords(part)
		if err != nil {
			p.errf("bash: %v (the simulated machine runs simple commands only)", err)
			return 2
		}
		status = p.run(argv)
	}
	return status
}

// cmdSh runs `sh -c SCRIPT`, the form runcmd entries often take.
func cmdSh(p *proc, args []string) int {
	if len(args) >= 2 && args[0] == "-c" {
		return p.runLine(args[1])
	}
	if len(args) >= 3 && (args[0] == "-e" || args[0] == "-ex") && args[1] == "-c" {
		return p.runLineStrict(args[2])
	}
	p.errf("sh: only `sh -c SCRIPT` is simulated")
	return 2
}

// runLineStrict is runLine under `set -e`: it stops at the first failing command.
func (p *proc) runLineStrict(line string) int {
	parts, _, err := splitList(line)
	if err != nil {
		p.errf("bash: %v (the simulated machine runs simple commands only)", err)
		return 2
	}
	for _, part := range parts {
		argv, err := splitWords(part)
		if err != nil {
			p.errf("bash: %v (the simulated machine runs simple commands only)", err)
			return 2
		}
		if status := p.run(argv); status != 0 {
			return status
		}
	}
	return 0
}

func (p *proc) path(arg string) string { return cleanPath(p.cwd, arg) }
