// Package teststack builds the whole service in one test process for the tests of every package
// but provision: the environment of internal/testenv (database, simulator, keyring, public URL,
// configuration) plus the provisioning service, a worker and the web app behind the public URL,
// so the simulated VPSes call back into the app as they would in production.
//
// The provision package's own tests cannot import this package (it imports provision); they
// build on internal/testenv with the same defaults.
package teststack

import (
	"net/http"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/httpapp"
	"github.com/rachelcloud/admin/internal/metrics"
	"github.com/rachelcloud/admin/internal/provision"
	"github.com/rachelcloud/admin/internal/testenv"
)

// Options shape a stack: the environment's options, and which processes run.
type Options struct {
	testenv.Options
	// NoWorker leaves the worker out (start one later with [Stack.StartWorker]).
	NoWorker bool
	// NoWeb leaves the web app out: the public URL then takes only the VPSes' callbacks, straight
	// to the provisioning service.
	NoWeb bool
	// Metrics gives the web app its /metrics route and request counter.
	Metrics bool
	// Worker are further options of the worker (its timings are provision.SimulatorTimings).
	Worker []provision.Option
}

// Stack is a running stack; everything in it stops when the test ends.
type Stack struct {
	*testenv.Env
	// RateLimit and HCloud are the Hetzner client the service and the worker share.
	RateLimit *provision.RateLimitTracker
	HCloud    *hcloud.Client
	// Service is the provisioning service (what the web app calls).
	Service *provision.Service
	// Worker is the running worker (nil with NoWorker).
	Worker *provision.Worker
	// Deps are the web app's dependencies (sign-in, customers... also with NoWeb, for tests
	// that call the services); Web the app (nil with NoWeb).
	Deps httpapp.Deps
	Web  *echo.Echo
}

// New starts a stack for the test.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	s := &Stack{Env: testenv.New(t, o.Options)}
	var err error
	var provOpts []provision.Option
	provOpts = append(provOpts, provision.WithLogger(s.Log))
	if s.Sim != nil {
		s.RateLimit = &provision.RateLimitTracker{}
		s.HCloud, err = provision.NewHCloudClient(s.Config, s.RateLimit, nil)
		require.NoError(t, err)
		provOpts = append(provOpts, provision.WithHCloudClient(s.HCloud, s.RateLimit))
	}
	s.Service, err = provision.NewService(s.Pool, s.Config, provOpts...)
	require.NoError(t, err)
	if !o.NoWorker {
		s.Worker = s.StartWorker(t, o.Worker...)
	}
	s.Deps = httpapp.NewDeps(s.Pool, s.Config, s.Service, s.Log)
	if o.NoWeb {
		s.Handle(CallbackHandler(s.Service))
		return s
	}
	if o.Metrics {
		s.Deps.Metrics = metrics.New(s.Pool, s.Log)
	}
	s.Web = httpapp.New(s.Deps)
	s.Handle(s.Web)
	return s
}

// StartWorker runs a worker on the stack until the test ends, with the simulator's timings and
// the given options after them.
func (s *Stack) StartWorker(t testing.TB, opts ...provision.Option) *provision.Worker {
	t.Helper()
	base := []provision.Option{provision.WithLogger(s.Log), provision.WithTimings(provision.SimulatorTimings())}
	if s.HCloud != nil {
		base = append(base, provision.WithHCloudClient(s.HCloud, s.RateLimit))
	}
	w, err := provision.NewWorker(s.Pool, s.Config, append(base, opts...)...)
	require.NoError(t, err)
	testenv.RunWorker(t, w)
	return w
}

// CallbackHandler takes the VPSes' callbacks (POST /callback/{token}) straight to the service,
// as the web app's route does, for stacks without the web app.
func CallbackHandler(svc *provision.Service) http.Handler {
	return testenv.CallbackHandler(svc.HandleCallback)
}
