package tftp

import (
	"errors"
	"io/fs"
	"strings"
)

// Mount returns an fs.FS that serves root, and each of mounts under its
// directory name ("agent" serves mounts["agent"] as agent/...). A name
// under a mount never falls through to root. It lets one Extra serve the
// Secure Boot loaders, the agent and the media that GRUB loads by TFTP.
// root may be nil; so may a mount (it then holds nothing).
func Mount(root fs.FS, mounts map[string]fs.FS) fs.FS {
	return mountFS{root: root, mounts: mounts}
}

type mountFS struct {
	root   fs.FS
	mounts map[string]fs.FS
}

func (m mountFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	for dir, sub := range m.mounts {
		rest, ok := strings.CutPrefix(name, dir+"/")
		if !ok && name != dir {
			continue
		}
		if sub == nil || rest == "" {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		f, err := sub.Open(rest)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				pe.Path = name
			}
			return nil, err
		}
		return f, nil
	}
	if m.root == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return m.root.Open(name)
}
