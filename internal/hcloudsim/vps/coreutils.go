package vps

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

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
	return p.eachPath("chmod", "changing permissions of", rest[1:], opts["recursive"] != "", func(fp string) error {
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
	_, knownUser := p.m.users[owner]
	_, _, msg := p.m.ownerGroup(cred{user: "root", groups: []string{"root"}}, owner, group)
	p.m.mu.Unlock()
	if msg != "" {
		// chown names the bad part with a colon, and a bad group with the whole spec.
		if owner != "" && !knownUser {
			p.errf("chown: invalid user: '%s'", owner)
		} else {
			p.errf("chown: invalid group: '%s'", rest[0])
		}
		return 1
	}
	return p.eachPath("chown", "changing ownership of", rest[1:], opts["recursive"] != "", func(fp string) error {
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
