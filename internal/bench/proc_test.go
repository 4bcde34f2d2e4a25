package bench

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseProcStats(t *testing.T) {
	t.Parallel()
	// A command name with a space and a parenthesis must not shift the fields.
	stat := "4242 (rachel (admin) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 9 0 100 1000000 5000 18446744073709551615"
	status := "Name:\trachel-admin\nVmPeak:\t  900000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	ps, err := parseProcStats(stat, status)
	require.NoError(t, err)
	require.InDelta(t, 3.25, ps.CPUSeconds, 1e-9)
	require.InDelta(t, 80.0, ps.PeakRSSMB, 1e-9)
	require.InDelta(t, 40.0, ps.RSSMB, 1e-9)

	_, err = parseProcStats("garbage", status)
	require.Error(t, err)
	_, err = parseProcStats(stat, "Name:\tx\n")
	require.Error(t, err)
}

func TestReadProcStatsOfThisProcess(t *testing.T) {
	t.Parallel()
	ps, err := ReadProcStats(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, ps.RSSMB)
	require.GreaterOrEqual(t, ps.PeakRSSMB, ps.RSSMB)
	require.GreaterOrEqual(t, ps.CPUSeconds, 0.0)
}
