package templates

import (
	"bytes"
	"io/fs"
	"testing"
)

// TestFS checks that the templates the built-in profiles and the renderer
// name are embedded (provision/render parses and renders them all), and
// the facts script.
func TestFS(t *testing.T) {
	for _, name := range []string{
		"boot.ipxe.tmpl", "local-boot.ipxe.tmpl", "unknown-mac.ipxe.tmpl",
		"grub.cfg.tmpl", "local-boot.grub.cfg.tmpl", "unknown-mac.grub.cfg.tmpl", "hold.grub.cfg.tmpl", "bootstrap.grub.cfg.tmpl",
		"kickstart.ks.tmpl", "autoinstall.user-data.tmpl", "meta-data.tmpl",
		"vendor-data.tmpl", "first-boot.cloud-config.tmpl", "network-config.tmpl",
		FactsScriptName,
	} {
		b, err := fs.ReadFile(FS(), name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	fs, _ := fs.ReadFile(FS(), FactsScriptName)
	if !bytes.Equal(FactsScript(), fs) || !bytes.HasPrefix(fs, []byte("#!/usr/bin/python3\n")) {
		t.Error("FactsScript differs from the file in FS or has no python3 #! line")
	}
}
