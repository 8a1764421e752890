package verify

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

func loadExample(t testing.TB, name string) *plan.Plan {
	t.Helper()
	data, err := fs.ReadFile(plan.Examples(), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load(name+".yaml", data, plan.Options{Profiles: profs})
	if p == nil {
		t.Fatalf("example %s invalid: %v", name, ds)
	}
	return p
}

func node(t testing.TB, p *plan.Plan, name string) *plan.Node {
	t.Helper()
	n, ok := p.NodeByName(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	return n
}

// factsFor builds the facts of a node installed exactly as planned, the
// way the facts script reports them: bond members carry their bond's MAC
// and their own as perm_mac, the root file system on a partition of the
// OS disk, blank OSD disks.
func factsFor(p *plan.Plan, n *plan.Node) *nodeapi.Facts {
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
	c := &comparer{p: p, n: n}
	f.DNS = c.planDNS()
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

func findIface(f *nodeapi.Facts, name string) *nodeapi.Interface {
	for i := range f.Interfaces {
		if f.Interfaces[i].Name == name {
			return &f.Interfaces[i]
		}
	}
	panic("no interface " + name)
}

func findDisk(f *nodeapi.Facts, name string) *nodeapi.Disk {
	for i := range f.Disks {
		if f.Disks[i].Name == name {
			return &f.Disks[i]
		}
	}
	panic("no disk " + name)
}

// TestPlannedNodesVerify: every node of every example plan, installed as
// planned, verifies with no mismatch.
func TestPlannedNodesVerify(t *testing.T) {
	names, _ := fs.Glob(plan.Examples(), "*.yaml")
	for _, file := range names {
		ex := strings.TrimSuffix(file, ".yaml")
		p := loadExample(t, ex)
		for _, n := range p.Nodes {
			r := Compare(p, n, factsFor(p, n))
			if !r.OK() || r.Checked < 8 {
				t.Fatalf("%s/%s: %d checks, %v", ex, n.Name, r.Checked, r.Mismatches)
			}
			if !strings.HasPrefix(r.Summary(), "verified: all ") {
				t.Errorf("summary %q", r.Summary())
			}
		}
	}
}

type ruleCase struct {
	name    string
	example string
	node    string
	// change breaks the facts (or, via the node copy, the plan side).
	change func(f *nodeapi.Facts, n *plan.Node)
	nilF   bool
	check  Check
	want   []string // every mismatch's reason, in order
}

func cases() []ruleCase {
	hc, hcc, img := "hyperconverged", "hci-compute-01", "image-lab"
	return []ruleCase{
		{name: "no facts", example: hc, node: hcc, nilF: true, check: CheckFacts,
			want: []string{"the node reported no facts (its first boot could not run the facts script): nothing could be verified"}},
		{name: "unsupported version", example: hc, node: hcc, check: CheckFacts, change: func(f *nodeapi.Facts, _ *plan.Node) { f.Version = 2 },
			want: []string{"the node reported facts of version 2; this racklift reads version 1: nothing could be verified"}},
		{name: "hostname", example: hc, node: hcc, check: CheckHostname, change: func(f *nodeapi.Facts, _ *plan.Node) { f.Hostname = "localhost" },
			want: []string{"hostname localhost, plan hci-compute-01"}},
		{name: "fqdn unknown", example: hc, node: hcc, check: CheckFQDN, change: func(f *nodeapi.Facts, _ *plan.Node) { f.FQDN = "" },
			want: []string{"FQDN unknown (hci-compute-01 does not resolve on the node), plan hci-compute-01.hci.example.net"}},
		{name: "fqdn", example: hc, node: hcc, check: CheckFQDN, change: func(f *nodeapi.Facts, _ *plan.Node) { f.FQDN = "hci-compute-01.localdomain" },
			want: []string{"FQDN hci-compute-01.localdomain, plan hci-compute-01.hci.example.net"}},
		{name: "pxe nic missing", example: hc, node: hcc, check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) {
			findIface(f, "eno1").MAC = "52:54:00:12:34:56"
		}, want: []string{
			"eno1 missing: no interface with MAC b8:ca:3a:20:00:01 (eno1 has MAC 52:54:00:12:34:56)",
		}},
		{name: "pxe nic gone", example: hc, node: hcc, check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) {
			f.Interfaces = slices.DeleteFunc(f.Interfaces, func(x nodeapi.Interface) bool { return x.Name == "eno1" })
			f.Routes = slices.DeleteFunc(f.Routes, func(r nodeapi.Route) bool { return r.Dev == "eno1" })
		}, want: []string{
			"eno1 missing: no interface with MAC b8:ca:3a:20:00:01",
			"10.10.0.101/24 missing on eno1 (it has none)",
			"no default route, plan via 10.10.0.1 on eno1",
		}},
		{name: "nic renamed", example: hc, node: hcc, check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) {
			findIface(f, "eno1").Name = "ens3"
			for i := range f.Routes {
				if f.Routes[i].Dev == "eno1" {
					f.Routes[i].Dev = "ens3"
				}
			}
		}, want: []string{"NIC with MAC b8:ca:3a:20:00:01 is named ens3, plan eno1"}},
		{name: "nic by name missing", example: hc, node: hcc, check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) {
			findIface(f, "ens1f1").Name = "eth5"
			b := findIface(f, "bond0")
			b.Bond.Members = []string{"ens1f0", "eth5"}
		}, want: []string{"ens1f1 missing: no interface of that name", "bond0 members ens1f0, eth5, plan ens1f0, ens1f1"}},
		{name: "nic down", example: hc, node: hcc, check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "ens1f1").State = "down" },
			want: []string{"ens1f1 is down, want up"}},
		{name: "nic mtu", example: hc, node: hcc, check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "ens1f0").MTU = 1500 },
			want: []string{"ens1f0 MTU 1500, plan 9000"}},
		{name: "bond missing", example: hc, node: hcc, check: CheckBond, change: func(f *nodeapi.Facts, _ *plan.Node) {
			f.Interfaces = slices.DeleteFunc(f.Interfaces, func(x nodeapi.Interface) bool { return x.Name == "bond0" })
		}, want: []string{"bond0 missing: no bond of that name"}},
		{name: "bond not a bond", example: hc, node: hcc, check: CheckBond, change: func(f *nodeapi.Facts, _ *plan.Node) {
			b := findIface(f, "bond0")
			b.Kind, b.Bond = "bridge", nil
		}, want: []string{`bond0 is not a bond (kind "bridge")`}},
		{name: "bond mode", example: hc, node: hcc, check: CheckBond, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "bond0").Bond.Mode = "balance-rr" },
			want: []string{"bond0 mode balance-rr, plan 802.3ad"}},
		{name: "bond members", example: hc, node: hcc, check: CheckBond, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "bond0").Bond.Members = []string{"ens1f0"} },
			want: []string{"bond0 members ens1f0, plan ens1f0, ens1f1"}},
		{name: "bond mtu", example: hc, node: hcc, check: CheckBond, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "bond0").MTU = 1500 },
			want: []string{"bond0 MTU 1500, plan 9000"}},
		{name: "vlan id", example: hc, node: hcc, check: CheckVLAN, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "bond0.30").VLAN.ID = 31 },
			want: []string{"bond0.30 VLAN id 31, plan 30"}},
		{name: "vlan parent", example: hc, node: hcc, check: CheckVLAN, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "bond0.40").VLAN.Parent = "eno1" },
			want: []string{"bond0.40 rides on eno1, plan bond0"}},
		{name: "vlan mtu", example: img, node: "img-02", check: CheckVLAN, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "bond0.30").MTU = 1500 },
			want: []string{"bond0.30 MTU 1500, plan 9000"}},
		{name: "vlan named otherwise", example: hc, node: hcc, check: CheckVLAN, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "bond0.30").Name = "vlan30" },
			want: []string{"bond0.30 missing: no VLAN interface of that name (VLAN 30 on bond0 is named vlan30)", "10.10.30.101/24 is on vlan30, plan bond0.30"}},
		{name: "address prefix", example: hc, node: hcc, check: CheckAddress, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "eno1").Addresses = []string{"10.10.0.101/16"} },
			want: []string{"eno1 has 10.10.0.101/16, plan 10.10.0.101/24"}},
		{name: "address elsewhere", example: hc, node: hcc, check: CheckAddress, change: func(f *nodeapi.Facts, _ *plan.Node) {
			findIface(f, "bond0.31").Addresses = nil
			findIface(f, "bond0").Addresses = []string{"10.10.31.101/24"}
		}, want: []string{"10.10.31.101/24 is on bond0, plan bond0.31"}},
		{name: "address missing", example: hc, node: hcc, check: CheckAddress, change: func(f *nodeapi.Facts, _ *plan.Node) {
			findIface(f, "bond0.40").Addresses = []string{"10.10.40.250/24", "fd00::1/64"}
		}, want: []string{"10.10.40.101/24 missing on bond0.40 (it has 10.10.40.250/24)"}},
		{name: "default route gateway", example: hc, node: hcc, check: CheckRoute, change: func(f *nodeapi.Facts, _ *plan.Node) {
			for i := range f.Routes {
				if f.Routes[i].Dst == "default" {
					f.Routes[i].Gateway = "10.10.0.254"
				}
			}
		}, want: []string{"default route via 10.10.0.254 on eno1, plan via 10.10.0.1 on eno1"}},
		{name: "no default route", example: img, node: "img-01", check: CheckRoute, change: func(f *nodeapi.Facts, _ *plan.Node) {
			f.Routes = slices.DeleteFunc(f.Routes, func(r nodeapi.Route) bool { return r.Dst == "default" })
		}, want: []string{"no default route, plan via 10.99.0.1 on eno1"}},
		{name: "dns", example: hc, node: hcc, check: CheckDNS, change: func(f *nodeapi.Facts, _ *plan.Node) { f.DNS = []string{"127.0.0.53"} },
			want: []string{"DNS server 10.10.0.2, 10.10.0.3 not in use (the node uses 127.0.0.53), plan 10.10.0.2, 10.10.0.3"}},
		{name: "dns none", example: img, node: "img-03", check: CheckDNS, change: func(f *nodeapi.Facts, _ *plan.Node) { f.DNS = nil },
			want: []string{"DNS server 10.99.0.1 not in use (the node uses none), plan 10.99.0.1"}},
		{name: "os disk by-path not found", example: hc, node: hcc, check: CheckOSDisk, change: func(f *nodeapi.Facts, _ *plan.Node) { findDisk(f, "sda").ByPath = nil },
			want: []string{"OS disk /dev/disk/by-path/pci-0000:3b:00.0-scsi-0:2:0:0 not found (the node has sda 480.1 GB (447.1 GiB), nvme0n1 480.1 GB (447.1 GiB), nvme1n1 480.1 GB (447.1 GiB), nvme2n1 480.1 GB (447.1 GiB), nvme3n1 480.1 GB (447.1 GiB), nvme4n1 480.1 GB (447.1 GiB), nvme5n1 480.1 GB (447.1 GiB))"}},
		{name: "os disk size", example: img, node: "img-01", check: CheckOSDisk, change: func(f *nodeapi.Facts, _ *plan.Node) { findDisk(f, "vda").SizeBytes = 16 << 30 },
			want: []string{"OS disk /dev/vda is 17.2 GB (16.0 GiB), plan 8.6 GB (8.0 GiB) (within 2 %)"}},
		{name: "os disk without root", example: img, node: "img-01", check: CheckOSDisk, change: func(f *nodeapi.Facts, _ *plan.Node) {
			findDisk(f, "vda").Partitions[1].Mountpoints = nil
			findDisk(f, "vdb").Mountpoints = []string{"/"}
		}, want: []string{"OS disk /dev/vda does not hold the root file system (/ is on vdb)", "OSD disk /dev/vdb is the OS disk"}},
		{name: "os disk cannot be checked", example: img, node: "img-01", check: CheckOSDisk, change: func(_ *nodeapi.Facts, n *plan.Node) {
			n.OSDisk = plan.Disk{Path: "/dev/disk/by-uuid/0b3c"}
		}, want: []string{"OS disk /dev/disk/by-uuid/0b3c cannot be checked: the node reports by-id and by-path names only"}},
		{name: "os disk ambiguous serial", example: img, node: "img-01", check: CheckOSDisk, change: func(f *nodeapi.Facts, n *plan.Node) {
			n.OSDisk = plan.Disk{Serial: "DUP"}
			findDisk(f, "vda").Serial = "DUP"
			findDisk(f, "vdc").Serial = "DUP"
		}, want: []string{"OS disk serial DUP matches 2 devices (vda, vdc)"}},
		{name: "os disk by id on md", example: hc, node: "hci-controller-01", check: CheckOSDisk, change: func(f *nodeapi.Facts, _ *plan.Node) {
			// md RAID of two disks, root on it: found as a holder.
			d := findDisk(f, "sda")
			md := nodeapi.Disk{Name: "md127", Path: "/dev/md127", Type: "raid1", SizeBytes: d.SizeBytes, ByID: d.ByID, FSType: "ext4", Mountpoints: []string{"/"}}
			d.ByID, d.PTType, d.Partitions = nil, "", []nodeapi.Disk{{Name: "sda1", Path: "/dev/sda1", Type: "part", FSType: "linux_raid_member", Holders: []nodeapi.Disk{md}}}
		}, want: nil},
		{name: "osd partition table", example: img, node: "img-02", check: CheckOSD, change: func(f *nodeapi.Facts, _ *plan.Node) { findDisk(f, "vdc").PTType = "gpt" },
			want: []string{"OSD disk /dev/vdc has a partition table (gpt): Ceph needs a blank disk"}},
		{name: "osd signature and partitions", example: hc, node: hcc, check: CheckOSD, change: func(f *nodeapi.Facts, _ *plan.Node) {
			d := findDisk(f, "nvme2n1")
			d.PTType = "dos"
			d.Partitions = []nodeapi.Disk{{Name: "nvme2n1p1", Type: "part", FSType: "xfs", Mountpoints: []string{"/srv"}}}
			findDisk(f, "nvme4n1").FSType = "LVM2_member"
		}, want: []string{
			"OSD disk /dev/nvme2n1 has a partition table (dos), partitions nvme2n1p1: Ceph needs a blank disk",
			"OSD disk /dev/nvme4n1 has a signature (LVM2_member): Ceph needs a blank disk",
		}},
		{name: "osd missing", example: img, node: "img-03", check: CheckOSD, change: func(f *nodeapi.Facts, _ *plan.Node) {
			f.Disks = slices.DeleteFunc(f.Disks, func(d nodeapi.Disk) bool { return d.Name == "vdb" })
		}, want: []string{"OSD disk /dev/vdb not found (the node has vda 8.6 GB (8.0 GiB), vdc 1.1 GB (1.0 GiB))"}},
		{name: "osd is the os disk", example: img, node: "img-03", check: CheckOSD, change: func(f *nodeapi.Facts, n *plan.Node) {
			n.OSDs = []plan.Disk{{Serial: "SER-vda-os"}}
			findDisk(f, "vda").Serial = "SER-vda-os"
		}, want: []string{"OSD disk serial SER-vda-os (vda) is the OS disk"}},
		{name: "osd size", example: img, node: "img-03", check: CheckOSD, change: func(f *nodeapi.Facts, _ *plan.Node) { findDisk(f, "vdc").SizeBytes = 2 << 30 },
			want: []string{"OSD disk /dev/vdc is 2.1 GB (2.0 GiB), plan 1.1 GB (1.0 GiB) (within 2 %)"}},
		{name: "boot mode", example: img, node: "img-01", check: CheckBootMode, change: func(f *nodeapi.Facts, _ *plan.Node) { f.UEFI = true },
			want: []string{"booted in UEFI mode, plan boot_mode legacy"}},
		{name: "boot mode legacy", example: hc, node: hcc, check: CheckBootMode, change: func(f *nodeapi.Facts, _ *plan.Node) { f.UEFI, f.SecureBoot = false, nil },
			want: []string{"booted in legacy BIOS mode, plan boot_mode uefi"}},
		{name: "secure boot off", example: img, node: "img-02", check: CheckSecureBoot, change: func(f *nodeapi.Facts, _ *plan.Node) { off := false; f.SecureBoot = &off },
			want: []string{"Secure Boot is off, plan secure_boot: true"}},
		{name: "secure boot unknown", example: img, node: "img-02", check: CheckSecureBoot, change: func(f *nodeapi.Facts, _ *plan.Node) { f.SecureBoot = nil },
			want: []string{"Secure Boot state unknown (not booted in UEFI mode, or the SecureBoot variable is unreadable), plan secure_boot: true"}},
		{name: "secure boot on but not asked", example: img, node: "img-03", check: CheckSecureBoot, change: func(f *nodeapi.Facts, _ *plan.Node) { on := true; f.SecureBoot = &on },
			want: nil},
		{name: "bond member renamed by MAC", example: img, node: "img-02", check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) {
			findIface(f, "ens5").Name = "enp0s5"
			findIface(f, "bond0").Bond.Members = []string{"ens4", "enp0s5"}
		}, want: []string{"NIC with MAC 52:54:00:99:12:02 is named enp0s5, plan ens5"}},
		{name: "state unknown counts as up", example: img, node: "img-02", check: CheckNIC, change: func(f *nodeapi.Facts, _ *plan.Node) { findIface(f, "ens4").State = "unknown" },
			want: nil},
	}
}

// TestRules breaks one thing per case in a planned node's facts and
// expects exactly the mismatches named.
func TestRules(t *testing.T) {
	plans := map[string]*plan.Plan{}
	seen := map[Check]bool{}
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			p := plans[c.example]
			if p == nil {
				p = loadExample(t, c.example)
				plans[c.example] = p
			}
			n := *node(t, p, c.node) // a copy: some cases change the plan side
			f := factsFor(p, &n)
			if c.change != nil {
				c.change(f, &n)
			}
			if c.nilF {
				f = nil
			}
			r := Compare(p, &n, f)
			var got []string
			for _, m := range r.Mismatches {
				got = append(got, m.Reason)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("mismatches:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
			if len(c.want) > 0 {
				if r.Mismatches[0].Check != c.check {
					t.Errorf("check %s, want %s", r.Mismatches[0].Check, c.check)
				}
				seen[c.check] = true
				if r.OK() || !strings.Contains(r.Summary(), c.want[0]) {
					t.Errorf("summary %q", r.Summary())
				}
			} else if !r.OK() {
				t.Errorf("not OK")
			}
		})
	}
	for _, ch := range []Check{CheckFacts, CheckHostname, CheckFQDN, CheckNIC, CheckBond, CheckVLAN, CheckAddress, CheckRoute, CheckDNS, CheckOSDisk, CheckOSD, CheckBootMode, CheckSecureBoot} {
		if !seen[ch] {
			t.Errorf("no case for check %s", ch)
		}
	}
}

func TestSummary(t *testing.T) {
	r := Result{Node: "n", Checked: 7}
	if r.Summary() != "verified: all 7 checks match the plan" {
		t.Error(r.Summary())
	}
	r.Mismatches = []Mismatch{{Reason: "bond0 MTU 1500, plan 9000"}}
	if r.Summary() != "1 mismatch with the plan: bond0 MTU 1500, plan 9000" {
		t.Error(r.Summary())
	}
	for i := range 60 {
		r.Mismatches = append(r.Mismatches, Mismatch{Reason: fmt.Sprintf("eno%d MTU 1500, plan 9000", i)})
	}
	s := r.Summary()
	if len(s) > MaxSummary || !strings.HasPrefix(s, "61 mismatch(es) with the plan: bond0 MTU 1500, plan 9000; eno0 MTU") || !strings.HasSuffix(s, " more") {
		t.Errorf("%d bytes: %s", len(s), s)
	}
	// One reason longer than the summary is cut, on a rune boundary.
	r.Mismatches = []Mismatch{{Reason: strings.Repeat("é", 400)}, {Reason: "x"}}
	s = r.Summary()
	if len(s) > MaxSummary || !strings.HasSuffix(s, "...; and 1 more") || !utf8Valid(s) {
		t.Errorf("%d bytes: %q", len(s), s)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
