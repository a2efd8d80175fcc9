package grid

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/core"
	"github.com/wasmgrid/wasmgrid/internal/apilimit"
	"github.com/wasmgrid/wasmgrid/internal/audit"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
)

// principal is who a request's bearer token names.
type principal struct {
	tenant  string // "" for the admin
	admin   bool
	role    api.Role
	tokenID string
}

// authz knows the tokens, and remembers who owns what.
type authz struct {
	tokens *tokens.Store

	mu sync.Mutex
	// pending counts each tenant's jobs being admitted; the core counts
	// those that run.
	pending map[string]int
}

func newAuthz(store *tokens.Store) *authz {
	return &authz{tokens: store, pending: map[string]int{}}
}

// startJob counts a job of tenant being admitted, if the tenant has fewer
// than limit in flight (running counts those the core runs); done ends
// the admission.
func (a *authz) startJob(tenant string, limit, running int) (done func(), ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if running+a.pending[tenant] >= limit {
		return nil, false
	}
	a.pending[tenant]++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.pending[tenant]--; a.pending[tenant] <= 0 {
			delete(a.pending, tenant)
		}
	}, true
}

// who authenticates a request: a wrong, revoked or missing token is
// nobody.
func (a *authz) who(r *http.Request) (principal, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return principal{}, false
	}
	info, ok := a.tokens.Lookup(tok)
	if !ok {
		return principal{}, false
	}
	return principal{tenant: info.Tenant, admin: info.Role == api.RoleAdmin, role: info.Role, tokenID: info.ID}, true
}

// sees reports whether p may see something owned by tenant.
func (p principal) sees(tenant string) bool { return p.admin || p.tenant == tenant }

// route is one endpoint of the API: the role it needs, and the action
// the audit log names it by.
type route struct {
	pattern string
	action  string
	need    api.Role
	h       handlerFunc
}

// routes is the API. Tenant-scoped reads need read-only; changes to a
// tenant's things need submit; the cluster's events and tokens need admin.
func (c *Coordinator) routes() []route {
	return []route{
		{"PUT /v1/modules", "module.upload", api.RoleSubmit, c.putModule},
		{"GET /v1/modules", "module.list", api.RoleRead, c.listModules},
		{"DELETE /v1/modules/{hash}", "module.delete", api.RoleSubmit, c.deleteModule},
		{"POST /v1/jobs", "job.submit", api.RoleSubmit, c.postJob},
		{"GET /v1/jobs", "job.list", api.RoleRead, c.listJobs},
		{"GET /v1/jobs/{id}", "job.get", api.RoleRead, c.getJob},
		{"POST /v1/jobs/{id}/cancel", "job.cancel", api.RoleSubmit, c.cancelJob},
		{"GET /v1/jobs/{id}/result", "job.result", api.RoleRead, c.jobResult},
		{"GET /v1/jobs/{id}/events", "job.events", api.RoleRead, c.jobEvents},
		{"GET /v1/jobs/{id}/logs", "job.logs", api.RoleRead, c.jobLogs},
		{"GET /v1/agents", "agent.list", api.RoleRead, c.listAgents},
		{"GET /v1/tenants", "tenant.list", api.RoleRead, c.listTenants},
		{"GET /v1/events", "cluster.events", api.RoleAdmin, c.clusterEvents},
		{"POST /v1/tokens", "token.create", api.RoleAdmin, c.createToken},
		{"GET /v1/tokens", "token.list", api.RoleAdmin, c.listTokens},
		{"DELETE /v1/tokens/{id}", "token.revoke", api.RoleAdmin, c.revokeToken},
		{"POST /v1/tokens/{id}/rotate", "token.rotate", api.RoleAdmin, c.rotateToken},
		{"GET /v1/server", "server.get", api.RoleRead, c.getServer},
		{"POST /v1/servers", "server.add", api.RoleAdmin, c.addServer},
		{"DELETE /v1/servers/{name}", "server.remove", api.RoleAdmin, c.removeServer},
		{"GET /v1/backup", "server.backup", api.RoleAdmin, c.backup},
	}
}

func (c *Coordinator) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range c.routes() {
		mux.HandleFunc(rt.pattern, c.authed(rt))
	}
	return mux
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p principal)

// authed authenticates a request, throttles it and checks its token's
// role. A client address that spent its failed authentications is
// refused before its token is even looked at, so that guessing tokens
// costs time; a token past its request rate is refused without slowing
// any other token.
func (c *Coordinator) authed(rt route) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		start := c.limits.Now()
		w := audit.NewWriter(rw, cmp.Or(r.PathValue("id"), r.PathValue("hash")))
		addr := apilimit.ClientAddr(r)
		var p principal
		defer func() {
			// A backup holds every job's record: each copy is audited.
			if audit.Audited(r.Method, w.Status()) || rt.action == "server.backup" {
				c.audit.Write(audit.Record{Tenant: p.tenant, TokenID: p.tokenID, Role: string(p.role), Action: rt.action, Object: w.Object(), Method: r.Method, Path: r.URL.Path,
					Remote: r.RemoteAddr, Status: w.Status(), Reason: w.Reason(), Elapsed: c.limits.Now().Sub(start)})
			}
		}()
		if retry, throttled := c.limits.AuthThrottled(addr); throttled {
			tooMany(w, retry, "too many failed authentications from "+addr+" (limits.auth_failures_per_minute)")
			return
		}
		var ok bool
		if p, ok = c.auth.who(r); !ok {
			c.limits.AuthFailed(addr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="wasmgrid"`)
			httpError(w, http.StatusUnauthorized, "a valid bearer token is required (GRID_TOKEN)")
			return
		}
		if retry, ok := c.limits.AllowRequest(p.tokenID); !ok {
			tooMany(w, retry, fmt.Sprintf("token %s is over its request rate (limits.requests_per_second = %g)", p.tokenID, c.lim.RequestsPerSecond))
			return
		}
		if !p.role.Allows(rt.need) {
			httpError(w, http.StatusForbidden, fmt.Sprintf("%s needs a token of role %s; this one is %s", rt.action, rt.need, p.role))
			return
		}
		// Any server describes itself and copies its own log; the rest
		// is the leader's, and waits out a short election.
		if rt.action != "server.get" && rt.action != "server.backup" && !c.leads() && !c.awaitLeader(r.Context()) {
			c.misdirected(w)
			return
		}
		if r.Method != http.MethodGet {
			if st := c.raft.Status(); st.IsLeader && quorumLost(st) {
				// The leader hears from every member: no change can
				// commit, so none is proposed.
				noQuorum(w, st)
				return
			}
		}
		rt.h(w, r, p)
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, api.ErrorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// putModule streams a module to the module directory, hashing it on the
// way: an upload costs one buffer of memory, whatever its size, and at
// most limits.uploads_per_tenant of a tenant's run at once.
func (c *Coordinator) putModule(w http.ResponseWriter, r *http.Request, p principal) {
	release, ok := c.limits.StartUpload(p.tenant)
	if !ok {
		tooMany(w, 2*time.Second, fmt.Sprintf("%d uploads of tenant %s are in progress, its limit (limits.uploads_per_tenant)", c.lim.UploadsPerTenant, p.tenant))
		return
	}
	defer release()
	limit, unreserve, err := c.modules.reserve(p.tenant, r.ContentLength)
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	defer unreserve()
	body := &readTracker{r: r.Body}
	head := make([]byte, 8)
	if n, _ := io.ReadFull(body, head); n < len(head) || string(head[:4]) != "\x00asm" {
		httpError(w, http.StatusBadRequest, "not a WebAssembly module (no \\0asm header)")
		return
	}
	hash, size, err := writeModuleFrom(c.modulesDir, io.MultiReader(bytes.NewReader(head), body), limit)
	switch {
	case errors.Is(err, errModuleTooLarge) && limit < int64(c.lim.ModuleSize):
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the module is over the %d bytes left of tenant %s's limits.module_bytes_per_tenant (%s)", limit, p.tenant, c.lim.ModuleBytesPerTenant))
		return
	case errors.Is(err, errModuleTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the module is over limits.module_size (%s)", c.lim.ModuleSize))
		return
	case err != nil && body.err != nil:
		httpError(w, http.StatusBadRequest, "the upload broke off: "+body.err.Error())
		return
	case err != nil:
		c.logger.Error("store module", "err", err)
		httpError(w, http.StatusInternalServerError, "the module could not be stored")
		return
	}
	noteObject(w, hash)
	// The upload is acknowledged once a majority of the coordinator
	// servers holds the file, fsynced, and the log records its owner: a
	// leader that dies then loses nothing. Its file stays here meanwhile,
	// whoever deletes the module.
	unpin := c.modules.pin(hash)
	defer unpin()
	if err := c.sync.replicate(r.Context(), hash, size); err != nil {
		c.logger.Warn("module not replicated", "hash", hash, "err", err)
		w.Header().Set("Retry-After", "2")
		httpError(w, http.StatusServiceUnavailable, "the module could not be stored on a majority of the coordinator servers: upload it again: "+err.Error())
		return
	}
	stored := &moduleRef{Hash: hash, Size: size, Tenant: p.tenant}
	if err := c.coord.proposeGrid(r.Context(), gridCommand{Module: &moduleCommand{Stored: stored}}); err != nil {
		w.Header().Set("Retry-After", "2")
		httpError(w, http.StatusServiceUnavailable, "the module's record was not committed to the coordinators' log: upload it again: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.ModuleInfo{Hash: hash, Size: size})
}

// readTracker remembers its reader's error: the client's, not the disk's.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

func (c *Coordinator) listModules(w http.ResponseWriter, r *http.Request, p principal) {
	writeJSON(w, http.StatusOK, api.ModuleList{Modules: c.modules.list(p)})
}

// deleteModule drops the tenant's module; its file goes when nobody owns
// it and no running or arriving job uses it.
func (c *Coordinator) deleteModule(w http.ResponseWriter, r *http.Request, p principal) {
	hash := r.PathValue("hash")
	noteObject(w, hash)
	if !validHash(hash) {
		httpError(w, http.StatusNotFound, "no such module")
		return
	}
	if !c.modules.owns(p.tenant, hash) {
		httpError(w, http.StatusNotFound, "no such module")
		return
	}
	// Every server drops the ownership when it applies the deletion, and
	// deletes the file once nobody owns it and no job uses it.
	deleted := &moduleRef{Hash: hash, Tenant: p.tenant}
	if err := c.coord.proposeGrid(r.Context(), gridCommand{Module: &moduleCommand{Deleted: deleted}}); err != nil {
		w.Header().Set("Retry-After", "2")
		httpError(w, http.StatusServiceUnavailable, "the deletion was not committed to the coordinators' log: try again: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.DeleteModuleResponse{Hash: hash, State: "deleted"})
}

// moduleInUse reports whether a job being admitted or running uses hash.
func (c *Coordinator) moduleInUse(hash string) bool {
	if c.modules.pinned(hash) {
		return true
	}
	inUse := false
	c.coord.read(func(cr *core.Core) { inUse = modulesInUse(cr)[hash] })
	return inUse
}

func (c *Coordinator) postJob(w http.ResponseWriter, r *http.Request, p principal) {
	var req api.SubmitRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(c.lim.RequestBody))).Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the submission is over %s (limits.request_body): put large inputs in files", c.lim.RequestBody))
			return
		}
		httpError(w, http.StatusBadRequest, "malformed submission: "+err.Error())
		return
	}
	tenant := p.tenant
	if p.admin {
		tenant = req.Tenant
		if tenant == "" {
			tenant = "default"
		}
		if !c.knownTenant(tenant) {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("no tenant %q in the coordinator's config: submit for default or one of %s, or add it ([[tenants]])", tenant, strings.Join(c.tenantNames(), ", ")))
			return
		}
	}
	admitted, ok := c.auth.startJob(tenant, c.lim.JobsPerTenant, c.coord.runningOf(tenant))
	if !ok {
		tooMany(w, 5*time.Second, fmt.Sprintf("tenant %s has %d jobs in flight, its limit (limits.jobs_per_tenant): wait for one to end", tenant, c.lim.JobsPerTenant))
		return
	}
	var job *Job
	defer admitted()
	// The spec is not Checked here: Check looks at this host's files, and
	// a tenant's files are only those of its volumes, which admission
	// resolves.
	spec, err := jobspec.Parse([]byte(req.Spec), req.File, req.Params, req.Conf)
	if err == nil {
		err = checkSpecLimits(spec, c.lim)
	}
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	jr := admission{Spec: spec, Tenant: tenant, limits: c.lim}
	var unpin func()
	jr.Modules, unpin, err = c.resolveModules(r.Context(), p, spec, req.Modules)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The modules' files stay while the job is admitted, whoever deletes
	// them meanwhile; then the running job keeps them.
	defer unpin()
	var agents []allocator.Resources
	slots := 0
	c.coord.read(func(cr *core.Core) {
		for _, ag := range cr.Agents() {
			agents = append(agents, ag.Resources)
			slots += int(ag.Resources.CPU / 1000)
		}
	})
	job, err = admit(r.Context(), c.coord, c.insp, jr, max(slots, 1), agents)
	var busy *busyError
	switch {
	case errors.As(err, &busy):
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(busy.retryAfter.Seconds()))))
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil && c.logUnavailable(w, err):
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	noteObject(w, job.ID())
	c.events.add("job_submitted", job.ID(), tenant)
	writeJSON(w, http.StatusCreated, api.SubmitResponse{ID: job.ID()})
}

// resolveModules names the files of a submission's modules, which p must
// own, and pins them until unpin.
func (c *Coordinator) resolveModules(ctx context.Context, p principal, spec *jobspec.Spec, hashes map[string]string) (map[string]moduleBlob, func(), error) {
	blobs := map[string]moduleBlob{}
	var pins []func()
	unpin := func() {
		for _, u := range pins {
			u()
		}
	}
	for _, m := range spec.Modules {
		hash, ok := hashes[m.Name]
		if !ok {
			unpin()
			return nil, nil, fmt.Errorf("module %s has no hash in the submission: upload it (PUT /v1/modules) and name its hash", m.Name)
		}
		path := filepath.Join(c.modulesDir, hash+".wasm")
		var fi os.FileInfo
		var err error
		if validHash(hash) && c.modules.owned(p, hash) {
			// A server that leads now may lack a module uploaded before
			// (it was down): another server has it.
			if err = c.sync.ensure(ctx, hash); err == nil {
				fi, err = os.Stat(path)
			}
		}
		if fi == nil || err != nil {
			unpin()
			return nil, nil, fmt.Errorf("module %s: no uploaded module %s: upload it first (grid modules push)", m.Name, hash)
		}
		pins = append(pins, c.modules.pin(hash))
		blobs[m.Name] = moduleBlob{Name: m.Name, Hash: hash, Path: path, Size: fi.Size()}
	}
	return blobs, unpin, nil
}

// findJob is the job id names if p may see it; someone else's job is
// as absent as one that never was.
func (c *Coordinator) findJob(w http.ResponseWriter, r *http.Request, p principal) *api.JobInfo {
	info, ok := c.jobInfo(r.PathValue("id"), true)
	if !ok || !p.sees(info.Tenant) {
		httpError(w, http.StatusNotFound, "no such job")
		return nil
	}
	return &info
}

func (c *Coordinator) listJobs(w http.ResponseWriter, r *http.Request, p principal) {
	out := []api.JobInfo{}
	c.coord.read(func(cr *core.Core) {
		for _, ji := range cr.Jobs() {
			if p.sees(ji.Tenant) {
				out = append(out, apiJobInfo(ji, false))
			}
		}
	})
	writeJSON(w, http.StatusOK, api.JobList{Jobs: out})
}

func (c *Coordinator) getJob(w http.ResponseWriter, r *http.Request, p principal) {
	if j := c.findJob(w, r, p); j != nil {
		writeJSON(w, http.StatusOK, j)
	}
}

// jobInfo describes a job as the core has it; with detail, its stages
// and why they wait, or its summary.
func (c *Coordinator) jobInfo(id string, detail bool) (api.JobInfo, bool) {
	var info api.JobInfo
	var ok bool
	c.coord.read(func(cr *core.Core) {
		var ji core.JobInfo
		if ji, ok = cr.Job(id); ok {
			info = apiJobInfo(ji, detail)
		}
	})
	return info, ok
}

// apiJobInfo is a job of the core as the API shows it.
func apiJobInfo(ji core.JobInfo, detail bool) api.JobInfo {
	info := api.JobInfo{ID: ji.ID, Name: ji.Name, Tenant: ji.Tenant, State: ji.State, Error: ji.Err, Submitted: ji.Submitted}
	if !detail {
		return info
	}
	if ji.Record != nil {
		var pl jobPayload
		_ = json.Unmarshal(ji.Payload, &pl)
		info.Summary = summaryOf(ji.Record, pl.Output.Stdout)
	}
	for _, s := range ji.Stages {
		st := api.StageInfo{ID: s.ID, Name: s.Name, Tasks: s.Tasks, Running: s.Running, Done: s.Done, Pending: s.Pending}
		if s.Why != nil && ji.Record == nil {
			st.Reason = &api.Reason{Code: s.Why.Code, Message: s.Why.Message}
		}
		info.Stages = append(info.Stages, st)
	}
	return info
}

// ended reports whether a job state is final.
func ended(state string) bool {
	return state == api.StateSucceeded || state == api.StateFailed || state == api.StateCanceled
}

// jobLogs lists how a job's task attempts ended (?task=STAGE.PARTITION
// for one task's).
func (c *Coordinator) jobLogs(w http.ResponseWriter, r *http.Request, p principal) {
	j := c.findJob(w, r, p)
	if j == nil {
		return
	}
	task := r.URL.Query().Get("task")
	var logs []api.TaskLog
	c.coord.read(func(cr *core.Core) {
		ls, _ := cr.Logs(j.ID, task)
		for _, l := range ls {
			logs = append(logs, api.TaskLog(l))
		}
	})
	if logs == nil {
		logs = []api.TaskLog{}
	}
	writeJSON(w, http.StatusOK, api.LogList{Logs: logs})
}

func (c *Coordinator) cancelJob(w http.ResponseWriter, r *http.Request, p principal) {
	if j := c.findJob(w, r, p); j != nil {
		if !ended(j.State) {
			c.coord.cancel(j.ID, "by token "+p.tokenID)
		}
		c.events.add("job_canceled", j.ID, j.Tenant)
		writeJSON(w, http.StatusAccepted, api.CancelResponse{ID: j.ID, State: "canceling"})
	}
}

func (c *Coordinator) jobResult(w http.ResponseWriter, r *http.Request, p principal) {
	j := c.findJob(w, r, p)
	if j == nil {
		return
	}
	if !ended(j.State) {
		httpError(w, http.StatusConflict, "the job has not finished")
		return
	}
	if j.State != api.StateSucceeded {
		httpError(w, http.StatusConflict, "the job "+j.State+": "+j.Error)
		return
	}
	res, err := c.coord.result(r.Context(), j.ID)
	if err != nil {
		httpError(w, http.StatusGone, "the result is gone: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// An error past the header can only cut the answer short.
	_ = res.copy(r.Context(), w)
}

// jobEvents streams a job's progress as server-sent events until it ends.
func (c *Coordinator) jobEvents(w http.ResponseWriter, r *http.Request, p principal) {
	j := c.findJob(w, r, p)
	if j == nil {
		return
	}
	release, ok := c.limits.OpenStream(p.tokenID)
	if !ok {
		tooMany(w, 5*time.Second, fmt.Sprintf("token %s has %d event streams open, its limit (limits.streams_per_token)", p.tokenID, c.lim.StreamsPerToken))
		return
	}
	defer release()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// Woken by the coordinator's changes, not a poll: the end of a job
	// goes out at once, progress at most every progressEvery. A slow
	// ticker ends the stream of a token revoked meanwhile.
	var last string
	var sent time.Time
	revoked := time.NewTicker(time.Second)
	defer revoked.Stop()
	var later *time.Timer
	defer func() {
		if later != nil {
			later.Stop()
		}
	}()
	var laterC <-chan time.Time
	for {
		wake := c.coord.changes() // before the read, so that no change is missed
		if !c.auth.tokens.Live(p.tokenID) {
			return // revoked: the stream ends with it
		}
		info, ok := c.jobInfo(j.ID, true)
		if !ok {
			return // gone from the history
		}
		done := ended(info.State)
		b, _ := json.Marshal(info)
		if s := string(b); s != last || done {
			if wait := progressEvery - time.Since(sent); !done && wait > 0 {
				if laterC == nil {
					later = time.NewTimer(wait)
					laterC = later.C
				}
			} else {
				last, sent = s, time.Now()
				kind := "progress"
				if done {
					kind = "done"
				}
				fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b)
				if flusher != nil {
					flusher.Flush()
				}
			}
		}
		if done {
			return
		}
		select {
		case <-wake:
		case <-laterC:
			laterC = nil
		case <-revoked.C:
		case <-r.Context().Done():
			return
		}
	}
}

// progressEvery spaces a job's progress events; its end is sent at once.
const progressEvery = 200 * time.Millisecond

func (c *Coordinator) listAgents(w http.ResponseWriter, r *http.Request, p principal) {
	out := []api.AgentInfo{}
	c.coord.read(func(cr *core.Core) {
		for _, ag := range cr.AgentViews() {
			status := "alive"
			if ag.Suspect {
				status = "suspect"
			}
			out = append(out, api.AgentInfo{ID: ag.Name, Addr: ag.BlockAddr, Status: status, CPUMillis: ag.Resources.CPU, MemMiB: ag.Resources.Mem, FreeCPU: ag.Free.CPU, FreeMem: ag.Free.Mem, Joined: ag.Joined})
		}
		for _, name := range cr.LostAgents() {
			out = append(out, api.AgentInfo{ID: name, Status: "lost"})
		}
	})
	writeJSON(w, http.StatusOK, api.AgentList{Agents: out})
}

func (c *Coordinator) listTenants(w http.ResponseWriter, r *http.Request, p principal) {
	out := []api.TenantInfo{}
	now := time.Now()
	c.coord.read(func(cr *core.Core) {
		for _, t := range cr.Tenants(now) {
			if !p.sees(t.Name) {
				continue
			}
			out = append(out, api.TenantInfo{
				Name: t.Name, Weight: t.Weight, CPUMillis: t.Allocated.CPU, MemMiB: t.Allocated.Mem,
				DominantShare: t.DominantShare, TaskSeconds: t.TaskSeconds, Jobs: t.Jobs,
			})
		}
	})
	writeJSON(w, http.StatusOK, api.TenantList{Tenants: out})
}

// eventLog keeps the cluster's recent events for GET /v1/events.
type eventLog struct {
	mu     sync.Mutex
	events []api.ClusterEvent
	next   int64
}

func newEventLog() *eventLog { return &eventLog{} }

func (l *eventLog) add(kind, subject, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	l.events = append(l.events, api.ClusterEvent{Seq: l.next, Time: time.Now(), Kind: kind, Subject: subject, Detail: detail})
	if len(l.events) > 1000 {
		l.events = slices.Delete(l.events, 0, len(l.events)-1000)
	}
}

func (l *eventLog) since(seq int64) []api.ClusterEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []api.ClusterEvent
	for _, e := range l.events {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out
}

// clusterEvents streams the cluster's events (admin only) as server-sent
// events.
func (c *Coordinator) clusterEvents(w http.ResponseWriter, r *http.Request, p principal) {
	release, ok := c.limits.OpenStream(p.tokenID)
	if !ok {
		tooMany(w, 5*time.Second, fmt.Sprintf("token %s has %d event streams open, its limit (limits.streams_per_token)", p.tokenID, c.lim.StreamsPerToken))
		return
	}
	defer release()
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	var seq int64
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, e := range c.events.since(seq) {
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, b)
			seq = e.Seq
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
		if !c.auth.tokens.Live(p.tokenID) {
			return
		}
	}
}

// misdirected answers a request that reached a follower: 421 with the
// leader's API in the Wasmgrid-Leader header when one is known (the CLI
// and the SDK follow it), or 503 with Retry-After during an election.
func (c *Coordinator) misdirected(w http.ResponseWriter) {
	st := c.raft.Status()
	if leader := c.serverAPI(st.Leader.ID); leader != "" && st.Leader.ID != st.ID {
		w.Header().Set(api.LeaderHeader, leader)
		httpError(w, http.StatusMisdirectedRequest, "this coordinator server is a follower: the leader is "+st.Leader.Name+" at "+leader+" (list every server in GRID_ADDR, comma separated, and the CLI and the SDK follow the leader)")
		return
	}
	if st.Leader.ID == 0 && quorumLost(st) {
		// Not an election that ends soon: a client is told at once.
		noQuorum(w, st)
		return
	}
	w.Header().Set("Retry-After", "1")
	w.Header().Set(api.ElectionHeader, "1")
	httpError(w, http.StatusServiceUnavailable, "no coordinator server leads yet (an election is under way): try again in a moment")
}

// getServer describes this coordinator server: any server answers, leader
// or not.
func (c *Coordinator) getServer(w http.ResponseWriter, r *http.Request, p principal) {
	st := c.raft.Status()
	info := api.ServerInfo{
		ID: st.ID, Name: c.cfg.Name, APIAddr: c.APIURL(), Leader: c.leads(), PID: os.Getpid(),
		Term: st.Term, CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, SnapshotIndex: st.SnapshotIndex,
		LeaderName: st.Leader.Name, LeaderAPI: c.serverAPI(st.Leader.ID),
	}
	if info.Leader {
		info.LeaderAPI = c.APIURL()
	}
	for _, m := range st.Members {
		info.Members = append(info.Members, m.Name)
	}
	if st.IsLeader {
		// Only a leader hears from every server.
		for _, m := range st.Unreachable {
			info.Unreachable = append(info.Unreachable, m.Name)
		}
	}
	writeJSON(w, http.StatusOK, info)
}
