package wasmexec

import (
	"fmt"
	"strings"
)

// ErrorKind classifies a failed guest call, so that callers can decide what
// to retry and what to tell the user.
type ErrorKind int

// Do not reorder: the values cross process boundaries.
const (
	// KindInvalid: the module does not follow the guest ABI (a missing
	// export, a bad manifest, a malformed output batch).
	KindInvalid ErrorKind = iota + 1
	// KindGuestError: a user function failed and said why.
	KindGuestError
	// KindTrap: the instance trapped or exited.
	KindTrap
	// KindOutOfMemory: the guest needed more memory than the task's limit.
	KindOutOfMemory
	// KindTimeout: the task ran past its deadline.
	KindTimeout
	// KindCanceled: the task was canceled from outside.
	KindCanceled
)

func (k ErrorKind) String() string {
	switch k {
	case KindInvalid:
		return "invalid module"
	case KindGuestError:
		return "guest error"
	case KindTrap:
		return "trap"
	case KindOutOfMemory:
		return "out of memory"
	case KindTimeout:
		return "timeout"
	case KindCanceled:
		return "canceled"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Error is a failure of guest code or of a module, naming where it happened.
type Error struct {
	Module   string // the module's name in the job, or its short hash
	Function string // the function or chain of functions that ran ("split", "split|upper")
	Kind     ErrorKind
	Msg      string // what happened, in words
	Stderr   string // the tail of what the guest wrote to stderr, if anything
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "module %s", e.Module)
	if e.Function != "" {
		fmt.Fprintf(&b, " function %s", e.Function)
	}
	fmt.Fprintf(&b, ": %s: %s", e.Kind, e.Msg)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, " (guest stderr: %s)", s)
	}
	return b.String()
}

// tailBuffer keeps the last max bytes written to it: a guest may write as
// much as it likes to stderr, and the task log keeps only the end.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
