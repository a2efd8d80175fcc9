package grid

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/wire"
	"github.com/wasmgrid/wasmgrid/planner"
)

// An agent keeps the statuses it sent until the coordinator acknowledges
// them, lists their attempts at its next registration and sends them again
// to the next coordinator, stamped with its epoch.
func TestAgentResendsUnacknowledgedStatuses(t *testing.T) {
	n := &Agent{logger: slog.New(slog.DiscardHandler), attempts: map[wire.Attempt]context.CancelCauseFunc{}}
	at := func(p int) wire.Attempt { return wire.Attempt{Job: "job-1", Task: planner.TaskKey{Partition: p}} }
	for p := range 4 {
		n.attempts[at(p)] = func(error) {}
	}
	var sent []*wire.Status
	for p := range 3 {
		sent = append(sent, n.statusMsg(7, taskStatus{job: "job-1", key: planner.TaskKey{Partition: p}, res: &executor.Result{}}))
	}
	if sent[0].Seq != 1 || sent[2].Seq != 3 {
		t.Fatalf("sequence numbers %d..%d, want 1..3", sent[0].Seq, sent[2].Seq)
	}
	n.acked(1)
	// The connection breaks: attempt 3 still runs, 1 and 2 ended without
	// an acknowledgement, 0's end was committed.
	got := n.reported()
	slices.SortFunc(got, func(a, b wire.Attempt) int { return a.Task.Partition - b.Task.Partition })
	if want := []wire.Attempt{at(1), at(2), at(3)}; !slices.Equal(got, want) {
		t.Fatalf("registration lists %v, want %v", got, want)
	}
	again := n.resend(9)
	if len(again) != 2 || again[0].Attempt != at(1) || again[1].Attempt != at(2) || again[0].Epoch != 9 || again[1].Seq != 3 {
		t.Fatalf("sent again: %+v", again)
	}
	n.acked(3)
	if len(n.resend(10)) != 0 || len(n.reported()) != 1 {
		t.Fatalf("after the acknowledgement: unacked %d, reported %v", len(n.unacked), n.reported())
	}
	// A duplicate or late acknowledgement changes nothing.
	n.acked(2)
	if next := n.statusMsg(10, taskStatus{job: "job-1", key: planner.TaskKey{Partition: 3}, res: &executor.Result{}}); next.Seq != 4 || len(n.unacked) != 1 {
		t.Fatalf("next status %+v, %d unacked", next, len(n.unacked))
	}
}
