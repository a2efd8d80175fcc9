package quicnet

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/wasmgrid/wasmgrid/shuffle"
)

const (
	testJob   = "job-1"
	testToken = "secret"
)

type kv struct{ key, value string }

// harness is a block server on loopback and a fetcher. Its cleanup closes
// the fetcher, stops the server, waits for Run, and checks for leaks.
type harness struct {
	t    testing.TB
	dir  string
	srv  *Server
	f    *Fetcher
	addr string
	stop func() // cancels Run and waits for it
}

func newHarness(t *testing.T, fcfg FetcherConfig) *harness {
	t.Helper()
	t.Cleanup(func() { verifyNoLeaks(t) }) // runs last
	h := startHarness(t, fcfg)
	t.Cleanup(h.close)
	return h
}

// verifyNoLeaks fails t if goroutines are left. A connection from
// quic.DialAddr closes its transport (and its UDP read loop) in the
// background after CloseWithError returns, which can take longer than
// goleak's own retries (~0.4 s) on a loaded machine: leaks must outlast a
// few seconds to count.
func verifyNoLeaks(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); goleak.Find() != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	goleak.VerifyNone(t)
}

// newBenchHarness is a harness for a benchmark; call close when done.
func newBenchHarness(b *testing.B) *harness { return startHarness(b, FetcherConfig{}) }

// close closes the fetcher and stops the server.
func (h *harness) close() {
	_ = h.f.Close()
	h.stop()
}

func startHarness(t testing.TB, fcfg FetcherConfig) *harness {
	return startHarnessAuth(t, fcfg, func(job, token string) bool { return token == testToken })
}

// startHarnessAuth is startHarness with the server's Authorize function.
func startHarnessAuth(t testing.TB, fcfg FetcherConfig, authorize func(job, token string) bool) *harness {
	sTLS, cTLS, err := EphemeralTLS()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := NewServer(ServerConfig{
		Addr: "127.0.0.1:0", TLS: sTLS, Dir: dir,
		Authorize: authorize,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	fcfg.TLS = cTLS
	f := NewFetcher(fcfg)
	return &harness{t: t, dir: dir, srv: srv, f: f, addr: srv.Addr().String(), stop: stop}
}

// write writes a map output of recs into dir/<job>/.
func (h *harness) write(job string, id shuffle.MapOutputID, partitions int, recs []kv) *shuffle.MapOutput {
	h.t.Helper()
	w, err := shuffle.NewWriter(shuffle.WriterConfig{
		Dir: filepath.Join(h.dir, job), ID: id, Partitions: partitions, Memory: 512 << 20,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
			h.t.Fatal(err)
		}
	}
	out, err := w.Commit()
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func randRecords(rng *rand.Rand, n, maxValue int, tag string) []kv {
	recs := make([]kv, n)
	for i := range recs {
		v := make([]byte, rng.IntN(maxValue+1))
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		recs[i] = kv{fmt.Sprintf("k%06d-%s-%d", rng.IntN(1000000), tag, i), string(v)}
	}
	return recs
}

func readAll(it shuffle.Iterator) ([]kv, error) {
	var out []kv
	for it.Next() {
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	return out, it.Err()
}

func sortByKey(recs []kv) []kv {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b kv) int { return bytes.Compare([]byte(a.key), []byte(b.key)) })
	return recs
}

func equalRecords(t *testing.T, what string, got, want []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d is %q, want %q", what, i, got[i].key, want[i].key)
		}
	}
}

// fetchErr checks that err is a *shuffle.FetchError naming id, partition and
// addr, and returns it.
func fetchErr(t *testing.T, err error, id shuffle.MapOutputID, partition int, addr string) *shuffle.FetchError {
	t.Helper()
	var fe *shuffle.FetchError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a FetchError", err, err)
	}
	if fe.ID != id || fe.Partition != partition || fe.Location != addr {
		t.Fatalf("FetchError names %v partition %d at %q, want %v partition %d at %q", fe.ID, fe.Partition, fe.Location, id, partition, addr)
	}
	return fe
}

func TestRoundTrip(t *testing.T) {
	h := newHarness(t, FetcherConfig{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	const maps, parts = 4, 5
	byPart := make([][]kv, parts)
	var ids []shuffle.MapOutputID
	for m := range maps {
		id := shuffle.MapOutputID{ShuffleID: 3, MapIndex: uint32(m), Attempt: 1}
		recs := randRecords(rng, 3000, 200, fmt.Sprint(m))
		if m == 0 {
			// A large value, so that some blocks are streamed.
			big := make([]byte, 2<<20)
			for j := range big {
				big[j] = byte(rng.Uint32())
			}
			recs = append(recs, kv{"big", string(big)})
		}
		h.write(testJob, id, parts, recs)
		for _, r := range recs {
			p := shuffle.HashPartition([]byte(r.key), parts)
			byPart[p] = append(byPart[p], r)
		}
		ids = append(ids, id)
	}
	// A partition that no record maps to: empty blocks.
	emptyID := shuffle.MapOutputID{ShuffleID: 3, MapIndex: 9}
	h.write(testJob, emptyID, 2, []kv{{"only", "one"}})
	for p := range parts {
		var its []shuffle.Iterator
		for _, id := range ids {
			r, err := h.f.Open(ctx, h.addr, testJob, testToken, id, p)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			its = append(its, r)
		}
		got, err := readAll(shuffle.NewMerger(its))
		if err != nil {
			t.Fatal(err)
		}
		equalRecords(t, fmt.Sprintf("partition %d", p), got, sortByKey(byPart[p]))
	}
	// Empty partition.
	for p := range 2 {
		r, err := h.f.Open(ctx, h.addr, testJob, testToken, emptyID, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got); n > 1 {
			t.Fatalf("partition %d: %d records", p, n)
		}
	}

	// OpenMany: many small blocks of one agent in one request.
	smallID := shuffle.MapOutputID{ShuffleID: 4, MapIndex: 0}
	const smallParts = 300
	recs := randRecords(rng, 2000, 20, "s")
	h.write(testJob, smallID, smallParts, recs)
	var reqs []BlockReq
	for p := range smallParts {
		reqs = append(reqs, BlockReq{ID: smallID, Partition: p})
	}
	rs, err := h.f.OpenMany(ctx, h.addr, testJob, testToken, reqs)
	if err != nil {
		t.Fatal(err)
	}
	var all []kv
	for _, r := range rs {
		got, err := readAll(r)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
	}
	equalRecords(t, "OpenMany", sortByKey(all), sortByKey(recs))
	if n := len(h.f.conns); n != 1 {
		t.Errorf("%d connections to one agent, want 1", n)
	}
}

func TestServerDiesMidBlock(t *testing.T) {
	h := newHarness(t, FetcherConfig{})
	rng := rand.New(rand.NewPCG(3, 4))
	id := shuffle.MapOutputID{ShuffleID: 5, MapIndex: 2, Attempt: 1}
	h.write(testJob, id, 1, randRecords(rng, 400, 64<<10, "x")) // ~13 MB, incompressible
	r, err := h.f.Open(context.Background(), h.addr, testJob, testToken, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatalf("no first record: %v", r.Err())
	}
	h.stop() // Run returns: every connection is closed
	n := 1
	for r.Next() {
		n++
	}
	if r.Err() == nil {
		t.Fatalf("clean end after %d of 400 records", n)
	}
	t.Logf("read %d records, then: %v", n, r.Err())
	fetchErr(t, r.Err(), id, 0, h.addr)
}

func TestCorruptBlock(t *testing.T) {
	h := newHarness(t, FetcherConfig{})
	rng := rand.New(rand.NewPCG(5, 6))
	id := shuffle.MapOutputID{ShuffleID: 6, MapIndex: 1}
	// Random values do not compress: zstd stores them as raw blocks, so a
	// flipped byte in the frame is a flipped byte of a record.
	out := h.write(testJob, id, 2, randRecords(rng, 200, 1000, "c"))
	p := 1
	pi := out.Partitions[p]
	data, err := os.ReadFile(out.DataPath)
	if err != nil {
		t.Fatal(err)
	}
	orig := slices.Clone(data[pi.Offset : pi.Offset+pi.Length])
	at := pi.Offset + blockHeaderSize + 12 + 2000 // inside the first chunk's frame
	data[at] ^= 0x10
	if err := os.WriteFile(out.DataPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := h.f.Open(context.Background(), h.addr, testJob, testToken, id, p)
	if err == nil {
		_, err = readAll(r)
		r.Close()
	}
	fe := fetchErr(t, err, id, p, h.addr)
	if !errors.Is(fe, shuffle.ErrCorrupt) {
		t.Fatalf("error %v does not wrap ErrCorrupt", err)
	}
	t.Logf("corrupt block: %v", err)

	// Negative control. Package shuffle has no way to decode without
	// checking checksums, so decode the first chunk of the block as it came
	// over the wire (verbatim, from the raw protocol) with zstd ourselves:
	// it still decodes, to bytes that differ from the original in one
	// place, and only the chunk's CRC-32C tells them apart. Without the
	// checksum, the flipped byte would reach the reducer's output.
	got := rawFetch(t, h, request{job: testJob, token: testToken, blocks: []BlockReq{{ID: id, Partition: p}}})
	if got[0] != statusOK || !bytes.Equal(got[9:], data[pi.Offset:pi.Offset+pi.Length]) {
		t.Fatal("raw fetch did not return the block verbatim")
	}
	bad, good := firstChunk(t, got[9:]), firstChunk(t, orig)
	if len(bad.raw) != len(good.raw) || bytes.Equal(bad.raw, good.raw) {
		t.Fatal("control: the flipped byte did not change the decoded chunk")
	}
	diff := 0
	for i := range bad.raw {
		if bad.raw[i] != good.raw[i] {
			diff++
		}
	}
	if diff != 1 || crc32c(bad.raw) == bad.crc || crc32c(good.raw) != good.crc {
		t.Fatalf("control: %d bytes differ; crc of the corrupt chunk matches: %v", diff, crc32c(bad.raw) == bad.crc)
	}
}

type chunk struct {
	raw []byte
	crc uint32
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// firstChunk decodes the first chunk of a block without checking its CRC.
func firstChunk(t *testing.T, block []byte) chunk {
	t.Helper()
	c := block[blockHeaderSize:]
	rawLen, stored, crc := binary.LittleEndian.Uint32(c), binary.LittleEndian.Uint32(c[4:]), binary.LittleEndian.Uint32(c[8:])
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw, err := d.DecodeAll(c[12:12+stored], nil)
	if err != nil {
		t.Fatalf("control: zstd: %v", err)
	}
	if len(raw) != int(rawLen) {
		t.Fatalf("control: chunk of %d bytes, header says %d", len(raw), rawLen)
	}
	return chunk{raw, crc}
}

// rawFetch sends req, unchecked, on a new stream and returns the whole answer.
func rawFetch(t *testing.T, h *harness, req request) []byte {
	t.Helper()
	ctx := context.Background()
	conn, err := h.f.conn(ctx, h.addr)
	if err != nil {
		t.Fatal(err)
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := appendRequest(nil, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	ans, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

func TestRefused(t *testing.T) {
	h := newHarness(t, FetcherConfig{})
	ctx := context.Background()
	id := shuffle.MapOutputID{ShuffleID: 7}
	h.write(testJob, id, 1, []kv{{"a", "b"}})
	h.write("other", id, 1, []kv{{"a", "b"}})

	_, err := h.f.Open(ctx, h.addr, testJob, "wrong", id, 0)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong token: %v, want ErrUnauthorized", err)
	}
	var fe *shuffle.FetchError
	if errors.As(err, &fe) {
		t.Fatalf("wrong token gave a FetchError: %v", err)
	}

	// A job name with "../" is refused by the client, and by the server.
	for _, job := range []string{"../other", "..", "a/b", "", "job/../other"} {
		if _, err := h.f.Open(ctx, h.addr, job, testToken, id, 0); err == nil || errors.As(err, &fe) || !errors.Is(err, errBadRequest) {
			t.Errorf("job %q: %v", job, err)
		}
		if job == "" {
			continue
		}
		ans := rawFetch(t, h, request{job: job, token: testToken, blocks: []BlockReq{{ID: id}}})
		if len(ans) == 0 || ans[0] != statusBadRequest {
			t.Errorf("job %q: server answered %q", job, ans)
		}
	}

	// A missing map output.
	missing := shuffle.MapOutputID{ShuffleID: 7, MapIndex: 1}
	_, err = h.f.Open(ctx, h.addr, testJob, testToken, missing, 0)
	fetchErr(t, err, missing, 0, h.addr)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing output: %v does not wrap fs.ErrNotExist", err)
	}
	// The connection is still good.
	r, err := h.f.Open(ctx, h.addr, testJob, testToken, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(r); err != nil || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestNoServer(t *testing.T) {
	defer verifyNoLeaks(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	_ = pc.Close() // nothing listens there now
	_, cTLS, err := EphemeralTLS()
	if err != nil {
		t.Fatal(err)
	}
	f := NewFetcher(FetcherConfig{TLS: cTLS, Timeout: 200 * time.Millisecond})
	defer f.Close()
	id := shuffle.MapOutputID{ShuffleID: 8, MapIndex: 3}
	_, err = f.Open(context.Background(), addr, testJob, testToken, id, 1)
	fetchErr(t, err, id, 1, addr)
	t.Logf("no server: %v", err)
}

func TestBoundedConcurrency(t *testing.T) {
	h := newHarness(t, FetcherConfig{MaxConcurrent: 2})
	rng := rand.New(rand.NewPCG(7, 8))
	id := shuffle.MapOutputID{ShuffleID: 9}
	const parts = 8
	h.write(testJob, id, parts, randRecords(rng, 800, 2000, "b")) // ~100 KB blocks
	var wg sync.WaitGroup
	errs := make(chan error, 4*parts)
	for range 4 {
		for p := range parts {
			wg.Go(func() {
				r, err := h.f.Open(context.Background(), h.addr, testJob, testToken, id, p)
				if err == nil {
					_, err = readAll(r)
				}
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := h.srv.maxStreams.Load(); m > 2 || m < 1 {
		t.Fatalf("server saw %d streams at once, want 1 or 2", m)
	}
}

// TestOpenManyBudgetSpillsToDisk fetches blocks past a small memory budget:
// the blocks beyond it are read back from temporary files, which leave
// nothing behind, and the records are the same.
func TestOpenManyBudgetSpillsToDisk(t *testing.T) {
	h := newHarness(t, FetcherConfig{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	var reqs []BlockReq
	var want []kv
	for m := range 6 {
		id := shuffle.MapOutputID{ShuffleID: 5, MapIndex: uint32(m)}
		recs := randRecords(rng, 4000, 300, fmt.Sprint(m))
		h.write(testJob, id, 1, recs)
		reqs = append(reqs, BlockReq{ID: id, Partition: 0})
		want = append(want, recs...)
	}
	dir := t.TempDir()
	rs, kept, err := h.f.OpenManyBudget(ctx, h.addr, testJob, testToken, reqs, Spill{Dir: dir, Budget: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if kept > 64<<10 {
		t.Fatalf("kept %d bytes in memory, over the 64 KiB budget", kept)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("temporary block files visible in the spill directory: %v", left)
	}
	var its []shuffle.Iterator
	for _, r := range rs {
		defer r.Close()
		its = append(its, r)
	}
	got, err := readAll(shuffle.NewMerger(its))
	if err != nil {
		t.Fatal(err)
	}
	equalRecords(t, "budgeted OpenMany", got, sortByKey(want))
}
