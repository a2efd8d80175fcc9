package sdk

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmgrid/wasmgrid/api"
)

// Remote is a client of a running grid's HTTP API (docs/api.md).
type Remote struct {
	base  string // the first server's URL, for messages
	token string
	hc    *http.Client
	err   error // why the client cannot work (Connect's CA file), returned by every call

	mu    sync.Mutex
	bases []string // every coordinator server's URL
	cur   int      // the one asked first: the leader, when known
	// pushed are the sha256 of the modules Submit uploaded: a later
	// submission names them without uploading them again.
	pushed map[string]bool
}

// RemoteConfig says how to reach a grid's API.
type RemoteConfig struct {
	// Addr is the API's URL, https://host:port; a bare host:port means
	// https. An http:// URL reaches a coordinator that serves plain HTTP
	// on loopback (insecure_http) and sends the token in clear. With
	// several coordinator servers, Addr lists each, comma separated: the
	// client asks the leader, and follows it when it changes.
	Addr string
	// Token is the bearer token (GRID_TOKEN).
	Token string
	// CA is the PEM of the authority that issued the coordinator's
	// certificate (grid init's ca.pem): the client trusts it alone. If
	// it is nil, CAFile is read; if both are empty, the system's
	// authorities are trusted.
	CA []byte
	// CAFile is the path of that PEM (GRID_CA).
	CAFile string
}

// NewRemote returns a client of the grid cfg names. It does not dial
// until a call.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	var bases []string
	for _, a := range strings.Split(cfg.Addr, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = "https://" + a
		}
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("grid address %q: %w", a, err)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return nil, fmt.Errorf("grid address %q: use an https:// URL", a)
		}
		bases = append(bases, strings.TrimRight(a, "/"))
	}
	if len(bases) == 0 {
		return nil, errors.New("no grid address: set GRID_ADDR to the API's URL (every coordinator server's, comma separated)")
	}
	base := bases[0]
	u, _ := url.Parse(base)
	var err error
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if u.Scheme == "https" {
		pemBytes := cfg.CA
		if pemBytes == nil && cfg.CAFile != "" {
			if pemBytes, err = os.ReadFile(cfg.CAFile); err != nil {
				return nil, fmt.Errorf("the grid's certificate authority (GRID_CA): %w", err)
			}
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if pemBytes != nil {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return nil, fmt.Errorf("the grid's certificate authority %s holds no PEM certificate", cmp.Or(cfg.CAFile, "(RemoteConfig.CA)"))
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	return &Remote{base: base, bases: bases, token: cfg.Token, hc: &http.Client{Transport: tr}}, nil
}

// Connect returns a client of the grid at addr (an https:// URL, or
// host:port) that authenticates with token and trusts the certificate
// authority named by $GRID_CA (the system's if it is unset). It does not
// dial until a call; a CA file that cannot be read is the error of every
// call. NewRemote takes the authority without the environment.
func Connect(addr, token string) *Remote {
	r, err := NewRemote(RemoteConfig{Addr: addr, Token: token, CAFile: os.Getenv("GRID_CA")})
	if err != nil {
		return &Remote{base: addr, err: err}
	}
	return r
}

// explainAt adds what to do to a transport error from the server at base
// that the user can fix.
func (r *Remote) explainAt(base string, err error) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("grid at %s: %w: set GRID_CA to the cluster's ca.pem (grid init writes it, and the .env files name it)", base, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("grid at %s: %w: reach the coordinator by a name its certificate holds, or issue certificates naming it (grid init --host)", base, err)
	}
	return fmt.Errorf("grid at %s: %w", base, err)
}

// send sends a request with the token.
// With several coordinator servers it asks the leader it knows, follows
// a follower's answer (421 naming the leader), tries the next server when
// one does not answer, and waits out an election (503 marked as one), for
// at most followTimeout. A body that cannot be sent twice (a module's
// stream) goes to the leader found first.
func (r *Remote) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	if r.err != nil {
		return nil, r.err
	}
	// A body in memory is read once and sent again from its bytes as
	// often as the call is redirected.
	var payload []byte
	replayable := body == nil
	switch body.(type) {
	case *bytes.Reader, *strings.Reader, *bytes.Buffer:
		b, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		payload, replayable = b, true
	}
	if !replayable && len(r.bases) > 1 {
		if err := r.findLeader(ctx); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(followTimeout)
	// lost is a server's answer that the quorum is lost: it is returned
	// once every other server was asked too (a server that has just
	// started, or is cut off, says so while the others lead).
	var lost *http.Response
	lostAt := 0
	defer func() {
		if lost != nil {
			lost.Body.Close()
		}
	}()
	for tries := 0; ; tries++ {
		base := r.current()
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := r.hc.Do(req)
		again := replayable && time.Now().Before(deadline) && ctx.Err() == nil
		switch {
		case err != nil:
			if !again || len(r.bases) == 1 {
				return nil, r.explainAt(base, err)
			}
			r.next(base)
		case resp.StatusCode == http.StatusMisdirectedRequest && resp.Header.Get(api.LeaderHeader) != "" && again:
			r.follow(resp.Header.Get(api.LeaderHeader))
			resp.Body.Close()
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(api.ElectionHeader) != "" && again:
			resp.Body.Close()
			if len(r.bases) > 1 {
				r.next(base)
			}
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(api.QuorumHeader) != "" && again && len(r.bases) > 1:
			if lost == nil {
				lostAt = tries
			} else {
				lost.Body.Close()
			}
			lost = resp
			r.next(base)
		default:
			return resp, nil
		}
		if lost != nil && tries-lostAt >= len(r.bases)-1 {
			resp, lost = lost, nil
			return resp, nil
		}
		if tries >= len(r.bases) {
			select {
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// followTimeout bounds how long a call follows leaders and waits out
// elections.
const followTimeout = 30 * time.Second

func (r *Remote) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bases[r.cur]
}

// next moves on from base, which did not answer or leads no more.
func (r *Remote) next(base string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bases[r.cur] == base {
		r.cur = (r.cur + 1) % len(r.bases)
	}
}

// follow makes leader the server asked first.
func (r *Remote) follow(leader string) {
	leader = strings.TrimRight(leader, "/")
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, b := range r.bases {
		if b == leader {
			r.cur = i
			return
		}
	}
	r.bases = append(r.bases, leader)
	r.cur = len(r.bases) - 1
}

// findLeader asks the servers which leads, before a call whose body
// cannot be sent twice.
func (r *Remote) findLeader(ctx context.Context) error {
	resp, err := r.send(ctx, http.MethodGet, "/v1/server", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var info api.ServerInfo
	if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&info) == nil && info.LeaderAPI != "" {
		r.follow(info.LeaderAPI)
	}
	return nil
}

// Server describes the coordinator server at one of the client's
// addresses (any server answers, leader or follower).
func (r *Remote) Server(ctx context.Context, addr string) (api.ServerInfo, error) {
	var info api.ServerInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(addr, "/")+"/v1/server", nil)
	if err != nil {
		return info, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.hc.Do(req)
	if err != nil {
		return info, r.explainAt(addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, apiError(resp)
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

// Servers describes every coordinator server the client knows, in the
// order of its addresses; a server that does not answer has Error set.
func (r *Remote) Servers(ctx context.Context) []api.ServerInfo {
	r.mu.Lock()
	bases := slices.Clone(r.bases)
	r.mu.Unlock()
	var out []api.ServerInfo
	for _, b := range bases {
		info, err := r.Server(ctx, b)
		if err != nil {
			info = api.ServerInfo{APIAddr: b, Error: err.Error()}
		}
		out = append(out, info)
	}
	return out
}

// apiError reads an error answer.
func apiError(resp *http.Response) error {
	var e api.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
	}
	if resp.StatusCode == http.StatusBadRequest && strings.Contains(e.Error, "HTTPS server") {
		e.Error += ": the grid serves HTTPS; use an https:// address (GRID_ADDR) and its ca.pem (GRID_CA)"
	}
	ae := &APIError{Status: resp.StatusCode, Msg: e.Error}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			ae.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return ae
}

// APIError is an error answer of the API.
type APIError struct {
	Status int
	Msg    string
	// RetryAfter is the wait the grid asked for (429, 503), or 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%s (HTTP %d; retry after %s)", e.Msg, e.Status, e.RetryAfter)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status)
}

func (r *Remote) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	resp, err := r.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return apiError(resp)
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// PushModule uploads a module and returns its sha256.
func (r *Remote) PushModule(ctx context.Context, wasm []byte) (string, error) {
	var out api.ModuleInfo
	if err := r.do(ctx, http.MethodPut, "/v1/modules", bytes.NewReader(wasm), &out); err != nil {
		return "", err
	}
	return out.Hash, nil
}

// PushModuleFrom uploads a module read from r, streamed: the client holds
// one buffer of it, not the module.
func (r *Remote) PushModuleFrom(ctx context.Context, rd io.Reader) (api.ModuleInfo, error) {
	var out api.ModuleInfo
	err := r.do(ctx, http.MethodPut, "/v1/modules", rd, &out)
	return out, err
}

// DeleteModule gives up the token's tenant's module; the grid deletes
// its file once no tenant and no running job uses it.
func (r *Remote) DeleteModule(ctx context.Context, hash string) error {
	return r.do(ctx, http.MethodDelete, "/v1/modules/"+url.PathEscape(hash), nil, nil)
}

// Modules lists the modules the token's tenant uploaded.
func (r *Remote) Modules(ctx context.Context) ([]api.ModuleInfo, error) {
	var out api.ModuleList
	err := r.do(ctx, http.MethodGet, "/v1/modules", nil, &out)
	return out.Modules, err
}

// Submit uploads a job's modules and submits it; tenant matters only for
// the admin token (empty: "default").
func (r *Remote) Submit(ctx context.Context, job *Job, tenant string) (string, error) {
	text := job.text
	if text == nil {
		var err error
		if text, err = os.ReadFile(job.Spec.File); err != nil {
			return "", err
		}
	}
	file, err := filepath.Abs(job.Spec.File)
	if err != nil {
		return "", err
	}
	req := api.SubmitRequest{Spec: string(text), File: file, Params: job.Params, Conf: job.Conf, Modules: map[string]string{}, Tenant: tenant}
	push := func(all bool) error {
		for name, b := range job.Modules {
			sum := sha256.Sum256(b)
			hash := hex.EncodeToString(sum[:])
			r.mu.Lock()
			known := r.pushed[hash] && !all
			r.mu.Unlock()
			if !known {
				var err error
				if hash, err = r.PushModule(ctx, b); err != nil {
					return fmt.Errorf("upload module %s: %w", name, err)
				}
				r.mu.Lock()
				if r.pushed == nil {
					r.pushed = map[string]bool{}
				}
				r.pushed[hash] = true
				r.mu.Unlock()
			}
			req.Modules[name] = hash
		}
		return nil
	}
	if err := push(false); err != nil {
		return "", err
	}
	id, err := r.SubmitRequest(ctx, req)
	if err != nil && strings.Contains(err.Error(), "no uploaded module") {
		// Deleted since this client uploaded it (grid modules rm): the
		// modules go up again, once.
		if err := push(true); err != nil {
			return "", err
		}
		return r.SubmitRequest(ctx, req)
	}
	return id, err
}

// SubmitRequest submits a job spec as it is, with modules uploaded before
// (PushModule): what Submit sends, without reading or checking anything on
// this machine. The grid checks the spec against the tenant's modules and
// volumes.
func (r *Remote) SubmitRequest(ctx context.Context, req api.SubmitRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	var out api.SubmitResponse
	if err := r.do(ctx, http.MethodPost, "/v1/jobs", bytes.NewReader(body), &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Jobs lists the jobs the token may see.
func (r *Remote) Jobs(ctx context.Context) ([]api.JobInfo, error) {
	var out api.JobList
	err := r.do(ctx, http.MethodGet, "/v1/jobs", nil, &out)
	return out.Jobs, err
}

// Job is one job's status, with its stages and why their tasks wait.
func (r *Remote) Job(ctx context.Context, id string) (api.JobInfo, error) {
	var out api.JobInfo
	err := r.do(ctx, http.MethodGet, "/v1/jobs/"+id, nil, &out)
	return out, err
}

// Cancel asks the grid to stop a job.
func (r *Remote) Cancel(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodPost, "/v1/jobs/"+id+"/cancel", nil, nil)
}

// Result copies a finished job's result to w.
func (r *Remote) Result(ctx context.Context, id string, w io.Writer) error {
	return r.do(ctx, http.MethodGet, "/v1/jobs/"+id+"/result", nil, w)
}

// Logs lists how a job's task attempts ended; task ("STAGE.PARTITION")
// narrows it to one task.
func (r *Remote) Logs(ctx context.Context, id, task string) ([]api.TaskLog, error) {
	var out api.LogList
	path := "/v1/jobs/" + id + "/logs"
	if task != "" {
		path += "?task=" + url.QueryEscape(task)
	}
	err := r.do(ctx, http.MethodGet, path, nil, &out)
	return out.Logs, err
}

// Agents lists the grid's agents, alive and lost.
func (r *Remote) Agents(ctx context.Context) ([]api.AgentInfo, error) {
	var out api.AgentList
	err := r.do(ctx, http.MethodGet, "/v1/agents", nil, &out)
	return out.Agents, err
}

// Tenants lists the tenants the token may see, with their shares.
func (r *Remote) Tenants(ctx context.Context) ([]api.TenantInfo, error) {
	var out api.TenantList
	err := r.do(ctx, http.MethodGet, "/v1/tenants", nil, &out)
	return out.Tenants, err
}

// Watch follows a job's events until it ends, calling fn with each new
// state, and returns the final one; an error if the job failed or was
// canceled.
func (r *Remote) Watch(ctx context.Context, id string, fn func(api.JobInfo)) (api.JobInfo, error) {
	resp, err := r.send(ctx, http.MethodGet, "/v1/jobs/"+id+"/events", nil)
	if err != nil {
		return api.JobInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return api.JobInfo{}, apiError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var last api.JobInfo
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var info api.JobInfo
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &info); err != nil {
				return last, fmt.Errorf("job %s events: %w", id, err)
			}
			last = info
			if fn != nil {
				fn(info)
			}
			if event == "done" {
				if info.State != api.StateSucceeded {
					return info, fmt.Errorf("job %s (%s) %s: %s", info.ID, info.Name, info.State, info.Error)
				}
				return info, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return last, err
	}
	return last, errors.New("the grid closed the event stream before the job ended")
}

// Run submits a job, waits for it, and copies a stdout job's result to w:
// what local.Grid.Run (package sdk/local) does, on a remote grid.
func (r *Remote) Run(ctx context.Context, job *Job, w io.Writer) (api.JobInfo, error) {
	id, err := r.Submit(ctx, job, "")
	if err != nil {
		return api.JobInfo{}, err
	}
	info, err := r.Watch(ctx, id, nil)
	if err != nil {
		return info, err
	}
	if info.Summary != nil && info.Summary.Stdout {
		return info, r.Result(ctx, id, w)
	}
	return info, nil
}

// CreateToken makes a token for tenant with role (api.RoleSubmit,
// api.RoleRead, or api.RoleAdmin with no tenant); it needs an admin
// token. The new token's secret is in the answer and nowhere else.
func (r *Remote) CreateToken(ctx context.Context, tenant string, role api.Role) (api.NewToken, error) {
	body, _ := json.Marshal(api.CreateTokenRequest{Tenant: tenant, Role: role})
	var out api.NewToken
	err := r.do(ctx, http.MethodPost, "/v1/tokens", bytes.NewReader(body), &out)
	return out, err
}

// Tokens lists the grid's tokens, revoked ones included, without their
// secrets (admin tokens only).
func (r *Remote) Tokens(ctx context.Context) ([]api.TokenInfo, error) {
	var out api.TokenList
	err := r.do(ctx, http.MethodGet, "/v1/tokens", nil, &out)
	return out.Tokens, err
}

// RevokeToken ends a token: its next request is refused.
func (r *Remote) RevokeToken(ctx context.Context, id string) (api.TokenInfo, error) {
	var out api.TokenInfo
	err := r.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, &out)
	return out, err
}

// RotateToken replaces a token by a new one for the same tenant and role,
// and revokes the old one.
func (r *Remote) RotateToken(ctx context.Context, id string) (api.NewToken, error) {
	var out api.NewToken
	err := r.do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(id)+"/rotate", nil, &out)
	return out, err
}

// AddServer adds a coordinator server to the replicated log (admin
// tokens only) and returns the members once the change is committed.
// Start the new server afterwards, with join_cluster = true and an empty
// state directory (docs/operations.md).
func (r *Remote) AddServer(ctx context.Context, s api.AddServerRequest) ([]api.Member, error) {
	body, _ := json.Marshal(s)
	var out api.MembersResponse
	err := r.do(ctx, http.MethodPost, "/v1/servers", bytes.NewReader(body), &out)
	return out.Members, err
}

// RemoveServer removes a coordinator server, by name, from the
// replicated log (admin tokens only) and returns the members left.
func (r *Remote) RemoveServer(ctx context.Context, name string) ([]api.Member, error) {
	var out api.MembersResponse
	err := r.do(ctx, http.MethodDelete, "/v1/servers/"+url.PathEscape(name), nil, &out)
	return out.Members, err
}

// BackupInfo describes a backup: the server whose raft.db it copies, the
// log index that server had applied, and the copy's size in bytes.
type BackupInfo struct {
	Server   string `json:"server"`
	LogIndex uint64 `json:"log_index"`
	Size     int64  `json:"size"`
}

// Backup writes a consistent copy of the leading server's raft.db to w
// (admin tokens only). A copy cut short is an error.
func (r *Remote) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	var info BackupInfo
	resp, err := r.send(ctx, http.MethodGet, "/v1/backup", nil)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, apiError(resp)
	}
	info.Server = resp.Header.Get(api.BackupServerHeader)
	info.LogIndex, _ = strconv.ParseUint(resp.Header.Get(api.BackupIndexHeader), 10, 64)
	if info.Size, err = io.Copy(w, resp.Body); err != nil {
		return info, fmt.Errorf("backup from %s: %w", cmp.Or(info.Server, r.current()), err)
	}
	if resp.ContentLength >= 0 && info.Size != resp.ContentLength {
		return info, fmt.Errorf("backup from %s: %d of %d bytes", cmp.Or(info.Server, r.current()), info.Size, resp.ContentLength)
	}
	return info, nil
}
