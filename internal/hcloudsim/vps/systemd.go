package vps

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// unitRun is what systemd knows about one unit's run: the states `systemctl show` reports.
type unitRun struct {
	active string // ActiveState: active, activating, inactive, failed
	sub    string // SubState: running, auto-restart, dead, failed
	result string // Result: success, exit-code, resources
	// execStatus is ExecMainStatus: 203 (EXEC) when the program cannot be executed.
	execStatus int
	// enteredMono is ActiveEnterTimestampMonotonic: microseconds since boot at the last start.
	enteredMono int64
	// crashSince is when the start that began a crash loop failed; NRestarts grows from there
	// every restartEvery (the unit's RestartSec=), as Restart=on-failure makes systemd try again
	// and again.
	crashSince   time.Time
	restartEvery time.Duration
}

// restarts is NRestarts: automatic restarts since the unit was last started by hand.
func (r *unitRun) restarts(now time.Time) int {
	if r.crashSince.IsZero() {
		return 0
	}
	return int(now.Sub(r.crashSince) / r.restartEvery)
}

// cmdSystemctl simulates the unit life cycle the provisioner relies on. A unit exists when
// its unit file does; starting fails when an EnvironmentFile= or User= it names is missing,
// as systemd's would, and a Type=simple unit whose ExecStart= cannot be executed is started
// (systemctl returns 0 once it forked) but then shows 203/EXEC and restarts forever.
func cmdSystemctl(p *proc, args []string) int {
	var props []string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case strings.HasPrefix(a, "--property="):
			props = append(props, strings.Split(strings.TrimPrefix(a, "--property="), ",")...)
		case a == "-p" || a == "--property":
			if i+1 >= len(args) {
				p.errf("systemctl: option requires an argument -- 'p'")
				return 1
			}
			i++
			props = append(props, strings.Split(args[i], ",")...)
		default:
			rest = append(rest, a)
		}
	}
	opts, rest, err := parseFlags("systemctl", rest, nil, map[string]string{
		"-q": "quiet", "--quiet": "quiet", "--now": "now", "--no-pager": "nopager", "--no-block": "noblock",
		"--system": "system",
	})
	if err != nil {
		p.errf("%v", err)
		return 1
	}
	if len(rest) == 0 {
		p.errf("systemctl: listing units is not simulated")
		return 1
	}
	verb, units := rest[0], rest[1:]
	m := p.m
	switch verb {
	case "daemon-reload":
		if !p.cred.root() {
			p.errf("Failed to reload daemon: Interactive authentication required.")
			return 1
		}
		return 0
	case "is-active", "status", "is-enabled", "is-failed", "show":
	case "start", "restart", "try-restart", "reload-or-restart", "stop", "enable", "disable":
		if len(units) == 0 {
			p.errf("Too few arguments.")
			return 1
		}
	default:
		p.errf("Unknown command verb '%s'.", verb)
		return 1
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	status := 0
	for i, name := range units {
		unit := unitName(name)
		exists := m.unitExists(unit)
		switch verb {
		case "is-active", "is-failed":
			st := m.unitState(unit)
			if opts["quiet"] == "" {
				fmt.Fprintln(p.stdout, st)
			}
			if verb == "is-active" && st != "active" || verb == "is-failed" && st != "failed" {
				status = max(status, 3)
			}
		case "show":
			if i > 0 {
				fmt.Fprintln(p.stdout)
			}
			m.showUnit(p, unit, props)
		case "status":
			if !exists {
				p.errf("Unit %s could not be found.", unit)
				status = max(status, 4)
				continue
			}
			st := m.unitState(unit)
			fmt.Fprintf(p.stdout, "● %s\n     Loaded: loaded (%s)\n     Active: %s\n", unit, m.unitPath(unit), st)
			if st != "active" {
				status = max(status, 3)
			}
		case "is-enabled":
			switch {
			case !exists:
				p.errf("Failed to get unit file state for %s: No such file or directory", unit)
				status = max(status, 1)
			case m.enabled[unit]:
				fmt.Fprintln(p.stdout, "enabled")
			default:
				fmt.Fprintln(p.stdout, "disabled")
				status = max(status, 1)
			}
		default:
			status = max(status, m.changeUnit(p, verb, unit, exists, opts["now"] != ""))
		}
	}
	return status
}

// showUnit prints properties as `systemctl show` does: Key=value lines, in systemd's order of
// its property table (not the order asked for); all of them when none is named.
func (m *Machine) showUnit(p *proc, unit string, props []string) {
	r := m.run(unit)
	all := []struct{ key, val string }{
		{"Restart", "on-failure"},
		{"Result", r.result},
		{"NRestarts", strconv.Itoa(r.restarts(time.Now()))},
		{"ExecMainStatus", strconv.Itoa(r.execStatus)},
		{"Id", unit},
		{"ActiveState", r.active},
		{"SubState", r.sub},
		{"ActiveEnterTimestampMonotonic", strconv.FormatInt(r.enteredMono, 10)},
	}
	for _, kv := range all {
		if len(props) == 0 || containsFold(props, kv.key) {
			fmt.Fprintf(p.stdout, "%s=%s\n", kv.key, kv.val)
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// run returns the unit's run state, refreshed for crash loops; mu must be held.
func (m *Machine) run(unit string) unitRun {
	if unit == sshUnit {
		if m.state.SSHReady {
			return unitRun{active: "active", sub: "running", result: "success"}
		}
		return unitRun{active: "inactive", sub: "dead", result: "success"}
	}
	r, ok := m.units[unit]
	if !ok {
		return unitRun{active: "inactive", sub: "dead", result: "success"}
	}
	return *r
}

func (m *Machine) changeUnit(p *proc, verb, unit string, exists, now bool) int {
	gerund := map[string]string{"start": "start", "restart": "restart", "try-restart": "try-restart",
		"reload-or-restart": "reload-or-restart", "stop": "stop", "enable": "enable", "disable": "disable"}[verb]
	if !p.cred.root() {
		p.errf("Failed to %s %s: Interactive authentication required.", gerund, unit)
		p.errf("See system logs and 'systemctl status %s' for details.", unit)
		return 1
	}
	if !exists {
		p.errf("Failed to %s %s: Unit %s not found.", gerund, unit, unit)
		return 5
	}
	stop := func() {
		m.units[unit] = &unitRun{active: "inactive", sub: "dead", result: "success"}
	}
	switch verb {
	case "enable":
		m.enabled[unit] = true
		if !now {
			return 0
		}
	case "disable":
		m.enabled[unit] = false
		if now {
			stop()
		}
		return 0
	case "stop":
		stop()
		return 0
	case "try-restart":
		if m.unitState(unit) != "active" {
			return 0
		}
	}
	if cond := m.unitConditionFailed(unit); cond != "" {
		// A failed condition skips the start: no error, the unit just stays inactive.
		stop()
		m.log.Info("vps: unit start skipped", "unit", unit, "condition", cond)
		return 0
	}
	if reason := m.unitStartProblem(unit); reason != "" {
		m.units[unit] = &unitRun{active: "failed", sub: "failed", result: "resources"}
		m.log.Info("vps: unit failed to start", "unit", unit, "reason", reason)
		p.errf("Job for %s failed because of unavailable resources or another system error.", unit)
		p.errf("See \"systemctl status %s\" and \"journalctl -xeu %s\" for details.", unit, unit)
		return 1
	}
	r := &unitRun{active: "active", sub: "running", result: "success",
		enteredMono: time.Since(m.state.StartedAt).Microseconds(), restartEvery: m.unitRestartSec(unit)}
	if reason := m.unitExecProblem(unit); reason != "" {
		// Type=simple: the job is done once systemd forked, so systemctl succeeds; the child's
		// execve fails, the unit records 203/EXEC and Restart=on-failure restarts it forever.
		r.active, r.sub, r.result, r.execStatus = "activating", "auto-restart", "exit-code", 203
		r.crashSince = time.Now()
		m.log.Info("vps: unit main process failed", "unit", unit, "status", "203/EXEC", "reason", reason)
	}
	m.units[unit] = r
	m.unitStarts[unit]++
	return 0
}

func unitName(name string) string {
	if strings.Contains(name, ".") {
		return name
	}
	return name + ".service"
}

var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

func (m *Machine) unitPath(unit string) string {
	for _, d := range unitDirs {
		if n, ok := m.fs.nodes[d+"/"+unit]; ok && !n.dir {
			return d + "/" + unit
		}
	}
	return ""
}

func (m *Machine) unitExists(unit string) bool {
	return m.unitPath(unit) != "" || unit == sshUnit
}

// unitState is the unit's ActiveState; mu must be held.
func (m *Machine) unitState(unit string) string { return m.run(unit).active }

// unitDirectives returns the values of key in the unit file, in order.
func (m *Machine) unitDirectives(unit, key string) []string {
	up := m.unitPath(unit)
	if up == "" {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(string(m.fs.nodes[up].content), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && strings.TrimSpace(k) == key {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// unitConditionFailed returns the first ConditionPathExists= that does not hold, or "".
func (m *Machine) unitConditionFailed(unit string) string {
	for _, val := range m.unitDirectives(unit, "ConditionPathExists") {
		want := !strings.HasPrefix(strings.TrimPrefix(val, "|"), "!")
		_, exists := m.fs.nodes[path.Clean(strings.TrimPrefix(strings.TrimPrefix(val, "|"), "!"))]
		if exists != want {
			return "ConditionPathExists=" + val
		}
	}
	return ""
}

// unitStartProblem returns why systemd would refuse to start unit at all, or "".
func (m *Machine) unitStartProblem(unit string) string {
	for _, val := range m.unitDirectives(unit, "EnvironmentFile") {
		if strings.HasPrefix(val, "-") {
			continue
		}
		if n, ok := m.fs.nodes[path.Clean(val)]; !ok || n.dir {
			return fmt.Sprintf("Failed to load environment files: %s: No such file or directory", val)
		}
	}
	for _, val := range m.unitDirectives(unit, "User") {
		if _, ok := m.users[val]; !ok {
			return fmt.Sprintf("Failed to determine user credentials: No such process (User=%s)", val)
		}
	}
	return ""
}

// unitExecProblem returns why the main process could not execute ExecStart's program, or "":
// missing, a directory, or without an execute bit for the unit's user.
func (m *Machine) unitExecProblem(unit string) string {
	execs := m.unitDirectives(unit, "ExecStart")
	if len(execs) == 0 {
		return ""
	}
	prog := strings.TrimLeft(execs[len(execs)-1], "-@:+!")
	if f := strings.Fields(prog); len(f) > 0 {
		prog = f[0]
	}
	user := "root"
	if u := m.unitDirectives(unit, "User"); len(u) > 0 {
		user = u[len(u)-1]
	}
	c := cred{user: user, groups: []string{user}}
	if a := m.users[user]; a != nil {
		c = a.cred()
	}
	if imageProgram(prog) {
		return ""
	}
	n, err := m.fs.lookup(c, prog)
	switch {
	case err != nil:
		return fmt.Sprintf("Failed to locate executable %s: %v", prog, err)
	case n.dir:
		return fmt.Sprintf("Failed to execute %s: Is a directory", prog)
	case n.mode&0o111 == 0 || !c.root() && !c.can(n, 1):
		return fmt.Sprintf("Failed to execute %s: Permission denied", prog)
	}
	return ""
}

// unitRestartSec is RestartSec= (systemd's default is 100 ms).
func (m *Machine) unitRestartSec(unit string) time.Duration {
	d := 100 * time.Millisecond
	for _, v := range m.unitDirectives(unit, "RestartSec") {
		if x, err := time.ParseDuration(v); err == nil && x > 0 {
			d = x
		} else if n, err := strconv.Atoi(v); err == nil && n > 0 {
			d = time.Duration(n) * time.Second
		}
	}
	return d
}

// imageProgram reports whether prog is one of the Debian image's own programs, which the
// emulated file tree does not hold as files: those the simulator runs, and a few every Debian 12
// image has (a unit may well run /usr/bin/sleep or /usr/bin/env).
func imageProgram(prog string) bool {
	base, ok := strings.CutPrefix(canonicalBinPath(path.Clean(prog)), "/usr/bin/")
	if !ok || strings.Contains(base, "/") {
		return false
	}
	if _, ok := commands[base]; ok {
		return true
	}
	switch base {
	case "sleep", "env", "dash", "python3", "perl", "tail", "yes", "timeout":
		return true
	}
	return false
}
