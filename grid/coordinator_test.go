package grid

import (
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/core"
	"github.com/wasmgrid/wasmgrid/internal/wire"
)

// fakeLink is an agentLink that records the losses it is told of.
type fakeLink struct {
	mu   sync.Mutex // protects lost
	lost []string   // agent@blockAddr
}

func (l *fakeLink) launch(launch)               {}
func (l *fakeLink) kill([]core.Attempt)         {}
func (l *fakeLink) removeJob(string) error      { return nil }
func (l *fakeLink) peerLost(agent, addr string) { l.record(agent + "@" + addr) }

func (l *fakeLink) record(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost = append(l.lost, s)
}

func (l *fakeLink) losses() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lost)
}

// TestCoordinatorCarriesPeerLost declares an agent lost: the core's
// PeerLost reaches every other agent's link (a fake one, and a remote one
// as a peer_lost frame), and not the lost agent's own.
func TestCoordinatorCarriesPeerLost(t *testing.T) {
	c, err := newCoordinator(slog.New(slog.DiscardHandler), newMetrics(nil), make(chan taskStatus), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res := allocator.Resources{CPU: 1000, Mem: 256}
	a, b := &fakeLink{}, &fakeLink{}
	remote := &remoteLink{name: "agent-c", epoch: 7, out: make(chan frame, 4), done: make(chan struct{})}
	c.join(&agentRef{name: "agent-a", resources: res, blockAddr: "127.0.0.1:1001", link: a})
	c.join(&agentRef{name: "agent-b", resources: res, blockAddr: "127.0.0.1:1002", link: b})
	c.join(&agentRef{name: "agent-c", resources: res, blockAddr: "127.0.0.1:1003", link: remote})

	c.lose("agent-b")
	if got, want := a.losses(), []string{"agent-b@127.0.0.1:1002"}; !slices.Equal(got, want) {
		t.Errorf("agent-a was told of losses %q, want %q", got, want)
	}
	if got := b.losses(); len(got) != 0 {
		t.Errorf("the lost agent was told of losses %q", got)
	}
	select {
	case f := <-remote.out:
		p, ok := f.body.(*wire.PeerLost)
		if f.typ != wire.TypePeerLost || !ok || *p != (wire.PeerLost{Epoch: 7, Agent: "agent-b", BlockAddr: "127.0.0.1:1002"}) {
			t.Errorf("the remote agent got a %s frame %+v", f.typ, f.body)
		}
	default:
		t.Error("the remote agent got no frame")
	}
	c.mu.Lock()
	_, still := c.links["agent-b"]
	c.mu.Unlock()
	if still {
		t.Error("the lost agent's link is kept")
	}
}
