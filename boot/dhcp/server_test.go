package dhcp

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// toPeer answers to the request's source, so loopback tests can receive
// replies that would otherwise be broadcast to port 68.
type toPeer struct{ h Handler }

func (p toPeer) ServeDHCP(ctx context.Context, req *dhcpv4.DHCPv4, peer net.Addr) (*dhcpv4.DHCPv4, net.Addr) {
	reply, _ := p.h.ServeDHCP(ctx, req, peer)
	return reply, peer
}

func startServer(t *testing.T, h Handler, maxInFlight int) (net.Addr, func() error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	s := &Server{Conn: conn, Handler: h, Log: discardLog(), MaxInFlight: maxInFlight}
	go func() { done <- s.Serve(ctx) }()
	var (
		once    sync.Once
		stopErr error
	)
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(5 * time.Second):
				stopErr = errors.New("Serve did not return after cancel")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return conn.LocalAddr(), stop
}

func exchange(t *testing.T, srv net.Addr, req []byte) *dhcpv4.DHCPv4 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo(req, srv); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	reply, err := dhcpv4.FromBytes(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

func TestServeLoopback(t *testing.T) {
	r, rec, _ := newTestResponder(t, testConfig(Proxy))
	srv, stop := startServer(t, toPeer{r}, 0)

	// Garbage first: it must neither crash the loop nor get a reply.
	g, err := net.Dial("udp4", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, junk := range [][]byte{{}, {1}, make([]byte, 240), []byte("not dhcp at all, not at all, not at all")} {
		_, _ = g.Write(junk)
	}
	g.Close()

	req := build(t, macPlan, dhcpv4.MessageTypeDiscover, clientKinds["efi-x64-arch7"]...)
	reply := exchange(t, srv, req.ToBytes())
	if reply.MessageType() != dhcpv4.MessageTypeOffer || reply.BootFileName != "52:54:00:00:00:01/snponly.efi" ||
		reply.TransactionID != req.TransactionID {
		t.Fatalf("reply:\n%s", reply.Summary())
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v after cancel, want nil", err)
	}
	if evs := rec.events(); len(evs) != 1 || evs[0].Type != "dhcp.offer" {
		t.Errorf("events = %+v", evs)
	}
}

func TestServeProxyPXELoopback(t *testing.T) {
	r, _, _ := newTestResponder(t, testConfig(Proxy))
	srv, _ := startServer(t, r.ProxyPXE(), 0) // port 4011 handler: replies to the source itself
	req := build(t, macPlan, dhcpv4.MessageTypeRequest, append(clientKinds["bios-pxe"],
		dhcpv4.WithClientIP(net.IPv4(127, 0, 0, 1)), dhcpv4.WithBroadcast(false))...)
	reply := exchange(t, srv, req.ToBytes())
	if reply.MessageType() != dhcpv4.MessageTypeAck || reply.BootFileName != "52:54:00:00:00:01/undionly.kpxe" ||
		!reply.ServerIPAddr.Equal(serverIP) || !reply.YourIPAddr.IsUnspecified() {
		t.Fatalf("reply:\n%s", reply.Summary())
	}
}

// blocking counts concurrent calls and blocks each until released.
type blocking struct {
	in, max atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) ServeDHCP(ctx context.Context, _ *dhcpv4.DHCPv4, _ net.Addr) (*dhcpv4.DHCPv4, net.Addr) {
	n := b.in.Add(1)
	defer b.in.Add(-1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			break
		}
	}
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil, nil
}

func TestServeBoundedConcurrency(t *testing.T) {
	b := &blocking{entered: make(chan struct{}, 16), release: make(chan struct{})}
	srv, stop := startServer(t, b, 2)
	c, err := net.Dial("udp4", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := build(t, macPlan, dhcpv4.MessageTypeDiscover).ToBytes()
	for range 6 {
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		<-b.entered
	}
	close(b.release) // let everything through
	for range 4 {
		<-b.entered
	}
	if m := b.max.Load(); m > 2 {
		t.Errorf("max concurrent handlers = %d, want <= 2", m)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeNeedsConnAndHandler(t *testing.T) {
	if err := (&Server{}).Serve(t.Context()); err == nil {
		t.Error("Serve without Conn succeeded")
	}
}

func TestServeConnClosedElsewhere(t *testing.T) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- (&Server{Conn: conn, Handler: &blocking{}, Log: discardLog()}).Serve(t.Context()) }()
	conn.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve returned nil after its conn was closed without cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// fuzzSeeds are realistic packets for the fuzz corpus.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	add := func(mac net.HardwareAddr, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) {
		all := append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(mt), dhcpv4.WithTransactionID(testXID)}, mods...)
		d, err := dhcpv4.New(all...)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, d.ToBytes())
	}
	for _, kind := range []string{"bios-pxe", "efi-x64-arch7", "http-x64-arch16", "ipxe-bios", "plain", "bios-pxe-empty-guid"} {
		add(macPlan, dhcpv4.MessageTypeDiscover, clientKinds[kind]...)
		add(macUnknown, dhcpv4.MessageTypeDiscover, clientKinds[kind]...)
	}
	add(macPlan, dhcpv4.MessageTypeRequest, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP)),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 11))))
	add(macPlan, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 254, 0, 12)))
	add(macPlan, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(net.IPv4(10, 254, 0, 11)))
	add(macPlan, dhcpv4.MessageTypeDecline, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 11))))
	add(net.HardwareAddr{}, dhcpv4.MessageTypeRelease)
	return seeds
}

// TestWriteFuzzCorpus keeps testdata/fuzz/FuzzProcess in sync with
// fuzzSeeds when run with -update.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the fuzz seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzProcess")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(t) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, "seed-"+strconv.Itoa(i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzProcess drives parse + decide + destination with arbitrary bytes in
// every mode: nothing may panic. Run: go test -fuzz FuzzProcess ./boot/dhcp/
func FuzzProcess(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	proxy, err := NewResponder(testConfig(Proxy), testHosts(), &fakeRecorder{}, discardLog())
	if err != nil {
		f.Fatal(err)
	}
	acfg := testConfig(Authoritative)
	acfg.Dynamic = &Pool{Start: net.IPv4(10, 254, 0, 100), End: net.IPv4(10, 254, 0, 110), Mask: net.CIDRMask(24, 32)}
	auth, err := NewResponder(acfg, testHosts(), &fakeRecorder{}, discardLog())
	if err != nil {
		f.Fatal(err)
	}
	servers := []*Server{{Handler: proxy}, {Handler: auth}, {Handler: proxy.ProxyPXE()}}
	peer := &net.UDPAddr{IP: net.IPv4(10, 254, 0, 50), Port: 68}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, s := range servers {
			reply, dst, _ := s.process(t.Context(), discardLog(), pkt, peer, 1)
			if reply != nil {
				if dst == nil {
					t.Fatal("reply without destination")
				}
				_ = reply.ToBytes()
			}
		}
	})
}
