package webui

import (
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// NodeJSON is one node as the dashboard shows it: plan facts plus state.
type NodeJSON struct {
	Name      string       `json:"name"`
	Roles     []string     `json:"roles"`
	MAC       string       `json:"mac"`
	IP        string       `json:"ip"`
	BMC       string       `json:"bmc,omitempty"`
	BMCDriver string       `json:"bmc_driver,omitempty"`
	Profile   string       `json:"profile"`
	Phase     events.Phase `json:"phase"`
	Percent   int          `json:"percent"`
	// Progress is the node's overall progress 0..100, from the phase
	// table (events.Phase.Progress): what status and the dashboard show.
	Progress  int                `json:"progress"`
	Since     *time.Time         `json:"since,omitempty"`
	Attempts  int                `json:"attempts"`
	Failed    string             `json:"failed_reason,omitempty"`
	LastEvent *events.Event      `json:"last_event,omitempty"`
	Durations map[string]float64 `json:"durations_s"`
	Events    []events.Event     `json:"events,omitempty"`
	Files     []string           `json:"files,omitempty"`
}

func nodeJSON(n *plan.Node, st events.NodeState, have bool) NodeJSON {
	out := NodeJSON{Name: n.Name, MAC: n.MAC, Profile: n.Profile, Phase: events.PhasePlanned, Percent: -1, Durations: map[string]float64{}}
	for _, r := range n.Roles {
		out.Roles = append(out.Roles, string(r))
	}
	if a, ok := n.Provisioning(); ok {
		out.IP = a.Addr.String()
	}
	if n.BMC != nil {
		out.BMC, out.BMCDriver = n.BMC.Address, n.BMC.Driver
	}
	if !have {
		return out
	}
	if st.Phase != events.PhaseNone {
		out.Phase, out.Percent = st.Phase, st.Percent
	}
	out.Progress = out.Phase.Progress(out.Percent)
	if !st.Since.IsZero() {
		s := st.Since
		out.Since = &s
	}
	out.Attempts, out.Failed = st.Attempts, st.FailedReason
	if st.LastEvent.ID != 0 {
		le := st.LastEvent
		out.LastEvent = &le
	}
	for p, d := range st.Durations {
		out.Durations[string(p)] = d.Seconds()
	}
	return out
}

func (a *API) nodes(w http.ResponseWriter, r *http.Request) {
	states, err := a.Store.Nodes(r.Context())
	if err != nil {
		a.fail(w, "list nodes", err)
		return
	}
	byName := make(map[string]events.NodeState, len(states))
	for _, s := range states {
		byName[s.Name] = s
	}
	out := make([]NodeJSON, 0, len(a.Plan.Nodes))
	for _, n := range a.Plan.Nodes {
		st, ok := byName[n.Name]
		out = append(out, nodeJSON(n, st, ok))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) planNode(w http.ResponseWriter, r *http.Request) (*plan.Node, bool) {
	n, ok := a.Plan.NodeByName(chi.URLParam(r, "name"))
	if !ok {
		writeJSON(w, http.StatusNotFound, errBody("no such node"))
	}
	return n, ok
}

func (a *API) node(w http.ResponseWriter, r *http.Request) {
	n, ok := a.planNode(w, r)
	if !ok {
		return
	}
	st, have, err := a.Store.Node(r.Context(), n.Name)
	if err != nil {
		a.fail(w, "read node", err)
		return
	}
	out := nodeJSON(n, st, have)
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if out.Events, err = a.Store.NodeEvents(r.Context(), n.Name, limit); err != nil {
		a.fail(w, "read node events", err)
		return
	}
	if out.Events == nil {
		out.Events = []events.Event{}
	}
	if a.Files != nil {
		out.Files = a.Files.FileNames(n)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) file(w http.ResponseWriter, r *http.Request) {
	n, ok := a.planNode(w, r)
	if !ok {
		return
	}
	if a.Files == nil {
		writeJSON(w, http.StatusServiceUnavailable, errBody("file review not available"))
		return
	}
	b, err := a.Files.ReviewFile(r.Context(), n, chi.URLParam(r, "file"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeJSON(w, http.StatusNotFound, errBody("no such file for this node"))
		return
	case err != nil:
		a.fail(w, "render file", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}
