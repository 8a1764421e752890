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
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"

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
