package media

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
)

// Names used by the test tree.
const (
	longName  = "A Very Long File Name With Spaces and MixedCase that goes on and on-and-on.txt"
	deepDir   = "d1/d2/d3/d4/d5/d6/d7/d8/d9/d10"
	deepFile  = deepDir + "/deep.txt"
	bigFile   = "big.bin"
	bigSize   = 5<<20 + 123
	emptyFile = "empty"
)

// hugeName needs more than one directory record's System Use area, so its NM
// entry goes to a SUSP continuation area (CE).
func hugeName() string { return strings.Repeat("n", 200) + ".txt" }

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeTree writes the test tree under dir and returns the regular files it
// wrote (slash paths to contents). With links it also writes two symbolic
// links and a file whose name needs a Rock Ridge continuation area.
func writeTree(t testing.TB, dir string, links bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"readme.txt":            []byte("hello, racklift\n"),
		emptyFile:               nil,
		bigFile:                 randBytes(1, bigSize),
		"docs/" + longName:      []byte("long\n"),
		deepFile:                []byte("deep\n"),
		"sub/dir/nested.cfg":    []byte("a=b\n"),
		"sub/UPPER-lower.Mixed": []byte("case\n"),
	}
	if links {
		files["docs/"+hugeName()] = []byte("huge name\n")
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if links {
		if err := os.Symlink("../readme.txt", filepath.Join(dir, "docs", "link.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("d1/d2", filepath.Join(dir, "dirlink")); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// needXorriso skips the test when xorriso is missing.
func needXorriso(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		testbed.SkipOrFail(t, "xorriso not installed (Debian package xorriso): skipping tests that build real ISO images")
	}
}

// xorriso runs xorriso with args (which contain "OUT" where the image path
// goes) and returns the image path.
func xorriso(t testing.TB, args ...string) string {
	t.Helper()
	needXorriso(t)
	out := filepath.Join(t.TempDir(), "test.iso")
	for i, a := range args {
		if a == "OUT" {
			args[i] = out
		}
	}
	cmd := exec.Command("xorriso", args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// mkisofs builds an image of src with xorriso's mkisofs emulation.
func mkisofs(t testing.TB, src string, opts ...string) string {
	t.Helper()
	args := append([]string{"-as", "mkisofs", "-quiet"}, opts...)
	return xorriso(t, append(args, "-o", "OUT", src)...)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return fmt.Sprintf("%x", h[:8])
}

// serve returns a test server that serves fsys with http.ServeContent, the
// way racklift's media handler does.
func serve(t testing.TB, fsys fs.FS) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		f, err := fsys.Open(name)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		rs, ok := f.(io.ReadSeeker)
		if !ok {
			http.Error(w, "not seekable", http.StatusInternalServerError)
			return
		}
		http.ServeContent(w, r, st.Name(), st.ModTime(), rs)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// checkRanges requests name from srv with GET, Range and HEAD and compares
// the answers with want.
func checkRanges(t *testing.T, srv *httptest.Server, name string, want []byte) {
	t.Helper()
	size := len(want)
	tests := []struct {
		method, rng  string
		status       int
		contentRange string
		body         []byte
	}{
		{"GET", "", http.StatusOK, "", want},
		{"GET", "bytes=0-0", http.StatusPartialContent, fmt.Sprintf("bytes 0-0/%d", size), want[:1]},
		{"GET", "bytes=1000-2999", http.StatusPartialContent, fmt.Sprintf("bytes 1000-2999/%d", size), want[1000:3000]},
		{"GET", "bytes=-500", http.StatusPartialContent, fmt.Sprintf("bytes %d-%d/%d", size-500, size-1, size), want[size-500:]},
		{"GET", fmt.Sprintf("bytes=%d-", size-3000), http.StatusPartialContent, fmt.Sprintf("bytes %d-%d/%d", size-3000, size-1, size), want[size-3000:]},
		{"GET", fmt.Sprintf("bytes=%d-", size+10), http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf("bytes */%d", size), nil},
		{"HEAD", "", http.StatusOK, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.rng, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/"+name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.rng != "" {
				req.Header.Set("Range", tt.rng)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Range"); got != tt.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tt.contentRange)
			}
			if tt.status == http.StatusRequestedRangeNotSatisfiable {
				return
			}
			if tt.method == "HEAD" {
				if resp.ContentLength != int64(size) || len(body) != 0 {
					t.Errorf("HEAD: Content-Length %d body %d bytes, want %d and 0", resp.ContentLength, len(body), size)
				}
				if resp.Header.Get("Accept-Ranges") != "bytes" {
					t.Errorf("HEAD: no Accept-Ranges: bytes")
				}
				return
			}
			if !bytes.Equal(body, tt.body) {
				t.Errorf("body %d bytes sha %s, want %d bytes sha %s", len(body), sum(body), len(tt.body), sum(tt.body))
			}
		})
	}
	t.Run("If-Modified-Since", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		lm := resp.Header.Get("Last-Modified")
		if lm == "" {
			t.Fatal("no Last-Modified")
		}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/"+name, nil)
		req.Header.Set("If-Modified-Since", lm)
		resp, err = srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("status %d, want 304", resp.StatusCode)
		}
	})
}

// checkTree compares the regular files of fsys with want (names, sizes,
// contents) and the modification times with the source tree at src.
func checkTree(t *testing.T, fsys fs.FS, want map[string][]byte, src string) {
	t.Helper()
	got := map[string]bool{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			got[p] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("WalkDir: %v", err)
	}
	for name, data := range want {
		if !got[name] {
			t.Errorf("%s: missing (have %v)", name, keys(got))
			continue
		}
		delete(got, name)
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(b, data) {
			t.Errorf("%s: %d bytes sha %s, want %d bytes sha %s", name, len(b), sum(b), len(data), sum(data))
		}
		st, err := fs.Stat(fsys, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != int64(len(data)) {
			t.Errorf("%s: Stat size %d, want %d", name, st.Size(), len(data))
		}
		if src != "" {
			sst, err := os.Stat(filepath.Join(src, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			if d := st.ModTime().Sub(sst.ModTime()); d < -time.Second || d > time.Second {
				t.Errorf("%s: ModTime %v, want %v", name, st.ModTime(), sst.ModTime())
			}
		}
	}
	for name := range got {
		t.Errorf("%s: unexpected file", name)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
