package grid

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/apilimit"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

// LimitsConfig bounds what one tenant, one token or one client address
// can make the coordinator hold: the [limits] table of its config. A zero
// field takes its default (DefaultLimits, printed by grid config example).
type LimitsConfig struct {
	// RequestBody bounds a request's JSON body (a job submission, its spec
	// and inline values included): 413 past it.
	RequestBody jobspec.Size `toml:"request_body,omitempty"`
	// ModuleSize bounds one module upload: 413 past it.
	ModuleSize jobspec.Size `toml:"module_size,omitempty"`
	// ModulesPerTenant and ModuleBytesPerTenant bound the modules a
	// tenant holds on the coordinator (DELETE /v1/modules/{hash} frees
	// them): 413 past them.
	ModulesPerTenant     int          `toml:"modules_per_tenant,omitempty"`
	ModuleBytesPerTenant jobspec.Size `toml:"module_bytes_per_tenant,omitempty"`
	// UploadsPerTenant bounds a tenant's uploads in progress: 429.
	UploadsPerTenant int `toml:"uploads_per_tenant,omitempty"`
	// JobsPerTenant bounds a tenant's jobs in flight (being admitted or
	// running): 429.
	JobsPerTenant int `toml:"jobs_per_tenant,omitempty"`
	// RequestsPerSecond and RequestBurst rate-limit each token: 429 with
	// Retry-After past them.
	RequestsPerSecond float64 `toml:"requests_per_second,omitempty"`
	RequestBurst      int     `toml:"request_burst,omitempty"`
	// AuthFailuresPerMinute and AuthFailureBurst throttle failed
	// authentications per client address (IPv6 by /64): once its burst is
	// spent, every request from the address is 429, token or not, until
	// the budget refills, so guessing tokens costs time.
	AuthFailuresPerMinute float64 `toml:"auth_failures_per_minute,omitempty"`
	AuthFailureBurst      int     `toml:"auth_failure_burst,omitempty"`
	// StreamsPerToken bounds a token's open event streams (GET
	// /v1/jobs/{id}/events, /v1/events): 429.
	StreamsPerToken int `toml:"streams_per_token,omitempty"`
	// Inspectors is how many modules' manifests are read at once, each
	// in an executor process; InspectorQueue how many more submissions
	// may wait for one (past it, 503 with Retry-After).
	Inspectors     int `toml:"inspectors,omitempty"`
	InspectorQueue int `toml:"inspector_queue,omitempty"`
	// InspectorMemory is the memory a module's initialization gets when
	// its manifest is read (at most the job's task.memory); the
	// inspector process's Go runtime gets a limit of this plus 64 MiB.
	InspectorMemory jobspec.Size `toml:"inspector_memory,omitempty"`
	// Partitions, Splits, InlineValues and ModulesPerJob bound a job's
	// spec, checked before anything is planned: 400 past them.
	Partitions    int `toml:"partitions,omitempty"`
	Splits        int `toml:"splits,omitempty"`
	InlineValues  int `toml:"inline_values,omitempty"`
	ModulesPerJob int `toml:"modules_per_job,omitempty"`
}

// DefaultLimits are the limits of a config that sets none.
func DefaultLimits() LimitsConfig {
	return LimitsConfig{
		RequestBody:           8 * jobspec.MiB,
		ModuleSize:            256 * jobspec.MiB,
		ModulesPerTenant:      256,
		ModuleBytesPerTenant:  4 * jobspec.GiB,
		UploadsPerTenant:      2,
		JobsPerTenant:         16,
		RequestsPerSecond:     20,
		RequestBurst:          40,
		AuthFailuresPerMinute: 30,
		AuthFailureBurst:      10,
		StreamsPerToken:       8,
		Inspectors:            2,
		InspectorQueue:        8,
		InspectorMemory:       256 * jobspec.MiB,
		Partitions:            10000,
		Splits:                10000,
		InlineValues:          100000,
		ModulesPerJob:         16,
	}
}

// withDefaults is l with its zero fields set to the defaults.
func (l LimitsConfig) withDefaults() LimitsConfig {
	d := DefaultLimits()
	or := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	orSize := func(v *jobspec.Size, def jobspec.Size) {
		if *v == 0 {
			*v = def
		}
	}
	orSize(&l.RequestBody, d.RequestBody)
	orSize(&l.ModuleSize, d.ModuleSize)
	or(&l.ModulesPerTenant, d.ModulesPerTenant)
	orSize(&l.ModuleBytesPerTenant, d.ModuleBytesPerTenant)
	or(&l.UploadsPerTenant, d.UploadsPerTenant)
	or(&l.JobsPerTenant, d.JobsPerTenant)
	if l.RequestsPerSecond == 0 {
		l.RequestsPerSecond = d.RequestsPerSecond
	}
	or(&l.RequestBurst, d.RequestBurst)
	if l.AuthFailuresPerMinute == 0 {
		l.AuthFailuresPerMinute = d.AuthFailuresPerMinute
	}
	or(&l.AuthFailureBurst, d.AuthFailureBurst)
	or(&l.StreamsPerToken, d.StreamsPerToken)
	or(&l.Inspectors, d.Inspectors)
	or(&l.InspectorQueue, d.InspectorQueue)
	orSize(&l.InspectorMemory, d.InspectorMemory)
	or(&l.Partitions, d.Partitions)
	or(&l.Splits, d.Splits)
	or(&l.InlineValues, d.InlineValues)
	or(&l.ModulesPerJob, d.ModulesPerJob)
	return l
}

// validate says which limits cannot be.
func (l LimitsConfig) validate() []error {
	var errs []error
	for name, v := range map[string]int64{
		"request_body": int64(l.RequestBody), "module_size": int64(l.ModuleSize), "modules_per_tenant": int64(l.ModulesPerTenant),
		"module_bytes_per_tenant": int64(l.ModuleBytesPerTenant), "uploads_per_tenant": int64(l.UploadsPerTenant), "jobs_per_tenant": int64(l.JobsPerTenant),
		"request_burst": int64(l.RequestBurst), "auth_failure_burst": int64(l.AuthFailureBurst), "streams_per_token": int64(l.StreamsPerToken),
		"inspectors": int64(l.Inspectors), "inspector_queue": int64(l.InspectorQueue), "inspector_memory": int64(l.InspectorMemory),
		"partitions": int64(l.Partitions), "splits": int64(l.Splits), "inline_values": int64(l.InlineValues), "modules_per_job": int64(l.ModulesPerJob),
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("limits.%s cannot be negative", name))
		}
	}
	if l.RequestsPerSecond < 0 || math.IsNaN(l.RequestsPerSecond) || l.AuthFailuresPerMinute < 0 || math.IsNaN(l.AuthFailuresPerMinute) {
		errs = append(errs, errors.New("limits.requests_per_second and limits.auth_failures_per_minute cannot be negative"))
	}
	if l.InspectorMemory != 0 && (l.InspectorMemory < 16*jobspec.MiB || l.InspectorMemory > 4*jobspec.GiB) {
		errs = append(errs, fmt.Errorf("limits.inspector_memory %s: between 16MiB and 4GiB", l.InspectorMemory))
	}
	return errs
}

// newAPILimits enforces the API's limits of cfg (with its defaults).
func newAPILimits(cfg LimitsConfig, now func() time.Time) *apilimit.Limits {
	return apilimit.New(apilimit.Config{
		RequestsPerSecond: cfg.RequestsPerSecond, RequestBurst: cfg.RequestBurst,
		AuthFailuresPerMinute: cfg.AuthFailuresPerMinute, AuthFailureBurst: cfg.AuthFailureBurst,
		StreamsPerToken: cfg.StreamsPerToken, UploadsPerTenant: cfg.UploadsPerTenant,
	}, now)
}

// tooMany answers 429 with a Retry-After of at least a second.
func tooMany(w http.ResponseWriter, retry time.Duration, msg string) {
	secs := max(1, int(math.Ceil(retry.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	httpError(w, http.StatusTooManyRequests, fmt.Sprintf("%s; retry after %d s", msg, secs))
}
