package bmc

import (
	"errors"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
)

// udpPeer listens on 127.0.0.1 and, if answer is set, replies to every
// datagram with an RMCP header, as a BMC does.
func udpPeer(t *testing.T, answer bool) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer && n >= 4 {
				_, _ = pc.WriteTo([]byte{0x06, 0x00, 0xff, 0x07, 0x00}, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestIPMIAnswers(t *testing.T) {
	ctx := t.Context()
	if !ipmiAnswers(ctx, udpPeer(t, true), time.Second) {
		t.Error("answering peer not seen")
	}
	start := time.Now()
	if ipmiAnswers(ctx, udpPeer(t, false), 200*time.Millisecond) {
		t.Error("silent peer seen")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("silent probe took %v", d)
	}
	// A closed port answers with ICMP port unreachable: refused at once.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	start = time.Now()
	if ipmiAnswers(ctx, closed, 5*time.Second) {
		t.Error("closed port seen")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("closed-port probe took %v", d)
	}
}

func TestRefineIPMI(t *testing.T) {
	sess := &Error{Node: "n", Op: "open", Kind: KindUnreachable, Err: errors.New("Error: Unable to establish IPMI v2 / RMCP+ session")}
	if k := Kind(refineIPMI(t.Context(), udpPeer(t, true), time.Second, sess)); k != KindAuth {
		t.Errorf("answering BMC + session failure: %v, want auth", k)
	}
	if k := Kind(refineIPMI(t.Context(), udpPeer(t, false), 100*time.Millisecond, sess)); k != KindUnreachable {
		t.Errorf("silent BMC: %v, want unreachable", k)
	}
	other := &Error{Kind: KindUnreachable, Err: errors.New("connection refused")}
	if got := refineIPMI(t.Context(), udpPeer(t, true), time.Second, other); got != error(other) {
		t.Errorf("non-session error changed: %v", got)
	}
}

// TestIPMISilentBMCUnreachable drives the adapter at a UDP port that takes
// packets but never answers (a dead BMC behind a switch): Open must fail
// fast as unreachable, without waiting for ipmitool's own timeouts.
func TestIPMISilentBMCUnreachable(t *testing.T) {
	if _, err := exec.LookPath("ipmitool"); err != nil {
		testbed.SkipOrFail(t, "ipmitool not installed")
	}
	host, port, _ := net.SplitHostPort(udpPeer(t, false))
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	c := NewBMCLib(Target{Node: "silent", Address: host, Port: p, Driver: DriverIPMI, User: "admin", Password: "pw"},
		Options{PerCallTimeout: 300 * time.Millisecond, Retry: Retry{Attempts: 2, Base: time.Millisecond}})
	start := time.Now()
	err = c.Open(t.Context())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("open: %v (kind %v), want unreachable", err, Kind(err))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Errorf("close after failed open: %v", err)
	}
}
