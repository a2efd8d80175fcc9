package grid

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// outputFormat is how result task partition writes its part of sink: a
// CSV header goes in every part file, and once on standard output.
func outputFormat(sink jobspec.Sink, partition int) string {
	if sink.Kind == "csv" && sink.Header && (!sink.Stdout || partition == 0) {
		return "csv_header"
	}
	return sink.Kind
}

// prepareOutput resolves the job's sink in its tenant's volumes (a stdout
// or count result goes to the coordinator's results volume, which no
// tenant is granted), claims it, and checks that the job may write it:
// nothing runs otherwise.
func (c *coordinator) prepareOutput(ctx context.Context, j *jobRun) error {
	spec := j.req.Spec
	sink := spec.Sink
	var vol storage.Volume
	dir := j.request
	if sink.Path == "" {
		j.stdout = true
		vol = c.results
		j.resultDir = filepath.Join(vol.Root(), dir)
	} else {
		ref, err := storage.Resolve(sink.Path, j.req.grants(), storage.ReadWrite)
		if err != nil {
			return fmt.Errorf("%s:%d: sink.%s: %w", spec.Display(), sink.Line, sink.Kind, err)
		}
		vol, dir = j.req.grants().ByName[ref.Volume].Volume, ref.Path
	}
	st, err := c.stores.Store(vol)
	if err != nil {
		return fmt.Errorf("%s:%d: sink.%s: %w", spec.Display(), sink.Line, sink.Kind, err)
	}
	j.out = &storage.Output{Store: st, Volume: vol.Name, Dir: dir, Job: j.request, Tenant: j.tenant}
	j.outURL = vol.Locate(dir)
	if err := c.outputs.reserve(j.out.String(), j.request); err != nil {
		return fmt.Errorf("%s:%d: sink.%s: %w", spec.Display(), sink.Line, sink.Kind, err)
	}
	if err := j.out.Prepare(ctx, spec.Conf.SinkOverwrite); err != nil {
		c.outputs.release(j.out.String())
		return fmt.Errorf("%s:%d: sink.%s: %w", spec.Display(), sink.Line, sink.Kind, err)
	}
	j.volumes[vol.Name] = vol
	return nil
}

// commitOutput publishes a succeeded job's result: the winning attempt of
// each partition, cut to sink.take, or the count; _SUCCESS last.
func (c *coordinator) commitOutput(ctx context.Context, j *jobRun, parts []string, records int64) (int64, error) {
	sink := j.sink
	parts = slices.Clone(parts)
	if n := sink.Take; n > 0 {
		if err := j.take(ctx, parts, n); err != nil {
			return 0, fmt.Errorf("sink.take: %w", err)
		}
		records = min(records, n)
	}
	if sink.Kind == "count" {
		// The result tasks wrote empty parts and counted: the result is
		// the count, one line.
		name := path.Join(j.out.Staging(), "_temporary", "count")
		w, err := j.out.Store.Create(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("sink.count: %w", err)
		}
		fmt.Fprintf(w, "%d\n", records)
		if err := w.Commit(); err != nil {
			return 0, fmt.Errorf("sink.count: %w", err)
		}
		parts[0] = name
	}
	if err := j.out.Commit(ctx, parts, j.conf.SinkOverwrite); err != nil {
		return 0, fmt.Errorf("commit the output %s: %w", j.outURL, err)
	}
	return records, nil
}

// take keeps the first n records (lines) of the result's parts, in
// partition order: the part where the n-th ends is cut there, and the
// parts after it are empty.
func (j *jobRun) take(ctx context.Context, parts []string, n int64) error {
	for p, file := range parts {
		if file == "" {
			continue
		}
		if n == 0 {
			parts[p] = ""
			continue
		}
		cut, lines, err := cutAfter(ctx, j.out.Store, file, n)
		if err != nil {
			return err
		}
		n -= lines
		if cut >= 0 {
			if err := j.out.Store.Truncate(ctx, file, cut); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutAfter reads file's lines until n of them: it returns where the n-th
// ends (or -1 if the file has n lines or fewer) and how many it read.
func cutAfter(ctx context.Context, st storage.Store, file string, n int64) (cut, lines int64, err error) {
	f, err := st.Open(ctx, file, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	var off int64
	for lines < n {
		b, err := r.ReadSlice('\n')
		read := len(b)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = r.ReadSlice('\n')
			read += len(b)
		}
		off += int64(read)
		if read > 0 {
			lines++
		}
		if err == io.EOF {
			return -1, lines, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if _, err := r.Peek(1); err == io.EOF {
		return -1, lines, nil
	}
	return off, lines, nil
}

// abortOutput removes what a job that did not succeed wrote.
func (c *coordinator) abortOutput(ctx context.Context, j *jobRun) {
	if err := j.out.Abort(ctx); err != nil {
		c.logger.Warn("remove a failed job's output", "job", j.id, "output", j.outURL, "err", err)
	}
	if j.stdout {
		if err := j.out.Store.RemoveAll(ctx, j.out.Dir); err != nil {
			c.logger.Warn("remove a failed job's result", "job", j.id, "err", err)
		}
	}
}

// printed is the result of a job with a stdout sink: its parts in
// partition order, each in the job's record (inline) or a file of the
// results volume.
type printed struct {
	store      storage.Store
	volume     string
	dir        string
	partitions int
	inline     map[int][]byte
}

// check makes sure that every part is there, before any is written out.
func (r *printed) check(ctx context.Context) error {
	for p := range r.partitions {
		if _, ok := r.inline[p]; ok {
			continue
		}
		name := path.Join(r.dir, storage.PartName(p))
		if _, err := r.store.Stat(ctx, name); err != nil {
			return fmt.Errorf("%s in volume %s: %w", name, r.volume, err)
		}
	}
	return nil
}

// copy writes the result to w.
func (r *printed) copy(ctx context.Context, w io.Writer) error {
	for p := range r.partitions {
		if b, ok := r.inline[p]; ok {
			if _, err := w.Write(b); err != nil {
				return err
			}
			continue
		}
		f, err := r.store.Open(ctx, path.Join(r.dir, storage.PartName(p)), 0)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
