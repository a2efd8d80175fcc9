package grid

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/wasmgrid/wasmgrid/internal/tokens"
)

// bootstrapTokens are the config's tokens as records.
func bootstrapTokens(cfg CoordinatorConfig) []tokens.Record {
	var out []tokens.Record
	if cfg.AdminTokenSHA256 != "" {
		out = append(out, tokens.Bootstrap("", cfg.AdminTokenSHA256))
	}
	for _, t := range cfg.Tenants {
		if t.TokenSHA256 == "" {
			continue // a tenant only the admin submits for (and tokens made at run time)
		}
		out = append(out, tokens.Bootstrap(t.Name, t.TokenSHA256))
	}
	return out
}

// importLegacyTokens commits the records of the token file an earlier
// release kept in this server's state directory to the log, once: after
// an upgrade, no token created or revoked before it is forgotten (a
// revoked token must not come back). The file is then renamed aside; an
// import repeated after a crash adds nothing (records are added by id).
func (c *Coordinator) importLegacyTokens(ctx context.Context) {
	path := filepath.Join(c.cfg.StateDir, "coordinator", "tokens.json")
	recs, err := tokens.Legacy(path)
	if err != nil {
		c.logger.Error("the token file of an earlier release cannot be imported: its tokens are not known", "err", err)
		return
	}
	if recs == nil {
		return
	}
	for chunk := range slices.Chunk(recs, 1000) {
		if err := c.coord.proposeGrid(ctx, gridCommand{Token: &tokens.Command{Import: chunk}}); err != nil {
			c.logger.Error("the token file of an earlier release was not imported: it is imported when this server leads again", "err", err)
			return
		}
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		c.logger.Warn("the imported token file stays", "err", err)
	}
	c.logger.Info("the token file of an earlier release was imported into the replicated state", "tokens", len(recs))
}
