// Package httpboot serves what a network-booting machine fetches over HTTP:
// its iPXE script, its install config (kickstart, cloud-init NoCloud seed),
// the OS media, the iPXE binaries (for UEFI HTTP boot), and the progress
// callbacks the installer posts back.
//
// It reports what it sees as events and asks a Policy whether a node should
// install or boot from disk; it never decides that itself.
package httpboot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// Policy is the orchestrator's say over what the boot server gives whom.
// The boot server only reports what it sees and asks; it never decides.
type Policy interface {
	// BootAction says whether a node installs, boots its disk, or holds
	// (the reinstall guard).
	BootAction(ctx context.Context, node string) (nodeapi.Boot, error)
	// Admit says whether a client at ip may have node's secret-bearing
	// files, post its callbacks, or move its timeline by a media fetch,
	// and why not.
	Admit(ctx context.Context, node string, ip netip.Addr, what nodeapi.Access) (ok bool, reason string, err error)
}

// Renderer produces the files a node fetches. The same renderer serves
// `plan render`, so what the engineer reviewed is what the node gets.
type Renderer interface {
	// NodeFile renders one file for a node: "boot.ipxe", "ks.cfg",
	// "user-data", "meta-data" or "vendor-data". It returns an error
	// wrapping fs.ErrNotExist when the node's profile has no such file.
	NodeFile(ctx context.Context, n *plan.Node, name string) ([]byte, error)
	// LocalBootScript is the iPXE script that boots the local disk.
	LocalBootScript(n *plan.Node) []byte
	// HoldScript is the iPXE script of a failed node waiting for the
	// operator: it boots the next device.
	HoldScript(n *plan.Node) []byte
	// UnknownScript is the iPXE script for a MAC that is not in the plan.
	UnknownScript(mac string) []byte
	// BootFiles names the media and the paths in it that mean "the kernel
	// is being loaded" (the profile's kernel and initrd).
	BootFiles(n *plan.Node) (media string, paths []string)
}

// Tokens checks progress-callback tokens.
type Tokens interface {
	// NodeForToken returns the node a token belongs to.
	NodeForToken(ctx context.Context, token string) (node string, ok bool, err error)
}

// Recorder receives events.
type Recorder interface {
	Record(ctx context.Context, ev events.Event) (events.Event, error)
}

// Server is the machine-facing HTTP handler. Every field must be set except
// Media and IPXE, which may be nil.
type Server struct {
	// Plan is the validated cluster plan.
	Plan *plan.Plan
	// Render renders per-node files.
	Render Renderer
	// Policy decides install or local boot.
	Policy Policy
	// Tokens checks callback tokens.
	Tokens Tokens
	// Rec records events.
	Rec Recorder
	// Media maps a media name (from --media NAME=PATH) to its files.
	Media map[string]fs.FS
	// MediaISO maps a media name to its ISO image file, served whole at
	// /media/NAME.iso (Ubuntu's installer downloads the ISO it boots).
	MediaISO map[string]string
	// IPXE holds the iPXE binaries served under /ipxe-bin/ for UEFI HTTP boot.
	IPXE fs.FS
	// Log receives operational messages; never secrets.
	Log *slog.Logger
	// Version is reported by /healthz.
	Version string

	mu sync.Mutex
	// scripted maps a client IP to the node whose boot script it fetched
	// last: only a hint of which node a media fetch (which carries no MAC)
	// may belong to; Policy.Admit decides whether it counts.
	scripted map[string]string
	// configLocks serialise serving one node's secret-bearing files, so
	// the Policy sees each served file (its event) before the next one is
	// admitted.
	configLocks map[string]*sync.Mutex
}

// maxCallbackBody bounds a progress callback body.
const maxCallbackBody = 64 << 10

// Handler returns the routes. Mount it at "/". Call it once per Server.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	s.scripted = map[string]string{}
	s.configLocks = map[string]*sync.Mutex{}
	r := chi.NewRouter()
	r.Get(nodeapi.PathHealthz, s.healthz)
	r.Get(nodeapi.PathIPXE, s.bootScript)
	r.Get(nodeapi.PathKickstart, s.config(nodeapi.FileKickstart))
	r.Get(nodeapi.PathSeedFile, s.seed)
	r.Post(nodeapi.PathPhoneHome, s.phoneHome)
	// chi cannot match "{media}.iso" and "{media}/*" side by side; the ISO
	// route takes the segment whole and checks its ".iso" suffix.
	r.Get("/media/{iso}", s.mediaISO)
	r.Head("/media/{iso}", s.mediaISO)
	r.Get(nodeapi.PathMedia+"*", s.media)
	r.Head(nodeapi.PathMedia+"*", s.media)
	r.Get(nodeapi.PathIPXEBin, s.ipxeBin)
	r.Head(nodeapi.PathIPXEBin, s.ipxeBin)
	return r
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "version": s.Version, "plan": s.Plan.Cluster.Name, "nodes": len(s.Plan.Nodes)})
}

// clientIP returns the request's source IP without port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) record(ctx context.Context, ev events.Event) {
	ev.Source = events.SourceHTTP
	if ev.Percent == 0 && ev.Phase != events.PhaseInstalling {
		ev.Percent = -1
	}
	if _, err := s.Rec.Record(ctx, ev); err != nil && !errors.Is(err, context.Canceled) {
		s.Log.Error("record event", "type", ev.Type, "node", ev.Node, "err", err)
	}
}

// node resolves the {mac} URL parameter.
func (s *Server) node(r *http.Request) (*plan.Node, string, bool) {
	raw := chi.URLParam(r, "mac")
	// iPXE escapes the colons of ${mac} (52%3A54%3A...); chi hands the
	// segment over still escaped.
	if u, err := url.PathUnescape(raw); err == nil {
		raw = u
	}
	hw, err := net.ParseMAC(strings.ReplaceAll(raw, "-", ":"))
	if err != nil {
		return nil, raw, false
	}
	n, ok := s.Plan.NodeByMAC(hw.String())
	return n, hw.String(), ok
}

func (s *Server) bootScript(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n, mac, ok := s.node(r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ip := clientIP(r)
	if !ok {
		s.record(ctx, events.Event{MAC: mac, Type: "http.unknown-mac", Detail: "boot script requested by a MAC not in the plan", Attrs: map[string]string{"client": ip}})
		_, _ = w.Write(s.Render.UnknownScript(mac))
		return
	}
	s.hint(ip, n.Name)
	act, err := s.Policy.BootAction(ctx, n.Name)
	if err != nil {
		s.Log.Error("boot policy", "node", n.Name, "err", err)
		http.Error(w, "boot decision unavailable", http.StatusServiceUnavailable)
		return
	}
	switch act {
	case nodeapi.BootLocal:
		s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.local-boot", Phase: events.PhaseFirstBoot, Detail: "installed: booting from local disk", Attrs: map[string]string{"client": ip}})
		_, _ = w.Write(s.Render.LocalBootScript(n))
		return
	case nodeapi.BootHold:
		s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.hold", Detail: "failed: boot script says to wait for the operator's retry", Attrs: map[string]string{"client": ip}})
		_, _ = w.Write(s.Render.HoldScript(n))
		return
	}
	b, err := s.Render.NodeFile(ctx, n, nodeapi.FileIPXE)
	if err != nil {
		s.Log.Error("render boot script", "node", n.Name, "err", err)
		s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.render-failed", Detail: "rendering boot.ipxe failed"})
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	// A boot script holds no secret and proves nothing: anyone may fetch
	// any MAC's. Its fetch moves the timeline of a node that installs.
	s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.ipxe-script", Phase: events.PhaseIPXE, Detail: "iPXE fetched its boot script", Attrs: map[string]string{"client": ip}})
	_, _ = w.Write(b)
}

// hint remembers which node's boot script ip fetched last (bounded: a
// hostile LAN cannot grow it forever).
func (s *Server) hint(ip, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.scripted) > 100_000 {
		clear(s.scripted)
	}
	s.scripted[ip] = node
}

func (s *Server) hinted(ip string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scripted[ip]
}

func (s *Server) configLock(node string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.configLocks[node]
	if !ok {
		l = &sync.Mutex{}
		s.configLocks[node] = l
	}
	return l
}

// admit asks the Policy; a refusal is logged and recorded as a security
// event. It answers the request itself unless ok.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, n *plan.Node, mac string, what nodeapi.Access, item string) bool {
	ctx := r.Context()
	ip := clientIP(r)
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		http.Error(w, "forbidden", http.StatusForbidden)
		return false
	}
	ok, why, err := s.Policy.Admit(ctx, n.Name, addr, what)
	if err != nil {
		s.Log.Error("boot policy", "node", n.Name, "err", err)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return false
	}
	if ok {
		return true
	}
	if what == nodeapi.AccessMedia {
		return false // the file is public; only the timeline does not move
	}
	s.Log.Warn("refused", "what", what.String(), "node", n.Name, "item", item, "client", ip, "reason", why)
	typ := "security.config-refused"
	if what == nodeapi.AccessCallback {
		typ = "security.callback-rejected"
	}
	s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: typ, Detail: fmt.Sprintf("%s for %s refused to %s: %s", item, n.Name, ip, why),
		Attrs: map[string]string{"client": ip, "file": item}})
	http.Error(w, "forbidden", http.StatusForbidden)
	return false
}

func (s *Server) config(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.serveConfig(w, r, name) }
}

func (s *Server) seed(w http.ResponseWriter, r *http.Request) {
	switch f := chi.URLParam(r, "file"); f {
	case nodeapi.FileUserData, nodeapi.FileMetaData, nodeapi.FileVendorData:
		s.serveConfig(w, r, f)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	n, mac, ok := s.node(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	ip := clientIP(r)
	lock := s.configLock(n.Name)
	lock.Lock()
	defer lock.Unlock()
	if !s.admit(w, r, n, mac, nodeapi.AccessConfig, name) {
		return
	}
	b, err := s.Render.NodeFile(ctx, n, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.NotFound(w, r)
		return
	case err != nil:
		s.Log.Error("render", "node", n.Name, "file", name, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	// Recorded (durably) before the lock is released and the file sent:
	// the Policy's next decision for this node sees who got it.
	if _, err := s.Rec.Record(ctx, events.Event{Node: n.Name, MAC: mac, Source: events.SourceHTTP, Type: "http.config", Phase: events.PhaseInstalling, Percent: 0,
		Detail: "installer fetched " + name, Attrs: map[string]string{"client": ip, "file": name}}); err != nil {
		s.Log.Error("record config fetch", "node", n.Name, "err", err)
		http.Error(w, "not recorded, retry", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

// Callback phases an installer may post, and what they mean.
func callbackPhase(p string) (events.Phase, int, bool) {
	switch p {
	case "pre":
		return events.PhaseInstalling, 5, true
	case "progress", "installer":
		return events.PhaseInstalling, -1, true
	case "post":
		return events.PhaseInstalling, 90, true
	case "installed":
		return events.PhaseInstalled, 100, true
	case "first-boot":
		return events.PhaseFirstBoot, -1, true
	case "ready":
		return events.PhaseReady, 100, true
	case "error":
		return events.PhaseFailed, -1, true
	}
	return events.PhaseNone, 0, false
}

// callbackBody is what our own %pre/%post/curl callbacks send; Subiquity's
// webhook reporter sends its own JSON (name, description, event_type, result).
type callbackBody struct {
	Percent     *int   `json:"percent"`
	Detail      string `json:"detail"`
	Name        string `json:"name"`
	Description string `json:"description"`
	EventType   string `json:"event_type"`
	Result      string `json:"result"`
}

func (s *Server) phoneHome(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	n, mac, ok := s.node(r)
	ip := clientIP(r)
	if !ok {
		s.record(ctx, events.Event{MAC: mac, Source: events.SourceSecurity, Type: "security.callback-unknown", Detail: "callback for a MAC not in the plan", Attrs: map[string]string{"client": ip}})
		http.NotFound(w, r)
		return
	}
	token := r.Header.Get(nodeapi.TokenHeader)
	if token == "" {
		token = r.URL.Query().Get(nodeapi.TokenQuery)
	}
	owner, valid, err := s.Tokens.NodeForToken(ctx, token)
	if err != nil {
		s.Log.Error("token lookup", "err", err)
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if token == "" || !valid || owner != n.Name {
		reason := "missing token"
		switch {
		case token != "" && !valid:
			reason = "unknown or expired token"
		case token != "":
			reason = "token of another node"
		}
		s.Log.Warn("callback rejected", "node", n.Name, "client", ip, "reason", reason)
		s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "security.callback-rejected", Detail: "progress callback rejected: " + reason, Attrs: map[string]string{"client": ip, "phase": chi.URLParam(r, "phase")}})
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if !s.admit(w, r, n, mac, nodeapi.AccessCallback, "callback "+chi.URLParam(r, "phase")) {
		return
	}
	phase, pct, ok := callbackPhase(chi.URLParam(r, "phase"))
	if !ok {
		http.Error(w, "unknown phase", http.StatusBadRequest)
		return
	}
	var body callbackBody
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCallbackBody))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if len(data) > 0 {
		_ = json.Unmarshal(data, &body) // a malformed body still counts as the phase
	}
	detail := body.Detail
	if body.Percent != nil && *body.Percent >= 0 && *body.Percent <= 100 {
		pct = *body.Percent
	}
	if body.Name != "" { // Subiquity webhook event
		detail = strings.TrimSpace(body.EventType + " " + body.Name + ": " + body.Description)
		if body.Result == "FAIL" {
			phase = events.PhaseFailed
		}
	}
	if len(detail) > 500 {
		detail = detail[:500]
	}
	ev := events.Event{Node: n.Name, MAC: mac, Source: events.SourceInstaller, Type: "install." + chi.URLParam(r, "phase"), Phase: phase, Percent: pct, Detail: detail, Attrs: map[string]string{"client": ip}}
	if _, err := s.Rec.Record(ctx, ev); err != nil {
		// Not durable: tell the installer to retry rather than lose the step.
		s.Log.Error("record callback", "node", n.Name, "err", err)
		http.Error(w, "not recorded, retry", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) media(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "media")
	fsys, ok := s.Media[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	rest, err := url.PathUnescape(chi.URLParam(r, "*"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	p := path.Clean("/" + rest)[1:]
	if p == "" {
		p = "."
	}
	if !fs.ValidPath(p) {
		http.NotFound(w, r)
		return
	}
	s.serveFile(w, r, fsys, p)
	if r.Method == http.MethodGet {
		s.noteKernel(r, name, p)
	}
}

func (s *Server) mediaISO(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(chi.URLParam(r, "iso"), ".iso")
	file := s.MediaISO[name]
	if !ok || file == "" {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(file)
	if err != nil {
		s.Log.Error("open media ISO", "media", name, "err", err)
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name+".iso", st.ModTime(), f)
}

// noteKernel records the kernel phase when a node fetches its profile's
// kernel or initrd. A media fetch carries no MAC: the node is the one whose
// boot script that address fetched last, and it counts only when the
// Policy admits the address for that node (its own, in an install).
func (s *Server) noteKernel(r *http.Request, media, p string) {
	ip := clientIP(r)
	nodeName := s.hinted(ip)
	if nodeName == "" {
		return
	}
	n, ok := s.Plan.NodeByName(nodeName)
	if !ok {
		return
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	if ok, _, err := s.Policy.Admit(r.Context(), n.Name, addr, nodeapi.AccessMedia); err != nil || !ok {
		return
	}
	m, files := s.Render.BootFiles(n)
	if m != media {
		return
	}
	for _, f := range files {
		if strings.TrimPrefix(f, "/") == p {
			s.record(r.Context(), events.Event{Node: n.Name, MAC: n.MAC, Type: "http.kernel", Phase: events.PhaseKernel, Detail: "fetched " + p, Attrs: map[string]string{"client": ip, "file": p}})
			return
		}
	}
}

func (s *Server) ipxeBin(w http.ResponseWriter, r *http.Request) {
	if s.IPXE == nil {
		http.NotFound(w, r)
		return
	}
	f := chi.URLParam(r, "file")
	if !fs.ValidPath(f) || strings.Contains(f, "/") {
		http.NotFound(w, r)
		return
	}
	s.serveFile(w, r, s.IPXE, f)
}

// serveFile serves one file with Range and HEAD support.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	f, err := fsys.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.Error(w, "file not seekable", http.StatusInternalServerError)
		return
	}
	http.ServeContent(w, r, path.Base(name), st.ModTime(), rs)
}

// NewHTTPServer returns an http.Server with the timeouts racklift uses: a
// bounded header read, no global write timeout (media downloads are many
// GB and SSE streams are long-lived).
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve runs srv on ln until ctx is done, then shuts down gracefully with a
// fresh bounded context. It returns nil on a clean shutdown.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve: %w", err)
	}
	return nil
}
