package planner

import "testing"

func TestTaskSpecOwnLeavesOtherSplitsOut(t *testing.T) {
	st := &Stage{ID: 0, Partitions: 3, Splits: []Split{
		{Inline: true, Values: []string{"a"}},
		{Inline: true, Values: []string{"b"}},
		{Inline: true, Values: []string{"c"}},
	}}
	spec := TaskSpec{Key: TaskKey{0, 1}, Stage: st, Split: &st.Splits[1]}
	own := spec.Own()
	if own.Stage.Splits != nil {
		t.Errorf("Own kept the stage's %d splits", len(own.Stage.Splits))
	}
	if own.Split == nil || own.Split.Values[0] != "b" || own.Stage.Partitions != 3 {
		t.Errorf("Own lost the task's own split or the stage: %+v, %+v", own.Split, own.Stage)
	}
	if len(st.Splits) != 3 || spec.Stage != st {
		t.Error("Own changed the plan's stage")
	}
	shuffle := TaskSpec{Stage: &Stage{ID: 1}}
	if shuffle.Own().Stage != shuffle.Stage {
		t.Error("Own copied a stage without splits")
	}
}
