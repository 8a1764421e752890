package httpboot

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

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
