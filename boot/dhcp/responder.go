package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklift/racklift/boot/pxe"
	"github.com/racklift/racklift/provision/events"
)

// Responder is the DHCP Handler for port 67 in either mode; ProxyPXE gives
// the one for port 4011. Build it with NewResponder. It is safe for
// concurrent use.
type Responder struct {
	cfg   Config
	hosts Hosts
	rec   Recorder
	log   *slog.Logger
	// now is time.Now; tests replace it.
	now     func() time.Time
	ignores *rateLimiter
	leases  *leaseTable // nil unless cfg.Dynamic is set
}

// NewResponder checks cfg, fills its defaults (see Config) and returns a
// Responder. hosts is required; rec may be nil (no events); log nil means
// discarding its log lines (pass the logger in).
func NewResponder(cfg Config, hosts Hosts, rec Recorder, log *slog.Logger) (*Responder, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dhcp config: %w", err)
	}
	if hosts == nil {
		return nil, fmt.Errorf("dhcp config: Hosts is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Responder{
		cfg:     cfg,
		hosts:   hosts,
		rec:     rec,
		log:     log,
		now:     time.Now,
		ignores: newRateLimiter(cfg.IgnoreEvery, cfg.MaxIgnoreMACs),
	}
	if cfg.Dynamic != nil {
		r.leases = newLeaseTable(*cfg.Dynamic)
	}
	return r, nil
}

// ServeDHCP implements Handler for port 67.
func (r *Responder) ServeDHCP(ctx context.Context, req *dhcpv4.DHCPv4, _ net.Addr) (*dhcpv4.DHCPv4, net.Addr) {
	c := pxe.Classify(req)
	var (
		reply *dhcpv4.DHCPv4
		dec   Decision
	)
	if r.cfg.Mode == Authoritative {
		reply, dec = r.authoritative(req, c)
	} else {
		host, known := r.hosts.HostByMAC(req.ClientHWAddr)
		reply, dec = proxyReply(req, c, host, known, r.cfg.Boot)
	}
	r.report(ctx, req, c, dec, nil)
	return reply, nil
}

// authoritative finds the assignment (plan host, else dynamic lease),
// decides with authReply and updates the lease table.
func (r *Responder) authoritative(req *dhcpv4.DHCPv4, c pxe.Client) (*dhcpv4.DHCPv4, Decision) {
	mac := req.ClientHWAddr
	if host, ok := r.hosts.HostByMAC(mac); ok {
		return authReply(req, c, assignment{Kind: kindPlan, Host: host}, r.cfg)
	}
	if r.leases == nil {
		return authReply(req, c, assignment{}, r.cfg)
	}
	now := r.now()
	key := mac.String()
	var (
		ip net.IP
		ok bool
	)
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		ip, ok = r.leases.offer(key, now)
		if !ok {
			return ignore("dynamic pool exhausted")
		}
	case dhcpv4.MessageTypeRelease:
		r.leases.release(key)
		return ignore("release from MAC not in plan")
	case dhcpv4.MessageTypeDecline:
		r.leases.decline(key, now)
		return nil, Decision{Action: Decline, IP: req.RequestedIPAddress(), Reason: "dynamic address in use by another machine"}
	default:
		ip, ok = r.leases.lookup(key, now)
	}
	if !ok {
		return authReply(req, c, assignment{}, r.cfg)
	}
	p := r.cfg.Dynamic
	reply, dec := authReply(req, c, assignment{Kind: kindDynamic, Host: Host{
		IP: ip, Mask: p.Mask, Gateway: p.Router, DNS: p.DNS, Domain: p.Domain,
	}}, r.cfg)
	if dec.Action == Ack && req.MessageType() == dhcpv4.MessageTypeRequest {
		r.leases.bind(key, now.Add(r.cfg.LeaseTime))
	}
	return reply, dec
}

// ProxyPXE returns the Handler for port 4011: it answers a PXE client's
// DHCPREQUEST with a unicast DHCPACK carrying the boot file, in either mode.
func (r *Responder) ProxyPXE() Handler { return proxyPXE{r} }

type proxyPXE struct{ r *Responder }

// ServeDHCP implements Handler for port 4011: replies go to the source.
func (p proxyPXE) ServeDHCP(ctx context.Context, req *dhcpv4.DHCPv4, peer net.Addr) (*dhcpv4.DHCPv4, net.Addr) {
	c := pxe.Classify(req)
	host, known := p.r.hosts.HostByMAC(req.ClientHWAddr)
	reply, dec := proxyPXEReply(req, c, host, known, p.r.cfg.Boot)
	p.r.report(ctx, req, c, dec, peer)
	if reply == nil {
		return nil, nil
	}
	dst, ok := peer.(*net.UDPAddr)
	if !ok || !isSet(dst.IP) {
		// A client without an address cannot receive unicast.
		port := dhcpv4.ClientPort
		if ok && dst.Port != 0 {
			port = dst.Port
		}
		return reply, &net.UDPAddr{IP: net.IPv4bcast, Port: port}
	}
	return reply, dst
}

// clientIP is the address a client says it has, or asks for, in its own
// DHCP exchange: option 50 of a REQUEST (selecting or rebooting), else its
// ciaddr (INFORM, renewing), else the source address of a packet from an
// addressed client (port 4011). Nil when it names none. The orchestrator
// uses what a plan MAC named in its exchange to decide which addresses may
// have that node's install files (see the README's security section).
func clientIP(req *dhcpv4.DHCPv4, peer net.Addr) net.IP {
	if req.MessageType() == dhcpv4.MessageTypeRequest {
		if ip := req.RequestedIPAddress(); isSet(ip) {
			return ip
		}
	}
	if isSet(req.ClientIPAddr) {
		return req.ClientIPAddr
	}
	if ua, ok := peer.(*net.UDPAddr); ok && isSet(ua.IP) && !ua.IP.Equal(net.IPv4bcast) && !isSet(req.GatewayIPAddr) {
		return ua.IP
	}
	return nil
}

// report logs the decision and records it as an event. Ignore events are
// rate-limited per MAC and client address. peer is the packet's source
// (nil on port 67, where clients have no address yet or broadcast).
func (r *Responder) report(ctx context.Context, req *dhcpv4.DHCPv4, c pxe.Client, d Decision, peer net.Addr) {
	mac := req.ClientHWAddr.String()
	now := r.now()
	attrs := map[string]string{
		"mode":   r.cfg.Mode.String(),
		"msg":    req.MessageType().String(),
		"reason": d.Reason,
	}
	if d.Node == "" {
		// A plan MAC's ignored packets belong to its timeline too: they
		// name the addresses it uses.
		if h, ok := r.hosts.HostByMAC(req.ClientHWAddr); ok {
			d.Node = h.Node
		}
	}
	cip := clientIP(req, peer)
	if cip != nil {
		attrs["client_ip"] = cip.String()
	}
	if c.IsPXE || c.HasArch {
		attrs["firmware"] = c.Firmware.String()
	}
	if c.HasArch {
		attrs["arch"] = strconv.Itoa(int(c.Arch))
	}
	if c.UserClass != "" {
		attrs["user_class"] = c.UserClass
	}
	if d.IP != nil {
		attrs["ip"] = d.IP.String()
	}
	if d.BootFile != "" {
		attrs["file"] = d.BootFile
	}
	if d.NoBoot != "" {
		attrs["no_boot"] = d.NoBoot
	}
	if isSet(req.GatewayIPAddr) {
		attrs["relay"] = req.GatewayIPAddr.String()
	}

	lvl := slog.LevelInfo
	switch d.Action {
	case Ignore:
		lvl = slog.LevelDebug
	case Decline: // another machine holds an address we gave out
		lvl = slog.LevelWarn
	}
	r.log.Log(ctx, lvl, "dhcp "+d.Action.String(), "mac", mac, "xid", req.TransactionID.String(),
		"node", d.Node, "msg", attrs["msg"], "firmware", attrs["firmware"], "ip", attrs["ip"],
		"file", d.BootFile, "reason", d.Reason, "no_boot", d.NoBoot)

	if r.rec == nil {
		return
	}
	if d.Action == Ignore && !r.ignores.allow(mac+"/"+attrs["client_ip"], now) {
		return
	}
	ev := events.Event{
		At:      now.UTC(),
		Node:    d.Node,
		MAC:     mac,
		Source:  events.SourceDHCP,
		Type:    d.Action.EventType(),
		Percent: -1,
		Detail:  d.String(),
		Attrs:   attrs,
	}
	// A plan node handed a boot file has reached the DHCP step of a
	// network boot. Leases without a boot file (installer, installed OS)
	// must not move the node back to this phase.
	if (d.Action == Offer || d.Action == Ack) && d.Node != "" && d.BootFile != "" {
		ev.Phase = events.PhaseDHCP
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RecordTimeout)
	defer cancel()
	if _, err := r.rec.Record(rctx, ev); err != nil {
		r.log.Warn("record dhcp event", "mac", mac, "type", ev.Type, "err", err)
	}
}

// rateLimiter allows one event per key per period, remembering at most max
// keys; when full it forgets expired keys, and if none expired it refuses.
type rateLimiter struct {
	mu    sync.Mutex
	every time.Duration
	max   int
	last  map[string]time.Time
}

func newRateLimiter(every time.Duration, maxKeys int) *rateLimiter {
	return &rateLimiter{every: every, max: maxKeys, last: make(map[string]time.Time)}
}

func (l *rateLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	if _, ok := l.last[key]; !ok && len(l.last) >= l.max {
		for k, t := range l.last {
			if now.Sub(t) >= l.every {
				delete(l.last, k)
			}
		}
		if len(l.last) >= l.max {
			return false
		}
	}
	l.last[key] = now
	return true
}

// leaseTable holds dynamic leases by MAC, bounded by the pool size and
// Pool.MaxLeases. Declined addresses are held under an empty MAC.
type leaseTable struct {
	mu         sync.Mutex
	start, end uint32
	max        int
	byMAC      map[string]*lease
	byIP       map[uint32]*lease
}

type lease struct {
	mac     string // "" for a declined address
	ip      uint32
	expires time.Time
}

func newLeaseTable(p Pool) *leaseTable {
	return &leaseTable{
		start: ip4ToU32(p.Start),
		end:   ip4ToU32(p.End),
		max:   p.MaxLeases,
		byMAC: make(map[string]*lease),
		byIP:  make(map[uint32]*lease),
	}
}

func (t *leaseTable) drop(l *lease) {
	delete(t.byIP, l.ip)
	if l.mac != "" && t.byMAC[l.mac] == l {
		delete(t.byMAC, l.mac)
	}
}

// offer returns mac's address (its lease, or a free one held for
// offerHold), or false when the pool or the table is full.
func (t *leaseTable) offer(mac string, now time.Time) (net.IP, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.byMAC[mac]; ok {
		if l.expires.Before(now.Add(offerHold)) {
			l.expires = now.Add(offerHold)
		}
		return u32ToIP4(l.ip), true
	}
	if len(t.byIP) >= t.max {
		for _, l := range t.byIP {
			if !l.expires.After(now) {
				t.drop(l)
			}
		}
		if len(t.byIP) >= t.max {
			return nil, false
		}
	}
	for ip := t.start; ip <= t.end && ip >= t.start; ip++ { // at most maxPoolSize steps
		if l, ok := t.byIP[ip]; ok {
			if l.expires.After(now) {
				continue
			}
			t.drop(l)
		}
		l := &lease{mac: mac, ip: ip, expires: now.Add(offerHold)}
		t.byIP[ip], t.byMAC[mac] = l, l
		return u32ToIP4(ip), true
	}
	return nil, false
}

// lookup returns mac's unexpired lease or offer.
func (t *leaseTable) lookup(mac string, now time.Time) (net.IP, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.byMAC[mac]
	if !ok || !l.expires.After(now) {
		return nil, false
	}
	return u32ToIP4(l.ip), true
}

// bind extends mac's lease to expires.
func (t *leaseTable) bind(mac string, expires time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.byMAC[mac]; ok {
		l.expires = expires
	}
}

// release frees mac's lease.
func (t *leaseTable) release(mac string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.byMAC[mac]; ok {
		t.drop(l)
	}
}

// decline marks mac's address as in use by someone else for declineHold.
func (t *leaseTable) decline(mac string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.byMAC[mac]; ok {
		delete(t.byMAC, mac)
		l.mac, l.expires = "", now.Add(declineHold)
	}
}
