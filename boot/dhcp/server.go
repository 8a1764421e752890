package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/net/ipv4"
)

// Handler decides the answer to one DHCP request.
//
// ServeDHCP is called concurrently, from up to Server.MaxInFlight
// goroutines, once per well-formed BOOTREQUEST. It returns the reply, or nil
// to send nothing, and where to send it: a nil dst means the RFC 2131 §4.1
// destination (see destination), which is right for port 67; the port 4011
// handler returns the request's source. peer is the request's source
// address. ServeDHCP must not keep req or the reply after returning.
type Handler interface {
	ServeDHCP(ctx context.Context, req *dhcpv4.DHCPv4, peer net.Addr) (reply *dhcpv4.DHCPv4, dst net.Addr)
}

// Defaults for Server.
const (
	// DefaultMaxInFlight is how many requests are handled at once when
	// Server.MaxInFlight is 0.
	DefaultMaxInFlight = 64
	// maxPacket is the read buffer size; DHCP messages are at most 576
	// bytes unless option 57 says more, and never more than an MTU here.
	maxPacket = 4096
	// maxReadErrors is how many consecutive non-shutdown read errors Serve
	// tolerates before giving up.
	maxReadErrors = 20
)

// Server runs a DHCP read loop on Conn and hands each request to Handler.
// Fill the fields and call Serve once.
type Server struct {
	// Conn is the socket to serve, already bound: for port 67 use
	// server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: 67}) (0.0.0.0 +
	// SO_BINDTODEVICE, so broadcasts arrive); for port 4011 any UDPv4
	// socket. Serve closes it when its context ends.
	Conn net.PacketConn
	// Handler decides the replies. Required.
	Handler Handler
	// Log gets one debug line per packet and errors. Nil discards them (pass the logger in).
	Log *slog.Logger
	// MaxInFlight bounds concurrent handler calls; 0 means DefaultMaxInFlight.
	// When all are busy the read loop waits, so excess packets queue in the
	// kernel socket buffer (and are dropped there; DHCP clients retransmit).
	MaxInFlight int
}

// Serve reads requests until ctx is done, then closes Conn, waits for
// in-flight handlers and returns nil. It returns an error if the socket
// fails for another reason. It never panics on malformed packets; a panic
// in the handler is recovered and logged.
func (s *Server) Serve(ctx context.Context) error {
	if s.Conn == nil || s.Handler == nil {
		return errors.New("dhcp: Server needs Conn and Handler")
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxInFlight := s.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}

	pc := ipv4.NewPacketConn(s.Conn)
	if err := pc.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		// Only happens for sockets that are not AF_INET (tests with odd
		// conns); replies then follow the routing table.
		log.Warn("cannot read receiving interface; replies follow the routing table", "err", err)
	}

	stop := context.AfterFunc(ctx, func() { _ = s.Conn.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxInFlight)

	readErrors := 0
	for {
		buf := make([]byte, maxPacket)
		n, cm, peer, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("dhcp: read: %w", err)
			}
			readErrors++
			if readErrors >= maxReadErrors {
				return fmt.Errorf("dhcp: %d consecutive read errors, last: %w", readErrors, err)
			}
			log.Warn("read", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		readErrors = 0

		ifIndex := 0
		if cm != nil {
			ifIndex = cm.IfIndex
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.handle(ctx, log, pc, buf[:n], peer, ifIndex)
		}()
	}
}

// handle parses one packet, asks the handler and writes the reply.
func (s *Server) handle(ctx context.Context, log *slog.Logger, pc *ipv4.PacketConn, pkt []byte, peer net.Addr, ifIndex int) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic handling DHCP packet", "peer", peer, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	reply, dst, plog := s.process(ctx, log, pkt, peer, ifIndex)
	if reply == nil {
		return
	}
	cm := &ipv4.ControlMessage{IfIndex: ifIndex}
	if ifIndex == 0 {
		cm = nil
	}
	if _, err := pc.WriteTo(reply.ToBytes(), cm, dst); err != nil {
		plog.Warn("send reply", "dst", dst, "err", err)
		return
	}
	plog.Debug("sent", "type", reply.MessageType().String(), "dst", dst)
}

// process is the socket-free part of handle: parse, decide, choose the
// destination. It is what the fuzz test drives.
func (s *Server) process(ctx context.Context, log *slog.Logger, pkt []byte, peer net.Addr, ifIndex int) (*dhcpv4.DHCPv4, net.Addr, *slog.Logger) {
	req, err := dhcpv4.FromBytes(pkt)
	if err != nil {
		log.Debug("ignoring malformed packet", "peer", peer, "len", len(pkt), "err", err)
		return nil, nil, log
	}
	plog := log.With("mac", req.ClientHWAddr.String(), "xid", req.TransactionID.String(), "iface", ifIndex)
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		plog.Debug("ignoring non-request", "opcode", req.OpCode.String())
		return nil, nil, plog
	}
	reply, dst := s.Handler.ServeDHCP(ctx, req, peer)
	if reply == nil {
		return nil, nil, plog
	}
	if dst == nil {
		dst = destination(req, reply)
	}
	return reply, dst, plog
}

// destination returns where a reply to req goes on port 67, following
// RFC 2131 §4.1 (see the package doc for the full quote), in this order:
//
//  1. giaddr set: to the relay agent, giaddr:67 ("the server sends any
//     return messages to the 'DHCP server' port on the BOOTP relay agent
//     whose address appears in 'giaddr'");
//  2. DHCPNAK: broadcast 255.255.255.255:68 ("the server broadcasts any
//     DHCPNAK messages to 0xffffffff");
//  3. ciaddr set: unicast ciaddr:68 (RENEWING clients, DHCPINFORM);
//  4. broadcast bit set, or the client has no address yet: broadcast
//     255.255.255.255:68. (RFC 2131 allows unicast to yiaddr + chaddr
//     here, which needs an ARP entry a UDP socket cannot create.)
func destination(req, reply *dhcpv4.DHCPv4) *net.UDPAddr {
	switch {
	case isSet(req.GatewayIPAddr):
		return &net.UDPAddr{IP: req.GatewayIPAddr, Port: dhcpv4.ServerPort}
	case reply.MessageType() == dhcpv4.MessageTypeNak:
		return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	case isSet(req.ClientIPAddr):
		return &net.UDPAddr{IP: req.ClientIPAddr, Port: dhcpv4.ClientPort}
	default:
		return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
}

// isSet reports whether ip is a usable, non-zero IPv4 address.
func isSet(ip net.IP) bool {
	ip4 := ip.To4()
	return ip4 != nil && !ip4.IsUnspecified()
}
