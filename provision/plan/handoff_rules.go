package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file holds the rules `plan validate` applies for the hand-off to
// kolla-ansible and cephadm (racklift handoff): what those tools would
// refuse, or deploy wrongly, is reported here with the plan position, so the
// engineer learns it before the visit rather than at `kolla-ansible deploy`.

// releaseRE is an OpenStack release as kolla-ansible names it: 2025.1, 2025.2.
var releaseRE = regexp.MustCompile(`^20[0-9]{2}\.[12]$`)

// NeutronHosts returns the nodes that run the Neutron agents (L3, DHCP,
// metadata) and so need Neutron's external interface: the network nodes,
// or the controllers when the plan has none (the HA rules count them the
// same way).
func (p *Plan) NeutronHosts() []*Node {
	if ns := p.NodesWith(RoleNetwork); len(ns) > 0 {
		return ns
	}
	return p.NodesWith(RoleController)
}

// CephMonHosts returns the nodes that run the Ceph monitors (and managers):
// the ceph-mon nodes, or the controllers when the plan has none. Empty when
// the plan has no storage node.
func (p *Plan) CephMonHosts() []*Node {
	if len(p.NodesWith(RoleStorage)) == 0 {
		return nil
	}
	if ns := p.NodesWith(RoleCephMon); len(ns) > 0 {
		return ns
	}
	return p.NodesWith(RoleController)
}

// InternalVIP returns the VIP named "internal" (kolla_internal_vip_address).
func (p *Plan) InternalVIP() (VIP, bool) { return p.vip("internal") }

// ExternalVIP returns the VIP named "external" (kolla_external_vip_address).
func (p *Plan) ExternalVIP() (VIP, bool) { return p.vip("external") }

func (p *Plan) vip(name string) (VIP, bool) {
	for _, v := range p.VIPs {
		if v.Name == name && v.Network != nil && v.Address.IsValid() {
			return v, true
		}
	}
	return VIP{}, false
}

// APINetwork returns the network kolla-ansible's api_interface is on: the
// management network, or the provisioning network when there is none.
func (p *Plan) APINetwork() *Network {
	for _, n := range p.Networks {
		if n.Purpose == PurposeManagement {
			return n
		}
	}
	return p.ProvisioningNetwork()
}

// checkHandoff applies the hand-off rules and records the openstack:
// section in the plan.
func checkHandoff(r *reporter, p *Plan, os OpenStackSpec) {
	p.OpenStack = OpenStack(os)
	if os.Release != "" && !releaseRE.MatchString(os.Release) {
		r.errorf("openstack-release", "openstack.release", "write the release as kolla-ansible names it, e.g. \"2025.2\" (quoted, so YAML keeps it a string)", "%q is not an OpenStack release", os.Release)
	}
	if v := os.KeepalivedVirtualRouterID; v != 0 && (v < 1 || v > 255) {
		r.errorf("keepalived-vrid", "openstack.keepalived_virtual_router_id", "use a VRRP router id from 1 to 255 that no other keepalived cluster on the VIP networks uses", "virtual router id %d is out of range 1-255", v)
	}
	if os.DockerRegistry != "" && !validRegistry(os.DockerRegistry) {
		r.errorf("docker-registry", "openstack.docker_registry", "write the registry as host or host:port, e.g. 10.10.0.250:4000 (no http://, no path)", "%q is not a registry host[:port]", os.DockerRegistry)
	}
	if len(p.Nodes) == 0 {
		return
	}
	handoffVIPs(r, p)
	handoffCeph(r, p)
	handoffNeutron(r, p, os.NeutronExternalInterface)
	if os.InstanceHA {
		for i, n := range p.Nodes {
			if n.Has(RoleCompute) && n.BMC == nil {
				r.errorf("instance-ha-fencing", fmt.Sprintf("nodes[%d]", i), "add the node's bmc: (Masakari's host monitor fences through it), or turn off openstack.instance_ha", "instance HA needs a fencing path, but compute node %q has no BMC", n.Name)
			}
		}
		if len(p.NodesWith(RoleStorage)) == 0 {
			r.warnf("instance-ha-storage", "openstack.instance_ha", "add Ceph storage nodes so instances live on shared RBD volumes", "instance HA without shared storage: an evacuated instance restarts from its image and loses its local disk")
		}
	}
}

// validRegistry reports whether s is host or host:port.
func validRegistry(s string) bool {
	host, port, found := strings.Cut(s, ":")
	if found {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return validHost(host)
}

func handoffVIPs(r *reporter, p *Plan) {
	ctl := len(p.NodesWith(RoleController))
	iv, ok := p.InternalVIP()
	if !ok {
		path := "vips"
		if _, written := r.pos[path]; !written {
			path = "nodes"
		}
		if ctl >= 2 {
			msg := fmt.Sprintf("%d controllers but no VIP named \"internal\": kolla-ansible's HAProxy and Keepalived need kolla_internal_vip_address", ctl)
			hint := "add vips: [{name: internal, network: <management network>, address: <a free address>}]"
			if p.Cluster.HA {
				r.errorf("internal-vip", path, hint, "%s", msg)
			} else {
				r.warnf("internal-vip", path, hint, "%s", msg)
			}
		}
		return
	}
	api := p.APINetwork()
	if api != nil && iv.Network != api {
		i := slices.IndexFunc(p.VIPs, func(v VIP) bool { return v.Name == "internal" })
		r.errorf("internal-vip", fmt.Sprintf("vips[%d].network", i), fmt.Sprintf("put the internal VIP on network %q, where the API services listen (kolla-ansible's api_interface)", api.Name), "the internal VIP is on network %q, but the API network is %q", iv.Network.Name, api.Name)
	}
}

func handoffCeph(r *reporter, p *Plan) {
	if len(p.NodesWith(RoleStorage)) == 0 {
		return
	}
	if !slices.ContainsFunc(p.Networks, func(n *Network) bool { return n.Purpose == PurposeStorage }) {
		r.errorf("ceph-storage-network", "networks", "add a network with purpose: storage (the Ceph public network the monitors and clients use)", "the plan has storage (Ceph OSD) nodes but no storage network")
	}
}

// handoffNeutron checks Neutron's external interface on every Neutron host.
func handoffNeutron(r *reporter, p *Plan, iface string) {
	hosts := p.NeutronHosts()
	if len(hosts) == 0 {
		return
	}
	const path = "openstack.neutron_external_interface"
	if iface == "" {
		at := "openstack"
		if _, written := r.pos[at]; !written {
			at = "nodes"
		}
		r.warnf("neutron-external-iface", at, "set openstack.neutron_external_interface: an interface without an address on the network nodes, e.g. bond0 (VLAN provider networks) or a spare NIC", "Neutron's external interface is not set: racklift handoff cannot write neutron_external_interface for %s", nodeNames(hosts))
		return
	}
	if !ifNameRE.MatchString(iface) {
		r.errorf("neutron-external-iface", path, "use a Linux interface name of at most 15 characters, e.g. bond0 or eno2", "%q is not a valid interface name", iface)
		return
	}
	var unknown []*Node
	for _, n := range hosts {
		for _, a := range n.Addresses {
			if a.Device == iface {
				r.errorf("neutron-external-iface", path, fmt.Sprintf("Neutron takes the interface over for its external bridge: use an interface without an address (e.g. the bond %s itself with VLAN provider networks, or a spare NIC), or move network %q elsewhere", a.Interface, a.Network.Name), "interface %s carries node %q's address %s on network %q: Neutron's external interface must have no address", iface, n.Name, a.Addr, a.Network.Name)
				return
			}
		}
		if inBond(n, iface) {
			r.errorf("neutron-external-iface", path, "use the bond instead of one of its members", "interface %s is a member of a bond on node %q", iface, n.Name)
			return
		}
		if !planKnowsInterface(n, iface) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		r.warnf("neutron-external-iface", path, "use a NIC or bond listed for the nodes (nics:, bonds:), or create the interface on the node yourself; the hand-off checks it against each node's verification facts", "interface %s is not one racklift configures on %s: create it on the node before deploying", iface, nodeNames(unknown))
	}
}

// planKnowsInterface reports whether iface is a NIC or bond of n: the
// interfaces racklift configures without an address on them. (A VLAN
// device exists only when a plan network with an address uses it.)
func planKnowsInterface(n *Node, iface string) bool {
	return slices.ContainsFunc(n.NICs, func(x NIC) bool { return x.Name == iface }) ||
		slices.ContainsFunc(n.Bonds, func(b Bond) bool { return b.Name == iface })
}

// nodeNames lists up to 5 node names for a message.
func nodeNames(ns []*Node) string {
	var s []string
	for i, n := range ns {
		if i == 5 {
			s = append(s, fmt.Sprintf("and %d more", len(ns)-5))
			break
		}
		s = append(s, fmt.Sprintf("%q", n.Name))
	}
	return strings.Join(s, ", ")
}
