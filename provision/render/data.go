package render

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// Env holds the per-node inputs that are not in the plan. BMC passwords are
// deliberately absent: nothing rendered may contain them.
type Env struct {
	// ServerURL is racklift's HTTP base URL as the node reaches it, e.g.
	// http://10.99.0.1:8080 (no trailing slash needed).
	ServerURL string
	// Token is the node's opaque progress-callback token (URL-safe
	// characters only), issued by the caller; every callback carries it.
	Token string
	// RootHash is the root password crypt hash from the secrets. Empty
	// locks the root password (SSH keys only).
	RootHash string
	// MediaURL overrides {ServerURL}/media/{media} for the OS media
	// (e.g. a local mirror); "" uses the default.
	MediaURL string
	// SSHKeys are more public keys for root besides the plan's: the site's
	// deployment key, with which the hand-off's Ansible and cephadm log in.
	SSHKeys []string
	// Image is what the image store knows about the node's image, for
	// the agent's instructions (profiles of installer kind image).
	Image ImageEnv
}

// ImageEnv is the image store's part of an image node's instructions
// (nodeapi.ImageRef): the renderer knows the image's name from the
// profile, the caller knows its manifest.
type ImageEnv struct {
	// ManifestSHA256 is the SHA-256 (64 lower-case hex digits) of the
	// imported image's manifest.json; "" when unknown (e.g. `plan render`
	// without a state dir: the agent then refuses to write).
	ManifestSHA256 string
	// BlobURLs are the base URLs serving nodeapi.PathBlob, racklift first;
	// empty means ServerURL alone.
	BlobURLs []string
	// NoReboot leaves the node up after the agent wrote the image (tests
	// that inspect the disk); nodeapi.Instructions.Reboot is its negation.
	NoReboot bool
}

// Character sets the renderer accepts for values it writes into shell,
// YAML, kickstart and iPXE text. The plan validates most of them already;
// checking again here keeps every template safe whatever its caller.
var (
	tokenRE     = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,256}$`)
	serverURLRE = regexp.MustCompile(`^https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~/-]*)?$`)
	hashRE      = regexp.MustCompile(`^[A-Za-z0-9./$=+-]{1,512}$`)
	devPathRE   = regexp.MustCompile(`^/dev/[A-Za-z0-9._:+/-]+$`)
	serialRE    = regexp.MustCompile(`^[A-Za-z0-9._:+-]{1,128}$`)
	plainRE     = regexp.MustCompile(`^[A-Za-z0-9._:/+@*~=,-]+$`)
	sha256RE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	sshKeyRE    = regexp.MustCompile(`^[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+( [^"'\\\x00-\x1f\x7f` + "`" + `$]*)?$`)
)

// CheckServerURL reports whether s can be used as Env.ServerURL: an
// http(s) URL of a host (name or IP) with an optional port and path, and
// nothing that would need quoting in a rendered file.
func CheckServerURL(s string) error {
	if !serverURLRE.MatchString(strings.TrimRight(s, "/")) {
		return fmt.Errorf("server URL %q: want http://HOST[:PORT][/PATH], e.g. http://10.99.0.1:8080", s)
	}
	return nil
}

func (e Env) check() error {
	if err := CheckServerURL(e.ServerURL); err != nil {
		return err
	}
	if e.MediaURL != "" && !serverURLRE.MatchString(strings.TrimRight(e.MediaURL, "/")) {
		return fmt.Errorf("media URL %q: want http://HOST[:PORT][/PATH]", e.MediaURL)
	}
	if !tokenRE.MatchString(e.Token) {
		return fmt.Errorf("callback token: want 1-256 URL-safe characters (A-Z a-z 0-9 . _ ~ -)")
	}
	if e.RootHash != "" && !hashRE.MatchString(e.RootHash) {
		// Never echo the value.
		return fmt.Errorf("root password hash: not a crypt(3) hash (make one with: openssl passwd -6)")
	}
	if e.Image.ManifestSHA256 != "" && !sha256RE.MatchString(e.Image.ManifestSHA256) {
		return fmt.Errorf("image manifest SHA-256 %q: want 64 lower-case hex digits", e.Image.ManifestSHA256)
	}
	for _, u := range e.Image.BlobURLs {
		if !serverURLRE.MatchString(strings.TrimRight(u, "/")) {
			return fmt.Errorf("blob URL %q: want http://HOST[:PORT][/PATH]", u)
		}
	}
	return nil
}

// nodeData is what every node template gets.
type nodeData struct {
	Cluster *plan.Cluster
	Node    *plan.Node
	Profile *profiles.Profile
	// Hostname is the short name, FQDN the full one (Node.FQDN, or the
	// name when the cluster has no domain).
	Hostname, FQDN string
	// Token is the callback token; RootHash the crypt hash ("" = locked).
	Token, RootHash string
	URL             nodeURLs
	Net             netData
	OSDisk          diskData
	OSDs            []diskData
	Wipe            []diskData
	Timezone        string
	NTP             []string
	// Packages are the profile's packages followed by the node's.
	Packages []string
	// InstalledArgs are the installed system's extra kernel arguments
	// (interface names, then the plan's kernel_args), space-separated.
	InstalledArgs string
	// PlanArgs are only the plan's kernel_args (Ubuntu names NICs with
	// netplan, not ifname=).
	PlanArgs string
	// BootArgs is the installer's kernel command line (from the profile).
	BootArgs string
	Sysctl   []keyValue
	// SysctlConf is the /etc/sysctl.d file for Sysctl ("" if none).
	SysctlConf string
	SSHKeys    []string
	// InstanceID identifies this install to cloud-init.
	InstanceID string
	// FirstBoot is the first-boot cloud-config without its header line
	// (only set when rendering autoinstall user-data).
	FirstBoot string
	// Hosts is the cluster's /etc/hosts (only set for first-boot files).
	Hosts string
	// Image is true for profiles of installer kind image: the first boot
	// also sets root's password and keys and the sysctl settings (no
	// installer did).
	Image bool
	// NetworkConfig is the node's network config version 2, top level
	// (only set for autoinstall user-data, which indents it).
	NetworkConfig string
	// ReadyScript is the first boot's ready script (only set for
	// first-boot files); FactsSHA256 the SHA-256 of the facts script it
	// fetches and checks.
	ReadyScript string
	FactsSHA256 string
	// GRUB is the installer boot in GRUB's syntax (only set for grub.cfg).
	GRUB grubData
	// ImageEnv is Env.Image, for the instructions.
	ImageEnv ImageEnv
}

// grubData is what grub.cfg loads: GRUB device paths and quoted words.
type grubData struct {
	Kernel  string
	Initrds []string
	Args    string
}

type keyValue struct{ Key, Value string }

// nodeURLs are the absolute URLs a node's files refer to.
type nodeURLs struct {
	Server, IPXE, Config, SeedDir, UserData string
	Media, Repo, Stage2, ISO, Kernel        string
	Initrds                                 []initrd
	// Phone-home URLs (token in the nodeapi.TokenHeader header).
	Pre, Post, Installed, FirstBoot, Ready, Error string
	// Webhook is the Subiquity reporting endpoint, token in the query
	// (only in the autoinstall user-data, which is served to the node only).
	Webhook string
	// GRUB is the node's grub.cfg; FactsScript the facts script the first
	// boot runs; Instructions the deploy agent's instructions (image).
	GRUB, FactsScript, Instructions string
}

type initrd struct{ Name, URL string }

// netData is the node's network configuration, independent of the
// installer's syntax.
type netData struct {
	// Ethernets lists every NIC in plan order (bond members included).
	Ethernets []iface
	Bonds     []iface
	VLANs     []iface
	// Nameservers and Search apply to the default-route interface.
	Nameservers []string
	Search      []string
	// Boot is the provisioning interface.
	Boot *iface
}

// iface is a NIC, bond or VLAN interface.
type iface struct {
	Name string
	// MAC is set for NICs whose MAC the plan knows.
	MAC string
	MTU int
	// Member is the bond a NIC belongs to ("" if none).
	Member string
	// Bond fields.
	Members  []string
	Mode     string
	BondOpts string // kickstart --bondopts value
	// VLAN fields.
	Parent string
	VLAN   int
	// Addr is the untagged address on this device (nil if none).
	Addr *ifaddr
	// Boot marks the provisioning interface.
	Boot bool
}

// ifaddr is one static IPv4 address.
type ifaddr struct {
	Network      string
	IP, Netmask  string
	CIDR         string
	Gateway      string // set on the default-route network only
	DNS          []string
	Search       []string
	Provisioning bool
	// Gateway4 writes the default route as network config's gateway4:
	// (image nodes). cloud-init 22.4 (Debian 12) renders routes: for
	// ifupdown as net-tools `route` commands, which a Debian image
	// without net-tools cannot run, and refuses "to: default"; gateway4
	// becomes ifupdown's own gateway line. Netplan (autoinstall) gets
	// routes: to 0.0.0.0/0.
	Gateway4 bool
}

// diskData is a disk as the templates use it.
type diskData struct {
	// Path is a device path usable on the node, "" for serial-only disks.
	Path string
	// Serial is set for disks identified by serial number only.
	Serial string
	// Desc describes the disk for people.
	Desc string
	// Shell is a shell word that expands to the device path at install
	// time (a quoted path, or a lookup by serial).
	Shell string
	// MatchKey and MatchValue select the disk in an autoinstall storage
	// layout: serial, id_path or path.
	MatchKey, MatchValue string
	// ByID is set when the disk is given by /dev/disk/by-id: autoinstall
	// resolves it in early-commands.
	ByID bool
	Wipe bool
}

func newDisk(d plan.Disk) (diskData, error) {
	out := diskData{Desc: d.String(), Wipe: d.Wipe}
	switch p := d.DevicePath(); {
	case p != "":
		if !devPathRE.MatchString(p) || strings.Contains(p, "..") {
			return out, fmt.Errorf("disk %q: not a device path racklift can write safely", p)
		}
		out.Path = p
		out.Shell = shellQuote(p)
		switch {
		case strings.HasPrefix(p, "/dev/disk/by-path/"):
			out.MatchKey, out.MatchValue = "id_path", strings.TrimPrefix(p, "/dev/disk/by-path/")
		case strings.HasPrefix(p, "/dev/disk/by-id/"):
			out.MatchKey, out.MatchValue, out.ByID = "path", p, true
		default:
			out.MatchKey, out.MatchValue = "path", p
		}
	case d.Serial != "":
		if !serialRE.MatchString(d.Serial) {
			return out, fmt.Errorf("disk serial %q: not a serial number racklift can write safely", d.Serial)
		}
		out.Serial = d.Serial
		out.Shell = `"$(lsblk -dnpo NAME,SERIAL | awk '$2=="` + d.Serial + `"{print $1; exit}')"`
		out.MatchKey, out.MatchValue = "serial", d.Serial
	default:
		return out, fmt.Errorf("disk has no path, by-id or serial")
	}
	return out, nil
}

// shellQuote quotes s for POSIX sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// bondOpts returns the kickstart --bondopts value for a bond mode.
func bondOpts(mode string) string {
	o := "mode=" + mode + ",miimon=100"
	switch mode {
	case "802.3ad":
		o += ",lacp_rate=fast,xmit_hash_policy=layer3+4"
	case "balance-xor":
		o += ",xmit_hash_policy=layer3+4"
	}
	return o
}

// buildNet turns the node's NICs, bonds and addresses into interfaces.
// MTUs come from plan.Node.Links, the one definition verification checks.
func buildNet(c *plan.Cluster, n *plan.Node) (netData, error) {
	var nd netData
	mtus := map[string]int{}
	for _, l := range n.Links() {
		mtus[l.Name] = l.MTU
	}
	for _, x := range n.NICs {
		if !plainRE.MatchString(x.Name) {
			return nd, fmt.Errorf("interface name %q", x.Name)
		}
		nd.Ethernets = append(nd.Ethernets, iface{Name: x.Name, MAC: x.MAC, MTU: mtus[x.Name]})
	}
	for _, b := range n.Bonds {
		nd.Bonds = append(nd.Bonds, iface{Name: b.Name, Members: slices.Clone(b.Members), Mode: b.Mode, BondOpts: bondOpts(b.Mode), MTU: mtus[b.Name]})
		for _, m := range b.Members {
			if i := findIface(nd.Ethernets, m); i >= 0 {
				nd.Ethernets[i].Member = b.Name
			}
		}
	}
	// lookup returns the NIC or bond named name.
	lookup := func(name string) *iface {
		if i := findIface(nd.Ethernets, name); i >= 0 {
			return &nd.Ethernets[i]
		}
		if i := findIface(nd.Bonds, name); i >= 0 {
			return &nd.Bonds[i]
		}
		return nil
	}
	var bootName string
	for _, a := range n.Addresses {
		nw := a.Network
		ad := &ifaddr{Network: nw.Name, IP: a.Addr.String(), Netmask: net.IP(nw.Mask()).String(), CIDR: a.Prefix().String(), Provisioning: nw.Provisioning}
		if nw.DefaultRoute && nw.Gateway.IsValid() {
			ad.Gateway = nw.Gateway.String()
		}
		if nw.DefaultRoute {
			dns := nw.DNS
			if len(dns) == 0 {
				dns = c.DNS
			}
			for _, d := range dns {
				ad.DNS = append(ad.DNS, d.String())
			}
			nd.Nameservers = ad.DNS
			if c.Domain != "" {
				nd.Search = []string{c.Domain}
				ad.Search = nd.Search
			}
		}
		parent := lookup(a.Interface)
		if parent == nil {
			return nd, fmt.Errorf("network %s: node has no interface %q", nw.Name, a.Interface)
		}
		if nw.VLAN == 0 {
			if parent.Addr != nil {
				return nd, fmt.Errorf("interface %s carries two untagged networks (%s, %s)", parent.Name, parent.Addr.Network, nw.Name)
			}
			parent.Addr = ad
			if nw.Provisioning {
				parent.Boot = true
				bootName = parent.Name
			}
			continue
		}
		if !plainRE.MatchString(a.Device) {
			return nd, fmt.Errorf("VLAN device name %q", a.Device)
		}
		nd.VLANs = append(nd.VLANs, iface{Name: a.Device, Parent: a.Interface, VLAN: nw.VLAN, MTU: mtus[a.Device], Addr: ad})
	}
	if bootName != "" {
		nd.Boot = lookup(bootName)
	}
	return nd, nil
}

func findIface(xs []iface, name string) int {
	return slices.IndexFunc(xs, func(x iface) bool { return x.Name == name })
}

// ifNames returns dracut ifname= arguments binding each NIC with a known
// MAC to its plan name.
func ifNames(n *plan.Node) string {
	var parts []string
	for _, x := range n.NICs {
		if x.MAC != "" {
			parts = append(parts, "ifname="+x.Name+":"+x.MAC)
		}
	}
	return strings.Join(parts, " ")
}

// baseData builds the data every file of the node needs (cheap: no
// cluster-wide work).
func (r *Renderer) baseData(p *plan.Plan, n *plan.Node, prof *profiles.Profile, env Env) (*nodeData, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	server := strings.TrimRight(env.ServerURL, "/")
	d := &nodeData{
		Cluster:  &p.Cluster,
		Node:     n,
		Profile:  prof,
		Hostname: n.Name,
		FQDN:     n.FQDN,
		Token:    env.Token,
		RootHash: env.RootHash,
		Timezone: p.Cluster.Timezone,

		FactsSHA256: r.factsSHA,
		ImageEnv:    env.Image,
	}
	if d.FQDN == "" {
		d.FQDN = n.Name
	}
	if d.Timezone == "" {
		d.Timezone = "UTC"
	}
	d.InstanceID = "racklift-" + p.Cluster.Name + "-" + n.Name
	for _, s := range p.Cluster.NTP {
		if !plainRE.MatchString(s) {
			return nil, fmt.Errorf("NTP server %q", s)
		}
	}
	d.NTP = p.Cluster.NTP
	keys := append(slices.Clone(p.Cluster.SSHKeys), env.SSHKeys...)
	for _, k := range keys {
		if !sshKeyRE.MatchString(k) {
			return nil, fmt.Errorf("SSH key %.30q...: not a one-line OpenSSH public key racklift can write safely", k)
		}
	}
	d.SSHKeys = keys

	media := strings.TrimRight(env.MediaURL, "/")
	if media == "" {
		media = nodeapi.MediaURL(server, prof.Media)
	}
	sub := func(rel string) string {
		if rel == "" {
			return media
		}
		return media + "/" + rel
	}
	mac := n.MAC
	u := nodeURLs{
		Server:    server,
		IPXE:      nodeapi.IPXEURL(server, mac),
		SeedDir:   nodeapi.SeedDirURL(server, mac),
		UserData:  nodeapi.SeedURL(server, mac, nodeapi.FileUserData),
		Media:     media,
		Repo:      sub(prof.Repo),
		Stage2:    sub(prof.Stage2),
		ISO:       nodeapi.MediaISOURL(server, prof.Media),
		Kernel:    sub(prof.Kernel),
		Pre:       nodeapi.PhoneHomeURL(server, mac, nodeapi.PhasePre),
		Post:      nodeapi.PhoneHomeURL(server, mac, nodeapi.PhasePost),
		Installed: nodeapi.PhoneHomeURL(server, mac, nodeapi.PhaseInstalled),
		FirstBoot: nodeapi.PhoneHomeURL(server, mac, nodeapi.PhaseFirstBoot),
		Ready:     nodeapi.PhoneHomeURL(server, mac, nodeapi.PhaseReady),
		Error:     nodeapi.PhoneHomeURL(server, mac, nodeapi.PhaseError),
		Webhook:   nodeapi.PhoneHomeTokenURL(server, mac, nodeapi.PhaseInstaller, env.Token),
		GRUB:      nodeapi.GRUBURL(server, mac),

		FactsScript:  nodeapi.FactsScriptURL(server),
		Instructions: nodeapi.AgentInstructionsURL(server, mac),
	}
	if env.MediaURL != "" {
		u.ISO = media + ".iso"
	}
	switch prof.Installer {
	case profiles.InstallerKickstart:
		u.Config = nodeapi.KickstartURL(server, mac)
	case profiles.InstallerAutoinstall:
		u.Config = u.UserData
	case profiles.InstallerImage:
		u.Config = u.Instructions
	}
	for i, f := range prof.Initrd {
		u.Initrds = append(u.Initrds, initrd{Name: fmt.Sprintf("initrd%d", i), URL: sub(f)})
	}
	if prof.Installer == profiles.InstallerImage {
		// The node boots racklift's deploy agent, not the media.
		d.Image = true
		u.Media, u.Repo, u.Stage2, u.ISO = "", "", "", ""
		u.Kernel = nodeapi.AgentKernelURL(server)
		u.Initrds = []initrd{{Name: "initrd0", URL: nodeapi.AgentInitrdURL(server)}}
	}
	d.URL = u

	var err error
	if d.Net, err = buildNet(&p.Cluster, n); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if d.Image {
		for _, list := range [][]iface{d.Net.Ethernets, d.Net.Bonds, d.Net.VLANs} {
			for _, x := range list {
				if x.Addr != nil {
					x.Addr.Gateway4 = true
				}
			}
		}
	}
	if d.OSDisk, err = newDisk(n.OSDisk); err != nil {
		return nil, fmt.Errorf("OS disk: %w", err)
	}
	for _, o := range n.OSDs {
		dd, err := newDisk(o)
		if err != nil {
			return nil, fmt.Errorf("OSD disk: %w", err)
		}
		d.OSDs = append(d.OSDs, dd)
		if dd.Wipe {
			d.Wipe = append(d.Wipe, dd)
		}
	}
	d.Packages = make([]string, 0, len(prof.Packages)+len(n.Packages))
	for _, pk := range append(slices.Clone(prof.Packages), n.Packages...) {
		if !plainRE.MatchString(pk) {
			return nil, fmt.Errorf("package %q", pk)
		}
		if !slices.Contains(d.Packages, pk) {
			d.Packages = append(d.Packages, pk)
		}
	}
	args := []string{}
	if s := ifNames(n); s != "" {
		args = append(args, s)
	}
	for _, a := range n.KernelArgs {
		if !plainRE.MatchString(a) {
			return nil, fmt.Errorf("kernel argument %q", a)
		}
		args = append(args, a)
	}
	d.InstalledArgs = strings.Join(args, " ")
	d.PlanArgs = strings.Join(n.KernelArgs, " ")
	for _, k := range n.SysctlKeys() {
		v := n.Sysctl[k]
		if !plainRE.MatchString(k) || strings.ContainsAny(v, "\n\r'\"\\`$") {
			return nil, fmt.Errorf("sysctl %q", k)
		}
		d.Sysctl = append(d.Sysctl, keyValue{k, v})
	}
	if len(d.Sysctl) > 0 {
		var b strings.Builder
		b.WriteString("# racklift: sysctl settings from the cluster plan\n")
		for _, kv := range d.Sysctl {
			b.WriteString(kv.Key + " = " + kv.Value + "\n")
		}
		d.SysctlConf = b.String()
	}
	return d, nil
}

// argsData builds the profile's kernel-argument variables.
func argsData(d *nodeData) profiles.ArgsData {
	a := profiles.ArgsData{
		ServerURL:    d.URL.Server,
		MediaURL:     d.URL.Media,
		RepoURL:      d.URL.Repo,
		Stage2URL:    d.URL.Stage2,
		ISOURL:       d.URL.ISO,
		ConfigURL:    d.URL.Config,
		ConfigDirURL: d.URL.SeedDir,
		Node:         d.Node.Name,
		Hostname:     d.Hostname,
		FQDN:         d.FQDN,
		MAC:          d.Node.MAC,
		IfNames:      ifNames(d.Node),
		Console:      d.Profile.Console,
	}
	if b := d.Net.Boot; b != nil && b.Addr != nil {
		a.BootDevice = b.Name
		a.BootIP, a.Netmask = b.Addr.IP, b.Addr.Netmask
		if a.Netmask == "" {
			a.Netmask = "255.255.255.0"
		}
	}
	for _, x := range d.Node.Addresses {
		if x.Network.Provisioning {
			if x.Network.Gateway.IsValid() {
				a.Gateway = x.Network.Gateway.String()
			}
			dns := x.Network.DNS
			if len(dns) == 0 {
				dns = d.Cluster.DNS
			}
			if len(dns) > 0 {
				a.DNS = dns[0].String()
			}
		}
	}
	return a
}

// HasVLANs reports whether any VLAN rides on the named interface.
func (nd netData) HasVLANs(name string) bool {
	return slices.ContainsFunc(nd.VLANs, func(v iface) bool { return v.Parent == name })
}
