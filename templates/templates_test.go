package templates

import (
	"io/fs"
	"testing"
)

// TestFS checks that the templates the built-in profiles and the renderer
// name are embedded (provision/render parses and renders them all).
func TestFS(t *testing.T) {
	for _, name := range []string{
		"boot.ipxe.tmpl", "local-boot.ipxe.tmpl", "unknown-mac.ipxe.tmpl",
		"kickstart.ks.tmpl", "autoinstall.user-data.tmpl", "meta-data.tmpl",
		"vendor-data.tmpl", "first-boot.cloud-config.tmpl",
	} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}
