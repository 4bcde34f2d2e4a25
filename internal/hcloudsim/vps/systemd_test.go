package vps

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// unitFiles are units whose start goes each way systemd 252 (Debian 12) can take.
const unitFiles = `  - path: /etc/systemd/system/needsenv.service
    content: |
      [Service]
      EnvironmentFile=/etc/demo/env
      ExecStart=/usr/bin/sleep infinity
  - path: /etc/systemd/system/optenv.service
    content: |
      [Service]
      EnvironmentFile=-/etc/demo/env
      ExecStart=/usr/bin/sleep infinity
  - path: /etc/systemd/system/nouser.service
    content: |
      [Service]
      User=ghost
      ExecStart=/usr/bin/sleep infinity
  - path: /etc/systemd/system/noexec.service
    content: |
      [Service]
      ExecStart=/opt/app/bin/app --serve
      Restart=on-failure
      RestartSec=1h
  - path: /etc/systemd/system/cond.service
    content: |
      [Unit]
      ConditionPathExists=/etc/demo/ready
      [Service]
      ExecStart=/usr/bin/sleep infinity
  - path: /usr/lib/systemd/system/vendor.service
    content: |
      [Service]
      ExecStart=/usr/bin/sleep infinity
`

func bootUnits(t *testing.T) *Machine {
	t.Helper()
	// write_files of shellUserData end the document; the units are more entries of it.
	return bootShell(t, unitFiles)
}

func TestSystemctlLifeCycle(t *testing.T) {
	t.Parallel()
	m := bootUnits(t)
	for _, tc := range []shellCase{
		// A unit nobody started is inactive: is-active says so and exits 3.
		{line: "systemctl is-active demo.service", stdout: "inactive\n", status: 3},
		{line: "systemctl is-active --quiet demo", stdout: "", status: 3},
		{line: "systemctl is-enabled demo.service", stdout: "disabled\n", status: 1},
		{line: "systemctl status demo.service", status: 3, stdout: "● demo.service\n     Loaded: loaded (/etc/systemd/system/demo.service)\n     Active: inactive\n"},
		{line: "systemctl start demo"},
		{line: "systemctl is-active demo.service", stdout: "active\n"},
		{line: "systemctl is-failed demo.service", stdout: "active\n", status: 3},
		{line: "systemctl status demo.service", stdout: "● demo.service\n     Loaded: loaded (/etc/systemd/system/demo.service)\n     Active: active\n"},
		{line: "systemctl restart demo.service"},
		{line: "systemctl stop demo.service"},
		{line: "systemctl is-active demo.service", stdout: "inactive\n", status: 3},
		// try-restart leaves a stopped unit stopped.
		{line: "systemctl try-restart demo.service"},
		{line: "systemctl is-active demo.service", stdout: "inactive\n", status: 3},
		{line: "systemctl enable demo.service"},
		{line: "systemctl is-enabled demo.service", stdout: "enabled\n"},
		{line: "systemctl is-active demo.service", stdout: "inactive\n", status: 3},
		{line: "systemctl enable --now demo.service"},
		{line: "systemctl is-active demo.service", stdout: "active\n"},
		{line: "systemctl disable --now demo.service"},
		{line: "systemctl is-enabled demo.service", stdout: "disabled\n", status: 1},
		{line: "systemctl is-active demo.service", stdout: "inactive\n", status: 3},
		// Several units: the worst status wins.
		{line: "systemctl start demo.service vendor.service"},
		{line: "systemctl is-active demo.service nosuch.service", stdout: "active\ninactive\n", status: 3},
		// Unit files in /usr/lib/systemd/system count as well.
		{line: "systemctl status vendor", stdout: "● vendor.service\n     Loaded: loaded (/usr/lib/systemd/system/vendor.service)\n     Active: active\n"},
		// sshd runs once the machine serves SSH.
		{line: "systemctl is-active ssh.service", stdout: "active\n"},
		// Errors, with systemctl's exit statuses.
		{line: "systemctl start nosuch.service", status: 5, stderr: "Failed to start nosuch.service: Unit nosuch.service not found."},
		{line: "systemctl status nosuch.service", status: 4, stderr: "Unit nosuch.service could not be found."},
		{line: "systemctl is-enabled nosuch.service", status: 1, stderr: "Failed to get unit file state for nosuch.service: No such file or directory"},
		{line: "systemctl frobnicate demo.service", status: 1, stderr: "Unknown command verb 'frobnicate'."},
		{line: "systemctl start", status: 1, stderr: "Too few arguments."},
		{line: "systemctl", status: 1, stderr: "not simulated"},
		{line: "systemctl --bogus start demo", status: 1, stderr: "unrecognized option '--bogus'"},
		{line: "systemctl daemon-reload"},
		// Reading needs no privileges; changing does, and polkit has no agent over SSH.
		{user: "bob", line: "systemctl is-active demo.service", stdout: "active\n"},
		{user: "bob", line: "systemctl stop demo.service", status: 1, stderr: "Failed to stop demo.service: Interactive authentication required."},
		{user: "bob", line: "systemctl daemon-reload", status: 1, stderr: "Failed to reload daemon: Interactive authentication required."},
		{user: "bob", line: "systemctl is-active demo.service", stdout: "active\n"},
	} {
		tc.check(t, m)
	}
	require.Equal(t, 4, m.ServiceStarts("demo.service"), "start, restart, enable --now, start with vendor; not try-restart of a stopped unit")
	require.Equal(t, "active", m.Services()["demo.service"])
}

func TestSystemctlStartFailuresAsSystemd(t *testing.T) {
	t.Parallel()
	m := bootUnits(t)
	for _, tc := range []shellCase{
		// A missing EnvironmentFile= fails the start: the job fails, the unit is failed.
		{line: "systemctl start needsenv.service", status: 1,
			stderr: "Job for needsenv.service failed because of unavailable resources or another system error."},
		{line: "systemctl is-failed needsenv.service", stdout: "failed\n"},
		{line: "systemctl is-active needsenv.service", stdout: "failed\n", status: 3},
		{line: "systemctl show -p ActiveState,SubState,Result needsenv.service", stdout: "Result=resources\nActiveState=failed\nSubState=failed\n"},
		// A "-" makes the file optional.
		{line: "systemctl start optenv.service"},
		{line: "systemctl is-active optenv.service", stdout: "active\n"},
		// Once the file is there the start succeeds.
		{line: "install -m 0600 /dev/stdin /etc/demo/env", stdin: "A=1\n"},
		{line: "systemctl restart needsenv.service"},
		{line: "systemctl is-active needsenv.service", stdout: "active\n"},
		// An unknown User= fails the start as well.
		{line: "systemctl start nouser.service", status: 1, stderr: "Job for nouser.service failed"},
		{line: "systemctl is-failed nouser.service", stdout: "failed\n"},
		// A failed ConditionPathExists= skips the start without an error.
		{line: "systemctl start cond.service"},
		{line: "systemctl is-active cond.service", stdout: "inactive\n", status: 3},
		{line: "install -m 0644 /dev/stdin /etc/demo/ready"},
		{line: "systemctl start cond.service"},
		{line: "systemctl is-active cond.service", stdout: "active\n"},
	} {
		tc.check(t, m)
	}
}

func TestUnitWhoseProgramIsMissingCrashLoopsWith203(t *testing.T) {
	t.Parallel()
	m := bootUnits(t)
	// Type=simple: systemctl returns once systemd forked; the exec fails afterwards.
	shellCase{line: "systemctl start noexec.service"}.check(t, m)
	out, _, status := m.RunAs("root", "systemctl show --property=ActiveState --property=SubState --property=Result --property=ExecMainStatus --property=NRestarts noexec.service", nil)
	require.Equal(t, 0, status)
	// In systemd's property-table order, not the order asked for.
	require.Equal(t, "Result=exit-code\nNRestarts=0\nExecMainStatus=203\nActiveState=activating\nSubState=auto-restart\n", out)
	shellCase{line: "systemctl is-active noexec.service", stdout: "activating\n", status: 3}.check(t, m)

	// A program that exists but is not executable is the same 203.
	shellCase{line: "install -D -m 0644 /dev/stdin /opt/app/bin/app", stdin: "#!/bin/sh\n"}.check(t, m)
	shellCase{line: "systemctl restart noexec.service"}.check(t, m)
	out, _, _ = m.RunAs("root", "systemctl show -p ExecMainStatus noexec.service", nil)
	require.Equal(t, "ExecMainStatus=203\n", out)

	// Executable: it runs.
	shellCase{line: "chmod 0755 /opt/app/bin/app"}.check(t, m)
	shellCase{line: "systemctl restart noexec.service"}.check(t, m)
	out, _, _ = m.RunAs("root", "systemctl show -p ActiveState -p ExecMainStatus -p Restart noexec.service", nil)
	require.Equal(t, "Restart=on-failure\nExecMainStatus=0\nActiveState=active\n", out)
}

func TestSystemctlShowAllProperties(t *testing.T) {
	t.Parallel()
	m := bootUnits(t)
	out, _, status := m.RunAs("bob", "systemctl show demo.service", nil)
	require.Equal(t, 0, status)
	keys := []string{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		k, _, ok := strings.Cut(line, "=")
		require.True(t, ok, line)
		keys = append(keys, k)
	}
	require.Equal(t, []string{"Restart", "Result", "NRestarts", "ExecMainStatus", "Id", "ActiveState", "SubState",
		"ActiveEnterTimestampMonotonic"}, keys)
	require.Contains(t, out, "Id=demo.service\n")
	require.Contains(t, out, "ActiveEnterTimestampMonotonic=0\n", "never entered active")

	shellCase{line: "systemctl start demo.service"}.check(t, m)
	out, _, _ = m.RunAs("bob", "systemctl show -p Id demo.service vendor.service", nil)
	require.Equal(t, "Id=demo.service\n\nId=vendor.service\n", out, "units separated by a blank line")
	out, _, _ = m.RunAs("bob", "systemctl show -p ActiveEnterTimestampMonotonic demo.service", nil)
	require.NotEqual(t, "ActiveEnterTimestampMonotonic=0\n", out, "a start stamps the monotonic time")
	shellCase{user: "bob", line: "systemctl show -p", status: 1, stderr: "option requires an argument -- 'p'"}.check(t, m)
}

func TestUnitRestartSecParsing(t *testing.T) {
	t.Parallel()
	m := bootShell(t, `  - path: /etc/systemd/system/a.service
    content: "[Service]\nRestartSec=5\n"
  - path: /etc/systemd/system/b.service
    content: "[Service]\nRestartSec=250ms\n"
  - path: /etc/systemd/system/c.service
    content: "[Service]\nRestartSec=junk\n"
`)
	m.mu.Lock()
	defer m.mu.Unlock()
	require.Equal(t, "5s", m.unitRestartSec("a.service").String(), "a bare number is seconds")
	require.Equal(t, "250ms", m.unitRestartSec("b.service").String())
	require.Equal(t, "100ms", m.unitRestartSec("c.service").String(), "systemd's default")
	require.Equal(t, "100ms", m.unitRestartSec("demo.service").String())
}
