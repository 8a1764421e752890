// Package templates holds racklift's embedded install-config templates:
// the iPXE scripts, the RHEL 9 kickstart, the Ubuntu autoinstall user-data,
// the NoCloud meta-data and vendor-data, and the first-boot cloud-config.
// They are text/template files executed by provision/render on typed data;
// OS profiles (package profiles) name the ones they use.
package templates

import (
	"embed"
	"io/fs"
)

//go:embed *.tmpl
var files embed.FS

// FS returns the embedded templates, one *.tmpl file each.
func FS() fs.FS { return files }
