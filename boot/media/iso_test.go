package media

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
)

// openISO opens an image and closes it when the test ends.
func openISO(t testing.TB, path string) *ISO {
	t.Helper()
	x, err := OpenISO(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := x.Close(); err != nil {
			t.Error(err)
		}
	})
	return x
}

// memISO reads the image at path into memory. fstest.TestFS reads every file
// a few bytes at a time; from memory that takes milliseconds instead of
// millions of pread calls.
func memISO(t testing.TB, path string) *ISO {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewISO(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func readDirNames(t *testing.T, fsys fs.FS, dir string) []string {
	t.Helper()
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// The file system and file types implement what http.ServeContent and
// fstest need.
var (
	_ fs.StatFS      = (*ISO)(nil)
	_ fs.ReadDirFS   = (*ISO)(nil)
	_ fs.ReadLinkFS  = (*ISO)(nil)
	_ io.ReadSeeker  = (*file)(nil)
	_ io.ReaderAt    = (*file)(nil)
	_ fs.ReadDirFile = (*dirFile)(nil)
	_ fs.DirEntry    = fileInfo{}
	_ fs.FileInfo    = fileInfo{}
)

func TestISORockRidge(t *testing.T) {
	t.Parallel()
	needXorriso(t)
	src := t.TempDir()
	want := writeTree(t, src, true)
	images := []struct {
		name, path string
		marks      []string // SUSP entries the image must contain for the test to mean anything
	}{
		{"mkisofs -R -J", mkisofs(t, src, "-R", "-J", "-joliet-long"), []string{"CE\x1c\x01"}},
		// Deep directory relocation: d9 moves to /RR_MOVED and d8 gets a
		// CL placeholder; RR_MOVED itself carries RE and must stay hidden.
		{"relocated", xorriso(t, "-outdev", "OUT", "-joliet", "on",
			"-compliance", "deep_paths_off:joliet_long_names", "-rr_reloc_dir", "RR_MOVED",
			"-map", src, "/", "-commit"), []string{"CE\x1c\x01", "CL\x0c\x01", "RE\x04\x01", "RR_MOVED"}},
	}
	for _, img := range images {
		t.Run(img.name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(img.path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range img.marks {
				if !bytes.Contains(raw, []byte(m)) {
					t.Fatalf("image lacks %q: xorriso changed its layout", m)
				}
			}
			x := openISO(t, img.path)
			if x.ns != nsRockRidge {
				t.Fatalf("namespace %v, want rockridge", x.ns)
			}
			checkTree(t, x, want, src)
			if got, want := readDirNames(t, x, "."), []string{bigFile, "d1", "dirlink", "docs", emptyFile, "readme.txt", "sub"}; !slices.Equal(got, want) {
				t.Errorf("root = %q, want %q", got, want)
			}
			for name, mode := range map[string]fs.FileMode{"readme.txt": 0o644, "docs": fs.ModeDir | 0o755, deepDir: fs.ModeDir | 0o755} {
				if st, err := x.Stat(name); err != nil || st.Mode() != mode {
					t.Errorf("Stat(%s) = %v, %v; want mode %v", name, st, err, mode)
				}
			}
			checkSymlinks(t, x)
			if err := fstest.TestFS(memISO(t, img.path), "readme.txt", bigFile, emptyFile, deepFile, "docs/"+longName,
				"docs/"+hugeName(), "docs/link.txt", "dirlink", "sub/dir/nested.cfg"); err != nil {
				t.Fatal(err)
			}
		})
	}
	x := openISO(t, images[0].path)
	t.Run("reads", func(t *testing.T) { checkReads(t, x, bigFile, want[bigFile]) })
	t.Run("ServeContent", func(t *testing.T) { checkRanges(t, serve(t, x), bigFile, want[bigFile]) })
	t.Run("closed", func(t *testing.T) {
		y := openISO(t, images[0].path)
		f, err := y.Open(bigFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := y.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := y.Open("readme.txt"); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("Open after Close: %v, want ErrClosed", err)
		}
		if _, err := f.Read(make([]byte, 10)); err == nil {
			t.Error("Read after image Close succeeded")
		}
	})
}

// checkSymlinks checks the two links of the test tree.
func checkSymlinks(t *testing.T, x *ISO) {
	t.Helper()
	st, err := x.Lstat("docs/link.txt")
	if err != nil || st.Mode()&fs.ModeSymlink == 0 || st.Size() != int64(len("../readme.txt")) {
		t.Errorf("Lstat(docs/link.txt) = %v, %v; want a 13-byte symlink", st, err)
	}
	if target, err := x.ReadLink("docs/link.txt"); err != nil || target != "../readme.txt" {
		t.Errorf("ReadLink(docs/link.txt) = %q, %v", target, err)
	}
	if b, err := fs.ReadFile(x, "docs/link.txt"); err != nil || string(b) != "hello, racklift\n" {
		t.Errorf("ReadFile(docs/link.txt) = %q, %v", b, err)
	}
	if st, err := x.Stat("dirlink"); err != nil || !st.IsDir() || st.Name() != "dirlink" {
		t.Errorf("Stat(dirlink) = %v, %v; want a directory named dirlink", st, err)
	}
	if b, err := fs.ReadFile(x, "dirlink/d3/d4/d5/d6/d7/d8/d9/d10/deep.txt"); err != nil || string(b) != "deep\n" {
		t.Errorf("ReadFile through dirlink = %q, %v", b, err)
	}
	if _, err := x.ReadLink("readme.txt"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadLink(regular file) = %v, want ErrInvalid", err)
	}
}

// checkReads exercises ReadAt, Seek and Read on name against want.
func checkReads(t *testing.T, fsys fs.FS, name string, want []byte) {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		t.Fatal("file is not an io.ReaderAt")
	}
	sk, ok := f.(io.Seeker)
	if !ok {
		t.Fatal("file is not an io.Seeker")
	}
	size := int64(len(want))
	readAt := func(r *rand.Rand) {
		off := r.Int64N(size)
		n := r.IntN(70000) + 1
		buf := make([]byte, n)
		k, err := ra.ReadAt(buf, off)
		wantN := int(min(int64(n), size-off))
		switch {
		case k != wantN:
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d", n, off, k, err, wantN)
		case wantN < n && err != io.EOF:
			t.Errorf("ReadAt(%d bytes at %d) short read err = %v, want EOF", n, off, err)
		case wantN == n && err != nil:
			t.Errorf("ReadAt(%d bytes at %d) err = %v", n, off, err)
		case !bytes.Equal(buf[:k], want[off:off+int64(k)]):
			t.Errorf("ReadAt(%d bytes at %d): wrong data", n, off)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		readAt(r)
	}
	// Concurrent ReadAt, as http.ServeContent users may do.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 3))
			for range 50 {
				readAt(r)
			}
		})
	}
	wg.Wait()

	if k, err := ra.ReadAt(make([]byte, 1), size); k != 0 || err != io.EOF {
		t.Errorf("ReadAt at EOF = %d, %v; want 0, EOF", k, err)
	}
	mid := size / 3
	if pos, err := sk.Seek(mid, io.SeekStart); pos != mid || err != nil {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	buf := make([]byte, size/2)
	if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, want[mid:mid+size/2]) {
		t.Errorf("Read after Seek: %v, data equal %v", err, bytes.Equal(buf, want[mid:mid+size/2]))
	}
	if pos, err := sk.Seek(-10, io.SeekEnd); pos != size-10 || err != nil {
		t.Fatalf("Seek end = %d, %v", pos, err)
	}
	if rest, err := io.ReadAll(f); err != nil || !bytes.Equal(rest, want[size-10:]) {
		t.Errorf("ReadAll tail = %x, %v", rest, err)
	}
	if pos, err := sk.Seek(0, io.SeekCurrent); pos != size || err != nil {
		t.Errorf("Seek current = %d, %v; want %d", pos, err, size)
	}
	if _, err := sk.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
}

func TestISOJoliet(t *testing.T) {
	t.Parallel()
	needXorriso(t)
	src := t.TempDir()
	want := writeTree(t, src, false)
	img := mkisofs(t, src, "--norock", "-J", "-joliet-long")
	x := openISO(t, img)
	if x.ns != nsJoliet {
		t.Fatalf("namespace %v, want joliet", x.ns)
	}
	checkTree(t, x, want, src)
	if st, err := x.Stat("readme.txt"); err != nil || st.Mode() != 0o444 {
		t.Errorf("Stat(readme.txt) = %v, %v; want mode 0444", st, err)
	}
	if err := fstest.TestFS(memISO(t, img), "readme.txt", bigFile, emptyFile, deepFile, "docs/"+longName, "sub/UPPER-lower.Mixed"); err != nil {
		t.Fatal(err)
	}
	checkReads(t, x, bigFile, want[bigFile])
}

func TestISOPlain(t *testing.T) {
	t.Parallel()
	needXorriso(t)
	src := t.TempDir()
	tree := writeTree(t, src, false)
	for _, tt := range []struct {
		level string
		names map[string]string // tree name -> name in the image
	}{
		{"1", map[string]string{"docs/" + longName: "docs/a_very_l.txt", "sub/UPPER-lower.Mixed": "sub/upper_lo.mix"}},
		{"2", map[string]string{"docs/" + longName: "docs/a_very_long_file_name_with_.txt", "sub/UPPER-lower.Mixed": "sub/upper_lower.mixed"}},
	} {
		t.Run("level "+tt.level, func(t *testing.T) {
			t.Parallel()
			img := mkisofs(t, src, "--norock", "-iso-level", tt.level)
			x := openISO(t, img)
			if x.ns != nsPlain {
				t.Fatalf("namespace %v, want iso9660", x.ns)
			}
			want := map[string][]byte{}
			for name, data := range tree {
				if n, ok := tt.names[name]; ok {
					name = n
				}
				want[name] = data
			}
			checkTree(t, x, want, "")
			if err := fstest.TestFS(memISO(t, img), "readme.txt", bigFile, emptyFile, deepFile, "sub/dir/nested.cfg"); err != nil {
				t.Fatal(err)
			}
			checkReads(t, x, bigFile, tree[bigFile])
		})
	}
}

func TestISOErrors(t *testing.T) {
	needXorriso(t)
	src := t.TempDir()
	writeTree(t, src, true)
	x := openISO(t, mkisofs(t, src, "-R"))
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"missing", fs.ErrNotExist},
		{"readme.txt/x", fs.ErrNotExist},
		{"/readme.txt", fs.ErrInvalid},
		{"docs/../readme.txt", fs.ErrInvalid},
		{"docs/", fs.ErrInvalid},
	} {
		_, err := x.Open(tt.name)
		var pe *fs.PathError
		if !errors.Is(err, tt.err) || !errors.As(err, &pe) {
			t.Errorf("Open(%q) = %v, want *PathError wrapping %v", tt.name, err, tt.err)
		}
	}
	if _, err := x.ReadDir("readme.txt"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("ReadDir(file) = %v, want ErrInvalid", err)
	}
	d, err := x.Open("docs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(make([]byte, 1)); err == nil {
		t.Error("Read on a directory succeeded")
	}
	d.Close()
	if _, err := NewISO(bytes.NewReader(make([]byte, 40000)), 40000); !errors.Is(err, ErrNotISO) {
		t.Errorf("NewISO(zeros) = %v, want ErrNotISO", err)
	}
	if _, err := NewISO(bytes.NewReader(nil), 0); !errors.Is(err, ErrNotISO) {
		t.Errorf("NewISO(empty) = %v, want ErrNotISO", err)
	}
}

// TestISOMultiExtentXorriso checks multi-extent files against xorriso's own
// output: a sparse file of 4 GiB + 3 MiB becomes two directory records with
// -iso-level 3. The image takes 4 GiB of disk and about a minute to write,
// so the test only runs with RACKLIFT_TEST_HUGE_ISO=1; TestMultiExtent covers
// the same logic with a hand-made image.
func TestISOMultiExtentXorriso(t *testing.T) {
	if os.Getenv("RACKLIFT_TEST_HUGE_ISO") == "" {
		t.Skip("set RACKLIFT_TEST_HUGE_ISO=1 to build a 4 GiB image with a multi-extent file (slow, 4 GiB of disk)")
	}
	needXorriso(t)
	src := t.TempDir()
	p := filepath.Join(src, "huge.bin")
	const size = 4<<30 + 3<<20 + 5
	marks := []int64{0, 4<<30 - 2048 - 100, 4<<30 - 100, size - 1000}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for i, off := range marks {
		if _, err := f.WriteAt(randBytes(uint64(i), 1000), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	x := openISO(t, mkisofs(t, src, "-R", "-iso-level", "3"))
	list, err := x.readDir(x.root)
	if err != nil {
		t.Fatal(err)
	}
	n := list.byName["huge.bin"]
	if n == nil || n.size != size || len(n.extents) < 2 {
		t.Fatalf("huge.bin = %+v, want %d bytes in several extents", n, size)
	}
	got, err := x.Open("huge.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	ra, _ := got.(io.ReaderAt)
	for _, off := range append(marks, int64(n.extents[0].n)-4096, int64(n.extents[0].n)-1) {
		a, b := make([]byte, 8192), make([]byte, 8192)
		na, _ := ra.ReadAt(a, off)
		nb, _ := want.ReadAt(b, off)
		if na != nb || !bytes.Equal(a[:na], b[:nb]) {
			t.Errorf("ReadAt(8192 at %d): %d bytes, want %d, equal %v", off, na, nb, bytes.Equal(a[:na], b[:nb]))
		}
	}
}
