// Package templates holds racklift's embedded install-config templates:
// the iPXE scripts and GRUB configs (the Secure Boot chain), the RHEL 9
// kickstart, the Ubuntu autoinstall user-data, the NoCloud meta-data,
// vendor-data and network-config, and the first-boot cloud-config; and the
// facts script an installed node runs at first boot (FactsScript). The
// templates are text/template files executed by provision/render on typed
// data; OS profiles (package profiles) name the ones they use.
package templates

import (
	"embed"
	"io/fs"
)

// FactsScriptName is the facts script's file name in FS.
const FactsScriptName = "racklift-facts.py"

//go:embed *.tmpl racklift-facts.py
var files embed.FS

// FS returns the embedded templates, one *.tmpl file each, and the facts
// script (FactsScriptName), whose SHA-256 the first-boot config checks.
func FS() fs.FS { return files }

// FactsScript returns the Python 3 script an installed node runs at the
// end of its first boot: it prints the body of the ready callback, a
// nodeapi.CallbackBody with the node's nodeapi.Facts. racklift serves it
// at nodeapi.PathFactsScript.
func FactsScript() []byte {
	b, err := files.ReadFile(FactsScriptName)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}
