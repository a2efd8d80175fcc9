package executor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/internal/batch"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/shuffle"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

// Settings are a task attempt's limits and places: the same in the Task
// that runs and in the TaskMsg that carries it to an executor.
type Settings struct {
	// MemoryBytes caps the linear memory of each of the task's instances.
	MemoryBytes uint64
	// BatchSize is the bytes of records per guest call.
	BatchSize int
	// MaxRecord is the longest input line accepted.
	MaxRecord int
	// MaxOutput caps the bytes of records the task's pipeline may produce;
	// 0 means no cap.
	MaxOutput int64
	// ShuffleDir is where a map task writes its output: the agent's
	// directory for this job.
	ShuffleDir string
	// ShuffleMemory and CompressionLevel configure the shuffle writer and
	// the reduce side's fetch budget.
	ShuffleMemory    int64
	CompressionLevel int
	// OutputFile is where a result task writes its part (an attempt file
	// in its output's staging area, which the coordinator commits): a
	// path in the volume OutputVolume.
	OutputFile   string
	OutputVolume string
	// Volumes are the storage volumes the task may read its split from
	// and write its part into, by name: the job's tenant's, with the
	// credentials the agent holds for them.
	Volumes map[string]storage.Volume
	// OutputFormat is how a result task writes its records: "text" (or
	// ""): "key<TAB>value" lines, the value alone for an empty key;
	// "records": raw key‖value, no separators; "json": JSON lines
	// {"key":…,"value":…}; "csv": key,value rows, "csv_header" with a
	// "key,value" line first; "count": nothing (the records are counted).
	OutputFormat string
	// InlineOutput, if not zero, lets a result task whose part is at most
	// this many bytes return it in its Result (Inline, Output) instead of
	// writing OutputFile: the coordinator keeps it in its log. A larger
	// part is written to OutputFile as usual.
	InlineOutput int
}

func (s Settings) limits() wasmexec.Limits { return wasmexec.Limits{MemoryBytes: s.MemoryBytes} }

// Task is one task attempt, described by data.
type Task struct {
	Spec planner.TaskSpec
	// Modules are the job's modules by name, loaded in the executor's runtime.
	Modules map[string]*wasmexec.Module
	Settings
	// Blocks opens the task's shuffle input, for this task's job.
	Blocks Blocks
	// Stores opens the volumes of Settings.Volumes.
	Stores Stores
}

// Stores opens volumes' stores; an executor keeps them open across tasks.
type Stores interface {
	Store(v storage.Volume) (storage.Store, error)
}

// store is the store of the task's volume name.
func (r *runner) store(name string) (storage.Store, error) {
	v, ok := r.t.Volumes[name]
	if !ok {
		return nil, &inputError{fmt.Errorf("volume %q is not among the task's volumes", name)}
	}
	if r.t.Stores == nil {
		return nil, &inputError{fmt.Errorf("volume %s: this executor opens no volumes", name)}
	}
	s, err := r.t.Stores.Store(v)
	if err != nil {
		return nil, &inputError{err}
	}
	return s, nil
}

// Blocks opens a partition of several map outputs held by one agent,
// keeping up to budget bytes of them in memory and the rest in temporary
// files in spillDir. It returns the bytes it kept in memory.
type Blocks interface {
	OpenBlocks(ctx context.Context, agent string, ids []shuffle.MapOutputID, partition int, budget int64, spillDir string) ([]BlockIterator, int64, error)
}

// BlockIterator is a partition's records in key order.
type BlockIterator interface {
	shuffle.Iterator
	Close() error
}

// Result is what a successful attempt reports.
type Result struct {
	RecordsIn, RecordsOut int64
	BytesIn               int64
	BytesOut              int64              // bytes of records the pipeline produced
	MapOutput             *shuffle.MapOutput // a map task's output
	OutputFile            string             // a result task's attempt file
	// Inline says that a result task's part is Output, not a file
	// (Settings.InlineOutput).
	Inline  bool
	Output  []byte
	Samples [][]byte // a sample task's keys
	Log     string   // the tail of the guests' stdout and stderr
	// PeakRSS is the executor process's peak resident memory so far, in
	// bytes, as the kernel counts it (0 where unknown).
	PeakRSS int64
	// Started is when the guest code began: the task's modules were
	// loaded and its instances made, and its input was about to be read.
	Started time.Time
}

// Error is a failed attempt: what the scheduler needs to react, and the
// cause for the user.
type Error struct {
	Failure planner.Failure
	Err     error
	Log     string // the tail of the guests' stdout and stderr
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Run runs one task attempt with the agent's runtime.
func Run(ctx context.Context, rt *wasmexec.Runtime, t *Task) (*Result, error) {
	r := &runner{rt: rt, t: t, res: &Result{}}
	err := r.run(ctx)
	if err != nil {
		e := classify(t.Spec, err)
		e.Log = r.log.String()
		return nil, e
	}
	r.res.Log = r.log.String()
	return r.res, nil
}

type runner struct {
	rt  *wasmexec.Runtime
	t   *Task
	res *Result
	log strings.Builder // guests' output, gathered as their instances close
}

func (r *runner) step(ref planner.FuncRef) (wasmexec.Step, error) {
	m, ok := r.t.Modules[ref.Module]
	if !ok {
		return wasmexec.Step{}, &inputError{fmt.Errorf("module %q is not loaded", ref.Module)}
	}
	f, err := m.Function(ref.Function)
	if err != nil {
		return wasmexec.Step{}, &inputError{err}
	}
	return wasmexec.Step{Name: ref.Module, Module: m, Function: f}, nil
}

func (r *runner) run(ctx context.Context) (err error) {
	sink, commit, abort, err := r.openOutput(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			abort()
		}
	}()
	limited := func(b []byte) error {
		r.res.BytesOut += int64(len(b) - 4)
		if max := r.t.MaxOutput; max > 0 && r.res.BytesOut > max {
			return &limitError{fmt.Errorf("%s: the task produced more than task.max_output (%d bytes) of records: raise it, or filter earlier", r.label(), max)}
		}
		return sink(b)
	}
	push, finish, closePipes, err := r.pipeline(ctx, r.t.Spec.Stage.Steps, limited)
	if err != nil {
		return err
	}
	defer closePipes()
	r.res.Started = time.Now()
	if err := r.readInput(ctx, push); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	return commit()
}

// pipeline builds the function that pushes a batch through steps and
// hands what comes out to out: runs of guest functions in wasm
// pipelines, broadcast joins, samples and map_partitions on the host
// between them. finish, called after the last batch, sends on what steps
// hold back (a map_partitions' partition); closeAll closes the pipelines,
// keeping their guests' output.
func (r *runner) pipeline(ctx context.Context, steps []planner.Step, out func([]byte) error) (push func([]byte) error, finish func() error, closeAll func(), err error) {
	push, finish = out, func() error { return nil }
	var closers []func()
	closeAll = func() {
		for _, c := range closers {
			c()
		}
	}
	// guest makes a wasm pipeline of steps.
	guest := func(steps []planner.Step) (*wasmexec.Pipeline, error) {
		var ws []wasmexec.Step
		for _, s := range steps {
			w, err := r.step(s.Func)
			if err != nil {
				return nil, err
			}
			switch s.Op {
			case planner.OpMapValues:
				w.Keep = "key"
			case planner.OpKeyBy:
				w.Keep = "value"
			}
			ws = append(ws, w)
		}
		pipe, err := r.rt.NewPipeline(ctx, ws, r.t.limits())
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() {
			r.log.WriteString(pipe.Log())
			pipe.Close(context.WithoutCancel(ctx))
		})
		return pipe, nil
	}
	for end := len(steps); end > 0; {
		start := end - 1
		if steps[start].Op == planner.OpMapPartitions {
			pipe, err := guest(steps[start : start+1])
			if err != nil {
				closeAll()
				return nil, nil, nil, err
			}
			next, nextFinish := push, finish
			// The partition gathers in place as the call's one record:
			// batch count 1, key length 0, value length, then the value,
			// a batch of the partition's records (its count, then them).
			const head = 16
			call := make([]byte, head)
			var n uint32
			push = func(b []byte) error {
				n += batch.Count(b)
				call = append(call, b[4:]...)
				return nil
			}
			finish = func() error {
				if len(call)-12 > math.MaxUint32 {
					return &limitError{fmt.Errorf("%s: map_partitions: a partition of %d bytes is more than a record can hold (4 GiB): use more partitions", r.label(), len(call)-12)}
				}
				binary.LittleEndian.PutUint32(call[0:], 1)
				binary.LittleEndian.PutUint32(call[4:], 0)
				binary.LittleEndian.PutUint32(call[8:], uint32(len(call)-12))
				binary.LittleEndian.PutUint32(call[12:], n)
				err := pipe.Push(ctx, call, next)
				call = nil
				if err != nil {
					return err
				}
				return nextFinish()
			}
			end = start
			continue
		}
		if steps[start].Host() {
			var host func(in []byte, next func([]byte) error) error
			if steps[start].Op == planner.OpSample {
				host = r.sample(steps[start])
			} else if host, err = r.broadcastJoin(ctx, steps[start]); err != nil {
				closeAll()
				return nil, nil, nil, err
			}
			next := push
			push = func(b []byte) error { return host(b, next) }
			end = start
			continue
		}
		for start > 0 && !steps[start-1].Host() {
			start--
		}
		pipe, err := guest(steps[start:end])
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		next := push
		push = func(b []byte) error { return pipe.Push(ctx, b, next) }
		end = start
	}
	return push, finish, closeAll, nil
}

// sample returns the function that keeps each record of a batch with
// probability step.Fraction. The draws come from a generator seeded by the
// step's seed, the stage and the partition, so that a retry (which reads
// the same records in the same order) keeps the same ones.
func (r *runner) sample(step planner.Step) func(in []byte, next func([]byte) error) error {
	state := step.Seed ^ uint64(r.t.Spec.Key.Stage)<<40 ^ uint64(r.t.Spec.Key.Partition)
	// Keep a record when a uniform 64-bit draw is below this.
	var below uint64
	switch {
	case step.Fraction >= 1:
		below = math.MaxUint64
	case step.Fraction > 0:
		below = uint64(step.Fraction * (1 << 64))
	}
	b := batch.NewBuilder(r.t.BatchSize)
	return func(in []byte, next func([]byte) error) error {
		b.Reset()
		it := batch.Checked(in)
		for it.Next() {
			state += 0x9e3779b97f4a7c15 // splitmix64
			z := state
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			if z^(z>>31) < below || below == math.MaxUint64 {
				// A sample is never larger than its input batch: one
				// output batch, whatever the batch size.
				b.Add(it.Key(), it.Value())
			}
		}
		if b.Len() == 0 {
			return nil
		}
		return next(b.Bytes())
	}
}

// broadcastJoin reads the small side of a broadcast join whole into a hash
// table and returns the function that joins a batch with it, as a shuffle
// join would (the same output records, in the left side's order).
func (r *runner) broadcastJoin(ctx context.Context, step planner.Step) (func(in []byte, next func([]byte) error) error, error) {
	spec := r.t.Spec
	dep := spec.Stage.Broadcasts[step.Broadcast]
	parts := []int{0}
	if dep.Identity() {
		// A cache partitioned as the stage: the partitions that hold the
		// task's keys.
		parts = spec.Stage.InputPartitions(spec.Key.Partition)
	}
	merged, closeAll, err := r.openShuffleInput(ctx, dep, spec.BroadcastInputs[step.Broadcast], parts)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	table := map[string][][]byte{}
	for merged.Next() {
		k := string(merged.Key())
		table[k] = append(table[k], bytes.Clone(merged.Value()))
	}
	if err := merged.Err(); err != nil {
		return nil, err
	}
	outer := step.Op == planner.OpLeftOuterJoin
	b := batch.NewBuilder(r.t.BatchSize)
	var enc []byte
	pair := make([][]byte, 2)
	return func(in []byte, next func([]byte) error) error {
		b.Reset()
		emit := func(key, value []byte) error {
			b.Add(key, value)
			if !b.Full() {
				return nil
			}
			err := next(b.Bytes())
			b.Reset()
			return err
		}
		it := batch.Checked(in)
		for it.Next() {
			rights := table[string(it.Key())]
			pair[0] = it.Value()
			if len(rights) == 0 && outer {
				enc = AppendGroupedValues(enc[:0], pair[:1])
				if err := emit(it.Key(), enc); err != nil {
					return err
				}
			}
			for _, v := range rights {
				pair[1] = v
				enc = AppendGroupedValues(enc[:0], pair)
				if err := emit(it.Key(), enc); err != nil {
					return err
				}
			}
		}
		if b.Len() == 0 {
			return nil
		}
		return next(b.Bytes())
	}, nil
}

// readInput feeds the task's input, in batches, to push.
func (r *runner) readInput(ctx context.Context, push func([]byte) error) error {
	st, spec := r.t.Spec.Stage, r.t.Spec
	b := batch.NewBuilder(r.t.BatchSize)
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		// Guests may run without termination checks: a stop request is
		// noticed here, between two batches.
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		r.res.RecordsIn += int64(b.Len())
		err := push(b.Bytes())
		b.Reset()
		return err
	}
	// add batches one record, flushing full batches.
	add := func(key, value []byte) error {
		b.Add(key, value)
		if b.Full() {
			return flush()
		}
		return nil
	}
	if sp := spec.Split; sp != nil {
		var n int64
		var err error
		switch {
		case sp.Inline:
			for _, v := range sp.Values {
				if err = add(nil, []byte(v)); err != nil {
					break
				}
				n += int64(len(v))
			}
		case sp.Generate:
			var num []byte
			for i := sp.Offset; i < sp.Offset+sp.Length && err == nil; i++ {
				num = strconv.AppendInt(num[:0], i, 10)
				err = add(nil, num)
			}
		case sp.RecordSize > 0:
			var st storage.Store
			if st, err = r.store(sp.Volume); err == nil {
				n, err = readRecords(ctx, st, *sp, add)
			}
		default:
			var st storage.Store
			if st, err = r.store(sp.Volume); err != nil {
				break
			}
			n, err = readSplit(ctx, st, *sp, r.t.MaxRecord, func(line []byte) error {
				if sp.JSON && len(bytes.TrimSpace(line)) == 0 {
					return nil // blank lines between JSON values
				}
				if sp.JSON && !json.Valid(line) {
					return &inputError{fmt.Errorf("%s: a line of %d bytes in the split at byte %d is not valid JSON (a json source reads JSON lines: one JSON value per line)", sp.Path, len(line), sp.Offset)}
				}
				return add(nil, line)
			})
		}
		r.res.BytesIn = n
		if err != nil {
			return err
		}
		return flush()
	}
	parts := st.InputPartitions(spec.Key.Partition)
	merged, closeAll, err := r.openShuffleInput(ctx, st.ShuffleIn, spec.Inputs, parts)
	if err != nil {
		return err
	}
	defer closeAll()
	if st.Join != nil {
		right, closeRight, err := r.openShuffleInput(ctx, st.Join.Right, spec.RightInputs, parts)
		if err != nil {
			return err
		}
		defer closeRight()
		join := mergeJoin
		if st.Join.Cogroup {
			join = func(left, right keyed, _ bool, emit func(key, value []byte) error) error {
				return mergeCogroup(left, right, emit)
			}
		}
		if err := join(merged, right, st.Join.Outer, add); err != nil {
			return err
		}
		return flush()
	}
	var reducer *wasmexec.Reducer
	pipe := push
	if st.Reduce != nil {
		ws, err := r.step(*st.Reduce)
		if err != nil {
			return err
		}
		reducer, err = r.rt.NewReducer(ctx, ws, r.t.limits())
		if err != nil {
			return err
		}
		defer func() {
			r.log.WriteString(reducer.Log())
			reducer.Close(context.WithoutCancel(ctx))
		}()
		push = func(b []byte) error {
			out, err := reducer.Reduce(ctx, b)
			if err != nil {
				return err
			}
			return pipe(out)
		}
	}
	var side *reduceSide
	if kind := st.ShuffleIn.Builtin; kind != "" {
		side = &reduceSide{kind: kind, emit: add}
	}
	for merged.Next() {
		var err error
		if side != nil {
			err = side.add(merged.Key(), merged.Value())
		} else {
			err = add(merged.Key(), merged.Value())
		}
		if err != nil {
			return err
		}
	}
	if err := merged.Err(); err != nil {
		return err
	}
	if side != nil {
		if err := side.flush(); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if reducer != nil {
		if last := reducer.Flush(); batch.Count(last) > 0 {
			// The carried record has been reduced already: it skips the
			// reducer and goes straight down the pipeline.
			return pipe(last)
		}
	}
	return nil
}

// openShuffleInput merges partitions of dep's map outputs inputs.
func (r *runner) openShuffleInput(ctx context.Context, dep *planner.ShuffleDep, inputs []planner.MapOutputLoc, partitions []int) (*shuffle.Merger, func(), error) {
	// One request per agent for all the blocks it holds of this partition:
	// the blocks travel on one stream each way, and a reducer never waits
	// for a stream slot that another of its own open blocks holds.
	var agents []string
	byAgent := map[string][]shuffle.MapOutputID{}
	for _, in := range inputs {
		id := shuffle.MapOutputID{ShuffleID: uint64(dep.ID), MapIndex: uint32(in.MapIndex), Attempt: uint32(in.Attempt)}
		if _, ok := byAgent[in.Agent]; !ok {
			agents = append(agents, in.Agent)
		}
		byAgent[in.Agent] = append(byAgent[in.Agent], id)
	}
	var its []shuffle.Iterator
	var open []BlockIterator
	closeAll := func() {
		for _, it := range open {
			it.Close()
		}
	}
	// Blocks past the task's shuffle memory wait on local disk, so that a
	// large partition merges from there with one chunk of each in memory.
	// Agents are asked in parallel, a few at a time, each within its share
	// of the budget.
	if err := os.MkdirAll(r.t.ShuffleDir, 0o755); err != nil {
		return nil, nil, err
	}
	// A coalesced task merges several consecutive partitions.
	type fetch struct {
		agent     string
		partition int
	}
	var fetches []fetch
	for _, q := range partitions {
		for _, agent := range agents {
			fetches = append(fetches, fetch{agent, q})
		}
	}
	share := r.t.ShuffleMemory / int64(max(len(fetches), 1))
	results := make([][]BlockIterator, len(fetches))
	errs := make([]error, len(fetches))
	sem := make(chan struct{}, fetchParallelism)
	var wg sync.WaitGroup
	for i, f := range fetches {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], _, errs[i] = r.t.Blocks.OpenBlocks(ctx, f.agent, byAgent[f.agent], f.partition, share, r.t.ShuffleDir)
		}()
	}
	wg.Wait()
	for _, got := range results {
		open = append(open, got...)
		for _, it := range got {
			its = append(its, it)
		}
	}
	if err := errors.Join(errs...); err != nil {
		closeAll()
		return nil, nil, firstFetchError(errs)
	}
	return shuffle.NewMerger(its), closeAll, nil
}

// fetchParallelism is how many agents a reducer fetches from at once.
const fetchParallelism = 4

// firstFetchError returns the first fetch failure among errs, so that the
// scheduler learns which map output to rerun, or else the first error.
func firstFetchError(errs []error) error {
	var first error
	for _, err := range errs {
		var fe *shuffle.FetchError
		if errors.As(err, &fe) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// openOutput prepares where the pipeline's output goes: the shuffle writer
// of a map task or the text part of a result task.
func (r *runner) openOutput(ctx context.Context) (sink func([]byte) error, commit func() error, abort func(), err error) {
	st := r.t.Spec.Stage
	if st.ShuffleOut != nil {
		return r.openShuffleOutput(ctx)
	}
	if st.Sample != nil {
		return r.openSampleOutput()
	}
	part := &partWriter{inline: r.t.InlineOutput, create: func() (storage.Writer, error) {
		out, err := r.store(r.t.OutputVolume)
		if err != nil {
			return nil, err
		}
		return out.Create(ctx, r.t.OutputFile)
	}}
	if part.inline <= 0 {
		if err := part.open(); err != nil {
			return nil, nil, nil, err
		}
	}
	w := outputBuffers.Get().(*bufio.Writer)
	w.Reset(part)
	release := func() { // once: a failed commit is aborted too
		if w != nil {
			w.Reset(nil)
			outputBuffers.Put(w)
			w = nil
		}
	}
	write, err := recordWriter(w, r.t.OutputFormat)
	if err != nil {
		release()
		part.abort()
		return nil, nil, nil, err
	}
	// Batches reach the sink from a guest call, which checked them, or from
	// the task's own batch builder: they are not scanned a second time.
	sink = func(b []byte) error {
		it := batch.Checked(b)
		for it.Next() {
			if err := write(it.Key(), it.Value()); err != nil {
				return err
			}
		}
		r.res.RecordsOut += int64(batch.Count(b))
		return nil
	}
	commit = func() error {
		err := w.Flush()
		release()
		if err != nil {
			part.abort()
			return err
		}
		if part.f == nil {
			r.res.Inline, r.res.Output = true, part.buf
			return nil
		}
		if err := part.f.Commit(); err != nil {
			return err
		}
		r.res.OutputFile = r.t.OutputFile
		return nil
	}
	abort = func() {
		release()
		part.abort()
	}
	return sink, commit, abort, nil
}

// partWriter is where a result task's part goes: memory while it is at
// most inline bytes, then the attempt file that create makes.
type partWriter struct {
	inline int
	buf    []byte
	create func() (storage.Writer, error)
	f      storage.Writer // nil while the part is in buf
}

func (p *partWriter) open() error {
	f, err := p.create()
	if err != nil {
		return err
	}
	p.f = f
	return nil
}

func (p *partWriter) Write(b []byte) (int, error) {
	if p.f == nil && len(p.buf)+len(b) <= p.inline {
		p.buf = append(p.buf, b...)
		return len(b), nil
	}
	if p.f == nil {
		// Too large to travel inline: what was kept goes first.
		if err := p.open(); err != nil {
			return 0, err
		}
		kept := p.buf
		p.buf = nil
		if _, err := p.f.Write(kept); err != nil {
			return 0, err
		}
	}
	return p.f.Write(b)
}

func (p *partWriter) abort() {
	if p.f != nil {
		p.f.Abort()
	}
}

// outputBuffers are the buffers of result files, kept across an
// executor's tasks: a fresh megabyte per task was most of what a tiny
// task allocated, and its clearing and collection most of its cost.
var outputBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<20) }}

// openSampleOutput keeps a uniform sample of the output's keys
// (reservoir sampling, seeded by the task so that every attempt samples
// the same keys) for the range bounds of a sort.
func (r *runner) openSampleOutput() (sink func([]byte) error, commit func() error, abort func(), err error) {
	spec := r.t.Spec
	want := spec.Stage.Sample.Keys
	rng := rand.New(rand.NewPCG(uint64(spec.Key.Stage), uint64(spec.Key.Partition)))
	var keys [][]byte
	seen := 0
	sink = func(b []byte) error {
		it := batch.Checked(b)
		for it.Next() {
			seen++
			switch {
			case len(keys) < want:
				keys = append(keys, bytes.Clone(it.Key()))
			default:
				if j := rng.IntN(seen); j < want {
					keys[j] = bytes.Clone(it.Key())
				}
			}
		}
		r.res.RecordsOut += int64(batch.Count(b))
		return nil
	}
	commit = func() error {
		r.res.Samples = keys
		return nil
	}
	return sink, commit, func() {}, nil
}

func (r *runner) openShuffleOutput(ctx context.Context) (sink func([]byte) error, commit func() error, abort func(), err error) {
	st, spec := r.t.Spec.Stage, r.t.Spec
	cfg := shuffle.WriterConfig{
		Dir:        r.t.ShuffleDir,
		ID:         shuffle.MapOutputID{ShuffleID: uint64(st.ShuffleOut.ID), MapIndex: uint32(st.MapOffset + spec.Key.Partition), Attempt: uint32(spec.Attempt)},
		Partitions: st.ShuffleOut.Partitions,
		Level:      r.t.CompressionLevel,
		Memory:     r.t.ShuffleMemory,
	}
	if st.ShuffleOut.Range {
		if len(spec.Bounds) != st.ShuffleOut.Partitions-1 {
			return nil, nil, nil, fmt.Errorf("%s: %d range bounds for %d partitions", r.label(), len(spec.Bounds), st.ShuffleOut.Partitions)
		}
		cfg.Partition = shuffle.RangePartitioner(spec.Bounds)
	}
	var combiner *wasmexec.Reducer
	switch st.ShuffleOut.Builtin {
	case "distinct":
		cfg.Combine = combineFirst
	case "count":
		cfg.Combine = combineCount
	case "cache":
		// A cached partition stays where it is: map output i is
		// partition i of the cache.
		cfg.Partition = func([]byte, int) int { return int(cfg.ID.MapIndex) }
	case "round_robin":
		// Each map task starts at its own partition, so that small map
		// outputs do not all land in partition 0.
		next := spec.Key.Partition
		cfg.Partition = func(_ []byte, n int) int {
			next++
			return next % n
		}
	}
	if st.ShuffleOut.Combine != nil {
		ws, err := r.step(*st.ShuffleOut.Combine)
		if err != nil {
			return nil, nil, nil, err
		}
		combiner, err = r.rt.NewReducer(ctx, ws, r.t.limits())
		if err != nil {
			return nil, nil, nil, err
		}
		cfg.Combine = func(b []byte) ([]byte, error) { return combiner.Combine(ctx, b) }
	}
	closeCombiner := func() {
		if combiner != nil {
			r.log.WriteString(combiner.Log())
			combiner.Close(context.WithoutCancel(ctx))
			combiner = nil
		}
	}
	w, err := shuffle.NewWriter(cfg)
	if err != nil {
		closeCombiner()
		return nil, nil, nil, err
	}
	sink = func(b []byte) error { return r.combineError(w.AddBatch(b)) }
	switch st.ShuffleOut.Builtin {
	case "distinct":
		sink = func(b []byte) error { return r.combineError(w.AddBatch(rekeyDistinct(b))) }
	case "count":
		sink = func(b []byte) error { return r.combineError(w.AddBatch(countOne(b))) }
	}
	commit = func() error {
		defer closeCombiner()
		out, err := w.Commit()
		if err != nil {
			return r.combineError(err)
		}
		r.res.MapOutput = out
		for _, p := range out.Partitions {
			r.res.RecordsOut += p.Records
		}
		return nil
	}
	abort = func() {
		w.Abort()
		closeCombiner()
	}
	return sink, commit, abort, nil
}

// label names the stage's guest code for errors.
func (r *runner) label() string {
	hashes := map[string]string{}
	for name, m := range r.t.Modules {
		hashes[name] = m.Hash
	}
	return StageLabel(r.t.Spec.Stage, hashes)
}

// combineError names the combine function in an error of the shuffle
// writer that is its fault.
func (r *runner) combineError(err error) error {
	if err == nil || !errors.Is(err, shuffle.ErrBadCombine) {
		return err
	}
	c := r.t.Spec.Stage.ShuffleOut.Combine
	hash := ""
	if m := r.t.Modules[c.Module]; m != nil {
		hash = m.Hash
	}
	return fmt.Errorf("module %s (sha256 %s) function %s, as the map-side combiner: %w", c.Module, short(hash), c.Function, err)
}

// limitError is a task that passed one of its limits: deterministic, so
// retrying cannot help.
type limitError struct{ err error }

func (e *limitError) Error() string { return e.err.Error() }
func (e *limitError) Unwrap() error { return e.err }

// classify turns an attempt's error into a scheduler Failure.
func classify(spec planner.TaskSpec, err error) *Error {
	f := planner.Failure{Kind: planner.TaskError, Msg: err.Error()}
	var fe *shuffle.FetchError
	var we *wasmexec.Error
	var ie *inputError
	var le *limitError
	switch {
	case errors.As(err, &le), errors.Is(err, shuffle.ErrBadCombine):
		f.Kind = planner.Fatal
	case errors.As(err, &fe):
		f.Kind = planner.FetchFailed
		f.ShuffleID, f.MapIndex, f.MapAttempt = int(fe.ID.ShuffleID), int(fe.ID.MapIndex), int(fe.ID.Attempt)
		f.Corrupt = errors.Is(fe.Err, shuffle.ErrCorrupt)
	case errors.As(err, &ie):
		f.Kind = planner.Fatal
	case errors.As(err, &we):
		switch we.Kind {
		case wasmexec.KindInvalid:
			f.Kind = planner.Fatal
		case wasmexec.KindCanceled:
			f.Kind = planner.Lost
		}
	case errors.Is(err, context.Canceled):
		f.Kind = planner.Lost
	}
	return &Error{Failure: f, Err: fmt.Errorf("task %s attempt %d: %w", spec.Key, spec.Attempt, err)}
}
