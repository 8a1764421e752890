// Package plan loads, validates and resolves a racklift cluster plan: the one
// YAML file that describes the servers, networks, roles and disks of a
// cluster. A *Plan is immutable once loaded and safe for concurrent reads.
package plan

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Role is a node role.
type Role string

// Roles a node can have.
const (
	RoleController Role = "controller"
	RoleNetwork    Role = "network"
	RoleCompute    Role = "compute"
	RoleStorage    Role = "storage"
	RoleCephMon    Role = "ceph-mon"
	RoleDatabase   Role = "database"
	RoleMessaging  Role = "messaging"
	RoleMonitoring Role = "monitoring"
)

// AllRoles lists every role in display order.
func AllRoles() []Role {
	return []Role{RoleController, RoleDatabase, RoleMessaging, RoleNetwork, RoleCephMon, RoleStorage, RoleCompute, RoleMonitoring}
}

// Purpose is what a network carries.
type Purpose string

// Network purposes.
const (
	PurposeManagement     Purpose = "management"
	PurposeBMC            Purpose = "bmc"
	PurposeStorage        Purpose = "storage"
	PurposeStorageCluster Purpose = "storage-cluster"
	PurposeTenant         Purpose = "tenant"
	PurposeExternal       Purpose = "external"
	PurposeMigration      Purpose = "migration"
	PurposeOther          Purpose = "other"
)

// Plan is a validated, resolved cluster plan.
type Plan struct {
	// File is the name the plan was loaded from (for messages).
	File     string
	Cluster  Cluster
	Networks []*Network
	VIPs     []VIP
	Nodes    []*Node
	// OpenStack is what the kolla-ansible hand-off needs beyond the nodes.
	OpenStack OpenStack

	byMAC  map[string]*Node
	byName map[string]*Node
	byNet  map[string]*Network
}

// Cluster holds resolved cluster-wide settings.
type Cluster struct {
	Name     string
	Domain   string
	Timezone string
	NTP      []string
	DNS      []netip.Addr
	SSHKeys  []string
	// RootPasswordSecret names the secret holding the root crypt hash.
	RootPasswordSecret string
	Profile            string
	CephPoolSize       int
	HA                 bool
}

// OpenStack holds the plan's openstack: section as written (zero values
// mean "not set"; the hand-off applies its defaults).
type OpenStack struct {
	Release                   string
	KeepalivedVirtualRouterID int
	DockerRegistry            string
	InstanceHA                bool
	NeutronExternalInterface  string
}

// Network is a resolved network.
type Network struct {
	Name         string
	Purpose      Purpose
	Prefix       netip.Prefix
	VLAN         int
	Gateway      netip.Addr // invalid if none
	MTU          int
	DNS          []netip.Addr
	Provisioning bool
	DefaultRoute bool
	// DynamicStart and DynamicEnd bound the range for unknown machines; invalid if none.
	DynamicStart, DynamicEnd netip.Addr
}

// Mask returns the network mask as a net.IPMask.
func (n *Network) Mask() net.IPMask { return net.CIDRMask(n.Prefix.Bits(), 32) }

// VIP is a resolved virtual IP.
type VIP struct {
	Name    string
	Network *Network
	Address netip.Addr
	FQDN    string
}

// Node is one resolved server.
type Node struct {
	Name  string
	FQDN  string
	Index int // -1 if none
	Roles []Role
	// MAC is the PXE MAC, canonical lower-case colon form.
	MAC string
	// BMC is nil when the node has no BMC.
	BMC   *BMC
	NICs  []NIC
	Bonds []Bond
	// Addresses has one entry per network the node is on, in plan network order.
	Addresses  []Address
	OSDisk     Disk
	OSDs       []Disk
	Profile    string
	Packages   []string
	KernelArgs []string
	// Sysctl settings; use SysctlKeys for a stable order.
	Sysctl           map[string]string
	ReservedMemoryMB int
	// BIOS is the baseline to apply; BootMode is always set ("uefi" by default).
	BIOS BIOS
}

// BIOS is a node's resolved BIOS baseline.
type BIOS struct {
	BootMode       string
	PXENIC         string
	Virtualization *bool
	Attributes     map[string]string
	// SecureBoot is true when the node must boot with UEFI Secure Boot on
	// (through shim and signed GRUB, never iPXE); BootMode is then uefi.
	SecureBoot bool
}

// UEFI reports whether the node boots in UEFI mode.
func (b BIOS) UEFI() bool { return b.BootMode != "legacy" }

// BMC is how to reach a node's BMC. The password is not here: PasswordSecret
// names it, and only the BMC layer resolves it.
type BMC struct {
	Address        string
	Driver         string // ipmi, redfish or auto
	Port           int
	User           string
	PasswordSecret string
	TLSVerify      bool
}

// NIC is a physical interface. MAC may be empty when only the name is known.
type NIC struct {
	Name string
	MAC  string
	MTU  int
}

// Bond is a Linux bond over NICs.
type Bond struct {
	Name    string
	Mode    string
	Members []string
	MTU     int
}

// Address puts a node on a network.
type Address struct {
	Network *Network
	// Interface is the NIC or bond carrying the network.
	Interface string
	// Device is Interface for untagged networks, Interface.VLAN for tagged ones.
	Device string
	Addr   netip.Addr
	// Allocated is true when racklift chose the address.
	Allocated bool
}

// Prefix returns the address with its network's prefix length.
func (a Address) Prefix() netip.Prefix { return netip.PrefixFrom(a.Addr, a.Network.Prefix.Bits()) }

// Disk identifies one disk.
type Disk struct {
	Path   string
	ByID   string
	Serial string
	// SizeBytes is the size the plan gives (0 = any); a disk matches when
	// its size is within DiskSizeTolerance of it (see SizeRange).
	SizeBytes int64
	Wipe      bool
}

// DiskSizeTolerance is how far a disk's real size may be from the plan's
// size: 2 %, enough for a label's rounding (a "480G" SSD has 480,103,981,056
// bytes, "1.92T" 1,920,383,410,176) and small enough to tell a 480 GB disk
// from a 500 GB one.
const DiskSizeTolerance = 0.02

// SizeRange returns the smallest and largest size in bytes a disk may have
// to match the plan's size, or 0, 0 when the plan gives none.
func (d Disk) SizeRange() (lo, hi int64) {
	if d.SizeBytes <= 0 {
		return 0, 0
	}
	f := float64(d.SizeBytes)
	return int64(f * (1 - DiskSizeTolerance)), int64(f * (1 + DiskSizeTolerance))
}

// SizeMatches reports whether a disk of size bytes matches the plan's
// size (always true when the plan gives none).
func (d Disk) SizeMatches(size int64) bool {
	lo, hi := d.SizeRange()
	return d.SizeBytes <= 0 || (size >= lo && size <= hi)
}

// DevicePath returns a path usable on the node when one is known (Path or
// /dev/disk/by-id/ByID), or "" for serial-only disks.
func (d Disk) DevicePath() string {
	switch {
	case d.Path != "":
		return d.Path
	case d.ByID != "":
		return "/dev/disk/by-id/" + d.ByID
	}
	return ""
}

// Key returns a string identifying the disk for comparisons.
func (d Disk) Key() string {
	switch {
	case d.Path != "":
		return "path:" + d.Path
	case d.ByID != "":
		return "id:" + d.ByID
	case d.Serial != "":
		return "serial:" + d.Serial
	}
	return ""
}

// maxFQDN is Linux's host name limit (HOST_NAME_MAX); a node's FQDN is
// its installed host name, so it must fit (DNS allows 253).
const maxFQDN = 64

// shorten cuts a long value for a message: the first 60 characters and
// how many more there are.
func shorten(s string) string {
	const keep = 60
	if r := []rune(s); len(r) > keep {
		return fmt.Sprintf("%q… (%d more characters)", string(r[:keep]), len(r)-keep)
	}
	return fmt.Sprintf("%q", s)
}

// Partition names: the whole disk's name is the first group.
var partitionRE = []*regexp.Regexp{
	regexp.MustCompile(`^(/dev/(?:nvme[0-9]+n[0-9]+|mmcblk[0-9]+|loop[0-9]+))p[0-9]+$`),
	regexp.MustCompile(`^(/dev/(?:s|v|xv|h)d[a-z]+)[0-9]+$`),
	regexp.MustCompile(`^(/dev/disk/by-[a-z-]+/.+)-part[0-9]+$`),
	regexp.MustCompile(`^(id:.+)-part[0-9]+$`),
}

// WholeKey is Key of the whole disk a partition is on (/dev/sdb1 →
// /dev/sdb, /dev/nvme0n1p2 → /dev/nvme0n1, by-id NAME-part3 → NAME); a
// whole disk's WholeKey is its Key.
func (d Disk) WholeKey() string {
	k := d.Key()
	for _, re := range partitionRE {
		v := strings.TrimPrefix(k, "path:")
		if m := re.FindStringSubmatch(v); m != nil {
			if v == k {
				return m[1]
			}
			return "path:" + m[1]
		}
	}
	return k
}

// String describes the disk for people.
func (d Disk) String() string {
	switch {
	case d.Path != "":
		return d.Path
	case d.ByID != "":
		return "by-id " + d.ByID
	case d.Serial != "":
		return "serial " + d.Serial
	}
	return "(none)"
}

// Has reports whether the node has the role.
func (n *Node) Has(r Role) bool { return slices.Contains(n.Roles, r) }

// Provisioning returns the node's address on the provisioning network.
func (n *Node) Provisioning() (Address, bool) {
	for _, a := range n.Addresses {
		if a.Network.Provisioning {
			return a, true
		}
	}
	return Address{}, false
}

// AddressOn returns the node's address on the named network.
func (n *Node) AddressOn(network string) (Address, bool) {
	for _, a := range n.Addresses {
		if a.Network.Name == network {
			return a, true
		}
	}
	return Address{}, false
}

// SysctlKeys returns the sysctl keys in sorted order.
func (n *Node) SysctlKeys() []string {
	ks := make([]string, 0, len(n.Sysctl))
	for k := range n.Sysctl {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// RoleNames returns the roles as strings joined by sep.
func (n *Node) RoleNames(sep string) string {
	s := make([]string, len(n.Roles))
	for i, r := range n.Roles {
		s[i] = string(r)
	}
	return strings.Join(s, sep)
}

// NodeByMAC finds a node by its PXE MAC or any of its NIC MACs; mac may be
// in any form net.ParseMAC accepts.
func (p *Plan) NodeByMAC(mac string) (*Node, bool) {
	m, err := net.ParseMAC(mac)
	if err != nil {
		return nil, false
	}
	n, ok := p.byMAC[m.String()]
	return n, ok
}

// NodeByName finds a node by name.
func (p *Plan) NodeByName(name string) (*Node, bool) {
	n, ok := p.byName[name]
	return n, ok
}

// Network finds a network by name.
func (p *Plan) Network(name string) (*Network, bool) {
	n, ok := p.byNet[name]
	return n, ok
}

// ProvisioningNetwork returns the PXE network.
func (p *Plan) ProvisioningNetwork() *Network {
	for _, n := range p.Networks {
		if n.Provisioning {
			return n
		}
	}
	return nil
}

// NodeDNS returns the resolvers node n uses: those of its default-route
// network, else the cluster's.
func (p *Plan) NodeDNS(n *Node) []netip.Addr {
	var dns []netip.Addr
	for _, a := range n.Addresses {
		if a.Network.DefaultRoute {
			dns = a.Network.DNS
		}
	}
	if len(dns) == 0 {
		dns = p.Cluster.DNS
	}
	return dns
}

// NodesWith returns the nodes that have the role, in plan order.
func (p *Plan) NodesWith(r Role) []*Node {
	var out []*Node
	for _, n := range p.Nodes {
		if n.Has(r) {
			out = append(out, n)
		}
	}
	return out
}

// ProfileSet is what the plan needs to know about OS profiles.
type ProfileSet interface {
	// Has reports whether a profile of that name exists.
	Has(name string) bool
	// Names lists the profiles, for hints.
	Names() []string
}

// ImageSet is what the plan needs to know about imported OS images: which
// image an image profile deploys, and each imported image's size.
type ImageSet interface {
	// ProfileImage names the image of an image profile ("" for the others).
	ProfileImage(profile string) string
	// ImageSize is an imported image's size in bytes; ok is false when it
	// is not imported.
	ImageSize(image string) (size int64, ok bool)
}

// Options tune loading.
type Options struct {
	// Profiles, if set, is used to check profile references.
	Profiles ProfileSet
	// Images, if set, is used to check that every node of an image profile
	// has its image imported and that it fits its OS disk.
	Images ImageSet
	// Secrets, if set, is used to check that every referenced secret exists.
	// Missing secrets are errors when Secrets is set and warnings otherwise.
	Secrets *Secrets
}

// maxPlanBytes bounds the size of a plan file (a 5,000-node plan is ~2 MB).
const maxPlanBytes = 64 << 20

// LoadFile reads and validates the plan at path. The error is non-nil only
// when the file cannot be read; problems in the plan are in Diagnostics, and
// the *Plan is nil if any of them is an error.
func LoadFile(path string, opts Options) (*Plan, Diagnostics, error) {
	return LoadFileContext(context.Background(), path, opts)
}

// LoadFileContext is LoadFile that stops when ctx is done; the error is
// then ctx's cause.
func LoadFileContext(ctx context.Context, path string, opts Options) (*Plan, Diagnostics, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: %w", err)
	}
	if st.Size() > maxPlanBytes {
		return nil, nil, fmt.Errorf("read plan %s: %d bytes is larger than the %d byte limit", path, st.Size(), maxPlanBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read plan: %w", err)
	}
	return LoadContext(ctx, path, data, opts)
}

// Load parses and validates a plan. name is used in diagnostics. The plan is
// nil when any diagnostic is an error.
func Load(name string, data []byte, opts Options) (*Plan, Diagnostics) {
	p, ds, _ := LoadContext(context.Background(), name, data, opts)
	return p, ds
}

// LoadContext is Load that stops when ctx is done (SIGTERM, Ctrl-C): the
// error is then non-nil (ctx's cause) and the plan and diagnostics are nil.
func LoadContext(ctx context.Context, name string, data []byte, opts Options) (*Plan, Diagnostics, error) {
	r := &reporter{file: name, pos: positions{}}
	spec, ok := parse(ctx, r, data)
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("load plan %s: %w", name, context.Cause(ctx))
	}
	if !ok {
		r.ds.sortByPosition()
		return nil, r.ds, nil
	}
	p := resolve(r, spec, opts)
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("load plan %s: %w", name, context.Cause(ctx))
	}
	r.ds.sortByPosition()
	if r.ds.HasErrors() {
		return nil, r.ds, nil
	}
	p.File = name
	return p, r.ds, nil
}

// parse decodes the YAML into a Spec, reporting syntax and type problems.
func parse(ctx context.Context, r *reporter, data []byte) (*Spec, bool) {
	if len(data) > maxPlanBytes {
		r.errorf("yaml-size", "", "split the plan", "plan is larger than %d bytes", maxPlanBytes)
		return nil, false
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		line, msg := yamlErrorLine(err)
		r.pos["#syntax"] = [2]int{line, 1}
		r.errorf("yaml-syntax", "#syntax", "check indentation (spaces, not tabs) and quoting around this line", "%s", msg)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		r.pos["#doc2"] = [2]int{extra.Line, extra.Column}
		r.errorf("yaml-syntax", "#doc2", "put the whole plan in one YAML document (remove the second '---')", "more than one YAML document")
	}
	spec := &Spec{}
	r.pos[""] = [2]int{1, 1}
	if len(doc.Content) == 0 {
		r.errorf("plan-empty", "", "start from an example: racklift plan example > plan.yaml", "the plan is empty")
		return nil, false
	}
	// Count what aliases and merge keys expand to before decoding: the
	// decoder's budget alone does not bound the merge expansion.
	if !checkExpansion(ctx, r, &doc, maxNodes) {
		return nil, false
	}
	d := &decoder{r: r, budget: maxNodes, ctx: ctx}
	d.decode(&doc, reflectValue(spec), "")
	return spec, true
}

// yamlErrorLine pulls "line N" out of a yaml.v3 error message.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i:], "line %d", &line)
		rest := msg[i:]
		if j := strings.Index(rest, ": "); j >= 0 {
			msg = rest[j+2:]
		}
	}
	// yaml.v3 numbers parser errors that have a context from 0 (it prints
	// the 0-based line of the construct it was parsing); scanner errors are
	// 1-based. Parser errors with context read "did not find expected ...".
	if strings.HasPrefix(msg, "did not find expected") {
		line++
	}
	if line == 0 {
		line = 1
	}
	return line, msg
}
