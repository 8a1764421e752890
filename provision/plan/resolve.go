package plan

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func reflectValue(s *Spec) reflect.Value { return reflect.ValueOf(s).Elem() }

var (
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	ifNameRE   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$`)
	sysctlRE   = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$`)
	pkgRE      = regexp.MustCompile(`^[@A-Za-z0-9][A-Za-z0-9_.+:~*-]*$`)
	trailingRE = regexp.MustCompile(`([0-9]+)$`)
)

// validPurposes and validRoles are closed sets; the spec's enum tags list the same.
func validPurpose(p string) bool {
	switch Purpose(p) {
	case PurposeManagement, PurposeBMC, PurposeStorage, PurposeStorageCluster,
		PurposeTenant, PurposeExternal, PurposeMigration, PurposeOther:
		return true
	}
	return false
}

func validRole(r string) bool { return slices.Contains(AllRoles(), Role(r)) }

// rolePurposes lists the network purposes each role needs, when the plan has
// networks of that purpose. Every node also needs the provisioning network.
func rolePurposes(r Role) []Purpose {
	switch r {
	case RoleController:
		return []Purpose{PurposeManagement}
	case RoleNetwork:
		return []Purpose{PurposeManagement, PurposeTenant, PurposeExternal}
	case RoleCompute:
		return []Purpose{PurposeManagement, PurposeTenant, PurposeStorage, PurposeMigration}
	case RoleStorage:
		return []Purpose{PurposeManagement, PurposeStorage, PurposeStorageCluster}
	case RoleCephMon:
		return []Purpose{PurposeManagement, PurposeStorage}
	default:
		return []Purpose{PurposeManagement}
	}
}

// resolver turns a Spec into a Plan, reporting every problem.
type resolver struct {
	r    *reporter
	spec *Spec
	opts Options
	p    *Plan
	// netPath maps network name to its spec path, for messages.
	netPath map[string]string
	// used records who holds each address, for "used twice" checks.
	used map[netip.Addr]string
	// bmcHosts records BMCs given by host name.
	bmcHosts map[string]string
	// secretRefs lists secrets the plan names: name -> path of first use.
	secretRefs []secretRef
}

type secretRef struct{ name, path string }

func resolve(r *reporter, spec *Spec, opts Options) *Plan {
	rs := &resolver{r: r, spec: spec, opts: opts, p: &Plan{
		byMAC: map[string]*Node{}, byName: map[string]*Node{}, byNet: map[string]*Network{},
	}, netPath: map[string]string{}, used: map[netip.Addr]string{}, bmcHosts: map[string]string{}}
	rs.cluster()
	rs.networks()
	rs.vips()
	rs.nodes()
	rs.secrets()
	checkHA(r, rs.p)
	checkHandoff(r, rs.p, spec.OpenStack)
	return rs.p
}

func (rs *resolver) claim(a netip.Addr, who, path string) {
	rs.claimHint(a, who, path, "give each address to one thing only")
}

func (rs *resolver) claimHint(a netip.Addr, who, path, hint string) {
	if !a.IsValid() {
		return
	}
	if prev, ok := rs.used[a]; ok {
		rs.r.errorf("address-unique", path, hint, "%s is already used by %s", a, prev)
		return
	}
	rs.used[a] = who
}

func (rs *resolver) cluster() {
	c := rs.spec.Cluster
	r := rs.r
	out := Cluster{Name: c.Name, Domain: strings.TrimSuffix(c.Domain, "."), Timezone: c.Timezone,
		NTP: c.NTP, SSHKeys: c.SSHKeys, RootPasswordSecret: c.RootPasswordSecret,
		Profile: c.Profile, CephPoolSize: c.CephPoolSize, HA: c.HA == nil || *c.HA}
	switch {
	case c.Name == "":
		r.errorf("required", "cluster.name", "add cluster: {name: mycloud}", "cluster name is missing")
	case !dnsLabelRE.MatchString(c.Name):
		r.errorf("name-dns", "cluster.name", "use lower-case letters, digits and '-', at most 63", "%q is not a valid name", c.Name)
	}
	if out.Domain != "" {
		for _, l := range strings.Split(out.Domain, ".") {
			if !dnsLabelRE.MatchString(l) {
				r.errorf("name-dns", "cluster.domain", "write a DNS domain like cloud.example.com", "%q is not a valid DNS domain", c.Domain)
				break
			}
		}
	}
	if out.Timezone == "" {
		out.Timezone = "UTC"
	} else if _, err := time.LoadLocation(out.Timezone); err != nil || strings.EqualFold(out.Timezone, "local") {
		r.errorf("timezone", "cluster.timezone", "use an IANA zone such as UTC, Europe/Berlin or Asia/Shanghai", "unknown time zone %q", c.Timezone)
	}
	for i, s := range c.NTP {
		if !validHost(s) {
			r.errorf("ntp", fmt.Sprintf("cluster.ntp[%d]", i), "write a host name or IPv4 address", "%q is not a host name or address", s)
		}
	}
	out.DNS = rs.addrList(c.DNS, "cluster.dns")
	for i, k := range c.SSHKeys {
		if !validSSHKey(k) {
			r.errorf("ssh-key", fmt.Sprintf("cluster.ssh_keys[%d]", i), "paste one public key line, e.g. the content of ~/.ssh/id_ed25519.pub", "not an SSH public key")
		}
	}
	if c.RootPasswordSecret != "" {
		rs.secretRefs = append(rs.secretRefs, secretRef{c.RootPasswordSecret, "cluster.root_password_secret"})
	} else if len(c.SSHKeys) == 0 {
		r.warnf("access", "cluster", "add ssh_keys or root_password_secret", "neither ssh_keys nor root_password_secret is set: nobody can log in to the installed nodes")
	}
	switch {
	case c.CephPoolSize == 0:
		out.CephPoolSize = 3
	case c.CephPoolSize < 1 || c.CephPoolSize > 10:
		r.errorf("ceph-pool-size", "cluster.ceph_pool_size", "use 3 (the Ceph default)", "pool size %d is out of range 1-10", c.CephPoolSize)
	case c.CephPoolSize < 3:
		r.warnf("ceph-pool-size", "cluster.ceph_pool_size", "use 3 so one host can fail without risking data", "pool size %d loses data if a second disk fails during recovery", c.CephPoolSize)
	}
	if c.Profile != "" {
		rs.checkProfile(c.Profile, "cluster.profile")
	}
	rs.p.Cluster = out
}

func (rs *resolver) checkProfile(name, path string) {
	if rs.opts.Profiles == nil || rs.opts.Profiles.Has(name) {
		return
	}
	rs.r.errorf("profile", path, "known profiles: "+strings.Join(rs.opts.Profiles.Names(), ", ")+" (or add one with --profiles-dir)", "unknown OS profile %q", name)
}

func (rs *resolver) addrList(ss []string, path string) []netip.Addr {
	var out []netip.Addr
	for i, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			rs.r.errorf("address", fmt.Sprintf("%s[%d]", path, i), "write an IPv4 address like 10.0.0.53", "%q is not an IPv4 address", s)
			continue
		}
		out = append(out, a)
	}
	return out
}

func (rs *resolver) networks() {
	r := rs.r
	var prov, bmc, defRoute []string
	for i, ns := range rs.spec.Networks {
		path := fmt.Sprintf("networks[%d]", i)
		n := &Network{Name: ns.Name, Purpose: Purpose(ns.Purpose), VLAN: ns.VLAN, MTU: ns.MTU,
			Provisioning: ns.Provisioning, DefaultRoute: ns.Default}
		switch {
		case ns.Name == "":
			r.errorf("required", path+".name", "add name: mgmt (any short name)", "network name is missing")
		case !dnsLabelRE.MatchString(ns.Name):
			r.errorf("name-dns", path+".name", "use lower-case letters, digits and '-'", "%q is not a valid network name", ns.Name)
		case rs.netPath[ns.Name] != "":
			r.errorf("name-unique", path+".name", "rename one of them", "network %q is already defined at %s", ns.Name, rs.netPath[ns.Name])
			continue
		}
		rs.netPath[ns.Name] = path
		switch {
		case ns.Purpose == "":
			r.errorf("required", path+".purpose", "add purpose: one of management, bmc, storage, storage-cluster, tenant, external, migration, other", "network purpose is missing")
		case !validPurpose(ns.Purpose):
			r.errorf("purpose", path+".purpose", "use one of management, bmc, storage, storage-cluster, tenant, external, migration, other", "unknown purpose %q", ns.Purpose)
		}
		pfx, err := netip.ParsePrefix(ns.CIDR)
		switch {
		case ns.CIDR == "":
			r.errorf("required", path+".cidr", "add cidr: 10.0.0.0/24", "network CIDR is missing")
		case err != nil || !pfx.Addr().Is4():
			r.errorf("cidr", path+".cidr", "write an IPv4 network like 10.20.0.0/24", "%q is not an IPv4 CIDR", ns.CIDR)
		case pfx.Masked() != pfx:
			r.errorf("cidr", path+".cidr", fmt.Sprintf("write %s", pfx.Masked()), "%s has host bits set", ns.CIDR)
		case pfx.Bits() > 30:
			r.errorf("cidr", path+".cidr", "use a /30 or larger network", "%s is too small for hosts", ns.CIDR)
		default:
			n.Prefix = pfx
			for _, o := range rs.p.Networks {
				if o.Prefix.IsValid() && o.Prefix.Overlaps(pfx) {
					r.errorf("cidr-overlap", path+".cidr", "give every network its own address space", "%s overlaps network %q (%s)", pfx, o.Name, o.Prefix)
				}
			}
		}
		if ns.VLAN < 0 || ns.VLAN > 4094 {
			r.errorf("vlan", path+".vlan", "use a VLAN ID from 1 to 4094, or 0 for untagged", "VLAN %d is out of range", ns.VLAN)
		} else if ns.VLAN != 0 {
			for _, o := range rs.p.Networks {
				if o.VLAN == ns.VLAN {
					r.errorf("vlan-unique", path+".vlan", "each network needs its own VLAN", "VLAN %d is already used by network %q", ns.VLAN, o.Name)
				}
			}
		}
		switch {
		case ns.MTU == 0:
			n.MTU = 1500
		case ns.MTU < 576 || ns.MTU > 9216:
			r.errorf("mtu", path+".mtu", "use 1500, or 9000 for storage networks", "MTU %d is out of range 576-9216", ns.MTU)
		}
		isStorage := n.Purpose == PurposeStorage || n.Purpose == PurposeStorageCluster
		if isStorage && n.MTU != 9000 && (ns.MTU == 0 || (ns.MTU >= 576 && ns.MTU <= 9216)) {
			r.warnf("storage-mtu", path+".mtu", "set mtu: 9000 (and jumbo frames on the switches) for Ceph traffic", "storage network %q has MTU %d", ns.Name, n.MTU)
		}
		if ns.Gateway != "" {
			g, err := netip.ParseAddr(ns.Gateway)
			switch {
			case err != nil || !g.Is4():
				r.errorf("address", path+".gateway", "write an IPv4 address", "%q is not an IPv4 address", ns.Gateway)
			case n.Prefix.IsValid() && !hostIn(n.Prefix, g):
				r.errorf("address-in-network", path+".gateway", fmt.Sprintf("use a host address inside %s", n.Prefix), "gateway %s is not a host address of %s", g, n.Prefix)
			default:
				n.Gateway = g
				rs.claim(g, fmt.Sprintf("the gateway of network %q", ns.Name), path+".gateway")
			}
		}
		n.DNS = rs.addrList(ns.DNS, path+".dns")
		if ns.Provisioning {
			prov = append(prov, ns.Name)
			if ns.VLAN != 0 {
				r.errorf("provisioning-vlan", path+".vlan", "set vlan: 0 and make the provisioning VLAN the native (untagged) VLAN on the switch ports", "the provisioning network must be untagged: PXE firmware cannot tag VLANs")
			}
			if n.Purpose == PurposeBMC {
				r.errorf("provisioning-bmc", path+".provisioning", "PXE-boot on the management network", "the BMC network cannot be the provisioning network")
			}
		}
		if n.Purpose == PurposeBMC {
			bmc = append(bmc, ns.Name)
		}
		if ns.Default {
			defRoute = append(defRoute, ns.Name)
		}
		if ns.Dynamic != nil {
			rs.dynamic(n, *ns.Dynamic, path+".dynamic_range")
		}
		rs.p.Networks = append(rs.p.Networks, n)
		rs.p.byNet[n.Name] = n
	}
	for i, ns := range rs.spec.Networks {
		path := fmt.Sprintf("networks[%d].allocate", i)
		n := rs.p.byNet[ns.Name]
		if n == nil || !n.Prefix.IsValid() {
			continue
		}
		for _, k := range sortedKeys(ns.Allocate) {
			kp := mapKeyPath(path, k)
			if k != "default" && !validRole(k) {
				r.errorf("allocate-role", kp, "use a role name (controller, compute, ...) or default", "unknown role %q", k)
			}
			a, err := netip.ParseAddr(ns.Allocate[k])
			if err != nil || !a.Is4() || !hostIn(n.Prefix, a) {
				r.errorf("allocate", kp, fmt.Sprintf("use a host address inside %s", n.Prefix), "%q is not a host address of %s", ns.Allocate[k], n.Prefix)
			}
		}
	}
	if len(rs.spec.Networks) == 0 {
		r.errorf("required", "networks", "add at least the provisioning network (see racklift plan example)", "no networks are defined")
	}
	switch len(prov) {
	case 0:
		if len(rs.spec.Networks) > 0 {
			r.errorf("provisioning", "networks", "mark the PXE network with provisioning: true", "no network is the provisioning network")
		}
	case 1:
	default:
		r.errorf("provisioning", "networks", "keep provisioning: true on one network only", "%d networks are marked provisioning: %s", len(prov), strings.Join(prov, ", "))
	}
	if len(bmc) > 1 {
		r.errorf("bmc-network", "networks", "keep one network with purpose: bmc", "%d BMC networks: %s", len(bmc), strings.Join(bmc, ", "))
	}
	if len(defRoute) > 1 {
		r.errorf("default-route", "networks", "keep default_route: true on one network", "%d networks claim the default route: %s", len(defRoute), strings.Join(defRoute, ", "))
	}
	if len(defRoute) == 0 {
		for _, n := range rs.p.Networks {
			if n.Provisioning {
				n.DefaultRoute = true
			}
		}
	}
}

func (rs *resolver) dynamic(n *Network, rg RangeSpec, path string) {
	s, err1 := netip.ParseAddr(rg.Start)
	e, err2 := netip.ParseAddr(rg.End)
	if err1 != nil || err2 != nil || !s.Is4() || !e.Is4() {
		rs.r.errorf("range", path, "write start: and end: IPv4 addresses", "dynamic range needs IPv4 start and end")
		return
	}
	if n.Prefix.IsValid() && (!hostIn(n.Prefix, s) || !hostIn(n.Prefix, e)) {
		rs.r.errorf("address-in-network", path, fmt.Sprintf("keep the range inside %s", n.Prefix), "dynamic range %s-%s is not inside %s", s, e, n.Prefix)
		return
	}
	if e.Less(s) {
		rs.r.errorf("range", path, "swap start and end", "dynamic range ends (%s) before it starts (%s)", e, s)
		return
	}
	n.DynamicStart, n.DynamicEnd = s, e
	if n.Gateway.IsValid() && inRange(n.Gateway, s, e) {
		rs.r.errorf("address-unique", path, "move the range so it does not include the gateway", "dynamic range includes the gateway %s", n.Gateway)
	}
}

func (rs *resolver) vips() {
	seen := map[string]string{}
	for i, v := range rs.spec.VIPs {
		path := fmt.Sprintf("vips[%d]", i)
		if v.Name == "" {
			rs.r.errorf("required", path+".name", "add name: internal (or external)", "VIP name is missing")
		} else if p, ok := seen[v.Name]; ok {
			rs.r.errorf("name-unique", path+".name", "rename one of them", "VIP %q is already defined at %s", v.Name, p)
		}
		seen[v.Name] = path
		n, ok := rs.p.byNet[v.Network]
		if !ok {
			rs.r.errorf("network-ref", path+".network", "use one of the networks: "+strings.Join(rs.netNames(), ", "), "unknown network %q", v.Network)
		}
		a, err := netip.ParseAddr(v.Address)
		if err != nil || !a.Is4() {
			rs.r.errorf("address", path+".address", "write an IPv4 address", "%q is not an IPv4 address", v.Address)
			continue
		}
		if n != nil && n.Prefix.IsValid() {
			if !hostIn(n.Prefix, a) {
				rs.r.errorf("address-in-network", path+".address", fmt.Sprintf("pick a free host address inside %s", n.Prefix), "VIP %s is not inside network %q (%s)", a, n.Name, n.Prefix)
			} else if n.DynamicStart.IsValid() && inRange(a, n.DynamicStart, n.DynamicEnd) {
				rs.r.errorf("address-unique", path+".address", "move the VIP out of the dynamic range", "VIP %s is inside the dynamic range of %q", a, n.Name)
			}
		}
		rs.claim(a, fmt.Sprintf("VIP %q", v.Name), path+".address")
		if v.FQDN != "" && !validHost(v.FQDN) {
			rs.r.errorf("name-dns", path+".fqdn", "write a DNS name like api.cloud.example.com", "%q is not a DNS name", v.FQDN)
		}
		rs.p.VIPs = append(rs.p.VIPs, VIP{Name: v.Name, Network: n, Address: a, FQDN: v.FQDN})
	}
}

func (rs *resolver) netNames() []string {
	out := make([]string, 0, len(rs.p.Networks))
	for _, n := range rs.p.Networks {
		out = append(out, n.Name)
	}
	return out
}

// secrets checks that every secret the plan names exists.
func (rs *resolver) secrets() {
	for _, ref := range rs.secretRefs {
		if !secretNameRE.MatchString(ref.name) {
			rs.r.errorf("secret-name", ref.path, "use letters, digits, '.', '_' and '-'", "%q is not a valid secret name", ref.name)
			continue
		}
		v, ok := rs.opts.Secrets.Lookup(ref.name)
		switch {
		case !ok && rs.opts.Secrets != nil && rs.opts.Secrets.File() != "":
			rs.r.errorf("secret-missing", ref.path, fmt.Sprintf("add %q to %s or set %s", ref.name, rs.opts.Secrets.File(), EnvName(ref.name)), "secret %q is not in the secrets file", ref.name)
		case !ok:
			rs.r.warnf("secret-missing", ref.path, fmt.Sprintf("pass --secrets FILE or set %s", EnvName(ref.name)), "secret %q was not checked (no secrets file given)", ref.name)
		case ref.path == "cluster.root_password_secret" && !isCryptHash(v):
			rs.r.errorf("root-hash", ref.path, "store a crypt hash made with: openssl passwd -6", "secret %q is not a crypt password hash (it must start with $6$, $5$ or $y$)", ref.name)
		}
	}
}

func isCryptHash(s string) bool {
	for _, p := range []string{"$6$", "$5$", "$y$", "$2b$"} {
		if strings.HasPrefix(s, p) && len(s) > 20 {
			return true
		}
	}
	return false
}

func hostIn(p netip.Prefix, a netip.Addr) bool {
	if !p.Contains(a) {
		return false
	}
	if a == p.Addr() {
		return false
	}
	return a != broadcast(p)
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func inRange(a, s, e netip.Addr) bool { return !a.Less(s) && !e.Less(a) }

// addOffset returns a+off, or false if it overflows IPv4.
func addOffset(a netip.Addr, off int) (netip.Addr, bool) {
	b := a.As4()
	v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	v += uint64(off)
	if off < 0 || v > 0xffffffff {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func validHost(s string) bool {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Is4()
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.ToLower(s), ".") {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

func validSSHKey(k string) bool {
	f := strings.Fields(k)
	if len(f) < 2 {
		return false
	}
	switch {
	case f[0] == "ssh-ed25519", f[0] == "ssh-rsa", f[0] == "ssh-dss",
		strings.HasPrefix(f[0], "ecdsa-sha2-"), strings.HasPrefix(f[0], "sk-"):
	default:
		return false
	}
	return len(f[1]) >= 32 && !strings.ContainsAny(f[1], "\n\r")
}

// canonicalMAC parses a unicast MAC and returns its canonical form.
func canonicalMAC(s string) (string, error) {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return "", fmt.Errorf("not a MAC address")
	}
	if m[0]&1 == 1 {
		return "", fmt.Errorf("multicast MAC")
	}
	if m.String() == "00:00:00:00:00:00" {
		return "", fmt.Errorf("all-zero MAC")
	}
	return m.String(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// nameIndex returns the digits at the end of a node name, e.g. 20 for
// cs-compute-0020, or -1.
func nameIndex(name string) int {
	m := trailingRE.FindString(name)
	if m == "" || len(m) > 6 {
		return -1
	}
	i, err := strconv.Atoi(m)
	if err != nil {
		return -1
	}
	return i
}
