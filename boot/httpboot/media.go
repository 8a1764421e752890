package httpboot

import (
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
)

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
