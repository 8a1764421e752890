package dhcp

import (
	"net"

	"github.com/racklift/racklift/provision/plan"
)

// PlanHosts looks hosts up in an immutable cluster plan: a node's PXE MAC
// gets its planned provisioning address, the network's mask and MTU, the
// gateway when that network carries the default route, the network's DNS
// servers (or the cluster's), the cluster domain and the node name. It
// never blocks, so it is safe on every packet.
//
// Installed is always false: an installed node still PXE boots into iPXE
// and gets the local-boot script, so the reinstall decision stays with the
// orchestrator (through the HTTP boot Policy) and is never made twice.
type PlanHosts struct{ Plan *plan.Plan }

// HostByMAC implements Hosts.
func (h PlanHosts) HostByMAC(mac net.HardwareAddr) (Host, bool) {
	n, ok := h.Plan.NodeByMAC(mac.String())
	if !ok || n.MAC != mac.String() {
		return Host{}, false
	}
	a, ok := n.Provisioning()
	if !ok {
		return Host{}, false
	}
	nw := a.Network
	host := Host{Node: n.Name, IP: net.IP(a.Addr.AsSlice()), Mask: nw.Mask(), Domain: h.Plan.Cluster.Domain, Hostname: n.Name, MTU: nw.MTU,
		SecureBoot: n.BIOS.SecureBoot}
	if nw.Gateway.IsValid() && nw.DefaultRoute {
		host.Gateway = net.IP(nw.Gateway.AsSlice())
	}
	dns := nw.DNS
	if len(dns) == 0 {
		dns = h.Plan.Cluster.DNS
	}
	for _, d := range dns {
		host.DNS = append(host.DNS, net.IP(d.AsSlice()))
	}
	return host, true
}
