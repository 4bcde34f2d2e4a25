package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/dbtest"
	"github.com/rachelcloud/admin/internal/hcloudsim"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestEnvWiresDatabaseSimulatorAndPublicURL(t *testing.T) {
	t.Parallel()
	e := New(t, Options{Sim: hcloudsim.Config{SSHPort: 22051}, Env: map[string]string{"CREATE_DEADLINE": "7s"}})

	// The configuration is what a process would load from the variables.
	require.Equal(t, e.Server.URL, e.Config.PublicBaseURL)
	require.Equal(t, e.Sim.Endpoint(), e.Config.HCloudEndpoint)
	require.Equal(t, SimToken, e.Vars["HCLOUD_TOKEN"])
	require.Equal(t, "22051", e.Vars["VPS_SSH_PORT"])
	require.Equal(t, "7s", e.Vars["CREATE_DEADLINE"], "the test's override wins")
	require.Equal(t, "20s", e.Vars["CALLBACK_DEADLINE"], "the defaults stay")
	require.False(t, e.Real())
	var one int
	require.NoError(t, e.Pool.QueryRow(context.Background(), `SELECT count(*) FROM installation`).Scan(&one))
	require.Equal(t, 1, one, "a migrated database")

	// The public URL serves the assistant program at its digest, and the rest to the handler.
	status, body := get(t, e.Vars["ASSISTANT_ARTIFACT_URL"])
	require.Equal(t, http.StatusOK, status)
	sum := sha256.Sum256([]byte(body))
	require.Equal(t, e.Vars["ASSISTANT_ARTIFACT_SHA256"], hex.EncodeToString(sum[:]))
	status, _ = get(t, e.Server.URL+"/anything")
	require.Equal(t, http.StatusNotFound, status, "nothing handles it yet")
	e.Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "app "+r.URL.Path) }))
	status, body = get(t, e.Server.URL+"/anything")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "app /anything", body)
}

func TestEnvOptions(t *testing.T) {
	t.Parallel()
	e := New(t, Options{NoSim: true, Env: map[string]string{"ASSISTANT_ARTIFACT_URL": "", "ASSISTANT_ARTIFACT_SHA256": strings.Repeat("0", 64)}})
	require.Nil(t, e.Sim)
	require.Empty(t, e.Vars["HCLOUD_ENDPOINT"])
	require.Equal(t, e.Server.URL+assistantfixture.Path, e.Vars["ASSISTANT_ARTIFACT_URL"], "a digest alone keeps the fixture's URL")
	require.Equal(t, strings.Repeat("0", 64), e.Vars["ASSISTANT_ARTIFACT_SHA256"])

	none := New(t, Options{NoSim: true, Env: map[string]string{"ASSISTANT_ARTIFACT_URL": "", "ASSISTANT_ARTIFACT_SHA256": ""}})
	require.NotContains(t, none.Vars, "ASSISTANT_ARTIFACT_URL", "both emptied: no artifact")
	require.NotContains(t, none.Vars, "ASSISTANT_ARTIFACT_SHA256")

	// A given database is used as it is, without a pool.
	u := dbtest.URL(t)
	given := New(t, Options{NoSim: true, DatabaseURL: u})
	require.Nil(t, given.Pool)
	require.Equal(t, u, given.Vars["DATABASE_URL"])

	// A shared simulator serves another installation; its token and port are the options'.
	a := New(t, Options{Sim: hcloudsim.Config{Token: "shared-token", SSHPort: 22052}})
	b := New(t, Options{SharedSim: a.Sim, Sim: hcloudsim.Config{Token: "shared-token", SSHPort: 22052}})
	require.Same(t, a.Sim, b.Sim)
	require.Equal(t, a.Vars["HCLOUD_ENDPOINT"], b.Vars["HCLOUD_ENDPOINT"])
	require.Equal(t, "shared-token", b.Vars["HCLOUD_TOKEN"])
	require.NotEqual(t, a.Vars["DATABASE_URL"], b.Vars["DATABASE_URL"], "each installation its own database")
}

func TestCallbackHandler(t *testing.T) {
	t.Parallel()
	e := New(t, Options{NoSim: true})
	var got atomic.Pointer[string]
	e.Handle(CallbackHandler(func(_ context.Context, token string, form url.Values, _ string) error {
		if token != "good" {
			return errors.New("unknown token")
		}
		s := token + " " + form.Encode()
		got.Store(&s)
		return nil
	}))
	post := func(path string) int {
		resp, err := http.PostForm(e.Server.URL+path, url.Values{"hostname": {"h"}})
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNoContent, post("/callback/good"))
	require.Equal(t, "good hostname=h", *got.Load())
	require.Equal(t, http.StatusNotFound, post("/callback/bad"))
	require.Equal(t, http.StatusNotFound, post("/elsewhere"))
	status, _ := get(t, e.Server.URL+"/callback/good")
	require.Equal(t, http.StatusNotFound, status, "GET is no callback")
}

type fakeWorker struct{ err error }

func (w fakeWorker) Run(ctx context.Context) error {
	<-ctx.Done()
	if w.err != nil {
		return w.err
	}
	return ctx.Err()
}

func TestRunWorkerStopsItWithTheTest(t *testing.T) {
	t.Parallel()
	var r recorder
	t.Run("run", func(t *testing.T) {
		r.TB = t
		RunWorker(&r, fakeWorker{})
		RunWorker(&r, fakeWorker{err: errors.New("lost the database")})
	})
	require.Equal(t, []string{"worker: lost the database"}, r.errors)

	// Stopped before the test ends (a restart): it has stopped when stop returns, and stopping
	// again (the test's cleanup) reports nothing more.
	r.errors = nil
	t.Run("stop", func(t *testing.T) {
		r.TB = t
		w := &stopRecorder{}
		stop := RunWorker(&r, w)
		stop()
		require.True(t, w.stopped.Load())
		stop()
	})
	require.Empty(t, r.errors)
}

type stopRecorder struct{ stopped atomic.Bool }

func (w *stopRecorder) Run(ctx context.Context) error {
	<-ctx.Done()
	w.stopped.Store(true)
	return ctx.Err()
}

type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
