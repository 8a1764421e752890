package httpboot

import (
	"net/http"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
)

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
