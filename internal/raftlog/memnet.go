package raftlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemNetwork is an in-memory network between the servers of one process,
// for tests: it can partition them, lose messages and delay them. Messages
// are encoded and decoded on the way, as on a real network.
type MemNetwork struct {
	mu    sync.Mutex
	eps   map[uint64]*memEndpoint // protected by mu; the running transports
	group map[uint64]int          // protected by mu; partition groups (absent: 0)
	loss  float64                 // protected by mu
	delay time.Duration           // protected by mu
	rng   *rand.Rand              // protected by mu
}

// memQueue is how many messages wait for one server before more are
// dropped.
const memQueue = 1024

type memEndpoint struct {
	self  Peer
	inbox Inbox
	q     chan memMsg
}

type memMsg struct {
	from uint64
	name string
	data []byte
	at   time.Time
}

// NewMemNetwork returns a network where every message arrives, at once.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{eps: map[uint64]*memEndpoint{}, group: map[uint64]int{}, rng: rand.New(rand.NewPCG(1, 2))}
}

// Transport returns a transport on this network for one server.
func (nw *MemNetwork) Transport() *MemTransport { return &MemTransport{nw: nw} }

// Partition splits the network: a message passes only between servers of
// the same group; servers in no group form one more group.
func (nw *MemNetwork) Partition(groups ...[]uint64) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.group)
	for i, g := range groups {
		for _, id := range g {
			nw.group[id] = i + 1
		}
	}
}

// Heal undoes Partition.
func (nw *MemNetwork) Heal() { nw.Partition() }

// SetLoss makes the network drop each message with probability p.
func (nw *MemNetwork) SetLoss(p float64) {
	nw.mu.Lock()
	nw.loss = p
	nw.mu.Unlock()
}

// SetDelay delays every message sent from now on by d.
func (nw *MemNetwork) SetDelay(d time.Duration) {
	nw.mu.Lock()
	nw.delay = d
	nw.mu.Unlock()
}

// route says where a message from one server to another goes now: the
// endpoint, or nil when it is lost.
func (nw *MemNetwork) route(from, to uint64) (*memEndpoint, time.Duration) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	ep := nw.eps[to]
	if ep == nil || nw.group[from] != nw.group[to] || (nw.loss > 0 && nw.rng.Float64() < nw.loss) {
		return nil, 0
	}
	return ep, nw.delay
}

func (nw *MemNetwork) connected(from, to uint64) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.group[from] == nw.group[to]
}

// MemTransport is one server's side of a MemNetwork.
type MemTransport struct {
	nw    *MemNetwork
	mu    sync.Mutex
	ep    *memEndpoint // protected by mu; set while Run runs
	early []report     // protected by mu; snapshot reports from before Run
}

// Run registers the server on the network and delivers its messages until
// ctx ends.
func (t *MemTransport) Run(ctx context.Context, self Peer, inbox Inbox) error {
	ep := &memEndpoint{self: self, inbox: inbox, q: make(chan memMsg, memQueue)}
	t.nw.mu.Lock()
	if t.nw.eps[self.ID] != nil {
		t.nw.mu.Unlock()
		return fmt.Errorf("raftlog: server %d is on the network already", self.ID)
	}
	t.nw.eps[self.ID] = ep
	t.nw.mu.Unlock()
	t.mu.Lock()
	t.ep = ep
	early := t.early
	t.early = nil
	t.mu.Unlock()
	for _, r := range early {
		deliverReport(inbox, r)
	}
	defer func() {
		t.nw.mu.Lock()
		delete(t.nw.eps, self.ID)
		t.nw.mu.Unlock()
		t.mu.Lock()
		t.ep = nil
		t.mu.Unlock()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		var mm memMsg
		select {
		case <-ctx.Done():
			return nil
		case mm = <-ep.q:
		}
		if d := time.Until(mm.at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if !t.nw.connected(mm.from, self.ID) {
			continue // partitioned while in flight
		}
		m := &raftpb.Message{}
		if err := proto.Unmarshal(mm.data, m); err != nil {
			return fmt.Errorf("raftlog: memnet: %w", err)
		}
		if err := inbox.Deliver(ctx, mm.name, m); err != nil {
			return nil
		}
	}
}

// Send queues msgs for to, or drops them as the network's state says.
func (t *MemTransport) Send(to Peer, msgs []*raftpb.Message) {
	t.mu.Lock()
	self := t.ep
	if self == nil {
		// Not running yet: every MsgSnap is reported all the same.
		for _, m := range msgs {
			if m.GetType() == raftpb.MsgSnap {
				t.early = append(t.early, report{id: to.ID, snapshot: true, failed: true})
			}
		}
	}
	t.mu.Unlock()
	if self == nil {
		return
	}
	for _, m := range msgs {
		ok := false
		if ep, delay := t.nw.route(self.self.ID, to.ID); ep != nil {
			data, err := proto.Marshal(m)
			if err != nil {
				panic(fmt.Sprintf("raftlog: memnet: marshal: %v", err))
			}
			select {
			case ep.q <- memMsg{from: self.self.ID, name: self.self.Name, data: data, at: time.Now().Add(delay)}:
				ok = true
			default:
			}
		}
		if !ok {
			self.inbox.ReportUnreachable(to.ID)
		}
		if m.GetType() == raftpb.MsgSnap {
			self.inbox.ReportSnapshot(to.ID, ok)
		}
	}
}
