package jobspec

import (
	"context"

	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// Explain plans the spec as an embedded grid of slots task slots would,
// reading this machine's files for the sizes of its inputs but not its
// modules, and renders the plan (grid run --explain, JobBuilder.Explain).
func (s *Spec) Explain(slots int) (string, error) {
	st := &storage.Cache{}
	defer st.Close()
	in := &storage.Finder{Ctx: context.Background(), Grants: storage.LocalGrants("default"), Stores: st}
	plan, err := s.Plan(Lowering{Slots: slots, Inputs: in})
	if err != nil {
		return "", err
	}
	return plan.String(), nil
}
