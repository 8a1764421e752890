package handoff

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// dirMode is every directory's mode: the bundle holds the private
// deployment key, so nothing of it is readable by others.
const dirMode fs.FileMode = 0o700

// checkPath refuses a bundle path that would leave the output directory.
func checkPath(p string) error {
	if !fs.ValidPath(p) || p == "." || strings.Contains(p, "\\") {
		return fmt.Errorf("handoff: bad file path %q", p)
	}
	return nil
}

// WriteDir writes the bundle as directory dir. It writes into a temporary
// directory next to dir and renames it into place, so a failure leaves
// nothing half-written; an existing dir is replaced only when it is empty
// or an earlier hand-off (it holds README.txt and kolla/multinode).
func (b *Bundle) WriteDir(dir string) error {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("handoff: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("handoff: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, dirMode); err != nil {
		return fmt.Errorf("handoff: %w", err)
	}
	for _, f := range b.Files {
		if err := checkPath(f.Path); err != nil {
			return err
		}
		full := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(full), dirMode); err != nil {
			return fmt.Errorf("handoff: %w", err)
		}
		if err := writeSynced(full, f.Data, f.Mode); err != nil {
			return fmt.Errorf("handoff: write %s: %w", f.Path, err)
		}
	}
	old := ""
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("handoff: %s exists and is not a directory", dir)
		}
		if !replaceable(dir) {
			return fmt.Errorf("handoff: %s exists and is not an earlier hand-off: choose an empty or new directory", dir)
		}
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("handoff: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("handoff: %w", err)
	}
	ok = true
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return nil
}

// replaceable reports whether dir is empty or a previous hand-off.
func replaceable(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	if len(ents) == 0 {
		return true
	}
	for _, f := range []string{"README.txt", "kolla/multinode"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil {
			return false
		}
	}
	return true
}

func writeSynced(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // umask may have narrowed it
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteTarGz writes the bundle as a gzip-compressed tar stream whose
// entries are under prefix/ (e.g. "handoff-hci"). Entries have the files'
// modes and a fixed time, so the same bundle gives the same bytes.
func (b *Bundle) WriteTarGz(w io.Writer, prefix string) error {
	if prefix != "" && (!fs.ValidPath(prefix) || strings.Contains(prefix, "/")) {
		return fmt.Errorf("handoff: bad archive prefix %q", prefix)
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	mtime := time.Unix(0, 0).UTC()
	dirs := map[string]bool{}
	addDir := func(d string) error {
		if d == "." || d == "" || dirs[d] {
			return nil
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: int64(dirMode), ModTime: mtime, Format: tar.FormatPAX})
	}
	join := func(p string) string {
		if prefix == "" {
			return p
		}
		return prefix + "/" + p
	}
	if prefix != "" {
		if err := addDir(prefix); err != nil {
			return err
		}
	}
	for _, f := range b.Files {
		if err := checkPath(f.Path); err != nil {
			return err
		}
		name := join(f.Path)
		var parents []string
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			if err := addDir(parents[i]); err != nil {
				return err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(f.Mode.Perm()), Size: int64(len(f.Data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	return errors.Join(tw.Close(), zw.Close())
}
