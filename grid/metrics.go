package grid

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the grid's Prometheus metrics. The coordinator's goroutine
// updates them; Prometheus reads them concurrently, which its types allow.
type metrics struct {
	jobs         *prometheus.CounterVec   // by outcome
	attempts     *prometheus.CounterVec   // by outcome and kind of failure
	taskSeconds  *prometheus.HistogramVec // by stage kind
	recordsIn    prometheus.Counter
	bytesIn      prometheus.Counter
	recordsOut   prometheus.Counter
	runningTasks prometheus.Gauge
	agentsLost   prometheus.Counter
	roundTrip    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wasmgrid", Name: "jobs_total", Help: "Jobs that ended, by outcome.",
		}, []string{"outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wasmgrid", Name: "task_attempts_total", Help: "Task attempts that ended, by outcome (succeeded, failed, fetch_failed, lost, fatal, stale).",
		}, []string{"outcome"}),
		taskSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "wasmgrid", Name: "task_duration_seconds", Help: "Duration of task attempts, by stage kind (map or result).",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"stage"}),
		recordsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "wasmgrid", Name: "source_records_total", Help: "Records read from job sources.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "wasmgrid", Name: "source_bytes_total", Help: "Bytes read from job sources.",
		}),
		recordsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "wasmgrid", Name: "result_records_total", Help: "Records written to job sinks.",
		}),
		runningTasks: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "wasmgrid", Name: "running_tasks", Help: "Task attempts in flight.",
		}),
		agentsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "wasmgrid", Name: "agents_lost_total", Help: "Agents declared lost.",
		}),
		roundTrip: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "wasmgrid", Name: "task_round_trip_seconds", Help: "Time from a task attempt's launch to its report reaching the coordinator.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.jobs, m.attempts, m.taskSeconds, m.recordsIn, m.bytesIn, m.recordsOut, m.runningTasks, m.agentsLost, m.roundTrip)
	}
	return m
}
