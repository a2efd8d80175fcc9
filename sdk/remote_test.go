package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
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

// A module goes up once per client however many jobs use it, and again if
// the grid no longer has it (deleted since).
func TestRemoteUploadsAModuleOnce(t *testing.T) {
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	sum := sha256.Sum256(wasm)
	hash := hex.EncodeToString(sum[:])
	var mu sync.Mutex
	puts, submits := 0, 0
	have := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPut:
			puts++
			have = true
			_ = json.NewEncoder(w).Encode(api.ModuleInfo{Hash: hash})
		case http.MethodPost:
			submits++
			var req api.SubmitRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			if !have || req.Modules["m"] != hash {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: "module m: no uploaded module " + req.Modules["m"] + ": upload it first (grid modules push)"})
				return
			}
			_ = json.NewEncoder(w).Encode(api.SubmitResponse{ID: "job-1"})
		}
	}))
	defer srv.Close()
	r, err := NewRemote(RemoteConfig{Addr: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	job := &Job{Spec: &jobspec.Spec{File: "job.toml"}, Modules: map[string][]byte{"m": wasm}, text: []byte(`name = "x"`)}
	submit := func() {
		t.Helper()
		if id, err := r.Submit(context.Background(), job, ""); err != nil || id != "job-1" {
			t.Fatalf("submit: %q, %v", id, err)
		}
	}
	for range 3 {
		submit()
	}
	mu.Lock()
	if puts != 1 || submits != 3 {
		t.Errorf("3 jobs: %d uploads, %d submissions; want 1 and 3", puts, submits)
	}
	have = false // the module was deleted on the grid
	mu.Unlock()
	submit()
	mu.Lock()
	defer mu.Unlock()
	if puts != 2 || submits != 5 {
		t.Errorf("after the module was deleted: %d uploads, %d submissions; want 2 and 5", puts, submits)
	}
}
