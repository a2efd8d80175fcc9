package grid

import (
	"fmt"

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
