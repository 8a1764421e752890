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

// Probe looks for DHCP servers on the interface ifname: it broadcasts one
// DHCPDISCOVER from a random locally administered MAC (so no real lease is
// disturbed) and collects, until timeout or ctx ends, the server identifier
// (option 54, else the source address) of every DHCPOFFER to it. An empty
// result means no server answered. It uses a raw packet socket, so it
// needs CAP_NET_RAW and works on an unconfigured interface, next to a
// running DHCP client. Run it before binding our own server: a proxyDHCP
// server is not found this way (it answers PXE clients only), and neither
// is racklift in proxy mode.
func Probe(ctx context.Context, ifname string, timeout time.Duration) ([]net.IP, error) {
	mac, err := randomLAAMAC()
	if err != nil {
		return nil, err
	}
	conn, err := nclient4.NewRawUDPConn(ifname, dhcpv4.ClientPort)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", ifname, err)
	}
	defer conn.Close()

	disc, err := dhcpv4.NewDiscovery(mac) // broadcast flag set: we cannot receive unicast to a made-up MAC
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", ifname, err)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("probe %s: %w", ifname, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	if _, err := conn.WriteTo(disc.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}); err != nil {
		return nil, fmt.Errorf("probe %s: send discover: %w", ifname, err)
	}

	var servers []net.IP
	seen := map[string]bool{}
	buf := make([]byte, maxPacket)
	for range maxProbeReplies {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return servers, fmt.Errorf("probe %s: read: %w", ifname, err)
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != disc.TransactionID ||
			m.MessageType() != dhcpv4.MessageTypeOffer {
			continue
		}
		id := m.ServerIdentifier()
		if !isSet(id) {
			if ua, ok := from.(*net.UDPAddr); ok {
				id = ua.IP
			}
		}
		if id == nil || seen[id.String()] {
			continue
		}
		seen[id.String()] = true
		servers = append(servers, id)
	}
	if ctx.Err() != nil {
		return servers, ctx.Err()
	}
	return servers, nil
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
