package realvps

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Each VPS's systemd gets a control-group tree of its own, <hierarchy>/rachel-realvps/<slot>, in
// every hierarchy systemd uses (the named "systemd" v1 one and the unified v2 one, whichever are
// mounted). systemd-nspawn without a systemd on the host (--keep-unit, --register=no, as here)
// puts the container below the cgroup it was started in; every test binary runs in the same
// one, so every container shared one tree: each container's systemd made, filled and removed
// the same system.slice/<unit> directories as all the others. A unit could then fail to start
// because another VPS's systemd removed its cgroup between its creation and the process joining
// it — seen in the journals of ordinary test runs: "user-runtime-dir@1001.service: Failed at
// step CGROUP spawning /lib/systemd/systemd-user-runtime-dir: No such file or directory",
// "systemd-remount-fs.service: Failed at step CGROUP". The same race on cloud-init.service
// leaves a VPS without host keys, sshd and callback; on systemd-user-sessions.service it leaves
// /run/nologin in place, and PAM then turns every login away (sshd ends the connection: the
// worker's handshake gets EOF).
const cgroupDir = "rachel-realvps"

// systemdHierarchies lists the mount points of the cgroup hierarchies systemd uses: the v1
// hierarchy named "systemd" and the unified (cgroup2) one.
func systemdHierarchies() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || f[3] != "/" {
			continue
		}
		if g[0] == "cgroup2" || g[0] == "cgroup" && slices.Contains(strings.Split(g[2], ","), "name=systemd") {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

// slotCgroups are the slot's cgroup directories, one per systemd hierarchy.
func slotCgroups(slot int) []string {
	var out []string
	for _, h := range systemdHierarchies() {
		out = append(out, filepath.Join(h, cgroupDir, strconv.Itoa(slot)))
	}
	return out
}

// makeSlotCgroups creates the slot's empty cgroups (removing what a previous boot left).
func makeSlotCgroups(slot int) ([]string, error) {
	if err := removeSlotCgroups(slot); err != nil {
		return nil, err
	}
	dirs := slotCgroups(slot)
	if len(dirs) == 0 {
		return nil, errors.New("realvps: no cgroup hierarchy of systemd's is mounted")
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("realvps: cgroup of the VPS: %w", err)
		}
	}
	return dirs, nil
}

// slotCgroupPIDs lists every process in the slot's cgroups (the container's, wherever its
// systemd put them).
func slotCgroupPIDs(slot int) []int {
	var pids []int
	for _, d := range slotCgroups(slot) {
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for f := range bytes.FieldsSeq(b) {
				if pid, err := strconv.Atoi(string(f)); err == nil && pid > 0 && !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeSlotCgroups removes the slot's cgroup trees, deepest first; the caller has killed their
// processes. A cgroup whose last processes are still being reaped is busy for a moment: that is
// waited for, as long as killSlotProcesses waits for them.
func removeSlotCgroups(slot int) error {
	var errs []error
	for _, d := range slotCgroups(slot) {
		var dirs []string
		_ = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, p := range dirs {
			deadline := time.Now().Add(30 * time.Second)
			for {
				err := unix.Rmdir(p)
				if err == nil || errors.Is(err, unix.ENOENT) {
					break
				}
				if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
					errs = append(errs, fmt.Errorf("remove cgroup %s: %w", p, err))
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return errors.Join(errs...)
}

// cgroupSlots lists the slots that have a cgroup on this machine (for CleanLeftovers).
func cgroupSlots() []int {
	var out []int
	for _, h := range systemdHierarchies() {
		ents, err := os.ReadDir(filepath.Join(h, cgroupDir))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// inCgroups is the shell that starts systemd-nspawn: it moves itself into the slot's cgroups,
// then execs nspawn with its arguments (the same PID: nspawn.pid stays right).
const inCgroups = `for p in $RVPS_CGROUP_PROCS; do echo $$ > "$p" || exit 125; done; unset RVPS_CGROUP_PROCS; exec systemd-nspawn "$@"`
