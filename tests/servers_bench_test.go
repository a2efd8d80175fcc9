package tests

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/grid"
)

// BenchmarkClusterSubmit measures job submissions per second through the
// SDK, 16 at a time, to 3 coordinator servers (every submission is
// committed by two of them, with fsync, before it is answered) and, in
// the same run, to 1 server, the baseline; servers-3 reports its ratio to
// it. Each job is a tiny pi (1,000 throws) that one agent process runs
// meanwhile; the module is uploaded once, so that a submission is one
// POST /v1/jobs. The limits that protect a cluster from one tenant
// (jobs in flight, requests per second) are lifted.
func BenchmarkClusterSubmit(b *testing.B) {
	lift := func(cfg *grid.CoordinatorConfig) {
		cfg.Limits.JobsPerTenant = 1 << 20
		cfg.Limits.RequestsPerSecond, cfg.Limits.RequestBurst = 1e6, 1<<20
		cfg.History.MaxJobs = 1 << 20
	}
	var baseline float64
	for _, n := range []int{1, 3} {
		name := map[int]string{1: "servers-1", 3: "servers-3"}[n]
		b.Run(name, func(b *testing.B) {
			var c *cluster
			if n == 1 {
				c = startClusterCfg(b, 1, lift, nil)
			} else {
				c = startServers(b, n, 1, lift)
			}
			r := c.remote(c.admin)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			job := piJob(b)
			text, err := os.ReadFile(job.Spec.File)
			if err != nil {
				b.Fatal(err)
			}
			file, _ := filepath.Abs(job.Spec.File)
			req := api.SubmitRequest{Spec: string(text), File: file, Params: job.Params, Conf: job.Conf, Modules: map[string]string{}}
			for mod, wasm := range job.Modules {
				if req.Modules[mod], err = r.PushModule(ctx, wasm); err != nil {
					b.Fatal(err)
				}
			}
			// One submission first: the module's manifest is read once.
			if _, err := r.SubmitRequest(ctx, req); err != nil {
				b.Fatal(err)
			}
			const submitters = 16
			start := time.Now()
			next := make(chan struct{})
			var wg sync.WaitGroup
			var mu sync.Mutex
			var firstErr error
			for range submitters {
				wg.Go(func() {
					for range next {
						if _, err := r.SubmitRequest(ctx, req); err != nil {
							mu.Lock()
							firstErr = err
							mu.Unlock()
						}
					}
				})
			}
			submitted := 0
			for b.Loop() {
				next <- struct{}{}
				submitted++
			}
			close(next)
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			rate := float64(submitted) / elapsed.Seconds()
			b.ReportMetric(rate, "submissions/s")
			if n == 1 {
				baseline = rate
			} else if baseline > 0 {
				b.ReportMetric(rate/baseline, "ratio-to-1-server")
			}
		})
	}
}
