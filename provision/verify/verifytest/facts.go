// Package verifytest builds the facts of a node installed exactly as its
// plan says, for tests of what consumes facts (verification, the
// orchestrator, the hand-off). Not for production use.
package verifytest

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// FactsFor builds the facts of a node installed exactly as planned, the
// way the facts script reports them: bond members carry their bond's MAC
// and their own as perm_mac, the root file system on a partition of the
// OS disk, blank OSD disks.
func FactsFor(p *plan.Plan, n *plan.Node) *nodeapi.Facts {
	f := &nodeapi.Facts{
		Version: nodeapi.FactsVersion, CollectedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Hostname: n.Name, FQDN: n.FQDN, Kernel: "6.1.0-28-amd64",
		OS:   nodeapi.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		UEFI: n.BIOS.UEFI(),
	}
	if f.UEFI {
		sb := n.BIOS.SecureBoot
		f.SecureBoot = &sb
	}
	links := n.Links()
	hw := map[string]string{}
	for i, l := range links {
		if l.Kind == plan.LinkNIC {
			hw[l.Name] = l.MAC
			if l.MAC == "" {
				hw[l.Name] = fmt.Sprintf("02:00:00:00:%02x:%02x", len(n.Name), i)
			}
		}
	}
	for _, l := range links {
		x := nodeapi.Interface{Name: l.Name, State: "up", MTU: l.MTU}
		switch l.Kind {
		case plan.LinkNIC:
			x.MAC = hw[l.Name]
			if l.Bond != "" {
				x.Master = l.Bond
				b, _ := n.Link(l.Bond)
				if first := hw[b.Members[0]]; first != x.MAC {
					x.MAC, x.PermMAC = first, x.MAC
				}
			}
		case plan.LinkBond:
			x.Kind, x.MAC = "bond", hw[l.Members[0]]
			x.Bond = &nodeapi.Bond{Mode: l.Mode, Members: slices.Clone(l.Members)}
		case plan.LinkVLAN:
			x.Kind = "vlan"
			x.VLAN = &nodeapi.VLAN{ID: l.VLAN, Parent: l.Parent}
		}
		for _, a := range n.Addresses {
			if a.Device == l.Name {
				x.Addresses = append(x.Addresses, a.Prefix().String())
			}
		}
		f.Interfaces = append(f.Interfaces, x)
	}
	for _, a := range n.Addresses {
		f.Routes = append(f.Routes, nodeapi.Route{Dst: a.Network.Prefix.String(), Dev: a.Device})
		if a.Network.DefaultRoute && a.Network.Gateway.IsValid() {
			f.Routes = append(f.Routes, nodeapi.Route{Dst: "default", Gateway: a.Network.Gateway.String(), Dev: a.Device})
		}
	}
	for _, d := range p.NodeDNS(n) {
		f.DNS = append(f.DNS, d.String())
	}
	f.Disks = append(f.Disks, diskFacts(n.OSDisk, "sda", true))
	for i, o := range n.OSDs {
		f.Disks = append(f.Disks, diskFacts(o, fmt.Sprintf("sd%c", 'b'+i), false))
	}
	f.SSHHostKeys = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfTheTestNodeNotReal"}
	return f
}

// diskFacts is a disk as the facts show the plan disk pd; the OS disk
// gets a root partition.
func diskFacts(pd plan.Disk, name string, root bool) nodeapi.Disk {
	d := nodeapi.Disk{Name: name, Type: "disk", SizeBytes: 480_103_981_056, Serial: "SER-" + name}
	if pd.SizeBytes > 0 {
		d.SizeBytes = pd.SizeBytes
	}
	switch {
	case strings.HasPrefix(pd.Path, "/dev/disk/by-path/"):
		d.ByPath = []string{strings.TrimPrefix(pd.Path, "/dev/disk/by-path/")}
	case strings.HasPrefix(pd.Path, "/dev/disk/by-id/"):
		d.ByID = []string{strings.TrimPrefix(pd.Path, "/dev/disk/by-id/")}
	case pd.Path != "":
		d.Name = path.Base(pd.Path)
	case pd.ByID != "":
		d.ByID = []string{pd.ByID}
	case pd.Serial != "":
		d.Serial = pd.Serial
	}
	d.Path = "/dev/" + d.Name
	if root {
		d.PTType = "gpt"
		d.Partitions = []nodeapi.Disk{
			{Name: d.Name + "1", Path: d.Path + "1", Type: "part", SizeBytes: 1 << 20, PTType: "gpt"},
			{Name: d.Name + "2", Path: d.Path + "2", Type: "part", SizeBytes: d.SizeBytes - 1<<20, PTType: "gpt", FSType: "ext4", Mountpoints: []string{"/"}},
		}
	}
	return d
}
