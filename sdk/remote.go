package sdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/wasmgrid/wasmgrid/grid"
)

// Remote is a client of a running grid's HTTP API (docs/api.md).
type Remote struct {
	base  string
	token string
	hc    *http.Client
}

// Connect returns a client of the grid at addr ("host:port" or a URL)
// that authenticates with token. It does not dial until a call.
func Connect(addr, token string) *Remote {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Remote{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{}}
}

// APIError is an error answer of the API.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Status) }

func (r *Remote) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("grid at %s: %w", r.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &APIError{Status: resp.StatusCode, Msg: e.Error}
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
	var out struct{ Hash string }
	if err := r.do(ctx, http.MethodPut, "/v1/modules", bytes.NewReader(wasm), &out); err != nil {
		return "", err
	}
	return out.Hash, nil
}

// ModuleInfo is an uploaded module.
type ModuleInfo struct {
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

// Modules lists the modules the token's tenant uploaded.
func (r *Remote) Modules(ctx context.Context) ([]ModuleInfo, error) {
	var out struct{ Modules []ModuleInfo }
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
	req := grid.SubmitRequest{Spec: string(text), File: file, Params: job.Params, Conf: job.Conf, Modules: map[string]string{}, Tenant: tenant}
	for name, b := range job.Modules {
		hash, err := r.PushModule(ctx, b)
		if err != nil {
			return "", fmt.Errorf("upload module %s: %w", name, err)
		}
		req.Modules[name] = hash
	}
	return r.SubmitRequest(ctx, req)
}

// SubmitRequest submits a job spec as it is, with modules uploaded before
// (PushModule): what Submit sends, without reading or checking anything on
// this machine. The grid checks the spec against the tenant's modules and
// volumes.
func (r *Remote) SubmitRequest(ctx context.Context, req grid.SubmitRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	var out struct{ ID string }
	if err := r.do(ctx, http.MethodPost, "/v1/jobs", bytes.NewReader(body), &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Jobs lists the jobs the token may see.
func (r *Remote) Jobs(ctx context.Context) ([]grid.JobInfo, error) {
	var out struct{ Jobs []grid.JobInfo }
	err := r.do(ctx, http.MethodGet, "/v1/jobs", nil, &out)
	return out.Jobs, err
}

// Job is one job's status, with its stages and why their tasks wait.
func (r *Remote) Job(ctx context.Context, id string) (grid.JobInfo, error) {
	var out grid.JobInfo
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
func (r *Remote) Logs(ctx context.Context, id, task string) ([]grid.TaskLog, error) {
	var out struct{ Logs []grid.TaskLog }
	path := "/v1/jobs/" + id + "/logs"
	if task != "" {
		path += "?task=" + url.QueryEscape(task)
	}
	err := r.do(ctx, http.MethodGet, path, nil, &out)
	return out.Logs, err
}

// Agents lists the grid's agents, alive and lost.
func (r *Remote) Agents(ctx context.Context) ([]grid.AgentInfo, error) {
	var out struct{ Agents []grid.AgentInfo }
	err := r.do(ctx, http.MethodGet, "/v1/agents", nil, &out)
	return out.Agents, err
}

// Tenants lists the tenants the token may see, with their shares.
func (r *Remote) Tenants(ctx context.Context) ([]grid.TenantInfo, error) {
	var out struct{ Tenants []grid.TenantInfo }
	err := r.do(ctx, http.MethodGet, "/v1/tenants", nil, &out)
	return out.Tenants, err
}

// Watch follows a job's events until it ends, calling fn with each new
// state, and returns the final one; an error if the job failed.
func (r *Remote) Watch(ctx context.Context, id string, fn func(grid.JobInfo)) (grid.JobInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v1/jobs/"+id+"/events", nil)
	if err != nil {
		return grid.JobInfo{}, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.hc.Do(req)
	if err != nil {
		return grid.JobInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return grid.JobInfo{}, &APIError{Status: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var last grid.JobInfo
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var info grid.JobInfo
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &info); err != nil {
				return last, fmt.Errorf("job %s events: %w", id, err)
			}
			last = info
			if fn != nil {
				fn(info)
			}
			if event == "done" {
				if info.State == "failed" {
					return info, fmt.Errorf("job %s (%s) failed: %s", info.ID, info.Name, info.Error)
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
// what Local.Run does, on a remote grid.
func (r *Remote) Run(ctx context.Context, job *Job, w io.Writer) (grid.JobInfo, error) {
	id, err := r.Submit(ctx, job, "")
	if err != nil {
		return grid.JobInfo{}, err
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
