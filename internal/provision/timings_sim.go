package provision

import "time"

// SimulatorTimings suit the simulator at 1/100 of Hetzner's durations, as the tests run it: the
// worker's loops shrink with the simulated actions, so a provisioning takes seconds.
func SimulatorTimings() Timings {
	return Timings{
		PollMin: 20 * time.Millisecond, PollMax: 150 * time.Millisecond, Sweep: 150 * time.Millisecond,
		Retry: 50 * time.Millisecond, InjectRetry: 100 * time.Millisecond, Reconcile: time.Hour,
		FetchPoll: 50 * time.Millisecond, JobTimeout: 30 * time.Second, SSHTimeout: 3 * time.Second,
		CallbackGrace: 300 * time.Millisecond,
	}
}
