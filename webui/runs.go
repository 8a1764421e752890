package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// Selection is the body of POST /api/v1/runs: which nodes a run installs
// (exactly one of all, role or nodes; see plan.Selection) and how fast.
type Selection struct {
	All bool `json:"all,omitempty"`
	// Role is one role or several, comma-separated ("compute,storage").
	Role     string   `json:"role,omitempty"`
	Nodes    []string `json:"nodes,omitempty"`
	Parallel int      `json:"parallel,omitempty"`
	// Stagger is a Go duration string between power-ons, e.g. "5s".
	Stagger string `json:"stagger,omitempty"`
}

// Plan converts the request to the plan's selection and the run's pace.
func (s Selection) Plan() (plan.Selection, int, time.Duration, error) {
	sel := plan.Selection{All: s.All, Nodes: s.Nodes}
	if s.Role != "" {
		roles, err := plan.ParseRoles(s.Role)
		if err != nil {
			return plan.Selection{}, 0, 0, err
		}
		sel.Roles = roles
	}
	var stagger time.Duration
	if s.Stagger != "" {
		d, err := time.ParseDuration(s.Stagger)
		if err != nil || d < 0 {
			return plan.Selection{}, 0, 0, fmt.Errorf("stagger %q: want a duration such as 5s", s.Stagger)
		}
		stagger = d
	}
	if s.Parallel < 0 {
		return plan.Selection{}, 0, 0, fmt.Errorf("parallel %d: want 1 or more", s.Parallel)
	}
	return sel, s.Parallel, stagger, nil
}

func (a *API) action(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, ok := a.planNode(w, r)
		if !ok {
			return
		}
		if a.Control == nil {
			writeJSON(w, http.StatusServiceUnavailable, errBody("orchestrator not running"))
			return
		}
		var err error
		switch kind {
		case "reinstall":
			err = a.Control.Reinstall(r.Context(), n.Name)
		case "retry":
			err = a.Control.Retry(r.Context(), n.Name)
		case "power":
			err = a.Control.Power(r.Context(), n.Name, chi.URLParam(r, "power"))
		}
		if err != nil {
			a.Log.Warn("action refused", "action", kind, "node", n.Name, "err", err)
			writeJSON(w, http.StatusConflict, errBody(err.Error()))
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"node": n.Name, "action": kind})
	}
}

func (a *API) runs(w http.ResponseWriter, r *http.Request) {
	runs, err := a.Store.Runs(r.Context(), 50)
	if err != nil {
		a.fail(w, "list runs", err)
		return
	}
	if runs == nil {
		runs = []events.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func (a *API) startRun(w http.ResponseWriter, r *http.Request) {
	if a.Control == nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("orchestrator not running"))
		return
	}
	var sel Selection
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sel); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("bad selection: "+err.Error()))
		return
	}
	ps, parallel, stagger, err := sel.Plan()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errBody(err.Error()))
		return
	}
	run, err := a.Control.StartRun(r.Context(), ps, parallel, stagger)
	if err != nil {
		writeJSON(w, http.StatusConflict, errBody(err.Error()))
		return
	}
	writeJSON(w, http.StatusCreated, run)
}

func (a *API) stopRun(w http.ResponseWriter, r *http.Request) {
	if a.Control == nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("orchestrator not running"))
		return
	}
	if err := a.Control.StopRun(r.Context()); err != nil {
		writeJSON(w, http.StatusConflict, errBody(err.Error()))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"run": "stopping"})
}
