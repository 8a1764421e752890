package media

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	want := writeTree(t, dir, true)
	name, fsys, closer, err := Open("debian12=" + dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if name != "debian12" {
		t.Errorf("name %q", name)
	}
	for _, iface := range []struct {
		name string
		ok   bool
	}{
		{"StatFS", is[fs.StatFS](fsys)},
		{"ReadDirFS", is[fs.ReadDirFS](fsys)},
	} {
		if !iface.ok {
			t.Errorf("directory media does not implement fs.%s", iface.name)
		}
	}
	checkTree(t, fsys, want, dir)
	// fstest reads every file a few bytes at a time; keep big.bin out of it.
	sub, err := fs.Sub(fsys, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(sub, "d2/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt"); err != nil {
		t.Fatal(err)
	}
	checkReads(t, fsys, bigFile, want[bigFile])
	t.Run("ServeContent", func(t *testing.T) { checkRanges(t, serve(t, fsys), bigFile, want[bigFile]) })

	// Symbolic links must not lead out of the directory.
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "abs-escape")); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, outside)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rel, filepath.Join(dir, "rel-escape")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"abs-escape", "rel-escape", "../secret"} {
		if b, err := fs.ReadFile(fsys, name); err == nil {
			t.Errorf("ReadFile(%s) escaped the media directory: %q", name, b)
		}
	}
}

func is[T any](v any) bool {
	_, ok := v.(T)
	return ok
}

func TestOpenISOSpec(t *testing.T) {
	needXorriso(t)
	src := t.TempDir()
	want := writeTree(t, src, false)
	img := mkisofs(t, src, "-R")
	name, fsys, closer, err := Open("rocky9.4=" + img)
	if err != nil {
		t.Fatal(err)
	}
	if name != "rocky9.4" {
		t.Errorf("name %q", name)
	}
	x, ok := fsys.(*ISO)
	if !ok {
		t.Fatalf("fsys is %T, want *ISO", fsys)
	}
	if x.Label() == "" {
		t.Error("empty volume label")
	}
	checkTree(t, fsys, map[string][]byte{"readme.txt": want["readme.txt"], bigFile: want[bigFile],
		emptyFile: nil, deepFile: want[deepFile], "docs/" + longName: want["docs/"+longName],
		"sub/dir/nested.cfg": want["sub/dir/nested.cfg"], "sub/UPPER-lower.Mixed": want["sub/UPPER-lower.Mixed"]}, src)
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec string
		err  error
	}{
		{"", ErrBadSpec},
		{"rocky9", ErrBadSpec},
		{"=" + dir, ErrBadSpec},
		{"Rocky9=" + dir, ErrBadSpec},
		{"-x=" + dir, ErrBadSpec},
		{".=" + dir, ErrBadSpec},
		{"a b=" + dir, ErrBadSpec},
		{"a/b=" + dir, ErrBadSpec},
		{"ok=", ErrBadSpec},
		{"ok=" + filepath.Join(dir, "missing"), fs.ErrNotExist},
		{"ok=" + text, ErrNotISO},
		{"ok=/dev/null", nil},
	} {
		_, fsys, closer, err := Open(tt.spec)
		if err == nil {
			closer.Close()
			t.Errorf("Open(%q) = %v, want an error", tt.spec, fsys)
			continue
		}
		if tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("Open(%q) = %v, want %v", tt.spec, err, tt.err)
		}
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"rocky9": true, "rocky-9.4": true, "0": true, "ubuntu24.04": true,
		"": false, ".": false, "..": false, "-a": false, ".a": false, "A": false,
		"a_b": false, "a/b": false, "a b": false, "é": false,
		"a234567890123456789012345678901234567890123456789012345678901234": false, // 64 characters
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
