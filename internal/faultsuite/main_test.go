package faultsuite

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rachelcloud/admin/internal/dbtest"
)

// envBinary names a prebuilt rachel-admin binary; without it the tests build one.
const envBinary = "RACHEL_ADMIN_BIN"

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := dbtest.Main(m)
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binary returns the path of the rachel-admin binary, building it once per test run. It is built
// without -race whatever the test binary is, so the subprocesses run at production speed.
func binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if p := os.Getenv(envBinary); p != "" {
			built.path = p
			return
		}
		built.dir, built.err = os.MkdirTemp("", "rachel-faultsuite-bin-")
		if built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "rachel-admin")
		goBin, err := exec.LookPath("go")
		if err != nil {
			built.err = fmt.Errorf("find the go command: %w", err)
			return
		}
		cmd := exec.Command(goBin, "build", "-o", built.path, "github.com/rachelcloud/admin")
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build rachel-admin: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}
