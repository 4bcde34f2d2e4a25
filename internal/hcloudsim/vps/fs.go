package vps

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// File is one regular file of the simulated machine as it is now.
type File struct {
	Path      string
	Mode      fs.FileMode // permission bits only, e.g. 0o600
	Owner     string
	Group     string
	SHA256    string // hex of Content
	Size      int
	Content   []byte
	WrittenAt time.Time // last time the content, mode or owner changed (a rename keeps it)
}

// FileEvent is one change to the file tree, in the order it happened.
type FileEvent struct {
	Op   string // "write", "append", "rename", "remove", "mkdir", "chmod", "chown", "symlink"
	Path string // the file written, removed or the rename's destination
	From string // the rename's source
	By   string // the user whose command made the change ("root" for cloud-init)
	File File   // the file after the change (zero for remove)
	At   time.Time
}

//lint:file-ignore ST1005 this file's errors are Linux's strerror(3) texts, printed verbatim as coreutils does

// errno-like errors carry the strerror text coreutils prints.
var (
	errNotExist = errors.New("No such file or directory")
	errAccess   = errors.New("Permission denied")
	errPerm     = errors.New("Operation not permitted")
	errIsDir    = errors.New("Is a directory")
	errNotDir   = errors.New("Not a directory")
	errExist    = errors.New("File exists")
	errNotEmpty = errors.New("Directory not empty")
	errLoop     = errors.New("Too many levels of symbolic links")
)

// maxSymlinks is Linux's limit on links followed in one path lookup (ELOOP beyond).
const maxSymlinks = 40

type inode struct {
	dir     bool
	link    string // a symbolic link's target; "" for files and directories
	mode    fs.FileMode
	owner   string
	group   string
	content []byte
	at      time.Time
}

// cred is who runs a command: root may do anything, others follow the permission bits.
type cred struct {
	user   string
	groups []string // primary first
}

func (c cred) root() bool { return c.user == "root" }

// fsys is the machine's file tree: a flat map of clean absolute paths. The machine's mutex
// guards it.
type fsys struct {
	nodes   map[string]*inode
	history []FileEvent
	now     func() time.Time
}

func newFS(now func() time.Time) *fsys {
	f := &fsys{nodes: map[string]*inode{}, now: now}
	f.nodes["/"] = &inode{dir: true, mode: 0o755, owner: "root", group: "root", at: now()}
	for _, d := range []struct {
		p    string
		mode fs.FileMode
	}{
		{"/etc", 0o755}, {"/etc/ssh", 0o755}, {"/etc/sudoers.d", 0o750}, {"/etc/systemd", 0o755},
		{"/etc/systemd/system", 0o755}, {"/home", 0o755}, {"/root", 0o700},
		{"/tmp", fs.ModeSticky | 0o777}, {"/usr", 0o755}, {"/usr/bin", 0o755}, {"/usr/lib", 0o755},
		{"/usr/lib/systemd", 0o755}, {"/usr/lib/systemd/system", 0o755}, {"/usr/local", 0o755},
		{"/usr/local/bin", 0o755}, {"/var", 0o755}, {"/var/lib", 0o755}, {"/var/log", 0o755},
		{"/var/tmp", fs.ModeSticky | 0o777}, {"/opt", 0o755}, {"/srv", 0o755}, {"/run", 0o755},
		{"/var/lib/cloud", 0o755}, {"/var/lib/cloud/scripts", 0o755}, {"/var/lib/cloud/scripts/per-boot", 0o755},
		{"/var/lib/cloud/scripts/per-instance", 0o755}, {"/var/lib/cloud/scripts/per-once", 0o755},
		{"/dev", 0o755},
	} {
		f.nodes[d.p] = &inode{dir: true, mode: d.mode, owner: "root", group: "root", at: now()}
	}
	return f
}

// fileMode converts Unix permission bits (with setuid/setgid/sticky) to an fs.FileMode.
func fileMode(bits uint32) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func cleanPath(cwd, p string) string {
	if !strings.HasPrefix(p, "/") {
		p = cwd + "/" + p
	}
	return path.Clean(p)
}

// can reports whether c has the access bits want (4 read, 2 write, 1 exec) on n.
func (c cred) can(n *inode, want fs.FileMode) bool {
	if c.root() {
		return true
	}
	perm := n.mode.Perm()
	switch {
	case n.owner == c.user:
		return (perm>>6)&want == want
	case slices.Contains(c.groups, n.group):
		return (perm>>3)&want == want
	default:
		return perm&want == want
	}
}

// walk resolves p as the kernel does, checking that c may search every directory on the way:
// symbolic links in the directories are followed (targets resolved lexically), and so is the
// last component when followLast is set (stat, open) — not otherwise (lstat, rename, unlink).
// It returns the real path, whose last component may not exist.
func (f *fsys) walk(c cred, p string, followLast bool) (string, error) {
	links := 0
restart:
	parts := strings.Split(strings.Trim(path.Clean(p), "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		return "/", nil
	}
	cur := "/"
	for i, name := range parts {
		d, ok := f.nodes[cur]
		if !ok {
			return "", errNotExist
		}
		if !d.dir {
			return "", errNotDir
		}
		if !c.can(d, 1) {
			return "", errAccess
		}
		next := path.Join(cur, name)
		n, ok := f.nodes[next]
		last := i == len(parts)-1
		if ok && n.link != "" && (!last || followLast) {
			if links++; links > maxSymlinks {
				return "", errLoop
			}
			target := n.link
			if !strings.HasPrefix(target, "/") {
				target = path.Join(cur, target)
			}
			p = path.Join(append([]string{target}, parts[i+1:]...)...)
			goto restart
		}
		cur = next
	}
	return cur, nil
}

// lookup finds p (following links), checking that c may traverse every directory on the way.
func (f *fsys) lookup(c cred, p string) (*inode, error) {
	real, err := f.walk(c, p, true)
	if err != nil {
		return nil, err
	}
	n, ok := f.nodes[real]
	if !ok {
		return nil, errNotExist
	}
	return n, nil
}

// lstat finds p without following a link in its last component; it returns the real path too.
func (f *fsys) lstat(c cred, p string) (*inode, string, error) {
	real, err := f.walk(c, p, false)
	if err != nil {
		return nil, "", err
	}
	n, ok := f.nodes[real]
	if !ok {
		return nil, real, errNotExist
	}
	return n, real, nil
}

// parentWritable checks that c may create or remove entries in p's directory. p must be a real
// path (see walk).
func (f *fsys) parentWritable(c cred, p string) (*inode, error) {
	dir := path.Dir(p)
	d, ok := f.nodes[dir]
	if !ok {
		return nil, errNotExist
	}
	if !d.dir {
		return nil, errNotDir
	}
	if !c.can(d, 2|1) {
		return nil, errAccess
	}
	return d, nil
}

// stickyBlocks reports whether the sticky bit on dir forbids c to replace or remove n. The
// kernel's may_delete answers EPERM then (unlink, rename); opening such a file for writing is
// protected_regular's EACCES instead.
func stickyBlocks(c cred, dir, n *inode) bool {
	return n != nil && dir.mode&fs.ModeSticky != 0 && !c.root() && n.owner != c.user && dir.owner != c.user
}

// writeFile creates or truncates the regular file p, following a link there as open(2) does.
// A new file gets mode, owner and group; an existing one keeps them unless replace is set
// (install(1) replaces, shell redirection does not).
func (f *fsys) writeFile(c cred, p string, content []byte, mode fs.FileMode, owner, group string, appendTo bool) error {
	p, err := f.walk(c, p, true)
	if err != nil {
		return err
	}
	dir, err := f.parentWritable(c, p)
	existing := f.nodes[p]
	if err != nil {
		// Writing an existing file needs only write permission on the file itself.
		if existing == nil || errors.Is(err, errNotExist) || errors.Is(err, errNotDir) {
			return err
		}
		if !c.can(existing, 2) {
			return err
		}
	}
	if existing != nil && existing.dir {
		return errIsDir
	}
	if existing != nil && err == nil && stickyBlocks(c, dir, existing) {
		return errAccess
	}
	op := "write"
	n := &inode{mode: mode, owner: owner, group: group, at: f.now()}
	if appendTo && existing != nil {
		op = "append"
		n.mode, n.owner, n.group = existing.mode, existing.owner, existing.group
		n.content = append(slices.Clone(existing.content), content...)
	} else {
		n.content = slices.Clone(content)
	}
	f.nodes[p] = n
	f.record(op, p, "", c.user, n)
	return nil
}

// symlink creates the link p pointing at target (which need not exist), as ln -s does.
func (f *fsys) symlink(c cred, target, p string) error {
	_, real, err := f.lstat(c, p)
	if err == nil {
		return errExist
	}
	if !errors.Is(err, errNotExist) {
		return err
	}
	if _, err := f.parentWritable(c, real); err != nil {
		return err
	}
	n := &inode{link: target, mode: 0o777, owner: c.user, group: c.groups[0], at: f.now()}
	f.nodes[real] = n
	f.record("symlink", real, target, c.user, n)
	return nil
}

func (f *fsys) readFile(c cred, p string) ([]byte, error) {
	n, err := f.lookup(c, p)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, errIsDir
	}
	if !c.can(n, 4) {
		return nil, errAccess
	}
	return slices.Clone(n.content), nil
}

// rename moves src to dst in one step, replacing dst: there is no moment without a dst. Like
// rename(2) it follows links in the directories but not in the last components: a link at dst
// is replaced, never followed.
func (f *fsys) rename(c cred, src, dst string) error {
	n, src, err := f.lstat(c, src)
	if err != nil {
		return err
	}
	sdir, err := f.parentWritable(c, src)
	if err != nil {
		return err
	}
	if stickyBlocks(c, sdir, n) {
		return errPerm
	}
	old, dst, err := f.lstat(c, dst)
	if err != nil && !errors.Is(err, errNotExist) {
		return err
	}
	ddir, err := f.parentWritable(c, dst)
	if err != nil {
		return err
	}
	if stickyBlocks(c, ddir, old) {
		return errPerm
	}
	if old != nil && old.dir != n.dir {
		if old.dir {
			return errIsDir
		}
		return errNotDir
	}
	if n.dir {
		if old != nil && f.hasChildren(dst) {
			return errNotEmpty
		}
		if dst == src || strings.HasPrefix(dst, src+"/") {
			return errors.New("Invalid argument")
		}
		f.moveTree(src, dst)
	}
	delete(f.nodes, src)
	f.nodes[dst] = n
	f.record("rename", dst, src, c.user, n)
	return nil
}

func (f *fsys) moveTree(src, dst string) {
	for p, n := range f.nodes {
		if strings.HasPrefix(p, src+"/") {
			delete(f.nodes, p)
			f.nodes[dst+strings.TrimPrefix(p, src)] = n
		}
	}
}

func (f *fsys) hasChildren(dir string) bool {
	for p := range f.nodes {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func (f *fsys) remove(c cred, p string, recursive bool) error {
	n, p, err := f.lstat(c, p)
	if err != nil {
		return err
	}
	dir, err := f.parentWritable(c, p)
	if err != nil {
		return err
	}
	if stickyBlocks(c, dir, n) {
		return errPerm
	}
	if n.dir {
		if !recursive {
			return errIsDir
		}
		for q := range f.nodes {
			if strings.HasPrefix(q, p+"/") {
				delete(f.nodes, q)
			}
		}
	}
	delete(f.nodes, p)
	f.record("remove", p, "", c.user, nil)
	return nil
}

func (f *fsys) mkdir(c cred, p string, mode fs.FileMode, owner, group string) error {
	_, p, err := f.lstat(c, p)
	if err == nil {
		return errExist
	}
	if !errors.Is(err, errNotExist) {
		return err
	}
	if _, err := f.parentWritable(c, p); err != nil {
		return err
	}
	n := &inode{dir: true, mode: mode, owner: owner, group: group, at: f.now()}
	f.nodes[p] = n
	f.record("mkdir", p, "", c.user, n)
	return nil
}

// mkdirAll creates p and missing parents; parents get 0755 and c's ownership, as mkdir -p.
func (f *fsys) mkdirAll(c cred, p string, mode fs.FileMode, owner, group string) error {
	if n, err := f.lookup(c, p); err == nil {
		if !n.dir {
			return errNotDir
		}
		return nil
	}
	if p != "/" {
		primary := c.user
		if len(c.groups) > 0 {
			primary = c.groups[0]
		}
		if err := f.mkdirAll(c, path.Dir(p), 0o755, c.user, primary); err != nil {
			return err
		}
	}
	return f.mkdir(c, p, mode, owner, group)
}

func (f *fsys) chmod(c cred, p string, mode fs.FileMode) error {
	real, err := f.walk(c, p, true)
	if err != nil {
		return err
	}
	n, ok := f.nodes[real]
	if !ok {
		return errNotExist
	}
	p = real
	if !c.root() && n.owner != c.user {
		return errPerm
	}
	n.mode = mode
	n.at = f.now()
	f.record("chmod", p, "", c.user, n)
	return nil
}

// chown changes owner and/or group (empty = unchanged). Only root gives files away.
func (f *fsys) chown(c cred, p, owner, group string) error {
	real, err := f.walk(c, p, true)
	if err != nil {
		return err
	}
	n, ok := f.nodes[real]
	if !ok {
		return errNotExist
	}
	p = real
	if !c.root() {
		if owner != "" && owner != n.owner || n.owner != c.user {
			return errPerm
		}
		if group != "" && !slices.Contains(c.groups, group) {
			return errPerm
		}
	}
	if owner != "" {
		n.owner = owner
	}
	if group != "" {
		n.group = group
	}
	n.at = f.now()
	f.record("chown", p, "", c.user, n)
	return nil
}

// record logs a change; for "symlink", from is the link's target.
func (f *fsys) record(op, p, from, by string, n *inode) {
	ev := FileEvent{Op: op, Path: p, From: from, By: by, At: f.now()}
	if n != nil {
		ev.File = n.file(p)
	}
	f.history = append(f.history, ev)
}

func (n *inode) file(p string) File {
	sum := sha256.Sum256(n.content)
	return File{
		Path:      p,
		Mode:      n.mode,
		Owner:     n.owner,
		Group:     n.group,
		SHA256:    hex.EncodeToString(sum[:]),
		Size:      len(n.content),
		Content:   slices.Clone(n.content),
		WrittenAt: n.at,
	}
}

// files lists regular files sorted by path.
func (f *fsys) files() []File {
	out := make([]File, 0, len(f.nodes))
	for p, n := range f.nodes {
		if !n.dir && n.link == "" {
			out = append(out, n.file(p))
		}
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}
