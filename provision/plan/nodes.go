package plan

import (
	"fmt"
	"net/netip"
	pathpkg "path"
	"slices"
	"strings"
)

// nodeCtx carries what resolving one node needs.
type nodeCtx struct {
	spec NodeSpec
	path string
	role *RoleDefault // first matching per-role default, or nil
	node *Node
}

func (rs *resolver) nodes() {
	r := rs.r
	for _, k := range sortedKeys(rs.spec.Defaults.Roles) {
		if !validRole(k) {
			r.errorf("role", mapKeyPath("defaults.roles", k), "use one of "+roleList(), "unknown role %q", k)
		}
	}
	if rs.spec.Defaults.BMC.Address != "" {
		r.errorf("bmc-address", "defaults.bmc.address", "set address on each node's bmc:", "BMC addresses are per node, not a default")
	}
	if len(rs.spec.Nodes) == 0 {
		r.errorf("required", "nodes", "add the servers under nodes:", "no nodes are defined")
	}
	d := rs.spec.Defaults
	rs.checkSoftware("defaults", d.Packages, d.KernelArgs, d.Sysctl)
	for _, k := range sortedKeys(d.Roles) {
		rs.checkSoftware(mapKeyPath("defaults.roles", k), d.Roles[k].Packages, nil, nil)
		if p := d.Roles[k].Profile; p != "" {
			rs.checkProfile(p, mapKeyPath("defaults.roles", k)+".profile")
		}
	}
	if d.Profile != "" {
		rs.checkProfile(d.Profile, "defaults.profile")
	}
	macOwner := map[string]string{}
	for i, ns := range rs.spec.Nodes {
		nc := &nodeCtx{spec: ns, path: fmt.Sprintf("nodes[%d]", i), node: &Node{Name: ns.Name, Index: -1}}
		rs.nodeIdentity(nc, macOwner)
		rs.nodeBMC(nc)
		rs.nodeInterfaces(nc, macOwner)
		rs.nodeNetworks(nc)
		rs.nodeDisks(nc)
		rs.nodeSoftware(nc)
		rs.nodeBIOS(nc)
		rs.nodeImage(nc)
		n := nc.node
		if n.Name != "" && rs.p.byName[n.Name] == nil {
			rs.p.byName[n.Name] = n
		}
		if n.MAC != "" {
			if _, ok := rs.p.byMAC[n.MAC]; !ok {
				rs.p.byMAC[n.MAC] = n
			}
		}
		for _, nic := range n.NICs {
			if nic.MAC != "" {
				if _, ok := rs.p.byMAC[nic.MAC]; !ok {
					rs.p.byMAC[nic.MAC] = n
				}
			}
		}
		rs.p.Nodes = append(rs.p.Nodes, n)
	}
}

func roleList() string {
	s := make([]string, 0, 8)
	for _, r := range AllRoles() {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}

func (rs *resolver) nodeIdentity(nc *nodeCtx, macOwner map[string]string) {
	r, ns, n, path := rs.r, nc.spec, nc.node, nc.path
	switch {
	case ns.Name == "":
		r.errorf("required", path+".name", "add name: e.g. cs-compute-0001", "node name is missing")
	case !dnsLabelRE.MatchString(ns.Name):
		r.errorf("name-dns", path+".name", "use lower-case letters, digits and '-' (a DNS label, at most 63 characters)", "%q is not a valid host name", ns.Name)
	case rs.p.byName[ns.Name] != nil:
		r.errorf("name-unique", path+".name", "give every node its own name", "node %q is defined twice", ns.Name)
	}
	if rs.p.Cluster.Domain != "" && n.Name != "" {
		n.FQDN = n.Name + "." + rs.p.Cluster.Domain
	} else {
		n.FQDN = n.Name
	}
	// Linux keeps at most 64 characters of host name (HOST_NAME_MAX), and
	// the kickstart sets the FQDN as the installed system's host name.
	if len(n.FQDN) > maxFQDN && n.Name != "" {
		r.errorf("name-length", path+".name", fmt.Sprintf("shorten the node name or cluster.domain: a node's FQDN must fit in %d characters (Linux's host name limit)", maxFQDN),
			"node %q: FQDN %s is %d characters", ns.Name, shorten(n.FQDN), len(n.FQDN))
	}
	if len(ns.Roles) == 0 {
		r.errorf("required", path+".roles", "add roles: e.g. [compute]; one of "+roleList(), "node %q has no roles", ns.Name)
	}
	for j, ro := range ns.Roles {
		rp := fmt.Sprintf("%s.roles[%d]", path, j)
		switch {
		case !validRole(ro):
			hint := "use one of " + roleList()
			if s := closest(ro, strings.Split(roleList(), ", ")); s != "" {
				hint = fmt.Sprintf("did you mean %q? (roles: %s)", s, roleList())
			}
			r.errorf("role", rp, hint, "unknown role %q", ro)
		case slices.Contains(n.Roles, Role(ro)):
			r.errorf("role", rp, "list each role once", "role %q is listed twice", ro)
		default:
			n.Roles = append(n.Roles, Role(ro))
		}
	}
	for _, ro := range n.Roles {
		if d, ok := rs.spec.Defaults.Roles[string(ro)]; ok {
			d := d
			nc.role = &d
			break
		}
	}
	if ns.MAC == "" {
		r.errorf("required", path+".mac", "add mac: the MAC of the NIC that PXE-boots, e.g. 52:54:00:12:34:56", "node %q has no PXE MAC", ns.Name)
	} else if m, err := canonicalMAC(ns.MAC); err != nil {
		r.errorf("mac", path+".mac", "write six hex pairs, e.g. 52:54:00:12:34:56 (unicast: the first byte is even)", "%q: %v", ns.MAC, err)
	} else if o, ok := macOwner[m]; ok {
		r.errorf("mac-unique", path+".mac", "each MAC belongs to one NIC; check for a copy-paste error", "MAC %s is already used by %s", m, o)
	} else {
		macOwner[m] = fmt.Sprintf("node %q", ns.Name)
		n.MAC = m
	}
	switch {
	case ns.Index != nil && *ns.Index < 0:
		r.errorf("index", path+".index", "use 0 or more", "index %d is negative", *ns.Index)
	case ns.Index != nil:
		n.Index = *ns.Index
	default:
		n.Index = nameIndex(ns.Name)
	}
}

func (rs *resolver) nodeBMC(nc *nodeCtx) {
	r, path, n := rs.r, nc.path+".bmc", nc.node
	b := rs.spec.Defaults.BMC
	b.Address = "" // per node only; a default address is reported in nodes()
	if o := nc.spec.BMC; o != nil {
		b.Address = o.Address
		if o.Driver != "" {
			b.Driver = o.Driver
		}
		if o.Port != 0 {
			b.Port = o.Port
		}
		if o.User != "" {
			b.User = o.User
		}
		if o.PasswordSecret != "" {
			b.PasswordSecret = o.PasswordSecret
		}
		if o.TLSVerify != nil {
			b.TLSVerify = o.TLSVerify
		}
	}
	if b.Address == "" {
		if nc.spec.BMC != nil {
			r.errorf("required", path+".address", "add the BMC's address, or remove bmc: if the node has none", "node %q has a bmc: section without an address", n.Name)
		}
		if n.Has(RoleCompute) {
			r.warnf("fencing", nc.path, "add the node's bmc: so instance HA can fence it", "compute node %q has no BMC: no fencing path for instance HA, and it must be powered on by hand", n.Name)
		} else if n.Name != "" {
			r.warnf("no-bmc", nc.path, "add the node's bmc: so racklift can power it and set PXE boot", "node %q has no BMC: it must be powered on and PXE-booted by hand", n.Name)
		}
		return
	}
	fp := func(field string, own bool) string {
		if own {
			return path + "." + field
		}
		return "defaults.bmc." + field
	}
	o := nc.spec.BMC // non-nil: only a node's own bmc: sets an address
	out := &BMC{Address: b.Address, Driver: b.Driver, Port: b.Port, User: b.User, PasswordSecret: b.PasswordSecret, TLSVerify: b.TLSVerify != nil && *b.TLSVerify}
	if out.Driver == "" {
		out.Driver = "auto"
	}
	switch out.Driver {
	case "ipmi", "redfish", "auto":
	default:
		r.errorf("bmc-driver", fp("driver", o.Driver != ""), "use ipmi, redfish or auto", "unknown BMC driver %q", out.Driver)
	}
	if out.Port < 0 || out.Port > 65535 {
		r.errorf("bmc-port", fp("port", o.Port != 0), "use a TCP/UDP port 1-65535", "port %d is out of range", out.Port)
	}
	if out.Port == 0 {
		out.Port = 623
		if out.Driver == "redfish" {
			out.Port = 443
		}
	}
	if out.User == "" {
		r.errorf("required", fp("user", false), "set user: in defaults.bmc or on the node", "node %q's BMC has no user", n.Name)
	}
	if out.PasswordSecret == "" {
		r.errorf("required", path+".password_secret", "set password_secret: NAME in defaults.bmc or on the node, and NAME's value in the secrets file", "node %q's BMC has no password_secret", n.Name)
	} else {
		rs.secretRefs = append(rs.secretRefs, secretRef{out.PasswordSecret, bmcSecretPath(nc)})
	}
	if a, err := netip.ParseAddr(out.Address); err == nil {
		if !a.Is4() {
			r.errorf("address", path+".address", "write an IPv4 address", "%q is not an IPv4 address", out.Address)
		} else {
			var bmcNet *Network
			for _, nw := range rs.p.Networks {
				if nw.Purpose == PurposeBMC {
					bmcNet = nw
				}
			}
			if bmcNet != nil && bmcNet.Prefix.IsValid() && !hostIn(bmcNet.Prefix, a) {
				r.errorf("bmc-in-network", path+".address", fmt.Sprintf("use an address inside %s, or fix the BMC network's cidr", bmcNet.Prefix), "BMC address %s is not inside the BMC network %q (%s)", a, bmcNet.Name, bmcNet.Prefix)
			}
			rs.claim(a, fmt.Sprintf("the BMC of %q", n.Name), path+".address")
		}
	} else if !validHost(out.Address) {
		r.errorf("address", path+".address", "write an IPv4 address or a host name", "%q is not an address or host name", out.Address)
	} else if prev, dup := rs.bmcHosts[strings.ToLower(out.Address)]; dup {
		r.errorf("address-unique", path+".address", "give each BMC its own address", "BMC %s is already used by %s", out.Address, prev)
	} else {
		rs.bmcHosts[strings.ToLower(out.Address)] = fmt.Sprintf("the BMC of %q", n.Name)
	}
	n.BMC = out
}

func bmcSecretPath(nc *nodeCtx) string {
	if nc.spec.BMC != nil && nc.spec.BMC.PasswordSecret != "" {
		return nc.path + ".bmc.password_secret"
	}
	return "defaults.bmc.password_secret"
}

func (rs *resolver) nodeInterfaces(nc *nodeCtx, macOwner map[string]string) {
	r, n := rs.r, nc.node
	nics, nicPath := nc.spec.NICs, nc.path+".nics"
	if nics == nil {
		nics, nicPath = rs.spec.Defaults.NICs, "defaults.nics"
	}
	bonds, bondPath := nc.spec.Bonds, nc.path+".bonds"
	if bonds == nil {
		bonds, bondPath = rs.spec.Defaults.Bonds, "defaults.bonds"
	}
	names := map[string]bool{}
	for j, s := range nics {
		p := fmt.Sprintf("%s[%d]", nicPath, j)
		nic := NIC{Name: s.Name, MTU: s.MTU}
		switch {
		case !ifNameRE.MatchString(s.Name):
			r.errorf("ifname", p+".name", "use a Linux interface name of at most 15 characters, e.g. eno1", "%q is not a valid interface name", s.Name)
		case names[s.Name]:
			r.errorf("ifname-unique", p+".name", "give each NIC and bond its own name", "interface %q is defined twice on node %q", s.Name, n.Name)
		}
		names[s.Name] = true
		if s.MAC != "" {
			m, err := canonicalMAC(s.MAC)
			switch {
			case err != nil:
				r.errorf("mac", p+".mac", "write six hex pairs, e.g. 52:54:00:12:34:56", "%q: %v", s.MAC, err)
			case m == n.MAC:
				nic.MAC = m
			case macOwner[m] != "":
				r.errorf("mac-unique", p+".mac", "each MAC belongs to one NIC; defaults.nics cannot carry MACs", "MAC %s is already used by %s", m, macOwner[m])
			default:
				macOwner[m] = fmt.Sprintf("NIC %s of node %q", s.Name, n.Name)
				nic.MAC = m
			}
		}
		if s.MTU != 0 && (s.MTU < 576 || s.MTU > 9216) {
			r.errorf("mtu", p+".mtu", "use 576-9216", "MTU %d is out of range", s.MTU)
		}
		n.NICs = append(n.NICs, nic)
	}
	if len(n.NICs) == 0 {
		n.NICs = []NIC{{Name: "pxe0", MAC: n.MAC}}
		names["pxe0"] = true
	}
	member := map[string]string{}
	for j, s := range bonds {
		p := fmt.Sprintf("%s[%d]", bondPath, j)
		b := Bond{Name: s.Name, Mode: s.Mode, MTU: s.MTU}
		if b.Mode == "" {
			b.Mode = "802.3ad"
		}
		switch b.Mode {
		case "802.3ad", "active-backup", "balance-rr", "balance-xor", "balance-tlb", "balance-alb", "broadcast":
		default:
			r.errorf("bond-mode", p+".mode", "use 802.3ad (LACP) or active-backup", "unknown bond mode %q", s.Mode)
		}
		switch {
		case !ifNameRE.MatchString(s.Name):
			r.errorf("ifname", p+".name", "use a name like bond0", "%q is not a valid interface name", s.Name)
		case names[s.Name]:
			r.errorf("ifname-unique", p+".name", "give each NIC and bond its own name", "interface %q is defined twice on node %q", s.Name, n.Name)
		}
		names[s.Name] = true
		if len(s.Members) == 0 {
			r.errorf("bond-members", p+".members", "list the NICs in the bond", "bond %q has no members", s.Name)
		} else if len(s.Members) == 1 {
			r.warnf("bond-members", p+".members", "add a second NIC for redundancy", "bond %q has one member: no redundancy", s.Name)
		}
		for k, m := range s.Members {
			mp := fmt.Sprintf("%s.members[%d]", p, k)
			switch {
			case !slices.ContainsFunc(n.NICs, func(x NIC) bool { return x.Name == m }):
				r.errorf("bond-members", mp, "members must be NICs listed under nics:", "bond %q member %q is not a NIC of node %q", s.Name, m, n.Name)
			case member[m] != "":
				r.errorf("bond-members", mp, "a NIC can be in one bond only", "NIC %q is already in bond %q", m, member[m])
			default:
				member[m] = s.Name
				b.Members = append(b.Members, m)
			}
		}
		n.Bonds = append(n.Bonds, b)
	}
}

// wantNetworks returns the networks the node must be on, in plan order.
func (rs *resolver) wantNetworks(nc *nodeCtx) []*Network {
	n := nc.node
	want := map[string]bool{}
	for _, nw := range rs.p.Networks {
		if nw.Provisioning {
			want[nw.Name] = true
		}
		for _, ro := range n.Roles {
			if slices.Contains(rolePurposes(ro), nw.Purpose) {
				want[nw.Name] = true
			}
		}
	}
	if n.Has(RoleController) {
		for _, v := range rs.p.VIPs {
			if v.Network != nil {
				want[v.Network.Name] = true
			}
		}
	}
	for k := range nc.spec.Networks {
		want[k] = true
	}
	if nc.role != nil {
		for k := range nc.role.Networks {
			want[k] = true
		}
	}
	var out []*Network
	for _, nw := range rs.p.Networks {
		if want[nw.Name] {
			out = append(out, nw)
		}
	}
	return out
}

func (rs *resolver) nodeNetworks(nc *nodeCtx) {
	r, n := rs.r, nc.node
	for _, k := range sortedKeys(nc.spec.Networks) {
		if _, ok := rs.p.byNet[k]; !ok {
			r.errorf("network-ref", mapKeyPath(nc.path+".networks", k), "use one of the networks: "+strings.Join(rs.netNames(), ", "), "unknown network %q", k)
		}
	}
	if nc.role != nil {
		for _, k := range sortedKeys(nc.role.Networks) {
			if _, ok := rs.p.byNet[k]; !ok {
				r.errorf("network-ref", "defaults.roles", "use one of the networks: "+strings.Join(rs.netNames(), ", "), "unknown network %q", k)
			}
		}
	}
	untagged := map[string]string{}
	for _, nw := range rs.wantNetworks(nc) {
		ap := mapKeyPath(nc.path+".networks", nw.Name)
		att := nc.spec.Networks[nw.Name]
		iface := att.Interface
		if iface == "" && nc.role != nil {
			iface = nc.role.Networks[nw.Name].Interface
		}
		if iface == "" {
			iface = rs.spec.Defaults.Networks[nw.Name].Interface
		}
		if iface == "" && nw.Provisioning {
			iface = pxeNIC(n)
		}
		if iface == "" && len(n.NICs) == 1 && len(n.Bonds) == 0 {
			iface = n.NICs[0].Name
		}
		if iface == "" && nw.Provisioning {
			r.errorf("pxe-nic", ap, fmt.Sprintf("give one NIC mac: %s, or leave one unbonded NIC's mac empty", n.MAC), "no unbonded NIC of node %q has its PXE MAC %s", n.Name, n.MAC)
			continue
		}
		if iface == "" {
			r.errorf("network-iface", ap, fmt.Sprintf("set defaults.networks.%s.interface (or the node's networks.%s.interface) to a NIC or bond", nw.Name, nw.Name), "node %q needs network %q but no interface carries it", n.Name, nw.Name)
			continue
		}
		isNIC := slices.ContainsFunc(n.NICs, func(x NIC) bool { return x.Name == iface })
		isBond := slices.ContainsFunc(n.Bonds, func(x Bond) bool { return x.Name == iface })
		if !isNIC && !isBond {
			r.errorf("network-iface", ap+".interface", "use a NIC or bond name of this node", "node %q has no interface %q (for network %q)", n.Name, iface, nw.Name)
			continue
		}
		if isNIC && slices.ContainsFunc(n.Bonds, func(b Bond) bool { return slices.Contains(b.Members, iface) }) {
			r.errorf("network-iface", ap+".interface", "put the network on the bond instead", "NIC %q is a bond member and cannot carry network %q", iface, nw.Name)
			continue
		}
		if nw.Provisioning {
			rs.checkPXEIface(nc, iface, isBond, ap)
		}
		dev := iface
		if nw.VLAN != 0 {
			dev = fmt.Sprintf("%s.%d", iface, nw.VLAN)
		} else if o, ok := untagged[iface]; ok {
			r.errorf("untagged-twice", ap+".interface", "tag one of the networks with a VLAN or move it to another interface", "interface %q already carries untagged network %q", iface, o)
			continue
		} else {
			untagged[iface] = nw.Name
		}
		addr, allocated, ok := rs.nodeAddress(nc, nw, att, ap)
		if !ok {
			continue
		}
		n.Addresses = append(n.Addresses, Address{Network: nw, Interface: iface, Device: dev, Addr: addr, Allocated: allocated})
	}
}

// pxeNIC returns the name of the NIC with the node's PXE MAC, or of the first
// NIC without a MAC (which then takes the PXE MAC).
func pxeNIC(n *Node) string {
	for _, x := range n.NICs {
		if x.MAC != "" && x.MAC == n.MAC {
			return x.Name
		}
	}
	for i, x := range n.NICs {
		if x.MAC == "" && !inBond(n, x.Name) {
			n.NICs[i].MAC = n.MAC
			return x.Name
		}
	}
	return ""
}

func inBond(n *Node, nic string) bool {
	return slices.ContainsFunc(n.Bonds, func(b Bond) bool { return slices.Contains(b.Members, nic) })
}

func (rs *resolver) checkPXEIface(nc *nodeCtx, iface string, isBond bool, ap string) {
	n := nc.node
	if isBond {
		rs.r.warnf("pxe-bond", ap+".interface", "configure LACP fallback (no-LACP bypass) on the switch ports, or PXE on an unbonded NIC", "node %q PXE-boots through bond %q: the switch must let a port forward before LACP is up", n.Name, iface)
		return
	}
	for i, x := range n.NICs {
		if x.Name != iface {
			continue
		}
		if x.MAC == "" {
			n.NICs[i].MAC = n.MAC
		} else if x.MAC != n.MAC {
			rs.r.errorf("pxe-nic", ap+".interface", "carry the provisioning network on the NIC whose MAC is the node's mac:", "NIC %q has MAC %s but the node PXE-boots from %s", iface, x.MAC, n.MAC)
		}
	}
}

func (rs *resolver) nodeAddress(nc *nodeCtx, nw *Network, att AttachSpec, ap string) (netip.Addr, bool, bool) {
	r, n := rs.r, nc.node
	if !nw.Prefix.IsValid() {
		return netip.Addr{}, false, false
	}
	var a netip.Addr
	allocated := false
	hint := "give each address to one thing only"
	if att.Address != "" {
		p, err := netip.ParseAddr(att.Address)
		if err != nil || !p.Is4() {
			r.errorf("address", ap+".address", "write an IPv4 address", "%q is not an IPv4 address", att.Address)
			return a, false, false
		}
		a = p
	} else {
		spec := rs.spec.Networks[slices.IndexFunc(rs.spec.Networks, func(s NetSpec) bool { return s.Name == nw.Name })]
		key := "default"
		for _, ro := range n.Roles {
			if _, ok := spec.Allocate[string(ro)]; ok {
				key = string(ro)
				break
			}
		}
		base, ok := spec.Allocate[key]
		if !ok {
			r.errorf("address-missing", ap+".address", fmt.Sprintf("set networks.%s.address on the node, or add allocate: {default: FIRST-ADDRESS} to network %q", nw.Name, nw.Name), "node %q has no address on network %q", n.Name, nw.Name)
			return a, false, false
		}
		if n.Index < 0 {
			r.errorf("address-missing", ap+".address", "end the node name with its number (e.g. -07) or set index:, or give the address explicitly", "node %q needs an automatic address on %q but has no index", n.Name, nw.Name)
			return a, false, false
		}
		b, err := netip.ParseAddr(base)
		if err != nil {
			return a, false, false // reported on the network
		}
		var ok2 bool
		a, ok2 = addOffset(b, n.Index)
		if !ok2 {
			r.errorf("address-alloc", ap+".address", "use a lower index or another allocate: base", "allocation overflows for index %d", n.Index)
			return a, false, false
		}
		allocated = true
		hint = fmt.Sprintf("racklift allocated it as allocate.%s (%s) + index %d: give each role its own allocate: block, or set the address explicitly", key, base, n.Index)
	}
	if !hostIn(nw.Prefix, a) {
		if allocated {
			hint = fmt.Sprintf("the address was allocated (%s); use a lower index, another allocate: base, or an explicit address inside %s", hint, nw.Prefix)
		} else {
			hint = fmt.Sprintf("use a host address inside %s", nw.Prefix)
		}
		r.errorf("address-in-network", ap+".address", hint, "%s is not a host address of network %q (%s)", a, nw.Name, nw.Prefix)
		return a, false, false
	}
	if nw.DynamicStart.IsValid() && inRange(a, nw.DynamicStart, nw.DynamicEnd) {
		r.errorf("address-unique", ap+".address", "move the address or the dynamic range", "%s is inside the dynamic range of %q", a, nw.Name)
	}
	rs.claimHint(a, fmt.Sprintf("node %q on %q", n.Name, nw.Name), ap+".address", hint)
	return a, allocated, true
}

func (rs *resolver) disk(s DiskSpec, path string) (Disk, bool) {
	set := 0
	for _, v := range []string{s.Path, s.ByID, s.Serial} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		rs.r.errorf("disk-ref", path, "give exactly one of path:, by_id: or serial:", "a disk needs exactly one of path, by_id, serial (found %d)", set)
		return Disk{}, false
	}
	if s.Path != "" && (!strings.HasPrefix(s.Path, "/dev/") || strings.Contains(s.Path, "..")) {
		rs.r.errorf("disk-ref", path+".path", "write a device path like /dev/sda or /dev/disk/by-path/...", "%q is not a /dev path", s.Path)
		return Disk{}, false
	}
	if strings.ContainsAny(s.ByID+s.Serial, "/ \t\n") {
		rs.r.errorf("disk-ref", path, "by_id is the name under /dev/disk/by-id/ without the directory", "disk identifier contains '/' or spaces")
		return Disk{}, false
	}
	d := Disk{Path: s.Path, ByID: s.ByID, Serial: s.Serial, Wipe: s.Wipe}
	if s.Path != "" {
		// /dev//sda and /dev/./sda are /dev/sda: compare (and render) the clean path.
		if d.Path = pathpkg.Clean(s.Path); d.Path != s.Path {
			rs.r.warnf("disk-ref", path+".path", fmt.Sprintf("write %s", d.Path), "%q is %s; racklift uses %s", s.Path, d.Path, d.Path)
		}
	}
	if s.Size != "" {
		b, err := ParseDiskSize(s.Size)
		if err != nil {
			rs.r.errorf("disk-size", path+".size", "write a size like 480G or 1.92T (powers of 1000, as on the disk's label) or 447GiB (powers of 1024, as lsblk shows)", "%q is not a disk size: %v", s.Size, err)
			return Disk{}, false
		}
		d.SizeBytes = b
	}
	return d, true
}

func (rs *resolver) nodeDisks(nc *nodeCtx) {
	r, n := rs.r, nc.node
	osd, osPath := rs.spec.Defaults.Disks.OS, "defaults.disks.os"
	if nc.role != nil && nc.role.Disks.OS != nil {
		osd, osPath = nc.role.Disks.OS, "defaults.roles"
	}
	if nc.spec.Disks != nil && nc.spec.Disks.OS != nil {
		osd, osPath = nc.spec.Disks.OS, nc.path+".disks.os"
	}
	if osd == nil {
		r.errorf("os-disk", nc.path, "set disks: {os: {path: /dev/sda}} on the node or in defaults", "node %q has no OS disk", n.Name)
	} else if d, ok := rs.disk(*osd, osPath); ok {
		n.OSDisk = d
		if d.Wipe {
			r.warnf("os-disk", osPath+".wipe", "remove wipe: the OS disk is always repartitioned", "wipe has no effect on the OS disk")
		}
	}
	osds, osdPath := rs.spec.Defaults.Disks.OSDs, "defaults.disks.osds"
	explicit := false
	if nc.role != nil && nc.role.Disks.OSDs != nil {
		osds, osdPath = nc.role.Disks.OSDs, "defaults.roles"
	}
	if nc.spec.Disks != nil && nc.spec.Disks.OSDs != nil {
		osds, osdPath, explicit = nc.spec.Disks.OSDs, nc.path+".disks.osds", true
	}
	if !n.Has(RoleStorage) {
		if explicit && len(osds) > 0 {
			r.errorf("osd-role", osdPath, "add the storage role, or remove osds:", "node %q lists OSD disks but has no storage role", n.Name)
		}
		return
	}
	if len(osds) == 0 {
		r.errorf("osd-missing", nc.path, "list the Ceph data disks under disks: {osds: [...]}", "storage node %q has no OSD disks", n.Name)
		return
	}
	// Keyed by the whole disk: a partition of a listed disk is that disk.
	type listed struct {
		what string
		disk Disk
	}
	seen := map[string]listed{}
	if n.OSDisk.Key() != "" {
		seen[n.OSDisk.WholeKey()] = listed{"the OS disk", n.OSDisk}
	}
	for j, s := range osds {
		p := fmt.Sprintf("%s[%d]", osdPath, j)
		d, ok := rs.disk(s, p)
		if !ok {
			continue
		}
		if prev, dup := seen[d.WholeKey()]; dup {
			same := ""
			if prev.disk.Key() != d.Key() {
				same = fmt.Sprintf(" (%s and %s are on one disk)", prev.disk, d)
			}
			if prev.what == "the OS disk" {
				r.errorf("osd-os-disk", p, "an OSD disk must never be the OS disk or share it; pick another disk", "%s is the OS disk of node %q%s", d, n.Name, same)
			} else {
				r.errorf("disk-twice", p, "list each disk once", "%s is already listed as %s%s", d, prev.what, same)
			}
			continue
		}
		seen[d.WholeKey()] = listed{fmt.Sprintf("OSD %d", j), d}
		n.OSDs = append(n.OSDs, d)
	}
}

func (rs *resolver) nodeSoftware(nc *nodeCtx) {
	r, n, d := rs.r, nc.node, rs.spec.Defaults
	n.Profile, n.ReservedMemoryMB = rs.p.Cluster.Profile, d.ReservedMemoryMB
	if d.Profile != "" {
		n.Profile = d.Profile
	}
	pkgs := slices.Clone(d.Packages)
	if nc.role != nil {
		if nc.role.Profile != "" {
			n.Profile = nc.role.Profile
		}
		if nc.role.ReservedMemoryMB != 0 {
			n.ReservedMemoryMB = nc.role.ReservedMemoryMB
		}
		pkgs = append(pkgs, nc.role.Packages...)
	}
	if nc.spec.Profile != "" {
		n.Profile = nc.spec.Profile
	}
	if nc.spec.ReservedMemoryMB != 0 {
		n.ReservedMemoryMB = nc.spec.ReservedMemoryMB
	}
	switch {
	case n.Profile == "":
		r.errorf("profile", nc.path, "set cluster.profile (e.g. rocky9 or ubuntu2404) or the node's profile:", "node %q has no OS profile", n.Name)
	case nc.spec.Profile != "":
		rs.checkProfile(n.Profile, nc.path+".profile")
	}
	pkgs = append(pkgs, nc.spec.Packages...)
	rs.checkSoftware(nc.path, nc.spec.Packages, nc.spec.KernelArgs, nc.spec.Sysctl)
	for _, p := range pkgs {
		if !slices.Contains(n.Packages, p) && pkgRE.MatchString(p) {
			n.Packages = append(n.Packages, p)
		}
	}
	n.KernelArgs = append(slices.Clone(d.KernelArgs), nc.spec.KernelArgs...)
	n.Sysctl = map[string]string{}
	for k, v := range d.Sysctl {
		n.Sysctl[k] = v
	}
	for k, v := range nc.spec.Sysctl {
		n.Sysctl[k] = v
	}
	if n.ReservedMemoryMB < 0 {
		r.errorf("reserved-memory", nc.path+".reserved_memory_mb", "use 0 or more", "reserved memory is negative")
	}
	if n.Has(RoleCompute) && n.Has(RoleStorage) && n.ReservedMemoryMB == 0 {
		r.warnf("hci-memory", nc.path, "set reserved_memory_mb (about 4096 per OSD plus 4096 for the host) on the node or in defaults", "hyper-converged node %q (compute + storage) reserves no memory for its %d OSD(s)", n.Name, len(n.OSDs))
	}
}

// checkSoftware validates package names, kernel arguments and sysctl
// settings written at path (a node, defaults or a role default).
func (rs *resolver) checkSoftware(path string, pkgs, args []string, sysctl map[string]string) {
	r := rs.r
	for j, p := range pkgs {
		if !pkgRE.MatchString(p) {
			r.errorf("package", fmt.Sprintf("%s.packages[%d]", path, j), "write one package name per entry", "%q is not a package name", p)
		}
	}
	for j, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'`$;") {
			r.errorf("kernel-arg", fmt.Sprintf("%s.kernel_args[%d]", path, j), "one argument per entry, without spaces or quotes", "%q is not a single kernel argument", a)
		}
	}
	for _, k := range sortedKeys(sysctl) {
		if !sysctlRE.MatchString(k) || strings.ContainsAny(sysctl[k], "\n\r") {
			r.errorf("sysctl", mapKeyPath(path+".sysctl", k), "write keys like net.ipv4.ip_forward and one-line values", "%q is not a valid sysctl setting", k)
		}
	}
}

// nodeBIOS merges the BIOS baseline: defaults, then the role, then the node.
// nodeImage checks, when the loader knows the imported images, that a node
// of an image profile has its image and that the image fits its OS disk.
func (rs *resolver) nodeImage(nc *nodeCtx) {
	n := nc.node
	if rs.opts.Images == nil || n.Profile == "" {
		return
	}
	img := rs.opts.Images.ProfileImage(n.Profile)
	if img == "" {
		return
	}
	size, ok := rs.opts.Images.ImageSize(img)
	switch {
	case !ok:
		rs.r.errorf("image", nc.path, fmt.Sprintf("import it once: racklift image import %s FILE (with the same --state-dir)", img),
			"node %q: profile %s deploys the image %q, which is not imported", n.Name, n.Profile, img)
	case n.OSDisk.SizeBytes > 0:
		if _, hi := n.OSDisk.SizeRange(); size > hi {
			rs.r.errorf("image", nc.path, "give the node a larger OS disk, or build a smaller image",
				"node %q: image %q needs %d bytes, more than its OS disk (%s, %d bytes)", n.Name, img, size, n.OSDisk, n.OSDisk.SizeBytes)
		}
	}
}

func (rs *resolver) nodeBIOS(nc *nodeCtx) {
	out := BIOS{BootMode: "uefi", Attributes: map[string]string{}}
	// Where boot_mode and secure_boot were last set (the most specific
	// level), for the message when they disagree.
	var modePath, sbPath string
	merge := func(b *BIOSSpec, path string) {
		if b == nil {
			return
		}
		switch b.BootMode {
		case "":
		case "uefi", "legacy":
			out.BootMode = b.BootMode
			modePath = path + ".boot_mode"
		default:
			rs.r.errorf("bios-boot-mode", path+".boot_mode", "use uefi or legacy", "unknown boot mode %q", b.BootMode)
		}
		if b.SecureBoot != nil {
			out.SecureBoot = *b.SecureBoot
			sbPath = path + ".secure_boot"
		}
		if b.PXENIC != "" {
			out.PXENIC = b.PXENIC
		}
		if b.Virtualization != nil {
			out.Virtualization = b.Virtualization
		}
		for _, k := range sortedKeys(b.Attributes) {
			if k == "" || strings.ContainsAny(k+b.Attributes[k], "\n\r") {
				rs.r.errorf("bios-attribute", mapKeyPath(path+".attributes", k), "one-line attribute names and values", "invalid BIOS attribute %q", k)
				continue
			}
			out.Attributes[k] = b.Attributes[k]
		}
	}
	d := rs.spec.Defaults.BIOS
	merge(&d, "defaults.bios")
	if nc.role != nil {
		merge(nc.role.BIOS, "defaults.roles")
	}
	merge(nc.spec.BIOS, nc.path+".bios")
	if out.SecureBoot && out.BootMode != "uefi" {
		// Point at whichever of the two the node's own level (or the
		// more specific one) set; secure_boot when they are equal.
		at := sbPath
		if specificity(modePath) > specificity(sbPath) {
			at = modePath
		}
		rs.r.errorf("secure-boot-mode", at, "set boot_mode: uefi for this node, or secure_boot: false (Secure Boot is a UEFI feature)",
			"node %q has secure_boot: true but boot_mode %s", nc.node.Name, out.BootMode)
	}
	nc.node.BIOS = out
}

// specificity ranks where a BIOS setting came from: defaults, a role, the node.
func specificity(path string) int {
	switch {
	case strings.HasPrefix(path, "nodes["):
		return 2
	case strings.HasPrefix(path, "defaults.roles"):
		return 1
	}
	return 0
}
