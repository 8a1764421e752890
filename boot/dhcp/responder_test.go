package dhcp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklift/racklift/provision/events"
)

// fakeRecorder keeps events in memory.
type fakeRecorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (f *fakeRecorder) Record(_ context.Context, ev events.Event) (events.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev.ID = int64(len(f.evs) + 1)
	f.evs = append(f.evs, ev)
	return ev, nil
}

func (f *fakeRecorder) events() []events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Event(nil), f.evs...)
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeClock is a settable clock for Responder.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestResponder(t *testing.T, cfg Config) (*Responder, *fakeRecorder, *fakeClock) {
	t.Helper()
	rec := &fakeRecorder{}
	r, err := NewResponder(cfg, testHosts(), rec, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC)}
	r.now = clk.now
	return r, rec, clk
}

func TestResponderEvents(t *testing.T) {
	r, rec, _ := newTestResponder(t, testConfig(Proxy))
	req := build(t, macPlan, dhcpv4.MessageTypeDiscover, clientKinds["bios-pxe"]...)
	reply, dst := r.ServeDHCP(t.Context(), req, &net.UDPAddr{IP: net.IPv4zero, Port: 68})
	if reply == nil || dst != nil {
		t.Fatalf("reply=%v dst=%v", reply, dst)
	}
	evs := rec.events()
	if len(evs) != 1 {
		t.Fatalf("events = %+v", evs)
	}
	ev := evs[0]
	want := map[string]string{"firmware": "bios", "arch": "0", "reason": "PXE client in plan", "mode": "proxy", "msg": "DISCOVER",
		"file": "52:54:00:00:00:01/undionly.kpxe"}
	for k, v := range want {
		if ev.Attrs[k] != v {
			t.Errorf("attr %s = %q, want %q", k, ev.Attrs[k], v)
		}
	}
	if ev.Type != "dhcp.offer" || ev.Source != events.SourceDHCP || ev.Phase != events.PhaseDHCP ||
		ev.Node != "cs-compute-0001" || ev.MAC != "52:54:00:00:00:01" || ev.Detail == "" || ev.At.IsZero() {
		t.Errorf("event = %+v", ev)
	}
}

func TestResponderAuthoritativeEvents(t *testing.T) {
	r, rec, _ := newTestResponder(t, testConfig(Authoritative))
	// A plan node's installed OS renewing: ack, but no phase change.
	req := build(t, macPlan, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 254, 0, 11)))
	if reply, _ := r.ServeDHCP(t.Context(), req, nil); reply == nil || reply.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("reply = %v", reply)
	}
	req = build(t, macPlan, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 9, 9, 9)))
	if reply, _ := r.ServeDHCP(t.Context(), req, nil); reply == nil || reply.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("reply = %v", reply)
	}
	evs := rec.events()
	if len(evs) != 2 {
		t.Fatalf("events = %+v", evs)
	}
	if evs[0].Type != "dhcp.ack" || evs[0].Phase != events.PhaseNone || evs[0].Attrs["ip"] != "10.254.0.11" || evs[0].Attrs["no_boot"] != "not a PXE client" {
		t.Errorf("ack event = %+v", evs[0])
	}
	if evs[1].Type != "dhcp.nak" || evs[1].Phase != events.PhaseNone || evs[1].Node != "cs-compute-0001" {
		t.Errorf("nak event = %+v", evs[1])
	}
}

func TestIgnoreEventsRateLimited(t *testing.T) {
	cfg := testConfig(Proxy)
	cfg.MaxIgnoreMACs = 3
	r, rec, clk := newTestResponder(t, cfg)
	send := func(mac net.HardwareAddr) {
		req := build(t, mac, dhcpv4.MessageTypeDiscover, clientKinds["plain"]...)
		if reply, _ := r.ServeDHCP(t.Context(), req, nil); reply != nil {
			t.Fatalf("unexpected reply %v", reply)
		}
	}
	for range 10 {
		send(macUnknown)
	}
	if n := len(rec.events()); n != 1 {
		t.Fatalf("%d ignore events for one MAC in one period, want 1", n)
	}
	clk.add(31 * time.Second)
	send(macUnknown)
	if n := len(rec.events()); n != 2 {
		t.Fatalf("%d events after the period, want 2", n)
	}
	// The table is bounded: with 3 MACs remembered and none expired, a 4th
	// new MAC gets no event.
	for i := range 5 {
		send(net.HardwareAddr{2, 0, 0, 0, 0, byte(i)})
	}
	if n := len(r.ignores.last); n > 3 {
		t.Fatalf("limiter holds %d MACs, max 3", n)
	}
	if n := len(rec.events()); n != 4 {
		t.Fatalf("%d events, want 4", n)
	}
	ev := rec.events()[0]
	if ev.Type != "dhcp.ignore" || ev.Phase != events.PhaseNone || ev.Attrs["reason"] != "MAC not in plan" {
		t.Errorf("ignore event = %+v", ev)
	}
}

func TestDynamicPool(t *testing.T) {
	cfg := testConfig(Authoritative)
	cfg.Dynamic = &Pool{Start: net.IPv4(10, 254, 0, 200), End: net.IPv4(10, 254, 0, 201), Mask: net.CIDRMask(24, 32)}
	r, _, clk := newTestResponder(t, cfg)
	ctx := t.Context()
	macs := []net.HardwareAddr{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3}}

	offer := func(mac net.HardwareAddr) *dhcpv4.DHCPv4 {
		reply, _ := r.ServeDHCP(ctx, build(t, mac, dhcpv4.MessageTypeDiscover, clientKinds["bios-pxe"]...), nil)
		return reply
	}
	o1 := offer(macs[0])
	if o1 == nil || !o1.YourIPAddr.Equal(net.IPv4(10, 254, 0, 200)) || o1.BootFileName != "" {
		t.Fatalf("offer 1 = %v", o1)
	}
	if o := offer(macs[0]); o == nil || !o.YourIPAddr.Equal(o1.YourIPAddr) {
		t.Fatalf("repeat offer = %v", o)
	}
	ack, _ := r.ServeDHCP(ctx, build(t, macs[0], dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP)), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(o1.YourIPAddr))), nil)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("ack = %v", ack)
	}
	// A wrong request from a non-plan MAC is ignored, not NAKed.
	if reply, _ := r.ServeDHCP(ctx, build(t, macs[0], dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 99)))), nil); reply != nil {
		t.Fatalf("reply to wrong request = %v", reply)
	}
	if o := offer(macs[1]); o == nil || !o.YourIPAddr.Equal(net.IPv4(10, 254, 0, 201)) {
		t.Fatalf("offer 2 = %v", o)
	}
	if o := offer(macs[2]); o != nil {
		t.Fatalf("pool of 2 gave a 3rd offer %v", o)
	}
	// The unacknowledged offer to macs[1] expires; macs[2] gets it.
	clk.add(2 * time.Minute)
	if o := offer(macs[2]); o == nil || !o.YourIPAddr.Equal(net.IPv4(10, 254, 0, 201)) {
		t.Fatalf("offer after expiry = %v", o)
	}
	// macs[0] releases; macs[1] gets .200.
	r.ServeDHCP(ctx, build(t, macs[0], dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(o1.YourIPAddr)), nil)
	if o := offer(macs[1]); o == nil || !o.YourIPAddr.Equal(net.IPv4(10, 254, 0, 200)) {
		t.Fatalf("offer after release = %v", o)
	}
	// macs[1] declines .200: it is held back, so nothing is left.
	r.ServeDHCP(ctx, build(t, macs[1], dhcpv4.MessageTypeDecline, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 200)))), nil)
	if o := offer(macs[1]); o != nil {
		t.Fatalf("offer after decline = %v", o)
	}
}

func TestNewResponderErrors(t *testing.T) {
	if _, err := NewResponder(Config{}, testHosts(), nil, nil); err == nil {
		t.Error("empty config accepted")
	}
	if _, err := NewResponder(testConfig(Proxy), nil, nil, nil); err == nil {
		t.Error("nil hosts accepted")
	}
}

// TestReportsClientAddresses: every packet of a plan MAC that names the
// address the client has or asks for is recorded on the node's timeline
// with client_ip (proxy mode ignores the installer's own DHCP, yet the
// orchestrator needs that address to bind the node's install files).
func TestReportsClientAddresses(t *testing.T) {
	r, rec, clk := newTestResponder(t, Config{Mode: Proxy, Boot: BootConfig{ServerIP: net.IPv4(10, 254, 0, 1), HTTPBase: "http://10.254.0.1:8080"}})
	site := net.IPv4(10, 254, 0, 2)
	req, err := dhcpv4.NewDiscovery(macPlan)
	if err != nil {
		t.Fatal(err)
	}
	req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	req.UpdateOption(dhcpv4.OptServerIdentifier(site))
	req.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 77)))
	r.ServeDHCP(context.Background(), req, &net.UDPAddr{IP: net.IPv4zero, Port: 68})
	// The same request again within the ignore period is not recorded
	// again; a request naming another address is.
	r.ServeDHCP(context.Background(), req, &net.UDPAddr{IP: net.IPv4zero, Port: 68})
	clk.add(time.Second)
	req.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 78)))
	r.ServeDHCP(context.Background(), req, &net.UDPAddr{IP: net.IPv4zero, Port: 68})
	// Port 4011: the source address is the client's.
	pxeReq, _ := dhcpv4.NewDiscovery(macPlan)
	pxeReq.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	r.ProxyPXE().ServeDHCP(context.Background(), pxeReq, &net.UDPAddr{IP: net.IPv4(10, 254, 0, 79), Port: 4011})
	// A MAC not in the plan is recorded without a node.
	stray, _ := dhcpv4.NewDiscovery(net.HardwareAddr{0x52, 0x54, 0, 0xee, 0xee, 0xee})
	stray.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	stray.UpdateOption(dhcpv4.OptServerIdentifier(site))
	stray.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 80)))
	r.ServeDHCP(context.Background(), stray, &net.UDPAddr{IP: net.IPv4zero, Port: 68})

	var got []string
	for _, ev := range rec.events() {
		got = append(got, ev.Node+"@"+ev.Attrs["client_ip"])
	}
	want := []string{"cs-compute-0001@10.254.0.77", "cs-compute-0001@10.254.0.78", "cs-compute-0001@10.254.0.79", "@10.254.0.80"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %s, want %s", i, got[i], want[i])
		}
	}
	// A relayed packet's source is the relay, not the client.
	relayed, _ := dhcpv4.NewDiscovery(macPlan)
	relayed.GatewayIPAddr = net.IPv4(10, 1, 2, 1)
	if ip := clientIP(relayed, &net.UDPAddr{IP: net.IPv4(10, 1, 2, 1), Port: 67}); ip != nil {
		t.Errorf("relayed DISCOVER: client IP %v, want none", ip)
	}
}
