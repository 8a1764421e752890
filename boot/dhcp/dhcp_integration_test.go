//go:build integration

package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

var (
	itPlanMAC      = net.HardwareAddr{0x52, 0x54, 0x00, 0xaa, 0x00, 0x01}
	itInstalledMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0xaa, 0x00, 0x02}
	itUnknownMAC   = net.HardwareAddr{0x52, 0x54, 0x00, 0xbb, 0x00, 0x09}
)

// udhcpc options that make it pose as each client kind.
var (
	asBIOSPXE = []string{"-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000", "-x", "0x5e:010201",
		"-x", "0x61:00a1a2a3a4a5a6a7a8a9aaabacadaeafb0"}
	asUEFIPXE = []string{"-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "0x5d:0007", "-x", "0x5e:010310"}
	asIPXE    = []string{"-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000", "-x", "0x4d:69505845"} // 77 = "iPXE"
	asHTTP    = []string{"-V", "HTTPClient:Arch:00016:UNDI:003001", "-x", "0x5d:0010"}
)

func (n *testNet) hosts() hostsMap {
	base := Host{Mask: net.CIDRMask(24, 32), Gateway: n.ip(254), DNS: []net.IP{n.ip(53)}, Domain: "it.example", MTU: 1500}
	plan, inst := base, base
	plan.Node, plan.IP = "cs-compute-0001", n.ip(11)
	inst.Node, inst.IP, inst.Installed = "cs-compute-0002", n.ip(12), true
	return hostsMap{itPlanMAC.String(): plan, itInstalledMAC.String(): inst}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer runs racklift's DHCP server (port 67) and PXE server (port
// 4011) bound to the server side of n, and stops them at cleanup.
func (n *testNet) startServer(t *testing.T, mode Mode) *fakeRecorder {
	t.Helper()
	rec := &fakeRecorder{}
	log := testLogger(t)
	r, err := NewResponder(Config{Mode: mode, Boot: BootConfig{ServerIP: n.srvIP, HTTPBase: "http://" + n.srvIP.String() + ":8080"}},
		n.hosts(), rec, log)
	if err != nil {
		t.Fatal(err)
	}
	var c67, c4011 net.PacketConn
	if err := n.srv.Do(func() error {
		var err error
		if c67, err = server4.NewIPv4UDPConn(n.srvIf, &net.UDPAddr{Port: dhcpv4.ServerPort}); err != nil {
			return err
		}
		c4011, err = server4.NewIPv4UDPConn(n.srvIf, &net.UDPAddr{Port: 4011})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range []*Server{
		{Conn: c67, Handler: r, Log: log.With("port", 67)},
		{Conn: c4011, Handler: r.ProxyPXE(), Log: log.With("port", 4011)},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(ctx); err != nil {
				t.Errorf("Serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return rec
}

func lastEvent(rec *fakeRecorder, mac net.HardwareAddr) (string, string) {
	evs := rec.events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].MAC == mac.String() {
			return evs[i].Type, evs[i].Attrs["reason"]
		}
	}
	return "", ""
}

func TestIntegrationProxy(t *testing.T) {
	n := newTestNet(t)
	rec := n.startServer(t, Proxy)
	mac := itPlanMAC.String()

	boots := map[string]struct {
		args     []string
		wantFile string
	}{
		"bios pxe":        {asBIOSPXE, mac + "/undionly.kpxe"},
		"uefi pxe arch 7": {asUEFIPXE, mac + "/snponly.efi"},
		"ipxe":            {asIPXE, "http://" + n.srvIP.String() + ":8080/ipxe/" + mac + "/boot.ipxe"},
		"uefi http boot":  {asHTTP, "http://" + n.srvIP.String() + ":8080/ipxe-bin/snponly.efi"},
	}
	for name, tc := range boots {
		t.Run(name, func(t *testing.T) {
			n.setClientMAC(t, itPlanMAC)
			log, bound := n.udhcpc(t, tc.args...)
			if !bound {
				t.Fatalf("no proxy answer:\n%s", log)
			}
			if got := envOf(log, "boot_file"); got != tc.wantFile {
				t.Errorf("boot_file = %q, want %q", got, tc.wantFile)
			}
			if got := envOf(log, "siaddr"); got != n.srvIP.String() {
				t.Errorf("siaddr = %q", got)
			}
			if got := envOf(log, "serverid"); got != n.srvIP.String() {
				t.Errorf("serverid = %q", got)
			}
			if got := envOf(log, "ip"); got != "" && got != "0.0.0.0" {
				t.Errorf("proxy gave an address: %q", got)
			}
			if typ, _ := lastEvent(rec, itPlanMAC); typ != "dhcp.ack" {
				t.Errorf("last event %q, want dhcp.ack", typ)
			}
		})
	}
	nothing := map[string]struct {
		mac        net.HardwareAddr
		args       []string
		wantReason string
	}{
		"plain client in plan":   {itPlanMAC, nil, "not a PXE client"},
		"pxe client not in plan": {itUnknownMAC, asBIOSPXE, "MAC not in plan"},
		"installed node":         {itInstalledMAC, asBIOSPXE, "installed: boots from disk"},
	}
	for name, tc := range nothing {
		t.Run(name, func(t *testing.T) {
			n.setClientMAC(t, tc.mac)
			// Each ignore event is rate-limited per MAC; the first counts.
			if log, bound := n.udhcpc(t, tc.args...); bound {
				t.Fatalf("got an answer:\n%s", log)
			}
			if _, reason := lastEvent(rec, tc.mac); reason != tc.wantReason {
				t.Errorf("ignore reason %q, want %q", reason, tc.wantReason)
			}
		})
	}
	t.Run("dhclient plain", func(t *testing.T) {
		n.setClientMAC(t, itPlanMAC)
		if log, bound := n.dhclient(t, "timeout 5;\nretry 1;\n", 6*time.Second); bound {
			t.Fatalf("dhclient bound in proxy mode:\n%s", log)
		}
	})
	t.Run("dhclient as pxe client", func(t *testing.T) {
		// ISC dhclient ignores offers without an address, so it never
		// binds; the point is that racklift offers (event) and survives.
		n.setClientMAC(t, itPlanMAC)
		conf := "timeout 4;\nretry 1;\noption arch code 93 = unsigned integer 16;\nsend arch 0;\n" +
			"send vendor-class-identifier \"PXEClient:Arch:00000:UNDI:002001\";\n"
		n.dhclient(t, conf, 5*time.Second)
		if typ, _ := lastEvent(rec, itPlanMAC); typ != "dhcp.offer" {
			t.Errorf("last event %q, want dhcp.offer", typ)
		}
	})
	t.Run("port 4011", func(t *testing.T) {
		cliIP := n.ip(99)
		run(t, "ip", "-n", n.cli.Name, "addr", "add", cliIP.String()+"/24", "dev", n.cliIf)
		defer run(t, "ip", "-n", n.cli.Name, "addr", "del", cliIP.String()+"/24", "dev", n.cliIf)
		var c net.PacketConn
		if err := n.cli.Do(func() (err error) {
			c, err = net.ListenPacket("udp4", cliIP.String()+":0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req, err := dhcpv4.New(dhcpv4.WithHwAddr(itPlanMAC), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithClientIP(cliIP),
			dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
			dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteTo(req.ToBytes(), &net.UDPAddr{IP: n.srvIP, Port: 4011}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		nr, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer on 4011: %v", err)
		}
		ack, err := dhcpv4.FromBytes(buf[:nr])
		if err != nil {
			t.Fatal(err)
		}
		if ack.MessageType() != dhcpv4.MessageTypeAck || ack.BootFileName != mac+"/snponly.efi" ||
			ack.TransactionID != req.TransactionID || from.String() != n.srvIP.String()+":4011" {
			t.Errorf("4011 answer from %v:\n%s", from, ack.Summary())
		}
	})
}

func TestIntegrationAuthoritative(t *testing.T) {
	n := newTestNet(t)
	rec := n.startServer(t, Authoritative)
	mac := itPlanMAC.String()
	planned := n.ip(11).String()

	cases := map[string]struct {
		args     []string
		wantFile string
	}{
		"plain":           {nil, ""},
		"bios pxe":        {asBIOSPXE, mac + "/undionly.kpxe"},
		"uefi pxe arch 7": {asUEFIPXE, mac + "/snponly.efi"},
		"ipxe":            {asIPXE, "http://" + n.srvIP.String() + ":8080/ipxe/" + mac + "/boot.ipxe"},
	}
	for name, tc := range cases {
		t.Run("udhcpc "+name, func(t *testing.T) {
			n.setClientMAC(t, itPlanMAC)
			log, bound := n.udhcpc(t, tc.args...)
			if !bound {
				t.Fatalf("no lease:\n%s", log)
			}
			want := map[string]string{"ip": planned, "subnet": "255.255.255.0", "router": n.ip(254).String(),
				"dns": n.ip(53).String(), "domain": "it.example", "hostname": "cs-compute-0001", "mtu": "1500",
				"lease": "3600", "serverid": n.srvIP.String(), "boot_file": tc.wantFile}
			for k, v := range want {
				if got := envOf(log, k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if typ, _ := lastEvent(rec, itPlanMAC); typ != "dhcp.ack" {
				t.Errorf("last event %q", typ)
			}
		})
	}
	t.Run("udhcpc asks for a wrong address in its discover", func(t *testing.T) {
		n.setClientMAC(t, itPlanMAC)
		log, bound := n.udhcpc(t, "-r", n.ip(77).String())
		if !bound || envOf(log, "ip") != planned {
			t.Fatalf("want the planned lease:\n%s", log)
		}
	})
	t.Run("dhclient init-reboot with a stale lease gets a NAK, then its planned lease", func(t *testing.T) {
		n.setClientMAC(t, itPlanMAC)
		before := len(rec.events())
		stale := fmt.Sprintf("lease {\n  interface %q;\n  fixed-address %s;\n  option subnet-mask 255.255.255.0;\n"+
			"  option dhcp-server-identifier %s;\n  renew 4 2037/01/01 00:00:01;\n  rebind 4 2037/01/01 00:00:01;\n"+
			"  expire 4 2037/01/01 00:00:01;\n}\n", n.cliIf, n.ip(77), n.srvIP)
		log, bound := n.dhclientWithLease(t, "timeout 10;\nretry 1;\n", stale, 10*time.Second)
		if !bound || !strings.Contains(log, "new_ip_address="+planned) {
			t.Fatalf("dhclient not bound to %s:\n%s", planned, log)
		}
		var types []string
		for _, ev := range rec.events()[before:] {
			types = append(types, ev.Type)
		}
		if got := strings.Join(types, ","); !strings.HasPrefix(got, "dhcp.nak,") {
			t.Errorf("events %s, want a NAK first", got)
		}
	})
	t.Run("udhcpc installed node gets its lease without boot file", func(t *testing.T) {
		n.setClientMAC(t, itInstalledMAC)
		log, bound := n.udhcpc(t, asBIOSPXE...)
		if !bound || envOf(log, "ip") != n.ip(12).String() || envOf(log, "boot_file") != "" {
			t.Fatalf("installed node:\n%s", log)
		}
	})
	t.Run("udhcpc not in plan", func(t *testing.T) {
		n.setClientMAC(t, itUnknownMAC)
		if log, bound := n.udhcpc(t, asBIOSPXE...); bound {
			t.Fatalf("unknown MAC got a lease:\n%s", log)
		}
	})
	t.Run("dhclient in plan", func(t *testing.T) {
		n.setClientMAC(t, itPlanMAC)
		log, bound := n.dhclient(t, "timeout 10;\nretry 1;\n", 10*time.Second)
		if !bound {
			t.Fatalf("dhclient not bound:\n%s", log)
		}
		i := strings.LastIndex(log, "event BOUND")
		for k, v := range map[string]string{"new_ip_address": planned, "new_subnet_mask": "255.255.255.0",
			"new_routers": n.ip(254).String(), "new_interface_mtu": "1500", "new_host_name": "cs-compute-0001"} {
			if !strings.Contains(log[i:], k+"="+v+"\n") && !strings.Contains(log[i:], k+"='"+v+"'\n") {
				t.Errorf("dhclient env lacks %s=%s", k, v)
			}
		}
	})
	t.Run("dhclient not in plan", func(t *testing.T) {
		n.setClientMAC(t, itUnknownMAC)
		if log, bound := n.dhclient(t, "timeout 5;\nretry 1;\n", 6*time.Second); bound {
			t.Fatalf("dhclient bound:\n%s", log)
		}
	})
	t.Run("100 MACs not in plan get nothing", func(t *testing.T) {
		var conn net.PacketConn
		if err := n.cli.Do(func() (err error) {
			conn, err = nclient4.NewRawUDPConn(n.cliIf, dhcpv4.ClientPort)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		before := len(rec.events())
		for i := range 100 {
			m := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, byte(i >> 8), byte(i)}
			d, err := dhcpv4.NewDiscovery(m, dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.WriteTo(d.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}); err != nil {
				t.Fatal(err)
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 1500)
		for range 1000 {
			nr, _, err := conn.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if m, err := dhcpv4.FromBytes(buf[:nr]); err == nil && m.OpCode == dhcpv4.OpcodeBootReply {
				t.Fatalf("reply to a MAC not in plan:\n%s", m.Summary())
			}
		}
		// Wait (bounded) for the server to have recorded all 100 decisions.
		for range 50 {
			if len(rec.events())-before >= 100 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		evs := rec.events()[before:]
		if len(evs) != 100 {
			t.Errorf("%d events, want 100 ignores", len(evs))
		}
		for _, ev := range evs {
			if ev.Type != "dhcp.ignore" || ev.Attrs["reason"] != "MAC not in plan" {
				t.Errorf("event %+v", ev)
				break
			}
		}
	})
}

// startDnsmasq runs a second DHCP server in the client netns.
func (n *testNet) startDnsmasq(t *testing.T) {
	t.Helper()
	run(t, "ip", "-n", n.cli.Name, "addr", "add", n.ip(2).String()+"/24", "dev", n.cliIf)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.cli.Name, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--user=root", "--log-dhcp", "--interface="+n.cliIf, "--bind-interfaces",
		"--dhcp-range="+n.ip(100).String()+","+n.ip(150).String()+",1h",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by PID: ip netns exec execs dnsmasq in place
		cancel()
		<-done
		t.Logf("dnsmasq:\n%s", out.String())
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := n.cli.WaitUDPListen(wctx, 67, done); err != nil {
		t.Fatalf("dnsmasq: %v\n%s", err, out.String())
	}
}

// probeIn runs Probe on the server side of n. dnsmasq pings an address
// (up to ~3 s) before offering it, so the timeout is 5 s, as it should be
// in production.
func probeIn(t *testing.T, n *testNet) []net.IP {
	t.Helper()
	var servers []net.IP
	if err := n.srv.Do(func() (err error) {
		servers, err = Probe(t.Context(), n.srvIf, 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return servers
}

func TestIntegrationProbe(t *testing.T) {
	n := newTestNet(t)
	t.Run("none", func(t *testing.T) {
		if got := probeIn(t, n); len(got) != 0 {
			t.Errorf("Probe found %v on an empty LAN", got)
		}
	})
	t.Run("dnsmasq", func(t *testing.T) {
		n.startDnsmasq(t)
		got := probeIn(t, n)
		if len(got) != 1 || !got[0].Equal(n.ip(2)) {
			t.Errorf("Probe = %v, want [%s]", got, n.ip(2))
		}
	})
	t.Run("racklift authoritative is invisible to the probe", func(t *testing.T) {
		n2 := newTestNet(t)
		n2.startServer(t, Authoritative)
		if got := probeIn(t, n2); len(got) != 0 {
			t.Errorf("Probe found %v", got)
		}
	})
}

func TestIntegrationRouterAdvertiser(t *testing.T) {
	n := newTestNet(t)
	// Listener on the client side: all ICMPv6, filtered to RAs.
	var lc *icmp.PacketConn
	if err := n.cli.Do(func() (err error) {
		lc, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	p := lc.IPv6PacketConn()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterAdvertisement)
	if err := p.SetICMPFilter(&f); err != nil {
		t.Fatal(err)
	}
	if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagInterface, true); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ra := &RouterAdvertiser{Iface: n.srvIf, Interval: time.Hour, Log: testLogger(t)}
	// The raw socket must be opened in the server netns; Run opens it at
	// its start, so run its first instant there and the rest anywhere.
	started := make(chan struct{})
	go func() {
		done <- n.srv.Do(func() error { close(started); return ra.Run(ctx) })
	}()
	<-started
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	readRA := func(what string) {
		t.Helper()
		_ = p.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 1500)
		for range 100 {
			nr, cm, src, err := p.ReadFrom(buf)
			if err != nil {
				t.Fatalf("%s: no router advertisement: %v", what, err)
			}
			m, err := icmp.ParseMessage(58, buf[:nr])
			if err != nil || m.Type != ipv6.ICMPTypeRouterAdvertisement {
				continue
			}
			raw, ok := m.Body.(*icmp.RawBody)
			if !ok {
				t.Fatalf("%s: RA body %T", what, m.Body)
			}
			body := raw.Data
			if len(body) < 12 || body[2] != 0 || body[3] != 0 || body[1] != 0 || len(body) != 20 {
				t.Errorf("%s: RA body %x: want lifetime 0, no flags, only the SLLA option", what, body)
			}
			if ia, ok := src.(*net.IPAddr); !ok || cm == nil || cm.HopLimit != 255 || !ia.IP.IsLinkLocalUnicast() {
				t.Errorf("%s: RA hop limit %v from %v", what, cm, src)
			}
			return
		}
		t.Fatalf("%s: no RA in 100 packets", what)
	}
	readRA("initial advertisement")

	// A router solicitation gets an answer at once (the interval is an hour).
	var sc *icmp.PacketConn
	if err := n.cli.Do(func() (err error) {
		sc, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sp := sc.IPv6PacketConn()
	rs, err := (&icmp.Message{Type: ipv6.ICMPTypeRouterSolicitation, Body: &icmp.RawBody{Data: make([]byte, 4)}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Interface zones resolve in the calling thread's netns: send from inside it.
	if err := n.cli.Do(func() error {
		_, err := sp.WriteTo(rs, &ipv6.ControlMessage{HopLimit: 255}, &net.IPAddr{IP: net.ParseIP("ff02::2"), Zone: n.cliIf})
		return err
	}); err != nil {
		t.Fatalf("send RS: %v", err)
	}
	readRA("answer to solicitation")
}
