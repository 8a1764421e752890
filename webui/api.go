// Package webui serves the admin side of racklift: the JSON API under
// /api/v1 (nodes, runs, actions, live events as Server-Sent Events) and the
// dashboard a field engineer and the customer watch during an install.
// It listens on the admin listener only (127.0.0.1 by default).
package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// Store is what the API reads from the event store.
type Store interface {
	Nodes(ctx context.Context) ([]events.NodeState, error)
	Node(ctx context.Context, name string) (events.NodeState, bool, error)
	NodeEvents(ctx context.Context, node string, limit int) ([]events.Event, error)
	Since(ctx context.Context, afterID int64, limit int) ([]events.Event, error)
	Subscribe(ctx context.Context) <-chan events.Event
	Runs(ctx context.Context, limit int) ([]events.Run, error)
	LastID(ctx context.Context) (int64, error)
	Unplanned(ctx context.Context, since time.Time, limit int) ([]events.Sighting, error)
}

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

// Control is what the API asks the orchestrator to do. Only the
// orchestrator decides; the API passes requests on.
type Control interface {
	StartRun(ctx context.Context, sel plan.Selection, parallel int, stagger time.Duration) (events.Run, error)
	StopRun(ctx context.Context) error
	Reinstall(ctx context.Context, node string) error
	Retry(ctx context.Context, node string) error
	Power(ctx context.Context, node, action string) error
}

// Files renders a node's install files for review, with secrets (root
// hash, callback token) replaced by placeholders.
type Files interface {
	ReviewFile(ctx context.Context, n *plan.Node, name string) ([]byte, error)
	FileNames(n *plan.Node) []string
}

// API serves /api/v1. Plan, Store and Log must be set; Control and Files
// may be nil (actions and file review then answer 503).
type API struct {
	Plan    *plan.Plan
	Diags   plan.Diagnostics
	Store   Store
	Control Control
	Files   Files
	Handoff Handoff // nil answers 503 on /api/v1/handoff
	Log     *slog.Logger
	Version string
	// Token is the admin token (header "Authorization: Bearer TOKEN", or
	// query parameter token=TOKEN, which EventSource needs). A request
	// that changes something needs it unless it comes from the dashboard
	// itself (see guard); with no token, only the dashboard can act.
	Token string
	// TokenRequired requires the token on every API request, reads and
	// actions alike (the admin listener is not loopback, so other machines
	// can reach it and forge any header).
	TokenRequired bool
	// Hosts are extra Host header values this server answers to, e.g. a
	// DNS name of the laptop ("racklift.site.example:8081"), besides the
	// address a request arrived at (and localhost on loopback); others get
	// 421 (DNS rebinding).
	Hosts []string
	// Heartbeat is the SSE keep-alive interval (default 15 s).
	Heartbeat time.Duration
	// Static is the dashboard's files; nil serves no UI.
	Static fs.FS
	// Started is when the server started.
	Started time.Time
	// SafeMode is reported by /healthz: only the dashboard is served.
	SafeMode bool
}

// Handler returns the admin routes: /api/v1/..., /healthz and the dashboard.
func (a *API) Handler() http.Handler {
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	if a.Heartbeat <= 0 {
		a.Heartbeat = 15 * time.Second
	}
	r := chi.NewRouter()
	r.Use(a.hostGuard)
	r.Get("/healthz", a.healthz)
	r.With(a.guard).Method(http.MethodGet, "/metrics", a.metricsHandler())
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(a.guard)
		r.Get("/cluster", a.cluster)
		r.Get("/phases", a.phases)
		r.Get("/nodes", a.nodes)
		r.Get("/nodes/{name}", a.node)
		r.Get("/nodes/{name}/files/{file}", a.file)
		r.Post("/nodes/{name}/reinstall", a.action("reinstall"))
		r.Post("/nodes/{name}/retry", a.action("retry"))
		r.Post("/nodes/{name}/power/{power}", a.action("power"))
		r.Get("/unplanned", a.unplanned)
		r.Get("/runs", a.runs)
		r.Post("/runs", a.startRun)
		r.Post("/runs/stop", a.stopRun)
		r.Get("/events", a.events)
		a.handoffRoutes(r)
	})
	if a.Static != nil {
		fsrv := http.FileServerFS(a.Static)
		r.Get("/*", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
			fsrv.ServeHTTP(w, r)
		})
	}
	return r
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func errBody(msg string) map[string]string { return map[string]string{"error": msg} }

func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "version": a.Version, "plan": a.Plan.Cluster.Name, "nodes": len(a.Plan.Nodes), "safe_mode": a.SafeMode})
}

// ClusterJSON is GET /api/v1/cluster.
type ClusterJSON struct {
	Name        string         `json:"name"`
	Domain      string         `json:"domain"`
	HA          bool           `json:"ha"`
	Version     string         `json:"version"`
	Started     time.Time      `json:"started"`
	ServerTime  time.Time      `json:"server_time"`
	Roles       map[string]int `json:"roles"`
	Networks    []NetworkJSON  `json:"networks"`
	VIPs        []VIPJSON      `json:"vips"`
	HAChecks    []HACheckJSON  `json:"ha_checks"`
	Diagnostics []string       `json:"diagnostics"`
}

// NetworkJSON describes one network.
type NetworkJSON struct {
	Name         string `json:"name"`
	Purpose      string `json:"purpose"`
	CIDR         string `json:"cidr"`
	VLAN         int    `json:"vlan"`
	MTU          int    `json:"mtu"`
	Gateway      string `json:"gateway,omitempty"`
	Provisioning bool   `json:"provisioning"`
}

// VIPJSON describes one VIP.
type VIPJSON struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	FQDN    string `json:"fqdn,omitempty"`
}

// HACheckJSON is one HA check line.
type HACheckJSON struct {
	Name   string `json:"name"`
	Count  int    `json:"count"`
	Status string `json:"status"`
	Rule   string `json:"rule"`
}

// phases is GET /api/v1/phases: the phase table (order, which mean
// installed or final, progress span, label).
func (a *API) phases(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, events.PhaseTable())
}

func (a *API) cluster(w http.ResponseWriter, _ *http.Request) {
	p := a.Plan
	out := ClusterJSON{Name: p.Cluster.Name, Domain: p.Cluster.Domain, HA: p.Cluster.HA, Version: a.Version,
		Started: a.Started, ServerTime: time.Now().UTC(), Roles: map[string]int{}, Networks: []NetworkJSON{}, VIPs: []VIPJSON{}, HAChecks: []HACheckJSON{}, Diagnostics: []string{}}
	for _, r := range plan.AllRoles() {
		if n := len(p.NodesWith(r)); n > 0 {
			out.Roles[string(r)] = n
		}
	}
	for _, n := range p.Networks {
		nj := NetworkJSON{Name: n.Name, Purpose: string(n.Purpose), CIDR: n.Prefix.String(), VLAN: n.VLAN, MTU: n.MTU, Provisioning: n.Provisioning}
		if n.Gateway.IsValid() {
			nj.Gateway = n.Gateway.String()
		}
		out.Networks = append(out.Networks, nj)
	}
	for _, v := range p.VIPs {
		out.VIPs = append(out.VIPs, VIPJSON{Name: v.Name, Network: v.Network.Name, Address: v.Address.String(), FQDN: v.FQDN})
	}
	for _, h := range p.HAChecks() {
		out.HAChecks = append(out.HAChecks, HACheckJSON{Name: h.Name, Count: h.Count, Status: h.Status, Rule: h.Note})
	}
	for _, d := range a.Diags {
		out.Diagnostics = append(out.Diagnostics, d.Severity.String()+": "+d.Path+": "+d.Msg)
	}
	writeJSON(w, http.StatusOK, out)
}

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

func (a *API) fail(w http.ResponseWriter, what string, err error) {
	a.Log.Error(what, "err", err)
	writeJSON(w, http.StatusInternalServerError, errBody(what+" failed"))
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

// UnplannedJSON is a machine not in the plan that asked for a network
// boot, with the plan MAC it probably is.
type UnplannedJSON struct {
	MAC       string    `json:"mac"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Count is the number of recorded requests (rate-limited per MAC).
	Count     int    `json:"count"`
	Firmware  string `json:"firmware,omitempty"`
	Arch      string `json:"arch,omitempty"`
	UserClass string `json:"user_class,omitempty"`
	// Relay is the DHCP relay the requests came through, if any.
	Relay string `json:"relay,omitempty"`
	// Hint names the plan node whose MAC this one is close to.
	Hint *plan.MACHint `json:"hint,omitempty"`
}

// Defaults and bounds of GET /api/v1/unplanned.
const (
	unplannedWindow    = 24 * time.Hour
	maxUnplannedWindow = 30 * 24 * time.Hour
	unplannedLimit     = 200
)

// unplanned lists the machines not in the plan that asked for a network
// boot within ?since= (a Go duration, default 24h), most recent first.
func (a *API) unplanned(w http.ResponseWriter, r *http.Request) {
	window := unplannedWindow
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxUnplannedWindow {
			writeJSON(w, http.StatusBadRequest, errBody("since: a duration between 1s and 720h, e.g. 1h"))
			return
		}
		window = d
	}
	sightings, err := a.Store.Unplanned(r.Context(), time.Now().Add(-window), unplannedLimit)
	if err != nil {
		a.fail(w, "list unplanned machines", err)
		return
	}
	out := make([]UnplannedJSON, 0, len(sightings))
	for _, sg := range sightings {
		u := UnplannedJSON{MAC: sg.MAC, FirstSeen: sg.First, LastSeen: sg.Last, Count: sg.Count,
			Firmware: sg.Latest.Attrs["firmware"], Arch: sg.Latest.Attrs["arch"],
			UserClass: sg.Latest.Attrs["user_class"], Relay: sg.Latest.Attrs["relay"]}
		if h, ok := a.Plan.SimilarMAC(sg.MAC); ok {
			u.Hint = &h
		}
		out = append(out, u)
	}
	writeJSON(w, http.StatusOK, out)
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

// events streams stored and live events as Server-Sent Events. A client
// resumes with the Last-Event-ID header (EventSource does this itself after
// a dropped connection) or ?after=ID (?after=now: only new events), and misses nothing: racklift replays
// everything after that ID from the store, then streams live events,
// filling any gap (a slow client's dropped live events) from the store.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var after int64
	switch v := r.URL.Query().Get("after"); {
	case r.Header.Get("Last-Event-ID") != "":
		// A reconnecting EventSource sends the last ID it saw; it wins over
		// the ?after= of the URL it was first opened with.
		after, _ = strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	case v == "now": // only events from now on (status --watch)
		id, err := a.Store.LastID(ctx)
		if err != nil {
			a.fail(w, "last event id", err)
			return
		}
		after = id
	case v != "":
		after, _ = strconv.ParseInt(v, 10, 64)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // long-lived stream
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	live := a.Store.Subscribe(ctx) // subscribe before replay so nothing falls between
	last := after
	if err := a.replay(ctx, w, &last); err != nil {
		return
	}
	_, _ = fmt.Fprintf(w, "event: synced\ndata: {\"last_id\":%d}\n\n", last)
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(a.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, "event: ping\ndata: {}\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev, ok := <-live:
			if !ok {
				return
			}
			if ev.ID <= last {
				continue
			}
			if ev.ID > last+1 { // dropped live events: fill from the store
				if err := a.replay(ctx, w, &last); err != nil {
					return
				}
				if ev.ID <= last {
					continue
				}
			}
			if writeEvent(w, ev) != nil || rc.Flush() != nil {
				return
			}
			last = ev.ID
		}
	}
}

// replay writes every stored event after *last, advancing *last.
func (a *API) replay(ctx context.Context, w http.ResponseWriter, last *int64) error {
	for range 10_000 { // bounded: 10,000 pages of up to MaxLimit events
		evs, err := a.Store.Since(ctx, *last, events.MaxLimit)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := writeEvent(w, ev); err != nil {
				return err
			}
			*last = ev.ID
		}
		if len(evs) < events.MaxLimit {
			return nil
		}
	}
	return nil
}

func writeEvent(w http.ResponseWriter, ev events.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: event\ndata: %s\n\n", ev.ID, b)
	return err
}
