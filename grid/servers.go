package grid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/internal/gossip"
	"github.com/wasmgrid/wasmgrid/internal/raftlog"
)

// This file is the operator's side of the replicated log: membership
// changes and backups over the API, the answers of a server that cannot
// serve (an election, a lost quorum), and what a state directory that
// does not open means for the operator.

// changeTimeout bounds a membership change: it commits like a command.
const changeTimeout = 10 * time.Second

// leaderWait bounds how long a request that reached a server that does
// not lead waits for an election to end before it is answered 421 or 503.
const leaderWait = 3 * time.Second

// quorum is the number of servers a log of n members needs to commit.
func quorum(n int) int { return n/2 + 1 }

// reachable are the members a status hears from: itself and those not
// listed unreachable.
func reachable(st raftlog.Status) []raftlog.Peer {
	var out []raftlog.Peer
	for _, m := range st.Members {
		if !hasPeer(st.Unreachable, m.ID) {
			out = append(out, m)
		}
	}
	return out
}

func hasPeer(ps []raftlog.Peer, id uint64) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

func peerNames(ps []raftlog.Peer) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// quorumLost reports whether this server hears from fewer members than a
// quorum. A leader hears from every member; a follower only from the
// leader and from candidates, so it is asked only while no leader is
// known, when the members that are up campaign.
func quorumLost(st raftlog.Status) bool {
	return len(st.Members) > 0 && len(reachable(st)) < quorum(len(st.Members))
}

// quorumMessage says that the quorum is lost, and which servers are not
// heard from.
func quorumMessage(st raftlog.Status) string {
	return fmt.Sprintf("the coordinator servers have lost their quorum: %s has not heard from %s for an election timeout (%d of %d servers answer, a leader needs %d); nothing was changed: start the servers that are down, or replace them (docs/operations.md), then try again",
		st.Name, peerNames(st.Unreachable), len(reachable(st)), len(st.Members), quorum(len(st.Members)))
}

// noQuorum answers 503 for a server that hears from fewer servers than a
// quorum.
func noQuorum(w http.ResponseWriter, st raftlog.Status) {
	w.Header().Set(api.QuorumHeader, "lost")
	unavailable(w, 5*time.Second, quorumMessage(st))
}

// awaitLeader waits, up to leaderWait, for an election under way to end:
// it reports whether this server leads (and has taken the jobs over).
func (c *Coordinator) awaitLeader(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	st, err := c.raft.WaitLeader(ctx)
	if err != nil || st.Leader.ID != st.ID {
		return false
	}
	// This server won: followLeadership takes the jobs over at once.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !c.leads() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// unavailable answers 503 with Retry-After for a request that the log
// cannot serve now: no quorum, or a change whose outcome is not known.
func unavailable(w http.ResponseWriter, retry time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry.Seconds()))))
	httpError(w, http.StatusServiceUnavailable, msg)
}

// logUnavailable reports whether err is the replicated log's refusal
// (not the leader, an election, a lost quorum, a stopping server) rather
// than the request's fault, and answers it with 503.
func (c *Coordinator) logUnavailable(w http.ResponseWriter, err error) bool {
	var nl *raftlog.NotLeaderError
	switch {
	case errors.Is(err, raftlog.ErrRetry), errors.As(err, &nl):
		unavailable(w, time.Second, "the coordinators' leader changed or an election is under way; nothing was changed: try again ("+err.Error()+")")
	case errors.Is(err, raftlog.ErrStopped), errors.Is(err, errStopped):
		unavailable(w, 5*time.Second, "this coordinator server is stopping: try another one")
	case errors.Is(err, context.DeadlineExceeded):
		st := c.raft.Status()
		msg := "the coordinators did not commit the change in time"
		if quorumLost(st) {
			msg = quorumMessage(st)
		}
		unavailable(w, 5*time.Second, msg+"; the outcome is unknown: it may still take effect once a quorum is back, so look before trying again ("+err.Error()+")")
	default:
		return false
	}
	return true
}

func apiMembers(ps []raftlog.Peer) api.MembersResponse {
	out := api.MembersResponse{Members: []api.Member{}}
	for _, p := range ps {
		out.Members = append(out.Members, api.Member{ID: p.ID, Name: p.Name, RaftAddr: p.Addr})
	}
	return out
}

// addServer adds a voter to the replicated log (admin, on the leader).
// It is refused while the members that answer would not make a quorum
// of the larger log: a dead server is removed first. (A server alone
// grows to two regardless, and waits for the new one.)
func (c *Coordinator) addServer(w http.ResponseWriter, r *http.Request, p principal) {
	var req api.AddServerRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSmallBody)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "malformed server: "+err.Error())
		return
	}
	noteObject(w, req.Name)
	if req.ID == 0 || req.Name == "" || req.RaftAddr == "" {
		httpError(w, http.StatusBadRequest, "a server needs an id (new: ids are never reused), a name (its certificate's common name) and a raft_addr")
		return
	}
	for _, a := range []string{req.RaftAddr, req.APIAddr, req.GossipAddr} {
		if _, _, err := net.SplitHostPort(a); a != "" && err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("address %q: %v", a, err))
			return
		}
	}
	st := c.raft.Status()
	for _, m := range st.Members {
		if m.ID == req.ID || m.Name == req.Name {
			httpError(w, http.StatusConflict, fmt.Sprintf("%d (%s) is a member already: a new server needs a new id and name", m.ID, m.Name))
			return
		}
	}
	// A server alone may grow to two (etcd's exception): the log waits for
	// the new server, which is the point of adding it.
	if up, need := len(reachable(st)), quorum(len(st.Members)+1); up < need && len(st.Members) > 1 {
		httpError(w, http.StatusConflict, fmt.Sprintf("adding %s would make %d members, which need %d to commit, but only %d answer (%s does not): remove the dead server first (grid servers remove), then add", req.Name, len(st.Members)+1, need, up, peerNames(st.Unreachable)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), changeTimeout)
	defer cancel()
	if err := c.raft.AddMember(ctx, raftlog.Peer{ID: req.ID, Name: req.Name, Addr: req.RaftAddr}); err != nil {
		if !c.logUnavailable(w, err) {
			httpError(w, http.StatusBadRequest, err.Error())
		}
		return
	}
	c.mu.Lock()
	c.added[req.ID] = ServerConfig{ID: req.ID, Name: req.Name, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr, GossipAddr: req.GossipAddr}
	c.mu.Unlock()
	c.events.add("server_added", req.Name, fmt.Sprintf("id %d, raft %s, api %s", req.ID, req.RaftAddr, req.APIAddr))
	c.logger.Info("coordinator server added", "id", req.ID, "name", req.Name, "raft", req.RaftAddr, "token_id", p.tokenID)
	writeJSON(w, http.StatusOK, apiMembers(c.raft.Status().Members))
}

// removeServer removes a voter from the replicated log (admin, on the
// leader). It refuses to remove the last server, the leader itself, or a
// server whose removal leaves fewer members answering than a quorum.
func (c *Coordinator) removeServer(w http.ResponseWriter, r *http.Request, p principal) {
	name := r.PathValue("name")
	noteObject(w, name)
	st := c.raft.Status()
	var target raftlog.Peer
	for _, m := range st.Members {
		if m.Name == name || strconv.FormatUint(m.ID, 10) == name {
			target = m
		}
	}
	var rest []raftlog.Peer
	for _, m := range st.Members {
		if m.ID != target.ID {
			rest = append(rest, m)
		}
	}
	up := 0
	for _, m := range rest {
		if !hasPeer(st.Unreachable, m.ID) {
			up++
		}
	}
	switch {
	case target.ID == 0:
		httpError(w, http.StatusNotFound, fmt.Sprintf("no server %q among the members (%s)", name, peerNames(st.Members)))
		return
	case len(st.Members) == 1:
		httpError(w, http.StatusConflict, fmt.Sprintf("%s is the last server: the cluster cannot go on without one", name))
		return
	case target.ID == st.ID:
		httpError(w, http.StatusConflict, fmt.Sprintf("%s leads: stop it first (another server takes over within seconds) and remove it through the new leader", name))
		return
	case up < quorum(len(rest)):
		httpError(w, http.StatusConflict, fmt.Sprintf("removing %s would leave %s, of which %d answer, fewer than the %d they need (%s does not answer): start the servers that are down first", name, peerNames(rest), up, quorum(len(rest)), peerNames(st.Unreachable)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), changeTimeout)
	defer cancel()
	if err := c.raft.RemoveMember(ctx, target.ID); err != nil {
		if !c.logUnavailable(w, err) {
			httpError(w, http.StatusBadRequest, err.Error())
		}
		return
	}
	c.events.add("server_removed", name, fmt.Sprintf("id %d", target.ID))
	c.logger.Info("coordinator server removed", "id", target.ID, "name", name, "token_id", p.tokenID)
	writeJSON(w, http.StatusOK, apiMembers(c.raft.Status().Members))
}

// backup sends a consistent copy of this server's raft.db (admin). The
// copy is written to a file in the state directory first (unlinked, open),
// so that its length is known: a client sees a copy cut short as an error.
func (c *Coordinator) backup(w http.ResponseWriter, r *http.Request, p principal) {
	st := c.raft.Status()
	f, err := os.CreateTemp(c.cfg.StateDir, ".backup-*.db")
	if err != nil {
		httpError(w, http.StatusInternalServerError, "a backup needs room in the state directory: "+err.Error())
		return
	}
	// Unlinked at once: the copy lives as long as the open file, and no
	// crash or slow client leaves it behind.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		httpError(w, http.StatusInternalServerError, "a backup's temporary file: "+err.Error())
		return
	}
	defer f.Close()
	if _, err := c.raft.Backup(f); err != nil {
		c.logger.Error("backup", "err", err)
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	fi, err := f.Stat()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if _, err := f.Seek(0, 0); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	noteObject(w, c.cfg.Name)
	w.Header().Set(api.BackupServerHeader, c.cfg.Name)
	w.Header().Set(api.BackupIndexHeader, strconv.FormatUint(st.AppliedIndex, 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("raft-%s-%d.db", c.cfg.Name, st.AppliedIndex)))
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", fi.ModTime(), f)
	c.logger.Info("backup sent", "bytes", fi.Size(), "log_index", st.AppliedIndex, "token_id", p.tokenID)
}

// gossipAPI is the API URL a coordinator server advertises in gossip, for
// a server the config does not list (one added since).
func (c *Coordinator) gossipAPI(name string) string {
	if c.gossip == nil {
		return ""
	}
	for _, m := range c.gossip.Members() {
		if m.Name == name && m.Tags[gossip.TagRole] == "coordinator" && m.Tags[gossip.TagAPI] != "" {
			return c.scheme() + m.Tags[gossip.TagAPI]
		}
	}
	return ""
}

// scheme is the API's URL scheme with its "://".
func (c *Coordinator) scheme() string {
	if c.apiTLS == nil {
		return "http://"
	}
	return "https://"
}

// explainState turns the replicated log's refusal of the state directory
// into what the operator does next, in terms of the coordinator's config.
func explainState(err error, cfg CoordinatorConfig) error {
	dir := filepath.Join(cfg.StateDir, "raft")
	var corrupt *raftlog.CorruptError
	switch {
	case errors.As(err, &corrupt):
		return fmt.Errorf("grid: the coordinator's state %s cannot be read back (%w). Nothing was started. Restore the file from a backup (grid backup; docs/operations.md, \"Restoring\"), or, while the other servers keep a quorum, replace this server: grid servers remove %s, then start a server with a new id and an empty state_dir and add it (grid servers add)", corrupt.Path, err, cfg.Name)
	case errors.Is(err, raftlog.ErrOtherCluster):
		return fmt.Errorf("grid: state_dir %s belongs to another cluster: its log was made under another authority than tls.ca (%s) (%w). Point state_dir at this server's own state directory, or at an empty one for a new cluster, or use the ca.pem of the cluster it belongs to", cfg.StateDir, cfg.TLS.CA, err)
	case errors.Is(err, raftlog.ErrOtherServer):
		return fmt.Errorf("grid: state_dir %s belongs to another server than server_id %d (%w). Point state_dir at this server's own state directory, or fix server_id", cfg.StateDir, cfg.ServerID, err)
	case errors.Is(err, raftlog.ErrMembers):
		return fmt.Errorf("grid: the config's [[servers]] disagree with the members the log in %s records (%w). Make [[servers]] list exactly those members (grid servers shows them), and change membership only with grid servers add and grid servers remove", dir, err)
	}
	return fmt.Errorf("grid: the coordinator's state: %w", err)
}

// addedAPI is the API URL of a server the config does not list.
func (c *Coordinator) addedAPI(id uint64) string {
	c.mu.Lock()
	s, ok := c.added[id]
	c.mu.Unlock()
	if ok && s.APIAddr != "" {
		return c.scheme() + s.APIAddr
	}
	for _, m := range c.raft.Status().Members {
		if m.ID == id {
			return c.gossipAPI(m.Name)
		}
	}
	return ""
}
