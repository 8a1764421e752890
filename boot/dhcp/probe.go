package dhcp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// maxProbeReplies bounds how many packets Probe reads.
const maxProbeReplies = 256

// Probe looks for DHCP servers on the interface ifname: it broadcasts a
// DHCPDISCOVER from a random locally administered MAC (so no real lease is
// disturbed), again halfway through timeout (one lost packet must not hide
// a server), and collects, until timeout or ctx ends, the server
// identifier (option 54, else the source address) of every DHCPOFFER to
// it. An empty result means no server answered. It uses a raw packet
// socket, so it needs CAP_NET_RAW and works on an unconfigured interface,
// next to a running DHCP client. Run it before binding our own server: a
// proxyDHCP server is not found this way (it answers PXE clients only),
// and neither is racklift in proxy mode.
func Probe(ctx context.Context, ifname string, timeout time.Duration) ([]net.IP, error) {
	mac, err := randomLAAMAC()
	if err != nil {
		return nil, err
	}
	disc, err := probeDiscover(mac)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", ifname, err)
	}
	conn, err := nclient4.NewRawUDPConn(ifname, dhcpv4.ClientPort)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", ifname, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	end := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(end) {
		end = d
	}
	half := time.Now().Add(time.Until(end) / 2)
	var servers []net.IP
	seen := map[string]bool{}
	buf := make([]byte, maxPacket)
	// Two rounds: send, then read until the round's deadline.
	for _, deadline := range []time.Time{half, end} {
		if ctx.Err() != nil {
			break
		}
		if _, err := conn.WriteTo(disc.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}); err != nil {
			return nil, fmt.Errorf("probe %s: send discover: %w", ifname, err)
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("probe %s: %w", ifname, err)
		}
		for range maxProbeReplies {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return servers, fmt.Errorf("probe %s: read: %w", ifname, err)
			}
			if id := offerServer(buf[:n], from, disc.TransactionID); id != nil && !seen[id.String()] {
				seen[id.String()] = true
				servers = append(servers, id)
			}
		}
	}
	if ctx.Err() != nil {
		return servers, ctx.Err()
	}
	return servers, nil
}

// probeDiscover is Probe's DHCPDISCOVER from mac. The broadcast flag is
// set: servers then broadcast their offers. A unicast offer would be
// addressed to the made-up MAC, which the NIC (or a bridge) filters out
// before our packet socket sees it.
func probeDiscover(mac net.HardwareAddr) (*dhcpv4.DHCPv4, error) {
	return dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true))
}

// offerServer returns the server of pkt if it is a DHCPOFFER for xid
// (option 54, else the source address), else nil.
func offerServer(pkt []byte, from net.Addr, xid dhcpv4.TransactionID) net.IP {
	m, err := dhcpv4.FromBytes(pkt)
	if err != nil || m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != xid ||
		m.MessageType() != dhcpv4.MessageTypeOffer {
		return nil
	}
	if id := m.ServerIdentifier(); isSet(id) {
		return id
	}
	if ua, ok := from.(*net.UDPAddr); ok && isSet(ua.IP) {
		return ua.IP
	}
	return nil
}

// randomLAAMAC returns a random unicast, locally administered MAC.
func randomLAAMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("random MAC: %w", err)
	}
	mac[0] = mac[0]&^0x01 | 0x02
	return mac, nil
}
