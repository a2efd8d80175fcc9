package sdk

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wasmgrid/wasmgrid/api"
)

// A submission follows the servers of GRID_ADDR whole: past a server that
// does not answer and a follower's 421, the leader receives the body that
// was sent (it once received an empty one after two redirections).
func TestRemoteFollowsTheLeaderWithTheBody(t *testing.T) {
	var mu sync.Mutex
	var got []api.SubmitRequest
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.SubmitRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "malformed submission: "+err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(api.SubmitResponse{ID: "job-7"})
	}))
	defer leader.Close()
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set(api.LeaderHeader, leader.URL)
		http.Error(w, "a follower", http.StatusMisdirectedRequest)
	}))
	defer follower.Close()
	// A server that is gone: nothing listens at its address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	r, err := NewRemote(RemoteConfig{Addr: dead + "," + follower.URL + "," + leader.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	want := api.SubmitRequest{Spec: "name = \"x\"", Tenant: "a"}
	for range 2 {
		id, err := r.SubmitRequest(context.Background(), want)
		if err != nil || id != "job-7" {
			t.Fatalf("submission: %q, %v", id, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Spec != want.Spec || got[1].Tenant != want.Tenant {
		t.Fatalf("the leader received %+v", got)
	}
}
