// Package verify compares what an installed node reports about itself at
// first boot (nodeapi.Facts, sent with the ready callback) with the plan:
// host name, every interface, bond, VLAN, MTU, address, the default route,
// DNS, the OS and OSD disks, the boot mode and Secure Boot. It says, in the
// engineer's words, every difference it finds ("bond0 MTU 1500, plan
// 9000"); the orchestrator decides what a node with mismatches becomes.
//
// It is pure: no I/O, no clock, no logging.
package verify

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// Check names what a mismatch is about.
type Check string

// The checks, in the order Compare runs them.
const (
	CheckFacts      Check = "facts"
	CheckHostname   Check = "hostname"
	CheckFQDN       Check = "fqdn"
	CheckNIC        Check = "nic"
	CheckBond       Check = "bond"
	CheckVLAN       Check = "vlan"
	CheckAddress    Check = "address"
	CheckRoute      Check = "route"
	CheckDNS        Check = "dns"
	CheckOSDisk     Check = "os-disk"
	CheckOSD        Check = "osd-disk"
	CheckBootMode   Check = "boot-mode"
	CheckSecureBoot Check = "secure-boot"
)

// Mismatch is one difference between the node and its plan.
type Mismatch struct {
	Check Check `json:"check"`
	// Subject is what differs: an interface, an address, a disk as the
	// plan names it; "" for the node as a whole.
	Subject string `json:"subject,omitempty"`
	// Reason says it for people, e.g. "bond0 MTU 1500, plan 9000".
	Reason string `json:"reason"`
}

// Result is the outcome of comparing one node with its plan.
type Result struct {
	Node string `json:"node"`
	// Checked counts the things compared (each interface, address, disk,
	// ...), for "all N checks match".
	Checked    int        `json:"checked"`
	Mismatches []Mismatch `json:"mismatches,omitempty"`
}

// OK reports whether the node matches its plan.
func (r Result) OK() bool { return len(r.Mismatches) == 0 }

// MaxSummary bounds Summary, so it fits an event's detail.
const MaxSummary = 500

// Summary says the result in at most MaxSummary bytes: "verified: all 23
// checks match the plan", or the mismatches, as many as fit.
func (r Result) Summary() string {
	if r.OK() {
		return fmt.Sprintf("verified: all %d checks match the plan", r.Checked)
	}
	n := len(r.Mismatches)
	head := fmt.Sprintf("%d mismatch(es) with the plan: ", n)
	if n == 1 {
		head = "1 mismatch with the plan: "
	}
	var b strings.Builder
	b.WriteString(head)
	for i, m := range r.Mismatches {
		sep := ""
		if i > 0 {
			sep = "; "
		}
		more := ""
		if i < n-1 {
			more = fmt.Sprintf("; and %d more", n-1-i)
		}
		if b.Len()+len(sep)+len(m.Reason)+len(more) > MaxSummary {
			if i == 0 {
				// Not even the first fits: shorten it.
				room := MaxSummary - b.Len() - len(fmt.Sprintf("...; and %d more", n-1))
				b.WriteString(truncate(m.Reason, room) + "...")
				i = 1
			}
			if i < n {
				fmt.Fprintf(&b, "; and %d more", n-i)
			}
			return b.String()
		}
		b.WriteString(sep + m.Reason)
	}
	return b.String()
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// comparer holds one comparison.
type comparer struct {
	p   *plan.Plan
	n   *plan.Node
	f   *nodeapi.Facts
	res Result
	// byName indexes the facts' interfaces; actual maps a plan interface
	// name to the node's interface that plays its part (after a MAC match).
	byName map[string]*nodeapi.Interface
	actual map[string]string
	// devices lists every block device (disks, partitions, holders) with
	// its top-level disk.
	devices []device
}

type device struct {
	d    *nodeapi.Disk
	disk *nodeapi.Disk // the top-level disk holding it (itself for a disk)
}

func (c *comparer) bad(check Check, subject, format string, a ...any) {
	c.res.Mismatches = append(c.res.Mismatches, Mismatch{Check: check, Subject: subject, Reason: fmt.Sprintf(format, a...)})
}

// Compare checks the facts a node reported against the plan's node n of
// plan p and returns every difference.
func Compare(p *plan.Plan, n *plan.Node, f *nodeapi.Facts) Result {
	c := &comparer{p: p, n: n, f: f, res: Result{Node: n.Name}, byName: map[string]*nodeapi.Interface{}, actual: map[string]string{}}
	c.res.Checked++
	switch {
	case f == nil:
		c.bad(CheckFacts, "", "the node reported no facts (its first boot could not run the facts script): nothing could be verified")
		return c.res
	case f.Version != nodeapi.FactsVersion:
		c.bad(CheckFacts, "", "the node reported facts of version %d; this racklift reads version %d: nothing could be verified", f.Version, nodeapi.FactsVersion)
		return c.res
	}
	for i := range f.Interfaces {
		c.byName[f.Interfaces[i].Name] = &f.Interfaces[i]
	}
	for i := range f.Disks {
		c.addDevices(&f.Disks[i], &f.Disks[i])
	}
	c.names()
	c.links()
	c.addresses()
	c.route()
	c.dns()
	osDisk := c.osDisk()
	c.osds(osDisk)
	c.firmware()
	return c.res
}

func (c *comparer) names() {
	n, f := c.n, c.f
	c.res.Checked++
	switch f.Hostname {
	case n.Name:
	case "":
		c.bad(CheckHostname, "", "hostname unknown, plan %s", n.Name)
	default:
		c.bad(CheckHostname, "", "hostname %s, plan %s", f.Hostname, n.Name)
	}
	c.res.Checked++
	switch f.FQDN {
	case n.FQDN:
	case "":
		c.bad(CheckFQDN, "", "FQDN unknown (%s does not resolve on the node), plan %s", f.Hostname, n.FQDN)
	default:
		c.bad(CheckFQDN, "", "FQDN %s, plan %s", f.FQDN, n.FQDN)
	}
}

// stacked kinds are interfaces built on others: they share a MAC with
// their parent and are never the NIC a plan MAC names.
var stacked = []string{"bond", "vlan", "bridge", "macvlan", "macvtap", "ipvlan", "team", "vrf", "vxlan"}

// hwMAC is the interface's own hardware address (a bond member's current
// MAC is its bond's).
func hwMAC(x *nodeapi.Interface) string {
	if x.PermMAC != "" {
		return strings.ToLower(x.PermMAC)
	}
	return strings.ToLower(x.MAC)
}

func up(x *nodeapi.Interface) bool {
	// "unknown": drivers that report no carrier state (virtual ones);
	// the interface is not down.
	return x.State == "up" || x.State == "unknown"
}

// nic finds the node's interface for a plan NIC: by MAC when the plan
// knows it, else by name.
func (c *comparer) nic(l plan.Link) *nodeapi.Interface {
	if l.MAC == "" {
		x := c.byName[l.Name]
		if x == nil {
			c.bad(CheckNIC, l.Name, "%s missing: no interface of that name", l.Name)
		}
		return x
	}
	var found *nodeapi.Interface
	for i := range c.f.Interfaces {
		x := &c.f.Interfaces[i]
		if hwMAC(x) == l.MAC && !slices.Contains(stacked, x.Kind) {
			if found == nil || x.Name == l.Name {
				found = x
			}
		}
	}
	switch {
	case found == nil && c.byName[l.Name] != nil:
		c.bad(CheckNIC, l.Name, "%s missing: no interface with MAC %s (%s has MAC %s)", l.Name, l.MAC, l.Name, hwMAC(c.byName[l.Name]))
	case found == nil:
		c.bad(CheckNIC, l.Name, "%s missing: no interface with MAC %s", l.Name, l.MAC)
	case found.Name != l.Name:
		c.bad(CheckNIC, l.Name, "NIC with MAC %s is named %s, plan %s", l.MAC, found.Name, l.Name)
	}
	return found
}

// links checks NICs, then bonds, then VLANs.
func (c *comparer) links() {
	links := c.n.Links()
	for _, l := range links {
		if l.Kind != plan.LinkNIC {
			continue
		}
		c.res.Checked++
		x := c.nic(l)
		if x == nil {
			continue
		}
		c.actual[l.Name] = x.Name
		c.state(CheckNIC, l, x)
	}
	for _, l := range links {
		if l.Kind != plan.LinkBond {
			continue
		}
		c.res.Checked++
		x := c.byName[l.Name]
		switch {
		case x == nil:
			c.bad(CheckBond, l.Name, "%s missing: no bond of that name", l.Name)
			continue
		case x.Kind != "bond" || x.Bond == nil:
			c.bad(CheckBond, l.Name, "%s is not a bond (kind %q)", l.Name, x.Kind)
			continue
		}
		c.actual[l.Name] = x.Name
		switch x.Bond.Mode {
		case l.Mode:
		case "":
			c.bad(CheckBond, l.Name, "%s mode unknown, plan %s", l.Name, l.Mode)
		default:
			c.bad(CheckBond, l.Name, "%s mode %s, plan %s", l.Name, x.Bond.Mode, l.Mode)
		}
		var want []string
		for _, m := range l.Members {
			if a, ok := c.actual[m]; ok {
				want = append(want, a)
			} else {
				want = append(want, m)
			}
		}
		got := slices.Clone(x.Bond.Members)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			c.bad(CheckBond, l.Name, "%s members %s, plan %s", l.Name, listOrNone(got), strings.Join(want, ", "))
		}
		c.state(CheckBond, l, x)
	}
	for _, l := range links {
		if l.Kind != plan.LinkVLAN {
			continue
		}
		c.res.Checked++
		x := c.byName[l.Name]
		parent := l.Parent
		if a, ok := c.actual[parent]; ok {
			parent = a
		}
		if x == nil {
			hint := ""
			for i := range c.f.Interfaces {
				o := &c.f.Interfaces[i]
				if o.VLAN != nil && o.VLAN.ID == l.VLAN && o.VLAN.Parent == parent {
					hint = fmt.Sprintf(" (VLAN %d on %s is named %s)", l.VLAN, parent, o.Name)
				}
			}
			c.bad(CheckVLAN, l.Name, "%s missing: no VLAN interface of that name%s", l.Name, hint)
			continue
		}
		if x.Kind != "vlan" || x.VLAN == nil {
			c.bad(CheckVLAN, l.Name, "%s is not a VLAN interface (kind %q)", l.Name, x.Kind)
			continue
		}
		if x.VLAN.ID != l.VLAN {
			c.bad(CheckVLAN, l.Name, "%s VLAN id %d, plan %d", l.Name, x.VLAN.ID, l.VLAN)
		}
		if x.VLAN.Parent != parent {
			c.bad(CheckVLAN, l.Name, "%s rides on %s, plan %s", l.Name, orUnknown(x.VLAN.Parent), parent)
		}
		c.state(CheckVLAN, l, x)
	}
}

// state checks that an interface is up with the planned MTU.
func (c *comparer) state(check Check, l plan.Link, x *nodeapi.Interface) {
	if !up(x) {
		c.bad(check, l.Name, "%s is %s, want up", l.Name, orUnknown(x.State))
	}
	if x.MTU != l.MTU {
		c.bad(check, l.Name, "%s MTU %d, plan %d", l.Name, x.MTU, l.MTU)
	}
}

func (c *comparer) addresses() {
	type where struct {
		dev    string
		prefix netip.Prefix
	}
	var seen []where
	for _, x := range c.f.Interfaces {
		for _, a := range x.Addresses {
			if p, err := netip.ParsePrefix(a); err == nil {
				seen = append(seen, where{x.Name, p})
			}
		}
	}
	for _, a := range c.n.Addresses {
		c.res.Checked++
		want := a.Prefix()
		dev := a.Device
		if act, ok := c.actual[dev]; ok {
			dev = act
		}
		var onDev []string
		found := false
		for _, w := range seen {
			switch {
			case w.dev == dev && w.prefix == want:
				found = true
			case w.dev == dev && w.prefix.Addr().Is4():
				onDev = append(onDev, w.prefix.String())
			}
		}
		if found {
			continue
		}
		i := slices.IndexFunc(seen, func(w where) bool { return w.prefix.Addr() == want.Addr() })
		switch {
		case i >= 0 && seen[i].dev == dev:
			c.bad(CheckAddress, want.String(), "%s has %s, plan %s", dev, seen[i].prefix, want)
		case i >= 0:
			c.bad(CheckAddress, want.String(), "%s is on %s, plan %s", want, seen[i].dev, a.Device)
		default:
			c.bad(CheckAddress, want.String(), "%s missing on %s (it has %s)", want, a.Device, listOrNone(onDev))
		}
	}
}

// defaultRoute returns the node's default-route address (whose network
// has a gateway), if any.
func (c *comparer) defaultRoute() (plan.Address, bool) {
	for _, a := range c.n.Addresses {
		if a.Network.DefaultRoute && a.Network.Gateway.IsValid() {
			return a, true
		}
	}
	return plan.Address{}, false
}

func (c *comparer) route() {
	a, ok := c.defaultRoute()
	if !ok {
		return
	}
	c.res.Checked++
	gw := a.Network.Gateway.String()
	dev := a.Device
	if act, ok := c.actual[dev]; ok {
		dev = act
	}
	var others []string
	for _, r := range c.f.Routes {
		if r.Dst != "default" && r.Dst != "0.0.0.0/0" {
			continue
		}
		if r.Gateway == gw && r.Dev == dev {
			return
		}
		others = append(others, fmt.Sprintf("via %s on %s", orUnknown(r.Gateway), r.Dev))
	}
	if len(others) == 0 {
		c.bad(CheckRoute, "default", "no default route, plan via %s on %s", gw, a.Device)
		return
	}
	c.bad(CheckRoute, "default", "default route %s, plan via %s on %s", strings.Join(others, " and "), gw, a.Device)
}

// planDNS returns the resolvers the renderer configures: those of the
// default-route network, else the cluster's.
func (c *comparer) planDNS() []string {
	var dns []netip.Addr
	for _, a := range c.n.Addresses {
		if a.Network.DefaultRoute {
			dns = a.Network.DNS
		}
	}
	if len(dns) == 0 {
		dns = c.p.Cluster.DNS
	}
	out := make([]string, 0, len(dns))
	for _, d := range dns {
		out = append(out, d.String())
	}
	return out
}

func (c *comparer) dns() {
	want := c.planDNS()
	if len(want) == 0 {
		return
	}
	c.res.Checked++
	var missing []string
	for _, d := range want {
		if !slices.Contains(c.f.DNS, d) {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return
	}
	c.bad(CheckDNS, "", "DNS server %s not in use (the node uses %s), plan %s", strings.Join(missing, ", "), listOrNone(c.f.DNS), strings.Join(want, ", "))
}

func (c *comparer) addDevices(d, disk *nodeapi.Disk) {
	c.devices = append(c.devices, device{d, disk})
	for i := range d.Partitions {
		c.addDevices(&d.Partitions[i], disk)
	}
	for i := range d.Holders {
		c.addDevices(&d.Holders[i], disk)
	}
}

// find returns the devices the plan disk names. ok is false when the plan
// names it in a way the facts cannot show (a /dev/disk/by-uuid path).
func (c *comparer) find(pd plan.Disk) (found []device, ok bool) {
	match := func(d *nodeapi.Disk) bool { return false }
	switch {
	case strings.HasPrefix(pd.Path, "/dev/disk/by-id/"):
		name := strings.TrimPrefix(pd.Path, "/dev/disk/by-id/")
		match = func(d *nodeapi.Disk) bool { return slices.Contains(d.ByID, name) }
	case strings.HasPrefix(pd.Path, "/dev/disk/by-path/"):
		name := strings.TrimPrefix(pd.Path, "/dev/disk/by-path/")
		match = func(d *nodeapi.Disk) bool { return slices.Contains(d.ByPath, name) }
	case strings.HasPrefix(pd.Path, "/dev/disk/"):
		return nil, false
	case pd.Path != "":
		match = func(d *nodeapi.Disk) bool { return d.Path == pd.Path || "/dev/"+d.Name == pd.Path }
	case pd.ByID != "":
		match = func(d *nodeapi.Disk) bool { return slices.Contains(d.ByID, pd.ByID) }
	case pd.Serial != "":
		match = func(d *nodeapi.Disk) bool { return d.Type == "disk" && d.Serial == pd.Serial }
	}
	for _, dv := range c.devices {
		if match(dv.d) {
			found = append(found, dv)
		}
	}
	return found, true
}

// locate finds one plan disk, reporting when it cannot.
func (c *comparer) locate(check Check, what string, pd plan.Disk) *device {
	found, ok := c.find(pd)
	switch {
	case !ok:
		c.bad(check, pd.String(), "%s %s cannot be checked: the node reports by-id and by-path names only", what, pd)
	case len(found) == 0:
		var have []string
		for _, d := range c.f.Disks {
			have = append(have, d.Name+" "+plan.FormatDiskSize(d.SizeBytes))
		}
		c.bad(check, pd.String(), "%s %s not found (the node has %s)", what, pd, listOrNone(have))
	case len(found) > 1:
		var names []string
		for _, d := range found {
			names = append(names, d.d.Name)
		}
		c.bad(check, pd.String(), "%s %s matches %d devices (%s)", what, pd, len(found), strings.Join(names, ", "))
	default:
		dv := found[0]
		if !pd.SizeMatches(dv.d.SizeBytes) {
			c.bad(check, pd.String(), "%s %s is %s, plan %s (within %.0f %%)", what, c.shown(pd, dv.d), plan.FormatDiskSize(dv.d.SizeBytes),
				plan.FormatDiskSize(pd.SizeBytes), plan.DiskSizeTolerance*100)
		}
		return &dv
	}
	return nil
}

// shown names a plan disk and, when the plan does not say it, its kernel name.
func (c *comparer) shown(pd plan.Disk, d *nodeapi.Disk) string {
	if pd.Path == d.Path {
		return pd.String()
	}
	return pd.String() + " (" + d.Name + ")"
}

// mounted reports whether d or a device built on it is mounted at mp.
func mounted(d *nodeapi.Disk, mp string) bool {
	if slices.Contains(d.Mountpoints, mp) {
		return true
	}
	for i := range d.Partitions {
		if mounted(&d.Partitions[i], mp) {
			return true
		}
	}
	for i := range d.Holders {
		if mounted(&d.Holders[i], mp) {
			return true
		}
	}
	return false
}

// rootDevice names the device mounted at /, or "".
func (c *comparer) rootDevice() string {
	for _, dv := range c.devices {
		if slices.Contains(dv.d.Mountpoints, "/") {
			return dv.d.Name
		}
	}
	return ""
}

func (c *comparer) osDisk() *device {
	c.res.Checked++
	pd := c.n.OSDisk
	dv := c.locate(CheckOSDisk, "OS disk", pd)
	if dv == nil {
		return nil
	}
	if !mounted(dv.d, "/") {
		where := "no disk holds it"
		if r := c.rootDevice(); r != "" {
			where = "/ is on " + r
		}
		c.bad(CheckOSDisk, pd.String(), "OS disk %s does not hold the root file system (%s)", c.shown(pd, dv.d), where)
	}
	return dv
}

func (c *comparer) osds(osDisk *device) {
	for _, pd := range c.n.OSDs {
		c.res.Checked++
		dv := c.locate(CheckOSD, "OSD disk", pd)
		if dv == nil {
			continue
		}
		name := c.shown(pd, dv.d)
		if osDisk != nil && (dv.disk == osDisk.disk || mounted(dv.d, "/")) {
			c.bad(CheckOSD, pd.String(), "OSD disk %s is the OS disk", name)
			continue
		}
		if why := notBlank(dv.d); why != "" {
			c.bad(CheckOSD, pd.String(), "OSD disk %s %s", name, why)
		}
	}
}

// notBlank says why Ceph could not take the device as an OSD, or "".
func notBlank(d *nodeapi.Disk) string {
	var why []string
	switch {
	case d.PTType != "":
		why = append(why, fmt.Sprintf("has a partition table (%s)", d.PTType))
	case len(d.Partitions) > 0:
		why = append(why, "has partitions")
	}
	if d.FSType != "" {
		why = append(why, fmt.Sprintf("has a signature (%s)", d.FSType))
	}
	if len(d.Partitions) > 0 {
		var ps []string
		for _, p := range d.Partitions {
			ps = append(ps, p.Name)
		}
		why = append(why, "partitions "+strings.Join(ps, ", "))
	}
	if len(d.Holders) > 0 {
		var hs []string
		for _, h := range d.Holders {
			hs = append(hs, h.Name+" ("+h.Type+")")
		}
		why = append(why, "is in use by "+strings.Join(hs, ", "))
	}
	if len(d.Mountpoints) > 0 {
		why = append(why, "is mounted at "+strings.Join(d.Mountpoints, ", "))
	}
	if len(why) == 0 {
		return ""
	}
	return strings.Join(why, ", ") + ": Ceph needs a blank disk"
}

func (c *comparer) firmware() {
	n, f := c.n, c.f
	c.res.Checked++
	switch {
	case n.BIOS.UEFI() && !f.UEFI:
		c.bad(CheckBootMode, "", "booted in legacy BIOS mode, plan boot_mode uefi")
	case !n.BIOS.UEFI() && f.UEFI:
		c.bad(CheckBootMode, "", "booted in UEFI mode, plan boot_mode legacy")
	}
	if !n.BIOS.SecureBoot {
		return
	}
	c.res.Checked++
	switch {
	case f.SecureBoot == nil:
		c.bad(CheckSecureBoot, "", "Secure Boot state unknown (not booted in UEFI mode, or the SecureBoot variable is unreadable), plan secure_boot: true")
	case !*f.SecureBoot:
		c.bad(CheckSecureBoot, "", "Secure Boot is off, plan secure_boot: true")
	}
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
