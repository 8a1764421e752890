package httpboot

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
)

// maxCallbackBody bounds a progress callback body.
const maxCallbackBody = 64 << 10

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
