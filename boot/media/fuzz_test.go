package media

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzISO feeds arbitrary images to NewISO, walks the whole tree, and reads
// every file (bounded). It must never panic or hang. Seeds: the hand-made
// images of synth_test.go and, when xorriso is installed, small real images
// (Rock Ridge + Joliet, Joliet only, plain) generated here.
//
// The seeds are tens of KiB, so run it with a short minimisation time or the
// workers spend their time minimising each new input:
//
//	go test -run '^$' -fuzz FuzzISO -fuzztime 3m -fuzzminimizetime 1s ./boot/media/
func FuzzISO(f *testing.F) {
	// Inputs are images without their 32 KiB System Area, which the reader
	// never looks at: mutations then land on structures that matter.
	add := func(img []byte) { f.Add(img[vdStart:]) }
	img, _ := multiExtentImage()
	add(img)
	add(rockRidgeImage())
	add(corruptImage())
	if _, err := exec.LookPath("xorriso"); err == nil {
		src := f.TempDir()
		for name, data := range map[string]string{"a.txt": "a\n", "d1/d2/d3/d4/d5/d6/d7/d8/d9/b.txt": "b\n", "Long Name With Spaces.txt": "c\n", "z": ""} {
			p := filepath.Join(src, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				f.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				f.Fatal(err)
			}
		}
		if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
			f.Fatal(err)
		}
		for _, opts := range [][]string{{"-R", "-J"}, {"--norock", "-J"}, {"--norock"}} {
			b, err := os.ReadFile(mkisofs(f, src, append(opts, "-no-pad")...))
			if err != nil {
				f.Fatal(err)
			}
			add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = append(make([]byte, vdStart, vdStart+len(data)), data...)
		x, err := NewISO(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		visited := 0
		buf := make([]byte, 4096)
		_ = fs.WalkDir(x, ".", func(p string, d fs.DirEntry, err error) error {
			if visited++; visited > 2000 {
				return fs.SkipAll // a directory DAG can fan out exponentially
			}
			if err != nil {
				return nil
			}
			_, _ = x.Stat(p)
			_, _ = x.Lstat(p)
			_, _ = x.ReadLink(p)
			if d.IsDir() {
				return nil
			}
			file, err := x.Open(p)
			if err != nil {
				return nil
			}
			defer file.Close()
			st, err := file.Stat()
			if err != nil {
				t.Fatalf("%s: Stat on open file: %v", p, err)
			}
			n, _ := io.CopyN(io.Discard, file, 1<<20)
			if n < min(st.Size(), 1<<20) && st.Mode().IsRegular() {
				t.Fatalf("%s: read %d of %d bytes", p, n, st.Size())
			}
			if ra, ok := file.(io.ReaderAt); ok && st.Size() > 0 {
				_, _ = ra.ReadAt(buf, st.Size()-1)
				_, _ = ra.ReadAt(buf, st.Size()/2)
			}
			return nil
		})
	})
}
