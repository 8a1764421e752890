package webui

import (
	"embed"
	"io/fs"
)

// staticFiles is the dashboard: plain HTML, CSS and JavaScript modules with
// no build step, embedded so the single racklift binary serves it offline.
//
//go:embed static
var staticFiles embed.FS

// Static returns the dashboard's files with index.html at the root, for
// API.Static.
func Static() fs.FS {
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil { // cannot happen: "static" is a valid, embedded directory
		panic("webui: embedded static files: " + err.Error())
	}
	return sub
}
