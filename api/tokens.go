package api

import "time"

// Role is what a token may do. Every route of the API needs one.
type Role string

// The roles, weakest first.
const (
	// RoleRead reads its tenant's jobs, results, logs, modules and share.
	RoleRead Role = "read-only"
	// RoleSubmit also uploads modules, submits jobs and cancels them, for
	// its tenant.
	RoleSubmit Role = "submit"
	// RoleAdmin does everything for every tenant, tokens included.
	RoleAdmin Role = "admin"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a token of role r may act where need is
// required.
func (r Role) Allows(need Role) bool { return r.Valid() && r.rank() >= need.rank() }

func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleSubmit:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Tenant string `json:"tenant,omitempty"` // required unless role is admin
	Role   Role   `json:"role"`
}

// TokenInfo is a token as the API lists it: never its secret, which only
// its creator saw, once.
type TokenInfo struct {
	ID      string     `json:"id"`
	Tenant  string     `json:"tenant,omitempty"` // empty for admin tokens
	Role    Role       `json:"role"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
	// Bootstrap tokens come from the config file (admin_token_sha256,
	// tenants' token_sha256); they can be revoked like any other.
	Bootstrap bool `json:"bootstrap,omitempty"`
}

// TokenList is the answer to GET /v1/tokens.
type TokenList struct {
	Tokens []TokenInfo `json:"tokens"`
}

// NewToken is a token just created (POST /v1/tokens) or rotated: the
// secret is in the answer and nowhere else.
type NewToken struct {
	TokenInfo
	Token string `json:"token"`
}
