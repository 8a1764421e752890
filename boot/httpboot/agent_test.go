package httpboot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/racklift/racklift/provision/image"
)

type fakeAgent struct{ fs fstest.MapFS }

func (a fakeAgent) FS() fs.FS { return a.fs }

// fakeImages serves one manifest and one blob from a temp dir.
type fakeImages struct {
	raw  []byte
	blob string // path of the one blob
	sum  string
}

func (f fakeImages) Manifest(name string) (*image.Manifest, []byte, error) {
	if name != "debian12" {
		return nil, nil, fs.ErrNotExist
	}
	return &image.Manifest{Name: name}, f.raw, nil
}

func (f fakeImages) OpenBlob(sum string) (*os.File, error) {
	if sum != f.sum {
		return nil, fs.ErrNotExist
	}
	return os.Open(f.blob)
}

type fakeFacts struct {
	mu    sync.Mutex
	saved map[string]string
	// order records "facts NODE" and the events, to check the order.
	rec *recorder
}

func (f *fakeFacts) SaveFacts(_ context.Context, node string, facts []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.saved == nil {
		f.saved = map[string]string{}
	}
	f.saved[node] = string(facts)
	if f.rec != nil && strings.Contains(f.rec.types(), "install.ready") {
		return errors.New("facts saved after the ready event")
	}
	return nil
}

func TestImagePathRoutes(t *testing.T) {
	s, h, rec := newTestServer(t)
	s.Agent = fakeAgent{fstest.MapFS{"vmlinuz": {Data: []byte("KERNEL")}, "initrd.img": {Data: []byte("INITRD")},
		"shimx64.efi": {Data: []byte("SHIM")}, "grubx64.efi": {Data: []byte("GRUB")}}}
	blobData := []byte("zstd bytes")
	sum := sha256.Sum256(blobData)
	blobPath := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(blobPath, blobData, 0o644); err != nil {
		t.Fatal(err)
	}
	s.Images = fakeImages{raw: []byte(`{"format":1,"name":"debian12"}`), blob: blobPath, sum: hex.EncodeToString(sum[:])}
	facts := &fakeFacts{rec: rec}
	s.Facts = facts

	// Public files: the agent, the Secure Boot loaders, images, the script.
	for url, want := range map[string]string{
		"/agent/vmlinuz":                      "KERNEL",
		"/agent/initrd.img":                   "INITRD",
		"/sb/shimx64.efi":                     "SHIM",
		"/sb/grubx64.efi":                     "GRUB",
		"/images/debian12/manifest.json":      `{"format":1,"name":"debian12"}`,
		"/blobs/" + s.Images.(fakeImages).sum: "zstd bytes",
		"/lib/racklift-facts.py":              "#!/usr/bin/python3\n",
		"/grub/grub.cfg":                      "grub bootstrap",
		"/grub/x86_64-efi/grub.cfg":           "grub bootstrap",
	} {
		if w := do(h, "GET", url, "10.1.0.99", nil, ""); w.Code != 200 || w.Body.String() != want {
			t.Errorf("GET %s: %d %q, want %q", url, w.Code, w.Body, want)
		}
	}
	for _, bad := range []string{"/sb/vmlinuz", "/images/nope/manifest.json", "/images/..%2f..%2fetc/manifest.json",
		"/blobs/" + strings.Repeat("0", 64), "/blobs/not-hex", "/agent/other"} {
		if w := do(h, "GET", bad, "10.1.0.99", nil, ""); w.Code != 404 {
			t.Errorf("GET %s: %d, want 404", bad, w.Code)
		}
	}
	// GRUB config of a node: the same decisions as its iPXE script.
	if w := do(h, "GET", "/grub/52:54:00:00:00:01/grub.cfg", "10.1.0.101", nil, ""); w.Code != 200 || w.Body.String() != "grub.cfg for n-01" {
		t.Errorf("grub.cfg of an installing node: %d %q", w.Code, w.Body)
	}
	if w := do(h, "GET", "/grub/52:54:00:00:00:02/grub.cfg", "10.1.0.102", nil, ""); w.Body.String() != "grub local n-02" {
		t.Errorf("grub.cfg of an installed node: %q, want its local-boot config", w.Body)
	}
	if w := do(h, "GET", "/grub/52:54:00:00:00:99/grub.cfg", "10.1.0.99", nil, ""); w.Body.String() != "grub unknown 52:54:00:00:00:99" {
		t.Errorf("grub.cfg of an unknown MAC: %q", w.Body)
	}
	// The agent's kernel, fetched by the node's address, moves its timeline.
	do(h, "GET", "/agent/vmlinuz", "10.1.0.101", nil, "")
	if !strings.Contains(rec.types(), "http.kernel:kernel") {
		t.Errorf("agent kernel fetch did not move the node to kernel: %s", rec.types())
	}
	// Instructions: only to the node (its address), recorded as such.
	if w := do(h, "GET", "/agent/52:54:00:00:00:01/instructions", "10.1.0.77", nil, ""); w.Code != 403 {
		t.Errorf("instructions to a stranger: %d", w.Code)
	}
	w := do(h, "GET", "/agent/52:54:00:00:00:01/instructions", "10.1.0.101", nil, "")
	if w.Code != 200 || w.Body.String() != "instructions for n-01" || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("instructions: %d %q %v", w.Code, w.Body, w.Header())
	}
	if !strings.Contains(rec.types(), "http.instructions:installing") {
		t.Errorf("no http.instructions event: %s", rec.types())
	}
	// The network-config seed file is served too.
	if w := do(h, "GET", "/ci/52:54:00:00:00:01/network-config", "10.1.0.101", nil, ""); w.Code != 200 {
		t.Errorf("network-config: %d", w.Code)
	}
	// A ready callback's facts are kept before the ready event.
	body := `{"percent":100,"detail":"first boot finished","facts":{"version":1,"hostname":"n-01"}}`
	if w := do(h, "POST", "/phone-home/52:54:00:00:00:01/ready", "10.1.0.101", map[string]string{"X-Racklift-Token": "tok1"}, body); w.Code != 204 {
		t.Fatalf("ready: %d %s", w.Code, w.Body)
	}
	if got := facts.saved["n-01"]; got != `{"version":1,"hostname":"n-01"}` {
		t.Errorf("facts kept: %q", got)
	}
	// Agent progress attributes reach the event.
	prog := `{"percent":40,"step":"image","bytes":1048576,"total":4194304,"rate_mbps":12.5}`
	if w := do(h, "POST", "/phone-home/52:54:00:00:00:01/progress", "10.1.0.101", map[string]string{"X-Racklift-Token": "tok1"}, prog); w.Code != 204 {
		t.Fatalf("progress: %d", w.Code)
	}
	rec.mu.Lock()
	last := rec.evs[len(rec.evs)-1]
	rec.mu.Unlock()
	if last.Attrs["step"] != "image" || last.Attrs["bytes"] != "1048576" || last.Attrs["total"] != "4194304" || last.Attrs["rate_mbps"] != "12.5" || last.Percent != 40 {
		t.Errorf("progress event %+v", last)
	}
}
