package vps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// errShellSyntax marks command lines that need a real shell (pipes, redirections, variables):
// the simulator runs single commands only.
var errShellSyntax = errors.New("shell syntax is not simulated")

// splitWords splits a command line into words as sh(1) would for a simple command.
func splitWords(line string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			flush()
		case ch == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated quoted string")
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == '"':
			inWord = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				switch {
				case line[i] == '\\' && i+1 < len(line) && strings.IndexByte("$`\"\\\n", line[i+1]) >= 0:
					i++
					if line[i] != '\n' {
						cur.WriteByte(line[i])
					}
				case line[i] == '$' || line[i] == '`':
					return nil, fmt.Errorf("%w: %q", errShellSyntax, line[i:i+1])
				default:
					cur.WriteByte(line[i])
				}
			}
			if i >= len(line) {
				return nil, errors.New("unterminated quoted string")
			}
		case ch == '\\':
			if i+1 < len(line) {
				i++
				if line[i] != '\n' {
					cur.WriteByte(line[i])
					inWord = true
				}
			}
		case ch == '#' && !inWord:
			flush()
			return words, nil
		case strings.IndexByte("|&;<>()$`", ch) >= 0 || globChars(ch) || ch == '~' && !inWord:
			return nil, fmt.Errorf("%w: %q", errShellSyntax, string(ch))
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words, nil
}

// globChars reports whether an unquoted ch would make sh expand a pattern; expanding patterns
// against the simulated tree is not simulated, so such words must be quoted.
func globChars(ch byte) bool { return ch == '*' || ch == '?' || ch == '[' }

// quoteArgs renders argv as one shell line, quoting where needed; used for records.
func quoteArgs(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

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

// splitList cuts a command line at unquoted `;`, `&&`, `||` and newlines.
func splitList(line string) ([]string, []string, error) {
	var parts, ops []string
	start := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, nil, errors.New("unterminated quoted string")
			}
			i += end + 1
		case '"':
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' {
					i++
				}
			}
			if i >= len(line) {
				return nil, nil, errors.New("unterminated quoted string")
			}
		case ';', '\n':
			parts, ops = append(parts, line[start:i]), append(ops, ";")
			start = i + 1
		case '&', '|':
			if i+1 < len(line) && line[i+1] == line[i] {
				parts, ops = append(parts, line[start:i]), append(ops, line[i:i+2])
				start = i + 2
				i++
			}
		}
	}
	parts = append(parts, line[start:])
	// Empty pieces (a trailing `;`, blank lines) are no commands; keep ops aligned.
	var keptParts, keptOps []string
	for i, part := range parts {
		if strings.TrimSpace(part) == "" {
			if i > 0 && ops[i-1] != ";" {
				return nil, nil, fmt.Errorf("%w: %q without a command", errShellSyntax, ops[i-1])
			}
			continue
		}
		if len(keptParts) > 0 {
			keptOps = append(keptOps, ops[i-1])
		}
		keptParts = append(keptParts, part)
	}
	return keptParts, keptOps, nil
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

func cmdEcho(p *proc, args []string) int {
	newline := true
	if len(args) > 0 && args[0] == "-n" {
		newline, args = false, args[1:]
	}
	fmt.Fprint(p.stdout, strings.Join(args, " "))
	if newline {
		fmt.Fprintln(p.stdout)
	}
	return 0
}

func cmdWhoami(p *proc, _ []string) int {
	fmt.Fprintln(p.stdout, p.cred.user)
	return 0
}

func cmdHostname(p *proc, _ []string) int {
	fmt.Fprintln(p.stdout, p.m.hostname)
	return 0
}

func cmdID(p *proc, args []string) int {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	uid, gids := m.ids(p.cred)
	switch strings.Join(args, " ") {
	case "":
		groups := make([]string, len(p.cred.groups))
		for i, g := range p.cred.groups {
			groups[i] = fmt.Sprintf("%d(%s)", gids[i], g)
		}
		fmt.Fprintf(p.stdout, "uid=%d(%s) gid=%s groups=%s\n", uid, p.cred.user, groups[0], strings.Join(groups, ","))
	case "-u":
		fmt.Fprintln(p.stdout, uid)
	case "-un", "-nu", "-u -n", "-n -u":
		fmt.Fprintln(p.stdout, p.cred.user)
	case "-g":
		fmt.Fprintln(p.stdout, gids[0])
	case "-gn", "-ng", "-g -n", "-n -g":
		fmt.Fprintln(p.stdout, p.cred.groups[0])
	case "-Gn", "-nG", "-G -n", "-n -G":
		fmt.Fprintln(p.stdout, strings.Join(p.cred.groups, " "))
	default:
		p.errf("id: option combination %q is not simulated", strings.Join(args, " "))
		return 1
	}
	return 0
}

func cmdCat(p *proc, args []string) int {
	status := 0
	for _, a := range args {
		p.m.mu.Lock()
		b, err := p.m.fs.readFile(p.cred, p.path(a))
		p.m.mu.Unlock()
		if err != nil {
			p.errf("cat: %s: %v", a, err)
			status = 1
			continue
		}
		_, _ = p.stdout.Write(b)
	}
	return status
}

func cmdTest(p *proc, args []string) int {
	if len(args) != 2 {
		p.errf("test: only `test -e|-f|-d|-s|-L PATH` is simulated")
		return 2
	}
	p.m.mu.Lock()
	n, err := p.m.fs.lookup(p.cred, p.path(args[1]))
	p.m.mu.Unlock()
	var ok bool
	switch args[0] {
	case "-e":
		ok = err == nil
	case "-f":
		ok = err == nil && !n.dir
	case "-d":
		ok = err == nil && n.dir
	case "-s":
		ok = err == nil && !n.dir && len(n.content) > 0
	case "-L", "-h":
		p.m.mu.Lock()
		ln, _, lerr := p.m.fs.lstat(p.cred, p.path(args[1]))
		p.m.mu.Unlock()
		ok = lerr == nil && ln.link != ""
	default:
		p.errf("test: %s: unary operator not simulated", args[0])
		return 2
	}
	if ok {
		return 0
	}
	return 1
}

// parseFlags reads GNU-style options: -m 0600, -m0600, --mode=0600, --mode 0600, -fT.
func parseFlags(prog string, args []string, valued map[string]string, bools map[string]string) (map[string]string, []string, error) {
	got := map[string]string{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return got, append(rest, args[i+1:]...), nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			if c, ok := valued["--"+name]; ok {
				if !hasVal {
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("%s: option '--%s' requires an argument", prog, name)
					}
					i++
					val = args[i]
				}
				got[c] = val
				continue
			}
			if c, ok := bools["--"+name]; ok && !hasVal {
				got[c] = "1"
				continue
			}
			return nil, nil, fmt.Errorf("%s: unrecognized option '%s'", prog, a)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				opt := "-" + a[j:j+1]
				if c, ok := valued[opt]; ok {
					val := a[j+1:]
					if val == "" {
						if i+1 >= len(args) {
							return nil, nil, fmt.Errorf("%s: option requires an argument -- '%c'", prog, a[j])
						}
						i++
						val = args[i]
					}
					got[c] = val
					break
				}
				c, ok := bools[opt]
				if !ok {
					return nil, nil, fmt.Errorf("%s: invalid option -- '%c'", prog, a[j])
				}
				got[c] = "1"
			}
		default:
			rest = append(rest, a)
		}
	}
	return got, rest, nil
}

func parseOctalMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("invalid mode '%s' (only octal modes are simulated)", s)
	}
	return fileMode(uint32(n)), nil
}

// cmdInstall simulates GNU install(1) for the forms a provisioner uses: copying a file (or
// /dev/stdin) into place with mode and ownership, and `install -d` for directories.
func cmdInstall(p *proc, args []string) int {
	opts, rest, err := parseFlags("install", args,
		map[string]string{"-m": "mode", "--mode": "mode", "-o": "owner", "--owner": "owner", "-g": "group", "--group": "group"},
		map[string]string{"-d": "dir", "--directory": "dir", "-D": "parents", "-T": "notdir", "--no-target-directory": "notdir",
			"-C": "compare", "--compare": "compare", "-v": "verbose", "-p": "preserve"})
	if err != nil {
		p.errf("%v", err)
		return 1
	}
	mode := fs.FileMode(0o755)
	if s, ok := opts["mode"]; ok {
		if mode, err = parseOctalMode(s); err != nil {
			p.errf("install: %v", err)
			return 1
		}
	}
	m := p.m
	m.mu.Lock()
	owner, group, msg := m.ownerGroup(p.cred, opts["owner"], opts["group"])
	m.mu.Unlock()
	if msg != "" {
		p.errf("install: %s", msg)
		return 1
	}
	if opts["dir"] != "" {
		if len(rest) == 0 {
			p.errf("install: missing file operand")
			return 1
		}
		status := 0
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, d := range rest {
			dp := p.path(d)
			if err := m.fs.mkdirAll(p.cred, dp, mode, owner, group); err != nil {
				p.errf("install: cannot create directory '%s': %v", d, err)
				status = 1
				continue
			}
			if err := m.setAttrs(p.cred, dp, mode, owner, group); err != nil {
				p.errf("install: cannot change ownership of '%s': %v", d, err)
				status = 1
			}
		}
		return status
	}
	if len(rest) < 2 {
		p.errf("install: missing destination file operand after '%s'", strings.Join(rest, " "))
		return 1
	}
	srcs, dst := rest[:len(rest)-1], p.path(rest[len(rest)-1])
	m.mu.Lock()
	dn, dErr := m.fs.lookup(p.cred, dst)
	m.mu.Unlock()
	intoDir := dErr == nil && dn.dir && opts["notdir"] == ""
	if len(srcs) > 1 && !intoDir {
		p.errf("install: target '%s' is not a directory", rest[len(rest)-1])
		return 1
	}
	status := 0
	for _, src := range srcs {
		content, ok := p.readSource("install", src)
		if !ok {
			status = 1
			continue
		}
		target := dst
		if intoDir {
			target = path.Join(dst, path.Base(src))
		}
		m.mu.Lock()
		if opts["parents"] != "" {
			if err := m.fs.mkdirAll(p.cred, path.Dir(target), 0o755, p.cred.user, p.cred.groups[0]); err != nil {
				m.mu.Unlock()
				p.errf("install: cannot create directory '%s': %v", path.Dir(target), err)
				status = 1
				continue
			}
		}
		// GNU install removes what is at the target first (unlink_dest_before_opening): a link
		// there is replaced, not followed. Links in the directories are followed.
		var err error
		if n, real, lerr := m.fs.lstat(p.cred, target); lerr == nil && !n.dir {
			err = m.fs.remove(p.cred, real, false)
		}
		// install(1) creates the file as the caller, then changes ownership and mode.
		if err == nil {
			err = m.fs.writeFile(p.cred, target, content, 0o600, p.cred.user, p.cred.groups[0], false)
		}
		if err == nil {
			err = m.setAttrs(p.cred, target, mode, owner, group)
			if err != nil {
				err = fmt.Errorf("cannot change ownership of '%s': %w", target, err)
			}
		} else {
			err = fmt.Errorf("cannot create regular file '%s': %w", target, err)
		}
		m.mu.Unlock()
		if err != nil {
			p.errf("install: %v", err)
			status = 1
		}
	}
	return status
}

// readSource reads a command's input file; /dev/stdin (or -) is the session's stdin.
func (p *proc) readSource(prog, src string) ([]byte, bool) {
	if src == "/dev/stdin" || src == "/proc/self/fd/0" || src == "-" {
		b, err := io.ReadAll(io.LimitReader(p.stdin, maxStdin+1))
		if err != nil {
			p.errf("%s: cannot read '%s': %v", prog, src, err)
			return nil, false
		}
		if len(b) > maxStdin {
			p.errf("%s: '%s': File too large (the simulator keeps at most %d bytes)", prog, src, maxStdin)
			return nil, false
		}
		return b, true
	}
	p.m.mu.Lock()
	b, err := p.m.fs.readFile(p.cred, p.path(src))
	p.m.mu.Unlock()
	if err != nil {
		p.errf("%s: cannot stat '%s': %v", prog, src, err)
		return nil, false
	}
	return b, true
}

// maxStdin bounds what one command may read from stdin, so a runaway client cannot fill memory.
const maxStdin = 4 << 20

func cmdMv(p *proc, args []string) int {
	opts, rest, err := parseFlags("mv", args, nil,
		map[string]string{"-f": "force", "--force": "force", "-T": "notdir", "--no-target-directory": "notdir", "-v": "verbose"})
	if err != nil {
		p.errf("%v", err)
		return 1
	}
	if len(rest) != 2 {
		p.errf("mv: the simulator moves exactly one SOURCE to one DEST")
		return 1
	}
	src, dst := p.path(rest[0]), p.path(rest[1])
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.fs.lookup(p.cred, src); err != nil {
		p.errf("mv: cannot stat '%s': %v", rest[0], err)
		return 1
	}
	if dn, err := m.fs.lookup(p.cred, dst); err == nil && dn.dir && opts["notdir"] == "" {
		dst = path.Join(dst, path.Base(src))
	}
	if src == dst {
		p.errf("mv: '%s' and '%s' are the same file", rest[0], rest[1])
		return 1
	}
	if err := m.fs.rename(p.cred, src, dst); err != nil {
		p.errf("mv: cannot move '%s' to '%s': %v", rest[0], rest[1], err)
		return 1
	}
	return 0
}

func cmdRm(p *proc, args []string) int {
	opts, rest, err := parseFlags("rm", args, nil,
		map[string]string{"-f": "force", "--force": "force", "-r": "recursive", "-R": "recursive", "--recursive": "recursive"})
	if err != nil {
		p.errf("%v", err)
		return 1
	}
	status := 0
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range rest {
		err := m.fs.remove(p.cred, p.path(a), opts["recursive"] != "")
		if err == nil || errors.Is(err, errNotExist) && opts["force"] != "" {
			continue
		}
		p.errf("rm: cannot remove '%s': %v", a, err)
		status = 1
	}
	return status
}

func cmdMkdir(p *proc, args []string) int {
	opts, rest, err := parseFlags("mkdir", args,
		map[string]string{"-m": "mode", "--mode": "mode"},
		map[string]string{"-p": "parents", "--parents": "parents", "-v": "verbose"})
	if err != nil {
		p.errf("%v", err)
		return 1
	}
	mode := fs.FileMode(0o755)
	if s, ok := opts["mode"]; ok {
		if mode, err = parseOctalMode(s); err != nil {
			p.errf("mkdir: %v", err)
			return 1
		}
	}
	status := 0
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range rest {
		dp := p.path(a)
		if opts["parents"] != "" {
			err = m.fs.mkdirAll(p.cred, dp, mode, p.cred.user, p.cred.groups[0])
		} else {
			err = m.fs.mkdir(p.cred, dp, mode, p.cred.user, p.cred.groups[0])
		}
		if err != nil {
			p.errf("mkdir: cannot create directory '%s': %v", a, err)
			status = 1
		}
	}
	return status
}

func cmdChmod(p *proc, args []string) int {
	opts, rest, err := parseFlags("chmod", args, nil, map[string]string{"-R": "recursive", "--recursive": "recursive"})
	if err != nil || len(rest) < 2 {
		p.errf("chmod: usage: chmod [-R] OCTAL-MODE FILE...")
		return 1
	}
	mode, err := parseOctalMode(rest[0])
	if err != nil {
		p.errf("chmod: %v", err)
		return 1
	}
	return p.eachPath("chmod", "change permissions of", rest[1:], opts["recursive"] != "", func(fp string) error {
		return p.m.fs.chmod(p.cred, fp, mode)
	})
}

func cmdChown(p *proc, args []string) int {
	opts, rest, err := parseFlags("chown", args, nil, map[string]string{"-R": "recursive", "--recursive": "recursive"})
	if err != nil || len(rest) < 2 {
		p.errf("chown: usage: chown [-R] OWNER[:GROUP] FILE...")
		return 1
	}
	owner, group, _ := strings.Cut(rest[0], ":")
	p.m.mu.Lock()
	_, _, msg := p.m.ownerGroup(cred{user: "root", groups: []string{"root"}}, owner, group)
	p.m.mu.Unlock()
	if msg != "" {
		p.errf("chown: %s", msg)
		return 1
	}
	return p.eachPath("chown", "change ownership of", rest[1:], opts["recursive"] != "", func(fp string) error {
		return p.m.fs.chown(p.cred, fp, owner, group)
	})
}

func (p *proc) eachPath(prog, verb string, paths []string, recursive bool, fn func(string) error) int {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	status := 0
	for _, a := range paths {
		targets := []string{p.path(a)}
		if recursive {
			for q := range m.fs.nodes {
				if strings.HasPrefix(q, targets[0]+"/") {
					targets = append(targets, q)
				}
			}
			sort.Strings(targets[1:])
		}
		for _, t := range targets {
			if err := fn(t); err != nil {
				if errors.Is(err, errNotExist) {
					p.errf("%s: cannot access '%s': %v", prog, a, err)
				} else {
					p.errf("%s: %s '%s': %v", prog, verb, t, err)
				}
				status = 1
				break
			}
		}
	}
	return status
}

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

// cmdCloudInit simulates `cloud-init status [--wait] [--long] [--format json|tabular]` as
// cloud-init 22.4's cmd/status.py prints it: exit status 1 when the status is error.
func cmdCloudInit(p *proc, args []string) int {
	if len(args) == 0 || args[0] != "status" {
		p.errf("cloud-init: only `cloud-init status` is simulated")
		return 2
	}
	opts, rest, err := parseFlags("cloud-init status", args[1:], map[string]string{"--format": "format"},
		map[string]string{"-w": "wait", "--wait": "wait", "-l": "long", "--long": "long"})
	if err != nil || len(rest) > 0 {
		p.errf("usage: cloud-init status [-h] [--format {json,tabular,yaml}] [-l] [-w]")
		return 2
	}
	if opts["wait"] != "" {
		select {
		case <-p.m.finalDone:
		case <-p.ctx.Done():
			return 1
		}
	}
	m := p.m
	m.mu.Lock()
	st := m.state
	errs := slices.Clone(st.CloudInitErrors)
	m.mu.Unlock()
	// As cloud-init 22.4 prints it (cloudinit/cmd/status.py): last_update is the latest stage
	// event; the detail is the datasource once known, or the errors.
	status, detail := "running", "Running in stage: modules-final"
	last := st.StartedAt.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	if st.CloudInitDone {
		status, detail = "done", "DataSourceHetzner"
		last = st.CloudInitDoneAt.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700")
	}
	if len(errs) > 0 {
		status, detail = "error", strings.Join(errs, "\n")
	}
	if errs == nil {
		errs = []string{}
	}
	switch opts["format"] {
	case "json":
		out := map[string]any{"boot_status_code": "enabled-by-generator", "datasource": "hetzner",
			"detail": detail, "errors": errs, "last_update": last, "status": status}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(p.stdout, string(b))
	case "", "tabular":
		fmt.Fprintf(p.stdout, "status: %s\n", status)
		if opts["long"] != "" {
			fmt.Fprintf(p.stdout, "boot_status_code: enabled-by-generator\nlast_update: %s\ndetail:\n%s\n", last, detail)
		}
	default:
		p.errf("cloud-init status: --format %s is not simulated", opts["format"])
		return 2
	}
	if status == "error" {
		return 1
	}
	return 0
}

// cmdLn simulates `ln -s [-f] [-n] [-T] TARGET LINK`: symbolic links only.
func cmdLn(p *proc, args []string) int {
	opts, rest, err := parseFlags("ln", args, nil, map[string]string{"-s": "symbolic", "--symbolic": "symbolic",
		"-f": "force", "--force": "force", "-n": "nodereference", "--no-dereference": "nodereference", "-T": "notdir",
		"--no-target-directory": "notdir"})
	if err != nil {
		p.errf("%v", err)
		return 1
	}
	if opts["symbolic"] == "" || len(rest) != 2 {
		p.errf("ln: the simulator makes symbolic links only: ln -s TARGET LINK")
		return 1
	}
	target, link := rest[0], p.path(rest[1])
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if opts["notdir"] == "" && opts["nodereference"] == "" {
		if n, err := m.fs.lookup(p.cred, link); err == nil && n.dir {
			link = path.Join(link, path.Base(target))
		}
	}
	if opts["force"] != "" {
		if n, real, err := m.fs.lstat(p.cred, link); err == nil && !n.dir {
			if err := m.fs.remove(p.cred, real, false); err != nil {
				p.errf("ln: cannot remove '%s': %v", rest[1], err)
				return 1
			}
		}
	}
	if err := m.fs.symlink(p.cred, target, link); err != nil {
		p.errf("ln: failed to create symbolic link '%s': %v", rest[1], err)
		return 1
	}
	return 0
}

// cmdReadlink prints a link's target.
func cmdReadlink(p *proc, args []string) int {
	if len(args) != 1 {
		p.errf("readlink: the simulator reads one link")
		return 1
	}
	m := p.m
	m.mu.Lock()
	n, _, err := m.fs.lstat(p.cred, p.path(args[0]))
	m.mu.Unlock()
	if err != nil || n.link == "" {
		return 1
	}
	fmt.Fprintln(p.stdout, n.link)
	return 0
}
