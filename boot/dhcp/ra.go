package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// Defaults for RouterAdvertiser.
const (
	// DefaultRAInterval is the period of unsolicited router advertisements.
	DefaultRAInterval = 10 * time.Second
	// maxSolicitedPerSecond bounds answers to router solicitations.
	maxSolicitedPerSecond = 20
)

// RouterAdvertiser sends ICMPv6 router advertisements (RFC 4861 §4.2) on
// the provisioning interface with router lifetime 0 ("not a default
// router"), no M/O flags and no prefixes: an RA that configures nothing.
// iPXE waits about 13 s for IPv6 autoconfiguration before using its DHCPv4
// lease unless it hears a router advertisement; this one ends the wait and
// gives hosts no IPv6 route or address.
//
// It advertises to all-nodes (ff02::1) at start and every Interval, and
// answers each router solicitation (RFC 4861 §6.2.6) at once, unicast to
// the soliciting link-local address, or multicast when the solicitation
// came from "::". Answers are rate-limited.
type RouterAdvertiser struct {
	// Iface is the provisioning interface name. Required.
	Iface string
	// Interval between unsolicited advertisements; 0 means DefaultRAInterval.
	Interval time.Duration
	// Log gets errors; nil discards them (pass the logger in).
	Log *slog.Logger
}

var (
	allNodes   = net.ParseIP("ff02::1")
	allRouters = net.ParseIP("ff02::2")
)

// Run advertises until ctx ends, then returns nil. It returns an error if
// the interface or the raw ICMPv6 socket (CAP_NET_RAW) cannot be set up.
// Send errors (e.g. the interface has no link-local address yet) are logged
// and retried at the next tick.
func (a *RouterAdvertiser) Run(ctx context.Context) error {
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := a.Interval
	if interval <= 0 {
		interval = DefaultRAInterval
	}
	ifi, err := net.InterfaceByName(a.Iface)
	if err != nil {
		return fmt.Errorf("router advertiser: %w", err)
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return fmt.Errorf("router advertiser on %s: %w", a.Iface, err)
	}
	defer c.Close()
	p := c.IPv6PacketConn()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	setup := []error{
		p.SetICMPFilter(&f),
		p.SetMulticastInterface(ifi),
		p.SetMulticastHopLimit(255),
		p.SetHopLimit(255),
		p.SetMulticastLoopback(false),
		p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagHopLimit, true),
		p.JoinGroup(ifi, &net.IPAddr{IP: allRouters}),
	}
	if err := errors.Join(setup...); err != nil {
		return fmt.Errorf("router advertiser on %s: %w", a.Iface, err)
	}
	ra, err := routerAdvertisement(ifi.HardwareAddr)
	if err != nil {
		return fmt.Errorf("router advertiser: %w", err)
	}
	send := func(dst net.IP) {
		cm := &ipv6.ControlMessage{IfIndex: ifi.Index, HopLimit: 255}
		if _, err := p.WriteTo(ra, cm, &net.IPAddr{IP: dst, Zone: ifi.Name}); err != nil {
			log.Warn("send router advertisement", "iface", ifi.Name, "dst", dst, "err", err)
		}
	}

	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	solicits := make(chan net.IP, 8)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		readSolicitations(ctx, p, ifi.Index, solicits)
	}()

	send(allNodes)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	windowStart, answered := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			send(allNodes)
		case src := <-solicits:
			if now := time.Now(); now.Sub(windowStart) >= time.Second {
				windowStart, answered = now, 0
			}
			if answered >= maxSolicitedPerSecond {
				continue
			}
			answered++
			if src == nil || src.IsUnspecified() {
				src = allNodes
			}
			send(src)
		}
	}
}

// readSolicitations forwards the source of every valid router solicitation
// on ifIndex (hop limit 255, RFC 4861 §6.1.1) until the socket is closed.
func readSolicitations(ctx context.Context, p *ipv6.PacketConn, ifIndex int, out chan<- net.IP) {
	buf := make([]byte, 1500)
	for {
		n, cm, src, err := p.ReadFrom(buf)
		if err != nil {
			return // closed at shutdown
		}
		if cm == nil || cm.IfIndex != ifIndex || cm.HopLimit != 255 {
			continue
		}
		m, err := icmp.ParseMessage(ipv6.ICMPTypeRouterSolicitation.Protocol(), buf[:n])
		if err != nil || m.Type != ipv6.ICMPTypeRouterSolicitation || m.Code != 0 {
			continue
		}
		var ip net.IP
		if ia, ok := src.(*net.IPAddr); ok {
			ip = ia.IP
		}
		select {
		case out <- ip:
		case <-ctx.Done():
			return
		default: // a burst: the pending answers cover it
		}
	}
}

// routerAdvertisement returns the ICMPv6 router advertisement we send: hop
// limit unspecified, no M/O flags, router lifetime 0, reachable time and
// retransmission timer unspecified, and a source link-layer address option
// when the interface has a MAC. The kernel fills in the checksum.
func routerAdvertisement(mac net.HardwareAddr) ([]byte, error) {
	body := make([]byte, 12) // cur hop limit, flags, router lifetime(2), reachable(4), retrans(4)
	if len(mac) == 6 {
		body = append(body, 1, 1) // option 1 = source link-layer address, length 1 (8 bytes)
		body = append(body, mac...)
	}
	m := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Code: 0, Body: &icmp.RawBody{Data: body}}
	return m.Marshal(nil)
}
