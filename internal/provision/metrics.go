package provision

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rachelcloud/admin/internal/db"
)

// stepMetrics are the worker's own metrics (hcloud-go's request metrics come from its
// instrumentation on the same registry).
type stepMetrics struct {
	duration  *prometheus.HistogramVec
	failures  *prometheus.CounterVec
	callbacks *prometheus.CounterVec
	// quarantined counts pooled key pairs set aside because they could not be decrypted.
	quarantined prometheus.Counter
}

func newStepMetrics(reg prometheus.Registerer) *stepMetrics {
	m := &stepMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rachel_provisioning_step_duration_seconds",
			Help:    "How long each provisioning step took, from entering it to leaving it.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 900},
		}, []string{"step"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rachel_provisioning_failures_total",
			Help: "Provisioning steps that ended in failed.",
		}, []string{"step"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rachel_callbacks_total",
			Help: "VPS cloud-init callbacks by outcome (accepted, or the reason it was rejected).",
		}, []string{"outcome"}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rachel_ssh_key_pool_quarantined_total",
			Help: "Pooled SSH key pairs set aside (ssh_key_pool_quarantine) because no key of the keyring decrypts them.",
		}),
	}
	if reg != nil {
		m.quarantined = register(reg, m.quarantined)
		m.duration = register(reg, m.duration)
		m.failures = register(reg, m.failures)
		m.callbacks = register(reg, m.callbacks)
	}
	return m
}

// register registers c, or returns the collector registered before it under the same name (a
// worker and a service in one process share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *stepMetrics) keyQuarantined() {
	if m != nil {
		m.quarantined.Inc()
	}
}

func (m *stepMetrics) callback(outcome string) {
	if m != nil {
		m.callbacks.WithLabelValues(outcome).Inc()
	}
}

// stepDone records that a subscription left step st, which it had entered at startedAt.
func (m *stepMetrics) stepDone(st db.ProvisioningStatus, startedAt *time.Time) {
	if m == nil || startedAt == nil {
		return
	}
	m.duration.WithLabelValues(string(st)).Observe(time.Since(*startedAt).Seconds())
}

func (m *stepMetrics) stepFailed(st db.ProvisioningStatus) {
	if m != nil {
		m.failures.WithLabelValues(string(st)).Inc()
	}
}
