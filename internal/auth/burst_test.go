package auth_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/auth"
	"github.com/rachelcloud/admin/internal/database"
	"github.com/rachelcloud/admin/internal/dbtest"
)

// burstEnv makes the test binary a sign-in burst child (see burstChild) instead of running tests.
const burstEnv = "RACHEL_TEST_SIGNIN_BURST_DB"

// 500 sign-ins at once — each for a different account from a different address, so none is
// throttled and every one hashes — keep the process under 300 MB: hashing is bounded to
// MaxConcurrentHashes at a time (unbounded, 500 × 19 MiB of argon2id memory would be 9.5 GB).
// The burst runs in a child process of its own, whose peak RSS (VmHWM) is what is measured.
func TestSignInBurstMemory(t *testing.T) {
	t.Parallel()
	if raceEnabled {
		t.Skip("the race detector multiplies memory; the bound is measured without it (go test -run TestSignInBurstMemory ./internal/auth)")
	}
	url := dbtest.URL(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), burstEnv+"="+url)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var peakKB, failed int
	_, err = fmt.Sscanf(strings.TrimSpace(string(out)), "peak_kb=%d failed=%d", &peakKB, &failed)
	require.NoError(t, err, "%s", out)
	require.Equal(t, 500, failed, "every sign-in was checked and refused")
	t.Logf("500 parallel sign-ins: peak RSS %.1f MB (MaxConcurrentHashes %d)", float64(peakKB)/1024, auth.MaxConcurrentHashes)
	require.Less(t, peakKB, 300*1024)
}

// burstChild runs 500 parallel sign-ins against the database at url and prints its peak RSS.
func burstChild(url string) int {
	ctx := context.Background()
	pool, err := database.Open(ctx, url, 0)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer pool.Close()
	s := auth.NewService(pool, time.Minute, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.SignIn(ctx, fmt.Sprintf("burst%d@example.com", i), "wrong password!!", fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), "ua")
			if err == auth.ErrBadCredentials {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			fmt.Printf("peak_kb=%d failed=%d\n", kb, failed)
			return 0
		}
	}
	fmt.Println("no VmHWM")
	return 1
}
