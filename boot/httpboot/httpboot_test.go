package httpboot

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

const testPlan = `cluster: {name: t, profile: p, ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyTestKeyTestKeyTestKey0 t"], ha: false}
networks:
  - {name: mgmt, purpose: management, provisioning: true, cidr: 10.1.0.0/24, allocate: {default: 10.1.0.100}}
defaults: {disks: {os: {path: /dev/vda}}}
nodes:
  - {name: n-01, roles: [compute], mac: "52:54:00:00:00:01"}
  - {name: n-02, roles: [compute], mac: "52:54:00:00:00:02"}
`

type fakeRender struct{}

func (fakeRender) NodeFile(_ context.Context, n *plan.Node, name string) ([]byte, error) {
	if name == "vendor-data" {
		return nil, fs.ErrNotExist
	}
	return []byte(name + " for " + n.Name), nil
}
func (fakeRender) LocalBootScript(n *plan.Node) []byte { return []byte("local " + n.Name) }
func (fakeRender) HoldScript(n *plan.Node) []byte      { return []byte("hold " + n.Name) }
func (fakeRender) UnknownScript(mac string) []byte     { return []byte("unknown " + mac) }
func (fakeRender) BootFiles(*plan.Node) (string, []string) {
	return "os", []string{"images/vmlinuz", "images/initrd.img"}
}

// fakePolicy decides from tables: boot action per node, admitted
// addresses per node (the orchestrator's real rules are tested there).
type fakePolicy struct {
	boot  map[string]nodeapi.Boot
	admit map[string]map[string]bool // node -> client IP -> admitted
	asked []string
	mu    sync.Mutex
}

func (p *fakePolicy) BootAction(_ context.Context, node string) (nodeapi.Boot, error) {
	return p.boot[node], nil
}

func (p *fakePolicy) Admit(_ context.Context, node string, ip netip.Addr, what nodeapi.Access) (bool, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, node+" "+ip.String()+" "+what.String())
	if p.admit[node][ip.String()] {
		return true, "", nil
	}
	return false, ip.String() + " is not " + node + "'s", nil
}

type fakeTokens map[string]string // token -> node

func (t fakeTokens) NodeForToken(_ context.Context, tok string) (string, bool, error) {
	n, ok := t[tok]
	return n, ok, nil
}

type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Record(_ context.Context, ev events.Event) (events.Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return ev, nil
}

func (r *recorder) types() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, e := range r.evs {
		s = append(s, e.Type+":"+string(e.Phase))
	}
	return strings.Join(s, ",")
}

func newTestServer(t *testing.T) (*Server, http.Handler, *recorder) {
	t.Helper()
	p, ds := plan.Load("t.yaml", []byte(testPlan), plan.Options{})
	if p == nil {
		t.Fatal(ds.Err())
	}
	rec := &recorder{}
	pol := &fakePolicy{boot: map[string]nodeapi.Boot{"n-02": nodeapi.BootLocal},
		admit: map[string]map[string]bool{"n-01": {"10.1.0.101": true, "10.1.0.60": true}}}
	s := &Server{Plan: p, Render: fakeRender{}, Policy: pol, Tokens: fakeTokens{"tok1": "n-01", "tok2": "n-02"}, Rec: rec,
		Media: map[string]fs.FS{"os": fstest.MapFS{"images/vmlinuz": {Data: []byte("0123456789kernel")}, "images/initrd.img": {Data: []byte("initrd")}}},
		IPXE:  fstest.MapFS{"snponly.efi": {Data: []byte("EFI")}}}
	return s, s.Handler(), rec
}

func do(h http.Handler, method, url, from string, hdr map[string]string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, url, strings.NewReader(body))
	req.RemoteAddr = from + ":40000"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestBootScripts(t *testing.T) {
	_, h, rec := newTestServer(t)
	if w := do(h, "GET", "/ipxe/52-54-00-00-00-01/boot.ipxe", "10.1.0.50", nil, ""); w.Code != 200 || w.Body.String() != "boot.ipxe for n-01" {
		t.Fatalf("install script: %d %q", w.Code, w.Body)
	}
	// iPXE escapes the colons of ${mac}.
	if w := do(h, "GET", "/ipxe/52%3A54%3A00%3A00%3A00%3A01/boot.ipxe", "10.1.0.50", nil, ""); w.Body.String() != "boot.ipxe for n-01" {
		t.Fatalf("escaped MAC: %q", w.Body)
	}
	if w := do(h, "GET", "/ipxe/52:54:00:00:00:02/boot.ipxe", "10.1.0.51", nil, ""); w.Body.String() != "local n-02" {
		t.Fatalf("installed node must get the local-boot script, got %q", w.Body)
	}
	if w := do(h, "GET", "/ipxe/52:54:00:00:00:99/boot.ipxe", "10.1.0.52", nil, ""); w.Body.String() != "unknown 52:54:00:00:00:99" {
		t.Fatalf("unknown: %q", w.Body)
	}
	if got := rec.types(); got != "http.ipxe-script:ipxe,http.ipxe-script:ipxe,http.local-boot:first-boot,http.unknown-mac:" {
		t.Fatalf("events: %s", got)
	}
}

func TestConfigOnlyToItsNode(t *testing.T) {
	_, h, rec := newTestServer(t)
	// From the planned address: allowed.
	if w := do(h, "GET", "/ks/52:54:00:00:00:01", "10.1.0.101", nil, ""); w.Code != 200 || w.Body.String() != "ks.cfg for n-01" {
		t.Fatalf("planned address: %d %q", w.Code, w.Body)
	}
	// From another machine: refused and recorded.
	if w := do(h, "GET", "/ci/52:54:00:00:00:01/user-data", "10.1.0.77", nil, ""); w.Code != 403 {
		t.Fatalf("other machine got %d", w.Code)
	}
	// Fetching n-01's boot script (MACs are public) binds nothing: still
	// refused (issue 21: it used to bind the address to the node).
	do(h, "GET", "/ipxe/52:54:00:00:00:01/boot.ipxe", "10.1.0.77", nil, "")
	if w := do(h, "GET", "/ci/52:54:00:00:00:01/user-data", "10.1.0.77", nil, ""); w.Code != 403 {
		t.Fatalf("a boot script fetch bound the stranger's address: %d", w.Code)
	}
	if w := do(h, "GET", "/ci/52:54:00:00:00:01/vendor-data", "10.1.0.101", nil, ""); w.Code != 404 {
		t.Fatalf("missing file got %d", w.Code)
	}
	if w := do(h, "GET", "/ci/52:54:00:00:00:01/passwd", "10.1.0.101", nil, ""); w.Code != 404 {
		t.Fatalf("unknown seed file got %d", w.Code)
	}
	if !strings.Contains(rec.types(), "security.config-refused") {
		t.Fatal(rec.types())
	}
}

func TestPhoneHomeTokens(t *testing.T) {
	_, h, rec := newTestServer(t)
	cases := []struct {
		name, url string
		hdr       map[string]string
		code      int
	}{
		{"no token", "/phone-home/52:54:00:00:00:01/pre", nil, 403},
		{"wrong token", "/phone-home/52:54:00:00:00:01/pre", map[string]string{"X-Racklift-Token": "forged"}, 403},
		{"other node's token", "/phone-home/52:54:00:00:00:01/pre", map[string]string{"X-Racklift-Token": "tok2"}, 403},
		{"unknown phase", "/phone-home/52:54:00:00:00:01/bogus", map[string]string{"X-Racklift-Token": "tok1"}, 400},
		{"header token", "/phone-home/52:54:00:00:00:01/pre", map[string]string{"X-Racklift-Token": "tok1"}, 204},
		{"query token (subiquity webhook)", "/phone-home/52:54:00:00:00:01/installer?token=tok1", nil, 204},
		{"right token from a stranger's address", "/phone-home/52:54:00:00:00:01/error", map[string]string{"X-Racklift-Token": "tok1", "from": "10.1.0.77"}, 403},
	}
	for _, c := range cases {
		from := "10.1.0.101"
		if f, ok := c.hdr["from"]; ok {
			from = f
		}
		if w := do(h, "POST", c.url, from, c.hdr, `{"percent": 42, "detail": "x"}`); w.Code != c.code {
			t.Errorf("%s: got %d want %d", c.name, w.Code, c.code)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var rejected, ok int
	for _, e := range rec.evs {
		switch e.Type {
		case "security.callback-rejected":
			rejected++
		case "install.pre":
			ok++
			if e.Percent != 42 || e.Phase != events.PhaseInstalling || e.Source != events.SourceInstaller {
				t.Errorf("callback event %+v", e)
			}
		}
	}
	if rejected != 4 || ok != 1 {
		t.Fatalf("rejected %d ok %d: %s", rejected, ok, rec.types())
	}
}

func TestMediaRangeAndKernelPhase(t *testing.T) {
	srv, h, rec := newTestServer(t)
	do(h, "GET", "/ipxe/52:54:00:00:00:01/boot.ipxe", "10.1.0.60", nil, "")
	w := do(h, "GET", "/media/os/images/vmlinuz", "10.1.0.60", map[string]string{"Range": "bytes=10-"}, "")
	if w.Code != http.StatusPartialContent || w.Body.String() != "kernel" {
		t.Fatalf("range: %d %q", w.Code, w.Body)
	}
	if w := do(h, "HEAD", "/media/os/images/initrd.img", "10.1.0.60", nil, ""); w.Code != 200 || w.Header().Get("Content-Length") != "6" {
		t.Fatalf("head: %d %v", w.Code, w.Header())
	}
	for _, bad := range []string{"/media/os/../../etc/passwd", "/media/os/%2e%2e/secret", "/media/os/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/media/nope/x", "/ipxe-bin/..%2fsecret"} {
		if w := do(h, "GET", bad, "10.1.0.60", nil, ""); w.Code != 404 {
			t.Errorf("%s: %d", bad, w.Code)
		}
	}
	iso := filepath.Join(t.TempDir(), "os.iso")
	if err := os.WriteFile(iso, []byte("ISO-IMAGE"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.MediaISO = map[string]string{"os": iso}
	if w := do(h, "GET", "/media/os.iso", "10.1.0.60", map[string]string{"Range": "bytes=4-"}, ""); w.Code != http.StatusPartialContent || w.Body.String() != "IMAGE" {
		t.Fatalf("iso: %d %q", w.Code, w.Body)
	}
	if w := do(h, "GET", "/media/nope.iso", "10.1.0.60", nil, ""); w.Code != 404 {
		t.Fatalf("unknown iso: %d", w.Code)
	}
	if w := do(h, "GET", "/ipxe-bin/snponly.efi", "10.1.0.60", nil, ""); w.Code != 200 || w.Body.String() != "EFI" {
		t.Fatalf("ipxe-bin: %d", w.Code)
	}
	if !strings.Contains(rec.types(), "http.kernel:kernel") {
		t.Fatalf("no kernel phase: %s", rec.types())
	}
	// A stranger that fetched n-01's boot script and then its kernel gets
	// the (public) file but does not move n-01's timeline.
	before := strings.Count(rec.types(), "http.kernel")
	do(h, "GET", "/ipxe/52:54:00:00:00:01/boot.ipxe", "10.1.0.77", nil, "")
	if w := do(h, "GET", "/media/os/images/vmlinuz", "10.1.0.77", nil, ""); w.Code != 200 {
		t.Fatalf("media to a stranger: %d", w.Code)
	}
	if after := strings.Count(rec.types(), "http.kernel"); after != before {
		t.Fatalf("a stranger's media fetch moved n-01's timeline: %s", rec.types())
	}
	b, _ := io.ReadAll(do(h, "GET", "/healthz", "127.0.0.1", nil, "").Body)
	if !strings.Contains(string(b), `"ok":true`) {
		t.Fatal(string(b))
	}
}
