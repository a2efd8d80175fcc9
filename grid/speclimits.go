package grid

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
)

// checkSpecLimits refuses a spec that asks for more than the limits allow,
// before anything is read or planned: a job of 100,000 partitions is an
// error naming the limit, not a plan that runs for half an hour. Zero
// limits are not checked.
func checkSpecLimits(spec *jobspec.Spec, lim LimitsConfig) error {
	if n := lim.ModulesPerJob; n > 0 && len(spec.Modules) > n {
		return fmt.Errorf("%s: the job names %d modules; at most %d (limits.modules_per_job)", spec.Display(), len(spec.Modules), n)
	}
	if n := lim.Partitions; n > 0 && spec.Conf.Partitions > n {
		return fmt.Errorf("%s: partitions = %d: at most %d partitions per shuffle (limits.partitions)", spec.Display(), spec.Conf.Partitions, n)
	}
	inline := 0
	check := func(src jobspec.Source, steps []jobspec.Step) error {
		inline += len(src.Inline)
		if n := lim.InlineValues; n > 0 && inline > n {
			return fmt.Errorf("%s:%d: source.inline: more than %d inline values in the job (limits.inline_values): put them in a file", spec.Display(), src.Line, n)
		}
		if n := lim.Splits; n > 0 && src.Parts > n {
			return fmt.Errorf("%s:%d: source.parts = %d: at most %d splits (limits.splits)", spec.Display(), src.Line, src.Parts, n)
		}
		for _, st := range steps {
			if n := lim.Partitions; n > 0 && st.Partitions > n {
				return fmt.Errorf("%s:%d: %s to %d partitions: at most %d (limits.partitions)", spec.Display(), st.Line, st.Op, st.Partitions, n)
			}
		}
		return nil
	}
	if err := check(spec.Source, spec.Steps); err != nil {
		return err
	}
	for _, c := range spec.Datasets {
		if err := check(c.Source, c.Steps); err != nil {
			return err
		}
	}
	return nil
}

// specLimits is the part of lim that bounds specs.
func specLimits(lim LimitsConfig) LimitsConfig {
	return LimitsConfig{Partitions: lim.Partitions, Splits: lim.Splits, InlineValues: lim.InlineValues, ModulesPerJob: lim.ModulesPerJob}
}

// estimateSplits refuses a file source whose files, cut in splits of
// size bytes, would make more than max splits, before the splits are
// made: a tiny split_size over a large file would otherwise cost memory
// in proportion to the number of splits first. It only refuses what it
// can see; the count after splitting is the real check.
func estimateSplits(src jobspec.Source, size int64, max int) error {
	if size <= 0 || max <= 0 || len(src.Globs) == 0 {
		return nil
	}
	var total int64
	for _, g := range src.Globs {
		files, err := filepath.Glob(g)
		if err != nil {
			return nil
		}
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
				total += fi.Size()
			}
		}
	}
	if total/size > int64(max) {
		return fmt.Errorf("%d bytes of input in splits of %d bytes (source.split_size) are more than %d splits (limits.splits): raise source.split_size", total, size, max)
	}
	return nil
}
