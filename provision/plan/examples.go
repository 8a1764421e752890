package plan

import (
	"embed"
	"io/fs"
)

//go:embed examples/*.yaml
var examples embed.FS

// Examples returns the example plans shipped with racklift (lab.yaml is the
// demo plan that matches the QEMU test bed).
func Examples() fs.FS {
	sub, err := fs.Sub(examples, "examples")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}
