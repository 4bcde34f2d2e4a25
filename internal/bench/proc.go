package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is Linux's USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on every
// architecture Go supports).
const clockTicks = 100

// ProcStats is what /proc says about a process's resource use.
type ProcStats struct {
	// CPUSeconds is user plus system time.
	CPUSeconds float64
	// RSSMB is the resident set now, PeakRSSMB its high-water mark (since start or the last
	// [ResetPeakRSS]), in MiB.
	RSSMB, PeakRSSMB float64
}

// ReadProcStats reads a process's CPU time and memory from /proc.
func ReadProcStats(pid int) (ProcStats, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStats{}, fmt.Errorf("read process stats: %w", err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStats{}, fmt.Errorf("read process status: %w", err)
	}
	return parseProcStats(string(stat), string(status))
}

// parseProcStats reads utime and stime from /proc/PID/stat and VmRSS and VmHWM from
// /proc/PID/status.
func parseProcStats(stat, status string) (ProcStats, error) {
	// The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return ProcStats{}, fmt.Errorf("unexpected /proc/PID/stat: %.40q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// After the name: state(3) … utime(14) stime(15), so utime is f[11] and stime f[12].
	if len(f) < 13 {
		return ProcStats{}, fmt.Errorf("unexpected /proc/PID/stat: %d fields", len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return ProcStats{}, fmt.Errorf("unexpected /proc/PID/stat times %q %q", f[11], f[12])
	}
	ps := ProcStats{CPUSeconds: float64(utime+stime) / clockTicks}
	found := 0
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) != 2 || fs[1] != "kB" {
			return ProcStats{}, fmt.Errorf("unexpected %s line %q", k, line)
		}
		kb, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			return ProcStats{}, fmt.Errorf("unexpected %s line %q", k, line)
		}
		if k == "VmRSS" {
			ps.RSSMB = kb / 1024
		} else {
			ps.PeakRSSMB = kb / 1024
		}
		found++
	}
	if found != 2 {
		return ProcStats{}, fmt.Errorf("VmRSS or VmHWM missing from /proc/PID/status")
	}
	return ps, nil
}

// ResetPeakRSS sets a process's VmHWM back to its current RSS, so the next reading is the peak
// of what came after.
func ResetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS of %d: %w", pid, err)
	}
	return nil
}
