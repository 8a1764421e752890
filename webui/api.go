// Package webui serves the admin side of racklift: the JSON API under
// /api/v1 (nodes, runs, actions, live events as Server-Sent Events) and the
// dashboard a field engineer and the customer watch during an install.
// It listens on the admin listener only (127.0.0.1 by default).
package webui

import (
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
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

func (a *API) fail(w http.ResponseWriter, what string, err error) {
	a.Log.Error(what, "err", err)
	writeJSON(w, http.StatusInternalServerError, errBody(what+" failed"))
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
