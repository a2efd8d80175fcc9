package gossip

import (
	"bytes"
	"log/slog"
	"testing"
	"time"
)

// TestGossipNeedsTheKey: a node without the cluster's gossip key cannot
// join, and its messages do not make it a member; a node with the key
// joins.
func TestGossipNeedsTheKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	wrong := bytes.Repeat([]byte{9}, 32)
	log := slog.New(slog.DiscardHandler)
	a, err := Start("coordinator", "127.0.0.1:0", key, map[string]string{TagRole: "coordinator"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	stranger, err := Start("stranger", "127.0.0.1:0", wrong, map[string]string{TagRole: "agent"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if n, err := stranger.Join([]string{a.Addr()}); err == nil && n > 0 {
		t.Errorf("a node with another key joined %d nodes", n)
	}
	member, err := Start("agent-1", "127.0.0.1:0", key, map[string]string{TagRole: "agent"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	if _, err := member.Join([]string{a.Addr()}); err != nil {
		t.Fatalf("a node with the key could not join: %v", err)
	}
	// Membership converges within a few gossip rounds; the bound only
	// stops a hang.
	deadline := time.Now().Add(10 * time.Second)
	for {
		names := map[string]bool{}
		for _, m := range a.Members() {
			if m.Status.String() == "alive" {
				names[m.Name] = true
			}
		}
		if names["stranger"] {
			t.Fatal("the node without the key is a member")
		}
		if names["agent-1"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent-1 never became a member: %v", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
