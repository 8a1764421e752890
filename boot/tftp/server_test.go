package tftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	pintftp "github.com/pin/tftp/v3"

	"github.com/racklift/racklift/boot/ipxe"
	"github.com/racklift/racklift/provision/events"
)

func testFiles() fstest.MapFS {
	return fstest.MapFS{
		"undionly.kpxe":   {Data: pattern(100_003)},
		"exact.bin":       {Data: pattern(3 * 1428)}, // needs a final empty block at blksize 1428
		"empty":           {Data: nil},
		"dir/nested.txt":  {Data: []byte("nested\n")},
		"dir/other.bin":   {Data: pattern(513)},
		"tsize/limit.bin": {Data: pattern(70_000)},
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestFetch(t *testing.T) {
	files := testFiles()
	rec := newFakeRecorder()
	srv := startServer(t, &Server{Files: files, Rec: rec, Log: testLogger(t), Timeout: time.Second})

	tests := map[string]struct {
		name        string
		file        string
		blksize     int
		tsize       bool
		wantMAC     string
		wantPhase   events.Phase
		wantBlksize string
	}{
		"ipxe with mac, blksize 1428, tsize": {
			name: "52:54:00:12:34:56/undionly.kpxe", file: "undionly.kpxe", blksize: 1428, tsize: true,
			wantMAC: "52:54:00:12:34:56", wantPhase: events.PhaseIPXE, wantBlksize: "1428",
		},
		"blksize above cap is capped": {
			name: "52-54-00-AB-CD-EF/undionly.kpxe", file: "undionly.kpxe", blksize: 8192, tsize: true,
			wantMAC: "52:54:00:ab:cd:ef", wantPhase: events.PhaseIPXE, wantBlksize: strconv.Itoa(DefaultBlockSize),
		},
		"ipxe without mac stays PhaseNone": {
			name: "undionly.kpxe", file: "undionly.kpxe", wantBlksize: "512",
		},
		"exact multiple of blksize": {
			name: "exact.bin", file: "exact.bin", blksize: 1428, tsize: true, wantBlksize: "1428",
		},
		"empty file": {
			name: "empty", file: "empty", blksize: 1428, tsize: true, wantBlksize: "1428",
		},
		"nested with mac, not ipxe": {
			name: "52:54:00:12:34:56/dir/nested.txt", file: "dir/nested.txt", blksize: 1024,
			wantMAC: "52:54:00:12:34:56", wantBlksize: "1024",
		},
		"dot segments": {
			name: "./dir//other.bin", file: "dir/other.bin", tsize: true, wantBlksize: "512",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			want := files[tc.file].Data
			res, err := fetch(srv.addr, tc.name, tc.blksize, tc.tsize)
			if err != nil {
				t.Fatalf("fetch %q: %v", tc.name, err)
			}
			if !bytes.Equal(res.data, want) {
				t.Fatalf("fetch %q: got %d bytes, want %d (content differs)", tc.name, len(res.data), len(want))
			}
			// pin/tftp drops a tsize of 0 from the OACK, so only non-empty
			// files announce one.
			if tc.tsize && len(want) > 0 && (!res.hasTS || res.tsize != int64(len(want))) {
				t.Errorf("tsize = %d, %v; want %d", res.tsize, res.hasTS, len(want))
			}
			if !tc.tsize && res.hasTS {
				t.Errorf("tsize announced without being asked for")
			}
			checkEvent(t, rec.next(t), "tftp.start", tc.wantMAC, events.PhaseNone, map[string]string{
				"client_ip": "127.0.0.1", "file": tc.file, "size": strconv.Itoa(len(want)),
			})
			done := rec.next(t)
			checkEvent(t, done, "tftp.done", tc.wantMAC, tc.wantPhase, map[string]string{
				"client_ip": "127.0.0.1", "file": tc.file, "bytes": strconv.Itoa(len(want)),
			})
			checkBlksize(t, done, tc.wantBlksize)
			if _, err := strconv.Atoi(done.Attrs["duration_ms"]); err != nil {
				t.Errorf("duration_ms %q: %v", done.Attrs["duration_ms"], err)
			}
		})
	}
}

func TestFetchFailures(t *testing.T) {
	root := t.TempDir()
	pub := filepath.Join(root, "pub")
	if err := os.Mkdir(pub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "secret.txt"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pub, "extra.txt"), []byte("from extra\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := newFakeRecorder()
	srv := startServer(t, &Server{Files: testFiles(), Extra: os.DirFS(pub), Rec: rec, Log: testLogger(t), Timeout: time.Second})

	// Extra serves what Files lacks.
	res, err := fetch(srv.addr, "extra.txt", 0, true)
	if err != nil || string(res.data) != "from extra\n" {
		t.Fatalf("fetch extra.txt = %q, %v", res.data, err)
	}
	rec.next(t)
	rec.next(t)
	// A leading "/" names the root (the signed GRUB asks /grub/grub.cfg).
	res, err = fetch(srv.addr, "/extra.txt", 0, true)
	if err != nil || string(res.data) != "from extra\n" {
		t.Fatalf("fetch /extra.txt = %q, %v", res.data, err)
	}
	rec.next(t)
	rec.next(t)

	tests := map[string]struct {
		name    string
		wantMsg string
		wantMAC string
	}{
		"dotdot":              {name: "../secret.txt", wantMsg: "invalid file name"},
		"dotdot deep":         {name: "a/../../secret.txt", wantMsg: "invalid file name"},
		"mac then dotdot":     {name: "52:54:00:12:34:56/../../secret.txt", wantMsg: "invalid file name"},
		"absolute":            {name: "/etc/passwd", wantMsg: "etc/passwd: file does not exist"},
		"backslash":           {name: `..\secret.txt`, wantMsg: "invalid file name"},
		"missing":             {name: "missing.bin", wantMsg: "missing.bin: file does not exist"},
		"missing with mac":    {name: "52:54:00:12:34:56/nope.efi", wantMsg: "nope.efi: file does not exist", wantMAC: "52:54:00:12:34:56"},
		"directory":           {name: "dir", wantMsg: "dir: file does not exist"},
		"percent not decoded": {name: "%2e%2e/secret.txt", wantMsg: "file does not exist"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := fetch(srv.addr, tc.name, 1428, true)
			if err == nil {
				t.Fatalf("fetch %q succeeded", tc.name)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("fetch %q: error %q, want it to contain %q", tc.name, err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), root) {
				t.Errorf("fetch %q: error %q reveals a server path", tc.name, err)
			}
			checkEvent(t, rec.next(t), "tftp.start", tc.wantMAC, events.PhaseNone, map[string]string{"client_ip": "127.0.0.1"})
			failed := rec.next(t)
			checkEvent(t, failed, "tftp.failed", tc.wantMAC, events.PhaseNone, map[string]string{"client_ip": "127.0.0.1", "bytes": "0"})
			if !strings.Contains(failed.Attrs["reason"], tc.wantMsg) {
				t.Errorf("reason %q, want it to contain %q", failed.Attrs["reason"], tc.wantMsg)
			}
		})
	}
}

func TestWriteRefused(t *testing.T) {
	rec := newFakeRecorder()
	srv := startServer(t, &Server{Files: testFiles(), Rec: rec, Log: testLogger(t), Timeout: time.Second})
	c, err := pintftp.NewClient(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(time.Second)
	c.SetRetries(2)
	rf, err := c.Send("upload.bin", "octet")
	if err == nil {
		_, err = rf.ReadFrom(bytes.NewReader([]byte("data")))
	}
	if err == nil || !strings.Contains(err.Error(), "does not support write") {
		t.Fatalf("write: err = %v, want refusal", err)
	}
	// Writes produce no events; the next events belong to the next read.
	if _, err := fetch(srv.addr, "empty", 0, false); err != nil {
		t.Fatal(err)
	}
	checkEvent(t, rec.next(t), "tftp.start", "", events.PhaseNone, map[string]string{"file": "empty"})
}

// TestBadPacket sends garbage to the server port: pin/tftp's hook then
// reports a failure with an empty TransferStats, which records nothing.
func TestBadPacket(t *testing.T) {
	rec := newFakeRecorder()
	srv := startServer(t, &Server{Files: testFiles(), Rec: rec, Log: testLogger(t)})
	c, err := net.Dial("udp4", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range [][]byte{{0xff, 0xff, 1, 2}, {0, 1}, {0, 1, 0xff}} {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fetch(srv.addr, "dir/nested.txt", 0, false); err != nil {
		t.Fatal(err)
	}
	checkEvent(t, rec.next(t), "tftp.start", "", events.PhaseNone, map[string]string{"file": "dir/nested.txt"})
	checkEvent(t, rec.next(t), "tftp.done", "", events.PhaseNone, map[string]string{"file": "dir/nested.txt"})
}

func TestDefaultFilesAreIPXE(t *testing.T) {
	srv := startServer(t, &Server{Log: testLogger(t)})
	name, ok := ipxe.Bootfile(ipxe.BIOS)
	if !ok {
		t.Fatal("no BIOS bootfile")
	}
	want, err := fs.ReadFile(ipxe.FS(), name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fetch(srv.addr, "52:54:00:12:34:56/"+name, DefaultBlockSize, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.data, want) || res.tsize != int64(len(want)) {
		t.Fatalf("got %d bytes (tsize %d), want %d", len(res.data), res.tsize, len(want))
	}
}

func TestWithDefaults(t *testing.T) {
	tests := map[string]struct {
		in   Server
		want Server
	}{
		"zero": {
			want: Server{Timeout: DefaultTimeout, Retries: DefaultRetries, BlockSize: DefaultBlockSize},
		},
		"set": {
			in:   Server{Timeout: time.Second, Retries: 2, BlockSize: 1428},
			want: Server{Timeout: time.Second, Retries: 2, BlockSize: 1428},
		},
		"block size too small": {
			in:   Server{BlockSize: 512},
			want: Server{Timeout: DefaultTimeout, Retries: DefaultRetries, BlockSize: minBlockSize},
		},
		"block size too large": {
			in:   Server{BlockSize: 1 << 20},
			want: Server{Timeout: DefaultTimeout, Retries: DefaultRetries, BlockSize: maxBlockSize},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := tc.in.withDefaults()
			if got.Files == nil || got.Log == nil {
				t.Errorf("Files or Log not defaulted")
			}
			if got.Timeout != tc.want.Timeout || got.Retries != tc.want.Retries || got.BlockSize != tc.want.BlockSize {
				t.Errorf("withDefaults() = {Timeout:%v Retries:%d BlockSize:%d}, want {%v %d %d}",
					got.Timeout, got.Retries, got.BlockSize, tc.want.Timeout, tc.want.Retries, tc.want.BlockSize)
			}
		})
	}
}

func TestServeNilConn(t *testing.T) {
	if err := (&Server{}).Serve(t.Context(), nil); err == nil {
		t.Fatal("Serve(nil conn) = nil")
	}
}

// TestShutdown checks that Serve returns nil promptly on cancel, leaves no
// goroutine behind, and stops a transfer that is still running.
func TestShutdown(t *testing.T) {
	base := runtime.NumGoroutine()
	rec := newFakeRecorder()
	// Short timeouts bound the test if the abort path were broken.
	s := &Server{Files: testFiles(), Rec: rec, Log: testLogger(t), Timeout: 500 * time.Millisecond, Retries: 2}
	srv := startServer(t, s)

	if _, err := fetch(srv.addr, "dir/nested.txt", 0, false); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	rec.next(t)

	// Start a transfer by hand and stop after the first block.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	rrq := append([]byte{0, 1}, "52:54:00:12:34:56/undionly.kpxe\x00octet\x00"...)
	if _, err := c.WriteTo(rrq, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.port}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	n, tid, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4+512 || binary.BigEndian.Uint16(buf) != 3 || binary.BigEndian.Uint16(buf[2:]) != 1 {
		t.Fatalf("first packet: % x..., want DATA block 1", buf[:4])
	}
	checkEvent(t, rec.next(t), "tftp.start", "52:54:00:12:34:56", events.PhaseNone, nil)

	start := time.Now()
	srv.cancel()
	// ACK block 1: the server reads on, sees the shutdown and aborts.
	if _, err := c.WriteTo([]byte{0, 4, 0, 1}, tid); err != nil {
		t.Fatal(err)
	}
	n, _, err = c.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint16(buf) != 5 || !strings.Contains(string(buf[4:n]), "server shutting down") {
		t.Fatalf("after shutdown got % x %q, want ERROR server shutting down", buf[:4], buf[4:n])
	}
	if err := srv.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Serve took %v to return after cancel", d)
	}
	failed := rec.next(t)
	checkEvent(t, failed, "tftp.failed", "52:54:00:12:34:56", events.PhaseNone, map[string]string{
		"reason": "server shutting down", "bytes": "512",
	})

	// New requests are no longer answered.
	if _, err := c.WriteTo(rrq, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.port}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadFrom(buf); err == nil {
		t.Error("request answered after shutdown")
	}
	waitGoroutines(t, base)
}

func TestShutdownIdle(t *testing.T) {
	base := runtime.NumGoroutine()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- (&Server{Files: testFiles()}).Serve(ctx, conn) }()
	// Serve is running once a request is answered.
	if _, err := fetch(conn.LocalAddr().String(), "empty", 0, false); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not return within 2s of cancel")
	}
	waitGoroutines(t, base)
}
