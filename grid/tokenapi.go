package grid

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/wasmgrid/wasmgrid/api"
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
	nt, err := c.auth.tokens.create(req.Tenant, req.Role)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	noteObject(w, nt.ID)
	writeJSON(w, http.StatusCreated, nt)
}

func (c *Coordinator) listTokens(w http.ResponseWriter, r *http.Request, p principal) {
	writeJSON(w, http.StatusOK, api.TokenList{Tokens: c.auth.tokens.list()})
}

func (c *Coordinator) revokeToken(w http.ResponseWriter, r *http.Request, p principal) {
	id := r.PathValue("id")
	noteObject(w, id)
	info, err := c.auth.tokens.revoke(id)
	switch {
	case errors.Is(err, errNoToken):
		httpError(w, http.StatusNotFound, "no token "+id)
	case err != nil:
		httpError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, info)
	}
}

func (c *Coordinator) rotateToken(w http.ResponseWriter, r *http.Request, p principal) {
	id := r.PathValue("id")
	noteObject(w, id)
	nt, err := c.auth.tokens.rotate(id)
	switch {
	case errors.Is(err, errNoToken):
		httpError(w, http.StatusNotFound, "no token "+id)
	case errors.Is(err, errRevoked):
		httpError(w, http.StatusConflict, fmt.Sprintf("token %s: %v", id, err))
	case err != nil && nt.Token == "":
		httpError(w, http.StatusInternalServerError, err.Error())
	case err != nil:
		// The new token exists; the old one is revoked in memory only.
		httpError(w, http.StatusInternalServerError, fmt.Sprintf("new token %s created, but: %v", nt.ID, err))
	default:
		writeJSON(w, http.StatusCreated, nt)
	}
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
	if aw, ok := w.(interface{ setObject(string) }); ok {
		aw.setObject(object)
	}
}
