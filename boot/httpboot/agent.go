package httpboot

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// grubScript serves a Secure Boot node's GRUB config over HTTP (UEFI
// HTTP boot); GRUBConfig says what it is. GRUB's HTTP requests on behalf
// of the bootstrap's "/grub/x86_64-efi/grub.cfg" land here too (the route
// has the same shape): that one is the bootstrap.
func (s *Server) grubScript(w http.ResponseWriter, r *http.Request) {
	if chi.URLParam(r, "mac") == "x86_64-efi" {
		s.grubBootstrap(w, r)
		return
	}
	n, mac, _ := s.node(r)
	if n == nil {
		mac = chi.URLParam(r, "mac")
	}
	b, err := s.GRUBConfig(r.Context(), mac, clientIP(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// TFTPFile makes the files of a node the TFTP server asks for by
// MAC/name (boot/tftp.NodeFiles): MAC/grub.cfg, the node's GRUB config,
// which Debian's signed netboot GRUB loads over TFTP (it has no HTTP).
func (s *Server) TFTPFile(ctx context.Context, mac string, client netip.Addr, name string) ([]byte, bool) {
	if name != nodeapi.FileGRUB {
		return nil, false
	}
	b, err := s.GRUBConfig(ctx, mac, client.String())
	if err != nil {
		return nil, false
	}
	return b, true
}

// GRUBConfig is a Secure Boot node's GRUB config, the counterpart of its
// iPXE script: install (the agent or the installer), the local-boot
// guard, or hold, as the Policy says; a notice for a MAC not in the plan.
// ip is the client's address, for the events. The error says only that
// the decision or the render failed (it is logged in full).
func (s *Server) GRUBConfig(ctx context.Context, mac, ip string) ([]byte, error) {
	n, ok := (*plan.Node)(nil), false
	if hw, err := net.ParseMAC(strings.ReplaceAll(mac, "-", ":")); err == nil {
		mac = hw.String()
		n, ok = s.Plan.NodeByMAC(mac)
	}
	if !ok {
		s.record(ctx, events.Event{MAC: mac, Type: "http.unknown-mac", Detail: "GRUB config requested by a MAC not in the plan", Attrs: map[string]string{"client": ip}})
		return s.Render.UnknownMACGRUB(mac), nil
	}
	s.hint(ip, n.Name)
	act, err := s.Policy.BootAction(ctx, n.Name)
	if err != nil {
		s.Log.Error("boot policy", "node", n.Name, "err", err)
		return nil, errors.New("boot decision unavailable")
	}
	switch act {
	case nodeapi.BootLocal:
		s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.local-boot", Phase: events.PhaseFirstBoot, Detail: "installed: GRUB boots the local disk", Attrs: map[string]string{"client": ip}})
		return s.Render.LocalBootGRUB(n), nil
	case nodeapi.BootHold:
		s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.hold", Detail: "failed: GRUB config says to wait for the operator's retry", Attrs: map[string]string{"client": ip}})
		return s.Render.HoldGRUB(n), nil
	}
	b, err := s.Render.NodeFile(ctx, n, nodeapi.FileGRUB)
	if err != nil {
		s.Log.Error("render GRUB config", "node", n.Name, "err", err)
		s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.render-failed", Detail: "rendering grub.cfg failed (is the node's bios.secure_boot set?)"})
		return nil, errors.New("render failed")
	}
	s.record(ctx, events.Event{Node: n.Name, MAC: mac, Type: "http.grub-script", Phase: events.PhaseIPXE, Detail: "signed GRUB fetched its config (Secure Boot)", Attrs: map[string]string{"client": ip}})
	return b, nil
}

// grubBootstrap serves the config the signed GRUB reads first when it was
// loaded by UEFI HTTP boot (over TFTP the TFTP server serves the same).
func (s *Server) grubBootstrap(w http.ResponseWriter, _ *http.Request) {
	b, err := s.Render.GRUBBootstrap()
	if err != nil {
		s.Log.Error("render GRUB bootstrap", "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// agentFile serves the deploy agent's kernel and initrd (public: they hold
// no secret). The kernel's fetch by a node's own address, during its
// install, moves its timeline to "kernel".
func (s *Server) agentFile(w http.ResponseWriter, r *http.Request) {
	if s.Agent == nil {
		http.NotFound(w, r)
		return
	}
	name := path.Base(r.URL.Path)
	s.serveFile(w, r, s.Agent.FS(), name)
	if r.Method != http.MethodGet || name != path.Base(nodeapi.PathAgentKernel) {
		return
	}
	ip := clientIP(r)
	n, ok := s.Plan.NodeByName(s.hinted(ip))
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
	s.record(r.Context(), events.Event{Node: n.Name, MAC: n.MAC, Type: "http.kernel", Phase: events.PhaseKernel, Detail: "fetched the deploy agent's kernel", Attrs: map[string]string{"client": ip, "file": name}})
}

// secureBootFile serves the signed shim and GRUB for UEFI HTTP boot (the
// DHCP reply names /sb/shimx64.efi; shim loads grubx64.efi beside it).
func (s *Server) secureBootFile(w http.ResponseWriter, r *http.Request) {
	f := chi.URLParam(r, "file")
	if s.Agent == nil || (f != "shimx64.efi" && f != "grubx64.efi") {
		http.NotFound(w, r)
		return
	}
	s.serveFile(w, r, s.Agent.FS(), f)
}

// imageManifest serves an imported image's manifest, byte for byte as
// stored: the agent checks it against the SHA-256 in its instructions.
func (s *Server) imageManifest(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "image")
	if s.Images == nil || image.ValidateName(name) != nil {
		http.NotFound(w, r)
		return
	}
	_, raw, err := s.Images.Manifest(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(raw)
}

// blob serves one content-addressed image blob (public; its name is the
// SHA-256 of its bytes, which the agent checks).
func (s *Server) blob(w http.ResponseWriter, r *http.Request) {
	sum := strings.ToLower(chi.URLParam(r, "sha256"))
	if s.Images == nil || !image.ValidBlobName(sum) {
		http.NotFound(w, r)
		return
	}
	f, err := s.Images.OpenBlob(sum)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/zstd")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, sum, st.ModTime(), f)
}

// factsScript serves the script a first boot runs to report its facts.
func (s *Server) factsScript(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/x-python; charset=utf-8")
	_, _ = w.Write(s.Render.FactsScript())
}
