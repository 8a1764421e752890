//go:build integration

package tftp

// Real TFTP clients against Serve on loopback:
//
//	go test -tags integration ./boot/tftp/
//
// Needs curl and atftp (apt-get install curl atftp); a missing tool skips
// its test.

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/racklift/racklift/boot/ipxe"
	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/events"
)

// peerFiles is what the peers fetch: the embedded iPXE binaries (Files
// default) plus test data in Extra.
func peerFiles() fstest.MapFS {
	return fstest.MapFS{
		"data/1mib.bin":  {Data: pattern(1 << 20)},
		"data/exact.bin": {Data: pattern(4 * 1428)},
		"data/small.txt": {Data: []byte("hello from racklift\n")},
	}
}

// wantFile returns the bytes Serve should send for file.
func wantFile(t *testing.T, extra fs.FS, file string) []byte {
	t.Helper()
	b, err := fs.ReadFile(ipxe.FS(), file)
	if err != nil {
		b, err = fs.ReadFile(extra, file)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		testbed.SkipOrFail(t, "%s not installed (apt-get install %s): %v", name, name, err)
	}
	return p
}

// run runs a peer with a 60 s bound and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

type peerCase struct {
	request string // as the client sends it
	file    string // name in the served FS
	mac     string
	phase   events.Phase
}

var peerCases = []peerCase{
	{request: "52:54:00:12:34:56/undionly.kpxe", file: "undionly.kpxe", mac: "52:54:00:12:34:56", phase: events.PhaseIPXE},
	{request: "52-54-00-12-34-57/snponly.efi", file: "snponly.efi", mac: "52:54:00:12:34:57", phase: events.PhaseIPXE},
	{request: "ipxe.efi", file: "ipxe.efi"},
	{request: "data/1mib.bin", file: "data/1mib.bin"},
	{request: "data/exact.bin", file: "data/exact.bin"},
	{request: "data/small.txt", file: "data/small.txt"},
}

// checkPeerEvents reads the start and done events of one fetch.
func checkPeerEvents(t *testing.T, rec *fakeRecorder, c peerCase, size int) {
	t.Helper()
	checkEvent(t, rec.next(t), "tftp.start", c.mac, events.PhaseNone, map[string]string{"file": c.file})
	done := rec.next(t)
	checkEvent(t, done, "tftp.done", c.mac, c.phase, map[string]string{
		"file": c.file, "bytes": strconv.Itoa(size), "client_ip": "127.0.0.1",
	})
	checkBlksize(t, done, "1428")
}

func TestCurl(t *testing.T) {
	curl := lookTool(t, "curl")
	extra := peerFiles()
	rec := newFakeRecorder()
	srv := startServer(t, &Server{Extra: extra, Rec: rec, Log: testLogger(t), Timeout: 2 * time.Second})
	dir := t.TempDir()
	base := "tftp://127.0.0.1:" + strconv.Itoa(srv.port) + "/"

	for i, c := range peerCases {
		t.Run(c.request, func(t *testing.T) {
			out := filepath.Join(dir, strconv.Itoa(i))
			msg, err := run(t, curl, "-sS", "--max-time", "30", "--tftp-blksize", "1428", "-o", out, base+c.request)
			if err != nil {
				t.Fatalf("curl %s: %v\n%s", c.request, err, msg)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want := wantFile(t, extra, c.file)
			if !bytes.Equal(got, want) {
				t.Fatalf("curl %s: got %d bytes, want %d (content differs)", c.request, len(got), len(want))
			}
			checkPeerEvents(t, rec, c, len(want))
		})
	}

	for _, bad := range []string{"../../../../etc/passwd", "52:54:00:12:34:56/../../etc/passwd", "data/../../etc/passwd"} {
		t.Run("traversal "+bad, func(t *testing.T) {
			out := filepath.Join(dir, "bad")
			_ = os.Remove(out)
			// --path-as-is: otherwise curl itself removes the dot segments.
			msg, err := run(t, curl, "-sS", "--max-time", "30", "--path-as-is", "--tftp-blksize", "1428", "-o", out, base+bad)
			if err == nil {
				t.Fatalf("curl %s succeeded: %s", bad, msg)
			}
			if b, _ := os.ReadFile(out); len(b) > 0 {
				t.Fatalf("curl %s wrote %d bytes", bad, len(b))
			}
			t.Logf("curl refused as expected: %v: %s", err, strings.TrimSpace(msg))
			checkEvent(t, rec.next(t), "tftp.start", "", events.PhaseNone, nil)
			failed := rec.next(t)
			checkEvent(t, failed, "tftp.failed", "", events.PhaseNone, nil)
			if !strings.Contains(failed.Attrs["reason"], "invalid file name") {
				t.Errorf("reason %q", failed.Attrs["reason"])
			}
		})
	}
}

func TestAtftp(t *testing.T) {
	atftp := lookTool(t, "atftp")
	extra := peerFiles()
	rec := newFakeRecorder()
	srv := startServer(t, &Server{Extra: extra, Rec: rec, Log: testLogger(t), Timeout: 2 * time.Second})
	dir := t.TempDir()
	port := strconv.Itoa(srv.port)

	for i, c := range peerCases {
		t.Run(c.request, func(t *testing.T) {
			out := filepath.Join(dir, strconv.Itoa(i))
			msg, err := run(t, atftp, "--option", "blksize 1428", "--option", "tsize 0",
				"--get", "-r", c.request, "-l", out, "127.0.0.1", port)
			if err != nil {
				t.Fatalf("atftp %s: %v\n%s", c.request, err, msg)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want := wantFile(t, extra, c.file)
			if !bytes.Equal(got, want) {
				t.Fatalf("atftp %s: got %d bytes, want %d (content differs)", c.request, len(got), len(want))
			}
			checkPeerEvents(t, rec, c, len(want))
		})
	}

	t.Run("traversal", func(t *testing.T) {
		out := filepath.Join(dir, "bad")
		msg, err := run(t, atftp, "--option", "blksize 1428", "--get", "-r", "../../../../etc/passwd", "-l", out, "127.0.0.1", port)
		if b, _ := os.ReadFile(out); err == nil && len(b) > 0 {
			t.Fatalf("atftp traversal fetched %d bytes: %s", len(b), msg)
		}
		t.Logf("atftp refused: %v: %s", err, strings.TrimSpace(msg))
		checkEvent(t, rec.next(t), "tftp.start", "", events.PhaseNone, nil)
		checkEvent(t, rec.next(t), "tftp.failed", "", events.PhaseNone, map[string]string{})
	})
}
