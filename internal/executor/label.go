package executor

import (
	"fmt"
	"strings"

	"github.com/wasmgrid/wasmgrid/planner"
)

// StageLabel names the guest code a stage runs the way wasmexec's errors
// do, "module wc (sha256 1a2b3c4d5e6f) function split|sum", so that every
// failure a task reports names its module, whoever detects it. hashes maps
// module names to their sha256.
func StageLabel(s *planner.Stage, hashes map[string]string) string {
	var refs []planner.FuncRef
	if s.Reduce != nil {
		refs = append(refs, *s.Reduce)
	}
	for _, st := range s.Steps {
		if st.Func != (planner.FuncRef{}) {
			refs = append(refs, st.Func)
		}
	}
	if s.ShuffleOut != nil && s.ShuffleOut.Combine != nil && (s.Reduce == nil || *s.Reduce != *s.ShuffleOut.Combine) {
		refs = append(refs, *s.ShuffleOut.Combine)
	}
	var parts []string
	for i := 0; i < len(refs); {
		mod := refs[i].Module
		var fns []string
		for ; i < len(refs) && refs[i].Module == mod; i++ {
			fns = append(fns, refs[i].Function)
		}
		parts = append(parts, fmt.Sprintf("module %s (sha256 %s) function %s", mod, short(hashes[mod]), strings.Join(fns, "|")))
	}
	return strings.Join(parts, ", ")
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}
