package handoff

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// NodeInput is what the hand-off knows about one node beyond the plan.
type NodeInput struct {
	// Verified is true when racklift checked the installed node against
	// the plan (phase verified).
	Verified bool
	// Reason says why the node is not verified ("phase ready", "failed:
	// ..."), for the readiness report and the comments of --allow-unverified.
	Reason string
	// Facts are the node's verification facts, nil when unknown. Interface
	// names, OSD by-id names and SSH host keys come from them when set.
	Facts *nodeapi.Facts
}

// Inputs is what Build needs besides the plan.
type Inputs struct {
	// Nodes maps node name to what is known about it; a node not in the
	// map is not verified and has no facts.
	Nodes map[string]NodeInput
	// AllowUnverified writes nodes that are not verified too, marked in a
	// comment; without it they are left out.
	AllowUnverified bool
	// DeployKey is the site's deployment SSH key (see LoadOrCreateDeployKey).
	DeployKey DeployKey
	// PlanFile names the plan in the generated files' headers.
	PlanFile string
}

// File is one file of the bundle. Path is slash-separated and relative.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// Bundle is the hand-off: the files, in a fixed order, and what the
// engineer should know about them.
type Bundle struct {
	Files []File
	// Included and Skipped name the nodes written and left out.
	Included, Skipped []string
	// Warnings are things that do not stop a deploy but need a look.
	Warnings []string
}

// File returns the bundle's file at path.
func (b *Bundle) File(path string) (File, bool) {
	for _, f := range b.Files {
		if f.Path == path {
			return f, true
		}
	}
	return File{}, false
}

// host is one included node, resolved for the deployers.
type host struct {
	n          *plan.Node
	idx        int // index in plan.Nodes, for field paths
	in         NodeInput
	api        plan.Address
	ifaces     []kv // kolla per-host interface variables, in output order
	storage    netip.Addr
	osds       []string
	distro     string
	groups     []string
	labels     []string
	unverified bool
}

type kv struct{ k, v string }

// builder carries one Build.
type builder struct {
	p     *plan.Plan
	in    Inputs
	hosts []*host
	byN   map[*plan.Node]*host
	warn  []string
	errs  []error
}

func (b *builder) errorf(format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf(format, args...))
}
func (b *builder) warnf(format string, args ...any) {
	b.warn = append(b.warn, fmt.Sprintf(format, args...))
}

// Build makes the hand-off bundle for plan p. It is pure: the same plan
// and inputs give the same bytes. Every problem is reported at once, each
// naming the node and the plan field to fix.
func Build(p *plan.Plan, in Inputs) (*Bundle, error) {
	if p == nil {
		return nil, errors.New("handoff: no plan")
	}
	if in.DeployKey.Public == "" {
		return nil, errors.New("handoff: no deployment key")
	}
	if in.PlanFile == "" {
		in.PlanFile = p.File
	}
	b := &builder{p: p, in: in, byN: map[*plan.Node]*host{}}
	out := &Bundle{}
	for i, n := range p.Nodes {
		ni := in.Nodes[n.Name]
		if !ni.Verified && !in.AllowUnverified {
			out.Skipped = append(out.Skipped, n.Name)
			continue
		}
		h := &host{n: n, idx: i, in: ni, unverified: !ni.Verified}
		b.hosts = append(b.hosts, h)
		b.byN[n] = h
		out.Included = append(out.Included, n.Name)
	}
	if len(b.hosts) == 0 {
		return nil, fmt.Errorf("handoff: no node is verified yet (%d in the plan): wait for verification, or pass --allow-unverified to write them anyway", len(p.Nodes))
	}
	b.checkCoverage()
	for _, h := range b.hosts {
		b.resolveHost(h)
	}
	globalDistro := b.distro()
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	files := []File{
		{Path: "README.txt", Mode: 0o644, Data: b.readme(out)},
		{Path: "hosts", Mode: 0o644, Data: b.hostsFile()},
		{Path: "kolla/multinode", Mode: 0o644, Data: b.inventory(globalDistro)},
		{Path: "kolla/globals.yml", Mode: 0o644, Data: b.globals(globalDistro)},
	}
	files = append(files, b.novaConfs()...)
	if b.ceph() {
		files = append(files,
			File{Path: "ceph/cluster.yaml", Mode: 0o644, Data: b.cephSpec()},
			File{Path: "ceph/bootstrap.sh", Mode: 0o755, Data: b.bootstrap()})
	}
	files = append(files,
		File{Path: "ssh/id_ed25519", Mode: 0o600, Data: in.DeployKey.Private},
		File{Path: "ssh/id_ed25519.pub", Mode: 0o644, Data: []byte(in.DeployKey.Public + "\n")},
		File{Path: "ssh/known_hosts", Mode: 0o644, Data: b.knownHosts()})
	if len(in.DeployKey.Private) == 0 {
		return nil, errors.New("handoff: the deployment key has no private part")
	}
	out.Files = files
	out.Warnings = b.warn
	return out, nil
}

// ceph reports whether the plan deploys Ceph.
func (b *builder) ceph() bool { return len(b.p.NodesWith(plan.RoleStorage)) > 0 }

// checkCoverage refuses a bundle in which a role the plan has ends up with
// no host because its nodes are not verified.
func (b *builder) checkCoverage() {
	need := []struct {
		what  string
		nodes []*plan.Node
	}{
		{"controller", b.p.NodesWith(plan.RoleController)},
		{"Neutron (network) host", b.p.NeutronHosts()},
		{"Ceph monitor", b.p.CephMonHosts()},
	}
	for _, c := range need {
		if len(c.nodes) == 0 {
			continue
		}
		if !slices.ContainsFunc(c.nodes, func(n *plan.Node) bool { return b.byN[n] != nil }) {
			b.errorf("no %s is verified yet (%s): kolla-ansible/cephadm need at least one; wait for verification or pass --allow-unverified", c.what, names(c.nodes))
		}
	}
}

func names(ns []*plan.Node) string {
	s := make([]string, 0, len(ns))
	for _, n := range ns {
		s = append(s, n.Name)
	}
	if len(s) > 5 {
		s = append(s[:5], fmt.Sprintf("and %d more", len(ns)-5))
	}
	return strings.Join(s, ", ")
}

// nodePath is the plan field path of node h, for messages.
func (h *host) path(field string) string {
	if field == "" {
		return fmt.Sprintf("nodes[%d]", h.idx)
	}
	return fmt.Sprintf("nodes[%d].%s", h.idx, field)
}

func (b *builder) resolveHost(h *host) {
	n, p := h.n, b.p
	h.groups = kollaGroups(p, n)
	h.labels = cephLabels(p, n)
	api := p.APINetwork()
	if api == nil {
		b.errorf("plan %s has no management or provisioning network for kolla-ansible's api_interface (networks: purpose: management)", p.File)
		return
	}
	a, ok := n.AddressOn(api.Name)
	if !ok {
		b.errorf("node %s has no address on network %q, which kolla-ansible's api_interface needs (%s)", n.Name, api.Name, h.path("networks."+api.Name))
		return
	}
	h.api = a
	dev, ok := b.confirm(h, a)
	if !ok {
		return
	}
	h.ifaces = append(h.ifaces, kv{"network_interface", dev}, kv{"api_interface", dev})
	if t, ok := b.addrOfPurpose(n, plan.PurposeTenant); ok && (n.Has(plan.RoleCompute) || slices.Contains(h.groups, "network")) {
		if d, ok := b.confirm(h, t); ok && d != dev {
			h.ifaces = append(h.ifaces, kv{"tunnel_interface", d})
		}
	}
	if m, ok := b.addrOfPurpose(n, plan.PurposeMigration); ok && n.Has(plan.RoleCompute) {
		if d, ok := b.confirm(h, m); ok && d != dev {
			h.ifaces = append(h.ifaces, kv{"migration_interface", d})
		}
	}
	if slices.Contains(p.NeutronHosts(), n) {
		b.neutronExternal(h)
	}
	if ev, ok := p.ExternalVIP(); ok && n.Has(plan.RoleController) && ev.Network != api {
		ea, ok := n.AddressOn(ev.Network.Name)
		if !ok {
			b.errorf("controller %s has no address on network %q of the external VIP, which kolla_external_vip_interface needs (%s)", n.Name, ev.Network.Name, h.path("networks."+ev.Network.Name))
		} else if d, ok := b.confirm(h, ea); ok {
			h.ifaces = append(h.ifaces, kv{"kolla_external_vip_interface", d})
		}
	}
	if b.ceph() && (n.Has(plan.RoleStorage) || slices.Contains(p.CephMonHosts(), n)) {
		sa, ok := b.addrOfPurpose(n, plan.PurposeStorage)
		switch {
		case !ok && !n.Has(plan.RoleCephMon) && !n.Has(plan.RoleStorage):
			b.errorf("node %s runs a Ceph monitor (the plan has no ceph-mon node, so the controllers do) but has no address on the storage network: give the monitors the ceph-mon role, or attach the node to the storage network (%s)", n.Name, h.path("networks"))
		case !ok:
			b.errorf("node %s is a Ceph host but has no address on a network with purpose: storage (%s)", n.Name, h.path("networks"))
		default:
			h.storage = sa.Addr
		}
	}
	if n.Has(plan.RoleStorage) {
		b.osds(h)
	}
	if n.Has(plan.RoleCompute) && n.Has(plan.RoleStorage) && n.ReservedMemoryMB <= 0 {
		b.errorf("hyper-converged node %s (compute + storage) reserves no memory for its OSDs: set reserved_memory_mb (%s)", n.Name, h.path("reserved_memory_mb"))
	}
	if f := h.in.Facts; f != nil && f.Hostname != "" && f.Hostname != n.Name && f.Hostname != n.FQDN {
		b.warnf("node %s reports host name %q: kolla-ansible and cephadm expect %q", n.Name, f.Hostname, n.Name)
	}
}

// addrOfPurpose returns n's address on the first network of purpose pu.
func (b *builder) addrOfPurpose(n *plan.Node, pu plan.Purpose) (plan.Address, bool) {
	for _, a := range n.Addresses {
		if a.Network.Purpose == pu {
			return a, true
		}
	}
	return plan.Address{}, false
}

// confirm returns the interface that carries address a on node h: the
// plan's device, confirmed by the node's facts when it has them.
func (b *builder) confirm(h *host, a plan.Address) (string, bool) {
	f := h.in.Facts
	if f == nil {
		return a.Device, true
	}
	for _, fi := range f.Interfaces {
		for _, s := range fi.Addresses {
			pfx, err := netip.ParsePrefix(s)
			if err == nil && pfx.Addr() == a.Addr {
				if fi.Name != a.Device {
					b.warnf("node %s: the plan puts %s (network %q) on %s, the node has it on %s: using %s", h.n.Name, a.Addr, a.Network.Name, a.Device, fi.Name, fi.Name)
				}
				return fi.Name, true
			}
		}
	}
	b.errorf("node %s reports no interface with address %s (network %q, planned on %s): re-verify the node or fix %s", h.n.Name, a.Addr, a.Network.Name, a.Device, h.path("networks."+a.Network.Name))
	return "", false
}

func (b *builder) neutronExternal(h *host) {
	iface := b.p.OpenStack.NeutronExternalInterface
	if iface == "" {
		b.errorf("node %s runs the Neutron agents but openstack.neutron_external_interface is not set: name the interface without an address Neutron plugs into br-ex (e.g. bond0)", h.n.Name)
		return
	}
	for _, a := range h.n.Addresses {
		if a.Device == iface {
			b.errorf("node %s: openstack.neutron_external_interface %s carries address %s (network %q): Neutron's external interface must have none", h.n.Name, iface, a.Addr, a.Network.Name)
			return
		}
	}
	if f := h.in.Facts; f != nil {
		i := slices.IndexFunc(f.Interfaces, func(fi nodeapi.Interface) bool { return fi.Name == iface })
		switch {
		case i < 0:
			b.errorf("node %s has no interface %s (openstack.neutron_external_interface): create it on the node, or name another", h.n.Name, iface)
			return
		case len(f.Interfaces[i].Addresses) > 0:
			b.errorf("node %s: interface %s (openstack.neutron_external_interface) has addresses %s: Neutron's external interface must have none", h.n.Name, iface, strings.Join(f.Interfaces[i].Addresses, ", "))
			return
		}
	} else if !slices.ContainsFunc(h.n.NICs, func(x plan.NIC) bool { return x.Name == iface }) && !slices.ContainsFunc(h.n.Bonds, func(x plan.Bond) bool { return x.Name == iface }) {
		b.warnf("node %s: %s (openstack.neutron_external_interface) is not an interface racklift configures and no facts confirm it: create it before deploying", h.n.Name, iface)
	}
	h.ifaces = append(h.ifaces, kv{"neutron_external_interface", iface})
}

// osds resolves the OSD device paths of storage node h: the stable
// /dev/disk/by-id/ name the node reported where known, else the plan's path.
func (b *builder) osds(h *host) {
	f := h.in.Facts
	for j, d := range h.n.OSDs {
		field := h.path(fmt.Sprintf("disks.osds[%d]", j))
		if f == nil {
			if p := d.DevicePath(); p != "" {
				h.osds = append(h.osds, p)
			} else {
				b.errorf("node %s: OSD disk %s is given by serial only and the node has no verification facts to find its /dev/disk/by-id name (%s)", h.n.Name, d, field)
			}
			continue
		}
		fd, ok := findDisk(f.Disks, d)
		if !ok {
			b.errorf("node %s reports no disk matching OSD %s (%s)", h.n.Name, d, field)
			continue
		}
		if id := pickByID(fd.ByID); id != "" {
			h.osds = append(h.osds, "/dev/disk/by-id/"+id)
			continue
		}
		b.warnf("node %s: OSD disk %s has no /dev/disk/by-id name: using %s, which may change across reboots", h.n.Name, d, fd.Path)
		h.osds = append(h.osds, fd.Path)
	}
}

// findDisk finds the reported disk the plan disk d names.
func findDisk(ds []nodeapi.Disk, d plan.Disk) (nodeapi.Disk, bool) {
	for _, fd := range ds {
		if fd.Type != "" && fd.Type != "disk" {
			continue
		}
		switch {
		case d.ByID != "" && slices.Contains(fd.ByID, d.ByID):
			return fd, true
		case d.Serial != "" && fd.Serial == d.Serial:
			return fd, true
		case d.Path != "":
			if id, ok := strings.CutPrefix(d.Path, "/dev/disk/by-id/"); ok && slices.Contains(fd.ByID, id) {
				return fd, true
			}
			if fd.Path == d.Path || "/dev/"+fd.Name == d.Path {
				return fd, true
			}
		}
	}
	return nodeapi.Disk{}, false
}

// pickByID picks the most stable by-id name: WWN first, then the
// transport-specific names, then the rest, each group in sorted order.
func pickByID(ids []string) string {
	s := slices.Clone(ids)
	rank := func(id string) int {
		for i, pre := range []string{"wwn-", "nvme-eui.", "nvme-", "scsi-", "ata-"} {
			if strings.HasPrefix(id, pre) {
				return i
			}
		}
		return 9
	}
	sort.Slice(s, func(i, j int) bool {
		if ri, rj := rank(s[i]), rank(s[j]); ri != rj {
			return ri < rj
		}
		return s[i] < s[j]
	})
	for _, id := range s {
		if !strings.ContainsAny(id, "/ \t\n") {
			return id
		}
	}
	return ""
}
