package plan

import "slices"

// LinkKind is what a network device of a node is.
type LinkKind string

// Link kinds.
const (
	LinkNIC  LinkKind = "nic"
	LinkBond LinkKind = "bond"
	LinkVLAN LinkKind = "vlan"
)

// DefaultMTU is the MTU of a network or interface that sets none.
const DefaultMTU = 1500

// Link is one network device the installed node must have, with the MTU
// it must run at. It is the one definition of a node's interfaces that
// the renderer writes and verification checks.
type Link struct {
	Name string
	Kind LinkKind
	// MAC is set for NICs whose MAC the plan knows (the PXE NIC's is the
	// node's MAC).
	MAC string
	// MTU is the interface's MTU: its own mtu: if set, raised to the
	// largest MTU of the networks it carries (untagged or as VLAN parent),
	// and for a bond member to its bond's MTU; DefaultMTU when nothing
	// sets one.
	MTU int
	// Bond is the bond a NIC is a member of ("" if none).
	Bond string
	// Mode and Members are set for bonds.
	Mode    string
	Members []string
	// Parent and VLAN are set for VLAN devices (Name is Parent.VLAN).
	Parent string
	VLAN   int
}

// Links returns the node's NICs (plan order), bonds (plan order) and VLAN
// devices (in the order of the networks they carry).
func (n *Node) Links() []Link {
	out := make([]Link, 0, len(n.NICs)+len(n.Bonds)+len(n.Addresses))
	for _, x := range n.NICs {
		out = append(out, Link{Name: x.Name, Kind: LinkNIC, MAC: x.MAC, MTU: x.MTU})
	}
	for _, b := range n.Bonds {
		out = append(out, Link{Name: b.Name, Kind: LinkBond, Mode: b.Mode, Members: slices.Clone(b.Members), MTU: b.MTU})
		for _, m := range b.Members {
			if i := linkIndex(out, m); i >= 0 && out[i].Kind == LinkNIC {
				out[i].Bond = b.Name
			}
		}
	}
	raise := func(name string, mtu int) {
		if i := linkIndex(out, name); i >= 0 && out[i].MTU < mtu {
			out[i].MTU = mtu
		}
	}
	for _, a := range n.Addresses {
		mtu := a.Network.MTU
		if mtu == 0 {
			mtu = DefaultMTU
		}
		raise(a.Interface, mtu)
		if a.Network.VLAN != 0 && linkIndex(out, a.Device) < 0 {
			out = append(out, Link{Name: a.Device, Kind: LinkVLAN, Parent: a.Interface, VLAN: a.Network.VLAN, MTU: mtu})
		}
	}
	for i := range out {
		if out[i].Kind == LinkNIC && out[i].MTU == 0 {
			out[i].MTU = DefaultMTU
		}
	}
	for _, l := range out {
		if l.Kind != LinkBond {
			continue
		}
		mtu := l.MTU
		if mtu == 0 {
			mtu = DefaultMTU
			out[linkIndex(out, l.Name)].MTU = mtu
		}
		for _, m := range l.Members {
			raise(m, mtu)
		}
	}
	return out
}

// Link returns the node's link of that name.
func (n *Node) Link(name string) (Link, bool) {
	ls := n.Links()
	if i := linkIndex(ls, name); i >= 0 {
		return ls[i], true
	}
	return Link{}, false
}

func linkIndex(ls []Link, name string) int {
	return slices.IndexFunc(ls, func(l Link) bool { return l.Name == name })
}
