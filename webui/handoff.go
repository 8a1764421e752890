package webui

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/handoff"
)

// Handoff builds the hand-off to kolla-ansible and cephadm
// (handoff.Service implements it).
type Handoff interface {
	// Readiness says which nodes are verified and why the others are not.
	Readiness(ctx context.Context) (handoff.Readiness, error)
	// Bundle builds the hand-off of the verified nodes (of all nodes
	// with allowUnverified).
	Bundle(ctx context.Context, allowUnverified bool) (*handoff.Bundle, error)
}

// handoffRoutes adds the hand-off routes under /api/v1 (behind a.guard; the
// bundle, which holds the private deployment key, also behind a.secret):
//
//	GET /handoff                       readiness: which nodes are verified, why not
//	GET /handoff/bundle.tar.gz         the bundle; 409 while not every node is
//	    [?allow_unverified=true]       verified (or with the reason it cannot be built)
func (a *API) handoffRoutes(r chi.Router) {
	r.Get("/handoff", a.handoffReadiness)
	r.With(a.secret).Get("/handoff/bundle.tar.gz", a.handoffBundle)
}

func (a *API) handoffReadiness(w http.ResponseWriter, r *http.Request) {
	if a.Handoff == nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("hand-off is not available in this server"))
		return
	}
	rd, err := a.Handoff.Readiness(r.Context())
	if err != nil {
		a.Log.Error("hand-off readiness", "err", err)
		writeJSON(w, http.StatusInternalServerError, errBody("cannot read node states"))
		return
	}
	writeJSON(w, http.StatusOK, rd)
}

func (a *API) handoffBundle(w http.ResponseWriter, r *http.Request) {
	if a.Handoff == nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("hand-off is not available in this server"))
		return
	}
	allow := r.URL.Query().Get("allow_unverified") == "true"
	if !allow {
		rd, err := a.Handoff.Readiness(r.Context())
		if err != nil {
			a.Log.Error("hand-off readiness", "err", err)
			writeJSON(w, http.StatusInternalServerError, errBody("cannot read node states"))
			return
		}
		if !rd.Ready {
			writeJSON(w, http.StatusConflict, map[string]any{"error": fmt.Sprintf("%d of %d nodes verified", rd.Verified, rd.Total), "readiness": rd})
			return
		}
	}
	b, err := a.Handoff.Bundle(r.Context(), allow)
	if err != nil {
		// Build errors name plan fields and nodes, never secrets.
		writeJSON(w, http.StatusConflict, errBody(err.Error()))
		return
	}
	name := "racklift-handoff"
	if a.Plan != nil && a.Plan.Cluster.Name != "" {
		name += "-" + a.Plan.Cluster.Name
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".tar.gz"))
	w.Header().Set("Cache-Control", "no-store") // it holds the private deployment key
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := b.WriteTarGz(w, strings.TrimSuffix(name, ".tar.gz")); err != nil {
		a.Log.Warn("hand-off download cut", "err", err)
	}
}
