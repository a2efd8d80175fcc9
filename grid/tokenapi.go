package grid

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/wasmgrid/wasmgrid/api"
	"github.com/wasmgrid/wasmgrid/internal/tokens"
)

// maxSmallBody bounds the bodies of requests that carry a few fields.
const maxSmallBody = 64 << 10

func (c *Coordinator) createToken(w http.ResponseWriter, r *http.Request, p principal) {
	var req api.CreateTokenRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSmallBody)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "malformed token request: "+err.Error())
		return
	}
	switch {
	case !req.Role.Valid():
		httpError(w, http.StatusBadRequest, fmt.Sprintf("role %q: use admin, submit or read-only", req.Role))
		return
	case req.Role == api.RoleAdmin && req.Tenant != "":
		httpError(w, http.StatusBadRequest, "an admin token acts for every tenant: give no tenant")
		return
	case req.Role != api.RoleAdmin && !c.knownTenant(req.Tenant):
		httpError(w, http.StatusBadRequest, fmt.Sprintf("tenant %q is not in the coordinator's config (its tenants: %v)", req.Tenant, c.tenantNames()))
		return
	}
	cmd, nt, err := c.auth.tokens.CreateCommand(req.Tenant, req.Role)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	noteObject(w, nt.ID)
	if !c.commitTokens(w, r, cmd) {
		return
	}
	if !c.auth.tokens.Live(nt.ID) {
		httpError(w, http.StatusInternalServerError, tokens.ErrTokenCap.Error())
		return
	}
	writeJSON(w, http.StatusCreated, nt)
}

// commitTokens commits a token command to the replicated log: the API
// answers only once a majority of the servers holds the change, so that
// no created token and no revocation is lost with the leader. It answers
// the request itself when the log refuses.
func (c *Coordinator) commitTokens(w http.ResponseWriter, r *http.Request, cmd tokens.Command) bool {
	if err := c.coord.proposeGrid(r.Context(), gridCommand{Token: &cmd}); err != nil {
		c.logger.Warn("a token change was not committed", "err", err)
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "the change was not committed to the coordinators' log (no leader, or no majority of the servers): it may or may not have taken effect: list the tokens and try again: "+err.Error())
		return false
	}
	return true
}

func (c *Coordinator) listTokens(w http.ResponseWriter, r *http.Request, p principal) {
	writeJSON(w, http.StatusOK, api.TokenList{Tokens: c.auth.tokens.List()})
}

func (c *Coordinator) revokeToken(w http.ResponseWriter, r *http.Request, p principal) {
	id := r.PathValue("id")
	noteObject(w, id)
	rev, err := c.auth.tokens.RevokeCommand(id)
	if errors.Is(err, tokens.ErrNoToken) {
		httpError(w, http.StatusNotFound, "no token "+id)
		return
	}
	if rev != nil && !c.commitTokens(w, r, tokens.Command{Revoke: rev}) {
		return
	}
	info, ok := c.auth.tokens.Find(id)
	if !ok || info.Revoked == nil {
		httpError(w, http.StatusInternalServerError, "token "+id+" was not revoked")
		return
	}
	writeJSON(w, http.StatusOK, info.TokenInfo)
}

func (c *Coordinator) rotateToken(w http.ResponseWriter, r *http.Request, p principal) {
	id := r.PathValue("id")
	noteObject(w, id)
	old, ok := c.auth.tokens.Find(id)
	switch {
	case !ok:
		httpError(w, http.StatusNotFound, "no token "+id)
		return
	case old.Revoked != nil:
		httpError(w, http.StatusConflict, fmt.Sprintf("token %s: %v", id, tokens.ErrRevoked))
		return
	}
	cmd, nt, err := c.auth.tokens.CreateCommand(old.Tenant, old.Role)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if cmd.Revoke, err = c.auth.tokens.RevokeCommand(id); err != nil || cmd.Revoke == nil {
		httpError(w, http.StatusConflict, fmt.Sprintf("token %s: %v", id, tokens.ErrRevoked))
		return
	}
	// One command: the new token and the old one's revocation commit
	// together, or neither does.
	if !c.commitTokens(w, r, cmd) {
		return
	}
	if !c.auth.tokens.Live(nt.ID) || c.auth.tokens.Live(id) {
		httpError(w, http.StatusInternalServerError, fmt.Sprintf("token %s was not rotated: %v", id, tokens.ErrTokenCap))
		return
	}
	writeJSON(w, http.StatusCreated, nt)
}

// knownTenant reports whether tokens may be made for tenant: one of the
// config's, or "default", which the admin's submissions use.
func (c *Coordinator) knownTenant(tenant string) bool {
	return tenant == "default" || slices.Contains(c.tenantNames(), tenant)
}

func (c *Coordinator) tenantNames() []string {
	var names []string
	for _, t := range c.cfg.Tenants {
		names = append(names, t.Name)
	}
	return names
}

// noteObject names what a request acts on, for the audit log.
func noteObject(w http.ResponseWriter, object string) {
	if aw, ok := w.(interface{ SetObject(string) }); ok {
		aw.SetObject(object)
	}
}
