package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/examples/terasort/sortbench"
	"github.com/wasmgrid/wasmgrid/grid"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/internal/storage/s3test"
)

// lakeVolume is a volume on the test's S3 bucket.
func lakeVolume(srv s3test.Server) storage.Volume {
	return storage.Volume{Name: "lake", URL: "s3://" + srv.Bucket, Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
}

// startLakeCluster starts a cluster whose tenants are granted, besides
// the test's temporary directory, the bucket as volume "lake".
func startLakeCluster(t testing.TB, srv s3test.Server, agents int, tenants ...string) *cluster {
	t.Helper()
	return startClusterCfg(t, agents, func(cfg *grid.CoordinatorConfig) {
		cfg.Volumes = append(cfg.Volumes, lakeVolume(srv))
		for i := range cfg.Tenants {
			cfg.Tenants[i].Grants["lake"] = "read-write"
		}
	}, nil, tenants...)
}

// lakeStore opens the bucket as the grid sees it.
func lakeStore(t testing.TB, srv s3test.Server) storage.Store {
	t.Helper()
	st, err := storage.Open(lakeVolume(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// putFile copies a local file to the store.
func putFile(t testing.TB, st storage.Store, local, name string) {
	t.Helper()
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := st.Create(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, f); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// readParts concatenates the part files of an output in the store.
func readParts(t testing.TB, st storage.Store, dir string) []byte {
	t.Helper()
	ctx := context.Background()
	parts, err := st.Glob(ctx, dir+"/part-*")
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, p := range parts {
		r, err := st.Open(ctx, p.Path, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(&all, r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return all.Bytes()
}

// TestClusterS3WordCount counts the words of files in an S3 bucket into an
// S3 prefix, on a cluster of processes and a real S3 server: the counts
// equal the native count, the output is committed with its manifest, and
// nothing of the job's staging area is left in the bucket.
func TestClusterS3WordCount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes and an S3 server")
	}
	srv := s3test.Start(t)
	st := lakeStore(t, srv)
	dir := t.TempDir()
	var locals []string
	for i := range 3 {
		local := filepath.Join(dir, fmt.Sprintf("corpus-%d.txt", i))
		if err := writeCorpus(local, 2<<20, uint64(20+i)); err != nil {
			t.Fatal(err)
		}
		putFile(t, st, local, fmt.Sprintf("books/corpus-%d.txt", i))
		locals = append(locals, local)
	}
	all := filepath.Join(dir, "all.txt")
	var cat bytes.Buffer
	for _, l := range locals {
		b, _ := os.ReadFile(l)
		cat.Write(b)
	}
	os.WriteFile(all, cat.Bytes(), 0o644)
	want := referenceCounts(t, all)

	c := startLakeCluster(t, srv, 2, "analytics")
	_, err := c.cli(c.tokens["analytics"], "submit", repoPath("examples/wordcount/job.toml"),
		"--param", "input=s3://"+srv.Bucket+"/books/*.txt", "--param", "output=lake:counts", "--param", "guest=c",
		"--conf", "source.split_size=512KiB", "--conf", "partitions=3", "--wait", "--progress", "none")
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, parseCounts(t, string(readParts(t, st, "counts"))), want)

	ctx := context.Background()
	r, err := st.Open(ctx, "counts/_SUCCESS", 0)
	if err != nil {
		t.Fatal(err)
	}
	var m storage.Manifest
	err = json.NewDecoder(r).Decode(&m)
	r.Close()
	if err != nil || m.Tenant != "analytics" || len(m.Parts) != 3 {
		t.Errorf("_SUCCESS: %+v, %v; want a manifest of tenant analytics with 3 parts", m, err)
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if !strings.HasPrefix(o.Path, "books/") && !strings.HasPrefix(o.Path, "counts/") {
			t.Errorf("the bucket holds %s after the job (its staging area should be gone)", o.Path)
		}
	}
	// The same output again is refused without overwrite, and replaced
	// with it.
	if _, err := c.cli(c.tokens["analytics"], "submit", repoPath("examples/wordcount/job.toml"),
		"--param", "input=lake:books/corpus-0.txt", "--param", "output=s3://"+srv.Bucket+"/counts", "--param", "guest=c",
		"--wait", "--progress", "none"); err == nil || !strings.Contains(err.Error(), "sink.overwrite") {
		t.Errorf("a second job into counts without overwrite: %v", err)
	}
}

// BenchmarkClusterTeraSortS3 sorts Sort Benchmark records read from S3 into
// S3 on a cluster of processes and, in the same run, the same records from
// and to a file volume on local disk: the ratio of the two is the cost of
// object storage. The size is WASMGRID_TERASORT_MB megabytes (default 100;
// the closing note of issue 12 quotes 1000).
func BenchmarkClusterTeraSortS3(b *testing.B) {
	mb := 100
	if v := os.Getenv("WASMGRID_TERASORT_MB"); v != "" {
		var err error
		if mb, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	n := uint64(mb) * 10_000
	srv := s3test.Start(b)
	st := lakeStore(b, srv)
	dir := b.TempDir()
	in := filepath.Join(dir, "in")
	want := genTera(b, in, n, 8, false)
	files, _ := filepath.Glob(filepath.Join(in, "*"))
	for _, f := range files {
		putFile(b, st, f, "tera/in/"+filepath.Base(f))
	}
	c := startLakeCluster(b, srv, 1)
	partitions := strconv.Itoa(max(8, mb/64))
	sort := func(b *testing.B, input, output string) time.Duration {
		start := time.Now()
		_, err := c.cli(c.admin, "submit", repoPath("examples/terasort/job.toml"), "--param", "input="+input, "--param", "output="+output,
			"--conf", "partitions="+partitions, "--conf", "sink.overwrite=true", "--wait", "--progress", "none")
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var local, s3 time.Duration
	b.Run("local", func(b *testing.B) {
		b.SetBytes(int64(n) * sortbench.RecordSize)
		out := filepath.Join(dir, "out")
		for b.Loop() {
			local = sort(b, filepath.Join(in, "*"), out)
		}
		if s := validateParts(b, out); s.Unordered != 0 || s.Checksum != want {
			b.Fatalf("local output invalid: %+v", s)
		}
	})
	b.Run("s3", func(b *testing.B) {
		b.SetBytes(int64(n) * sortbench.RecordSize)
		for b.Loop() {
			s3 = sort(b, "lake:tera/in/*", "s3://"+srv.Bucket+"/tera/out")
		}
		b.StopTimer()
		s, err := sortbench.Validate(bytes.NewReader(readParts(b, st, "tera/out")))
		if err != nil || s.Unordered != 0 || s.Checksum != want {
			b.Fatalf("s3 output invalid: %+v %v", s, err)
		}
		if local > 0 {
			b.ReportMetric(float64(s3)/float64(local), "x-local")
		}
	})
}
