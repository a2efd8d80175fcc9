package audit

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// TestRotatingFile: the log rotates past its size and keeps at most its
// backups, none older than its age.
func TestRotatingFile(t *testing.T) {
	clock := newFakeClock()
	dir := t.TempDir()
	f := &rotatingFile{path: filepath.Join(dir, "audit.log"), maxSize: 100, maxBackups: 2, maxAge: time.Hour, now: clock.now}
	line := []byte(strings.Repeat("x", 39) + "\n")
	backups := func() []string {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			if _, ok := parseBackupName("audit.log", e.Name()); ok {
				names = append(names, e.Name())
			}
		}
		return names
	}
	for i := range 9 { // 40 bytes each: two per file
		clock.advance(time.Second)
		if _, err := f.Write(line); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if got := backups(); len(got) != 2 {
		t.Errorf("backups %v, want 2", got)
	}
	b, _ := os.ReadFile(f.path)
	if len(b) != 40 {
		t.Errorf("the current file holds %d bytes, want 40", len(b))
	}
	// Closed and opened again (a restart) appends: no rotation below the
	// size; writes after Close fail.
	f.Close()
	if _, err := f.Write(line); err == nil {
		t.Error("a write after Close succeeded")
	}
	f = &rotatingFile{path: f.path, maxSize: 100, maxBackups: 2, maxAge: time.Hour, now: clock.now}
	f.Write(line)
	if b, _ := os.ReadFile(f.path); len(b) != 80 {
		t.Errorf("after reopening: %d bytes", len(b))
	}
	clock.advance(2 * time.Hour)
	f.Write(line) // rotates; both older backups are past max_age
	if got := backups(); len(got) != 1 {
		t.Errorf("after max_age: backups %v, want the one just made", got)
	}
	f.Close()
	if fi, _ := os.Stat(f.path); fi.Mode().Perm() != 0o600 {
		t.Errorf("the audit log has mode %v", fi.Mode().Perm())
	}
}

// FuzzBackupName: rotated files' names parse only when they are what
// the log would name them.
func FuzzBackupName(f *testing.F) {
	f.Add("audit-2026-01-02T03-04-05.000.log")
	f.Add("audit-2026-01-02T03-04-05.000.7.log")
	f.Add("audit-.log")
	f.Add("audit-2026-13-02T03-04-05.000.log")
	f.Fuzz(func(t *testing.T, name string) {
		if ts, ok := parseBackupName("audit.log", name); ok {
			if !strings.HasPrefix(name, "audit-"+ts.Format(backupTimeFormat)) {
				t.Fatalf("%q parsed as %v", name, ts)
			}
		}
	})
}
