package shuffle

import "bytes"

// Iterator is a source of records in key order, such as a *BlockReader.
type Iterator interface {
	Next() bool
	Key() []byte
	Value() []byte
	Err() error
}

var (
	_ Iterator = (*BlockReader)(nil)
	_ Iterator = (*Merger)(nil)
)

// Merger merges iterators whose records are each in key order (bytes.Compare)
// into one stream in key order. For equal keys, the records of its[i] come
// before those of its[j] when i < j, so the merge is stable. It is a loser
// tree: each record costs about log2(len(its)) key comparisons.
//
// A Merger is not safe for concurrent use.
type Merger struct {
	its   []Iterator
	live  []bool // whether its[i] has a current record
	tree  []int  // tree[0] is the winner; tree[1:] hold the losers of the matches
	k     int
	begun bool
	err   error
}

// NewMerger returns a merger of its. The merger owns the iterators: it calls
// Next on each of them, lazily, from its own Next.
func NewMerger(its []Iterator) *Merger {
	its = append([]Iterator(nil), its...)
	return &Merger{its: its, live: make([]bool, len(its)), tree: make([]int, max(len(its), 1)), k: len(its)}
}

// less reports whether input i's current record sorts before input j's. An
// exhausted input sorts after everything.
func (m *Merger) less(i, j int) bool {
	switch {
	case !m.live[i]:
		return false
	case !m.live[j]:
		return true
	}
	if c := bytes.Compare(m.its[i].Key(), m.its[j].Key()); c != 0 {
		return c < 0
	}
	return i < j
}

// advance moves input i to its next record and reports whether all is well.
func (m *Merger) advance(i int) bool {
	m.live[i] = m.its[i].Next()
	if !m.live[i] {
		if err := m.its[i].Err(); err != nil {
			m.err = err
			return false
		}
	}
	return true
}

// init fills the tree: leaf i is node k+i, node n's children are 2n and 2n+1.
func (m *Merger) init() bool {
	for i := range m.k {
		if !m.advance(i) {
			return false
		}
	}
	winners := make([]int, 2*m.k)
	for i := range m.k {
		winners[m.k+i] = i
	}
	for n := m.k - 1; n >= 1; n-- {
		a, b := winners[2*n], winners[2*n+1]
		if m.less(b, a) {
			a, b = b, a
		}
		winners[n], m.tree[n] = a, b
	}
	if m.k > 1 {
		m.tree[0] = winners[1]
	}
	return true
}

// replay plays the matches on the path from leaf i to the root.
func (m *Merger) replay(i int) {
	w := i
	for n := (m.k + i) / 2; n >= 1; n /= 2 {
		if m.less(m.tree[n], w) {
			w, m.tree[n] = m.tree[n], w
		}
	}
	m.tree[0] = w
}

// Next advances to the next record in key order. It returns false at the end
// or when an input fails; Err tells which.
func (m *Merger) Next() bool {
	if m.err != nil || m.k == 0 {
		return false
	}
	if !m.begun {
		m.begun = true
		if !m.init() {
			return false
		}
	} else {
		w := m.tree[0]
		if !m.advance(w) {
			return false
		}
		m.replay(w)
	}
	return m.live[m.tree[0]]
}

// Key returns the key of the current record, valid until the next Next.
func (m *Merger) Key() []byte {
	if m.k == 0 {
		return nil
	}
	return m.its[m.tree[0]].Key()
}

// Value returns the value of the current record, valid until the next Next.
func (m *Merger) Value() []byte {
	if m.k == 0 {
		return nil
	}
	return m.its[m.tree[0]].Value()
}

// Err returns the first error of an input, which ended the merge, or nil.
func (m *Merger) Err() error { return m.err }
