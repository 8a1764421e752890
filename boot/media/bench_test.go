package media

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkISORead64MiB downloads a 64 MiB file over loopback HTTP, once
// from an ISO image through http.ServeContent (the way racklift serves
// media) and once from the file system through http.ServeFile (which can use
// sendfile(2)), and reports MB/s for each.
func BenchmarkISORead64MiB(b *testing.B) {
	needXorriso(b)
	const size = 64 << 20
	src := b.TempDir()
	big := filepath.Join(src, "big.bin")
	if err := os.WriteFile(big, randBytes(64, size), 0o644); err != nil {
		b.Fatal(err)
	}
	x := openISO(b, mkisofs(b, src, "-R", "-J"))
	isoSrv := serve(b, x)
	fileSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, big)
	}))
	b.Cleanup(fileSrv.Close)

	for _, bb := range []struct {
		name string
		srv  *httptest.Server
	}{
		{"iso-ServeContent", isoSrv},
		{"file-ServeFile", fileSrv},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				resp, err := bb.srv.Client().Get(bb.srv.URL + "/big.bin")
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != size {
					b.Fatalf("read %d bytes, %v; want %d", n, err, size)
				}
			}
		})
	}
}
