// Package render turns a validated plan into the files each server fetches
// to install itself: its iPXE script, its kickstart (RHEL 9) or Ubuntu
// autoinstall user-data with NoCloud meta-data and vendor-data, and the
// first-boot cloud-config of the installed system.
//
// Templates are parsed once by New and executed with missingkey=error on
// typed data; every output is checked (cloud-config header and YAML, iPXE
// header, kickstart sections, no "<no value>") before it is returned. The
// same Renderer serves `racklift plan render` and the HTTP boot server, so
// what the engineer reviewed is what the node gets.
package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"strings"
	"sync/atomic"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// Fixed template names (not chosen by profiles).
const (
	tmplLocalBoot  = "local-boot.ipxe.tmpl"
	tmplUnknownMAC = "unknown-mac.ipxe.tmpl"
	tmplHold       = "hold.ipxe.tmpl"
)

// ErrNoProfile is returned for a node whose profile is not loaded.
var ErrNoProfile = errors.New("unknown OS profile")

// Renderer renders per-node files. It is safe for concurrent use.
type Renderer struct {
	tmpl  *template.Template
	profs *profiles.Set
	// hosts caches the /etc/hosts of the last plan rendered (plans are
	// immutable, so the pointer identifies the content).
	hosts atomic.Pointer[hostsCache]
}

type hostsCache struct {
	plan  *plan.Plan
	hosts string
	err   error
}

// hostsMarker stands for the cluster's /etc/hosts while a file is rendered
// and checked; the checked file then gets the real block spliced in. The
// block is large (one line per node) and the same for every node, so it is
// checked once per plan instead of once per file (see clusterHosts).
const hostsMarker = "@@racklift-cluster-hosts@@"

// File is one rendered file.
type File struct {
	// Name is the file name (nodeapi.FileIPXE, nodeapi.FileKickstart, ...).
	Name string
	// Data is the content.
	Data []byte
	// Secret is true when Data holds the root password hash.
	Secret bool
}

// newNoSelfTest parses the templates.
func newNoSelfTest(tmpls fs.FS, profs *profiles.Set) (*Renderer, error) {
	if profs == nil {
		return nil, errors.New("render: no profiles")
	}
	names, err := fs.Glob(tmpls, "*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("render: list templates: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("render: no *.tmpl templates")
	}
	root := template.New("racklift").Option("missingkey=error").Funcs(funcs())
	for _, n := range names {
		b, err := fs.ReadFile(tmpls, n)
		if err != nil {
			return nil, fmt.Errorf("render: read template %s: %w", n, err)
		}
		if _, err := root.New(path.Base(n)).Parse(string(b)); err != nil {
			return nil, fmt.Errorf("render: parse template: %w", err)
		}
	}
	r := &Renderer{tmpl: root, profs: profs}
	for _, n := range []string{tmplLocalBoot, tmplUnknownMAC, tmplHold} {
		if r.tmpl.Lookup(n) == nil {
			return nil, fmt.Errorf("render: template %s is missing", n)
		}
	}
	return r, nil
}

// New parses every *.tmpl file of tmpls once and checks that each profile's
// templates exist and render for a sample node, so a broken template or
// profile fails start-up instead of an install.
func New(tmpls fs.FS, profs *profiles.Set) (*Renderer, error) {
	r, err := newNoSelfTest(tmpls, profs)
	if err != nil {
		return nil, err
	}
	if err := r.selfTest(); err != nil {
		return nil, err
	}
	return r, nil
}

// selfTest renders every file of every profile for a sample node.
func (r *Renderer) selfTest() error {
	for _, name := range r.profs.Names() {
		prof, _ := r.profs.Get(name)
		for _, t := range []string{prof.Templates.IPXE, prof.Templates.Config, prof.Templates.MetaData, prof.Templates.VendorData, prof.Templates.FirstBoot} {
			if t != "" && r.tmpl.Lookup(t) == nil {
				return fmt.Errorf("render: profile %s: template %s does not exist", name, t)
			}
		}
	}
	p, n, err := samplePlan()
	if err != nil {
		return fmt.Errorf("render: self-test plan: %w", err)
	}
	env := Env{ServerURL: "http://192.0.2.1:8080", Token: "self-test", RootHash: "$6$selftest$0123456789abcdefghijklmnopqrstuv"}
	for _, name := range r.profs.Names() {
		m := *n
		m.Profile = name
		if _, err := r.Files(p, &m, env); err != nil {
			return fmt.Errorf("render: self-test of profile %s: %w", name, err)
		}
	}
	if _, err := r.localBoot(n); err != nil {
		return fmt.Errorf("render: self-test: %w", err)
	}
	if _, err := r.hold(n); err != nil {
		return fmt.Errorf("render: self-test: %w", err)
	}
	if _, err := r.unknownMAC("52:54:00:00:00:01"); err != nil {
		return fmt.Errorf("render: self-test: %w", err)
	}
	return nil
}

// samplePlan loads the embedded lab example for the self-test.
func samplePlan() (*plan.Plan, *plan.Node, error) {
	data, err := fs.ReadFile(plan.Examples(), "hyperconverged.yaml")
	if err != nil {
		return nil, nil, err
	}
	p, ds := plan.Load("hyperconverged.yaml", data, plan.Options{})
	if p == nil {
		return nil, nil, fmt.Errorf("example plan invalid: %v", ds)
	}
	return p, p.NodesWith(plan.RoleStorage)[0], nil
}

// Profile returns the node's profile.
func (r *Renderer) Profile(n *plan.Node) (*profiles.Profile, error) {
	prof, ok := r.profs.Get(n.Profile)
	if !ok {
		return nil, fmt.Errorf("node %s: profile %q: %w", n.Name, n.Profile, ErrNoProfile)
	}
	return prof, nil
}

// FileNames lists the files rendered for the node, in the order Files
// returns them: boot.ipxe, then ks.cfg, user-data, meta-data for kickstart
// profiles (user-data is the first-boot cloud-config), or user-data,
// meta-data, vendor-data for autoinstall profiles (the first boot is inside
// user-data), or nothing more for installer none.
func (r *Renderer) FileNames(n *plan.Node) ([]string, error) {
	prof, err := r.Profile(n)
	if err != nil {
		return nil, err
	}
	return fileNames(prof), nil
}

func fileNames(prof *profiles.Profile) []string {
	switch prof.Installer {
	case profiles.InstallerKickstart:
		return []string{nodeapi.FileIPXE, nodeapi.FileKickstart, nodeapi.FileUserData, nodeapi.FileMetaData}
	case profiles.InstallerAutoinstall:
		return []string{nodeapi.FileIPXE, nodeapi.FileUserData, nodeapi.FileMetaData, nodeapi.FileVendorData}
	}
	return []string{nodeapi.FileIPXE}
}

// File renders one file of the node. It returns an error wrapping
// fs.ErrNotExist when the node's profile has no file of that name.
func (r *Renderer) File(p *plan.Plan, n *plan.Node, name string, env Env) ([]byte, error) {
	prof, err := r.Profile(n)
	if err != nil {
		return nil, err
	}
	d, err := r.baseData(p, n, prof, env)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	f, err := r.file(p, d, name)
	if err != nil {
		return nil, err
	}
	return f.Data, nil
}

// Files renders every file of the node (see FileNames).
func (r *Renderer) Files(p *plan.Plan, n *plan.Node, env Env) ([]File, error) {
	prof, err := r.Profile(n)
	if err != nil {
		return nil, err
	}
	d, err := r.baseData(p, n, prof, env)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	names := fileNames(prof)
	out := make([]File, 0, len(names))
	for _, name := range names {
		f, err := r.file(p, d, name)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// KernelArgs returns the installer kernel command line of the node.
func (r *Renderer) KernelArgs(p *plan.Plan, n *plan.Node, env Env) (string, error) {
	prof, err := r.Profile(n)
	if err != nil {
		return "", err
	}
	d, err := r.baseData(p, n, prof, env)
	if err != nil {
		return "", fmt.Errorf("node %s: %w", n.Name, err)
	}
	return prof.KernelArgs(argsData(d))
}

// BootFiles names the node's media and the paths in it (kernel and
// initrds) whose download means "the kernel is loading".
func (r *Renderer) BootFiles(n *plan.Node) (media string, paths []string) {
	prof, ok := r.profs.Get(n.Profile)
	if !ok {
		return "", nil
	}
	return prof.Media, append([]string{prof.Kernel}, prof.Initrd...)
}

// fallbackScript is served if a fixed iPXE script cannot render (New
// checked both, so this only guards against the impossible).
var fallbackScript = []byte("#!ipxe\necho racklift: no boot script; trying the next boot device\nexit\n")

// LocalBoot returns the iPXE script for an installed node: it boots the
// first local disk (sanboot --drive 0x80 on BIOS, exit to the firmware's
// next boot entry on UEFI). This is the reinstall guard.
func (r *Renderer) LocalBoot(n *plan.Node) []byte {
	b, err := r.localBoot(n)
	if err != nil {
		return fallbackScript
	}
	return b
}

func (r *Renderer) localBoot(n *plan.Node) ([]byte, error) {
	return r.exec(tmplLocalBoot, struct{ Name, MAC string }{n.Name, n.MAC}, kindIPXE)
}

// Hold returns the iPXE script for a node whose install failed: it says so
// on the console and exits to the next boot device until the operator
// retries the node.
func (r *Renderer) Hold(n *plan.Node) []byte {
	b, err := r.hold(n)
	if err != nil {
		return fallbackScript
	}
	return b
}

func (r *Renderer) hold(n *plan.Node) ([]byte, error) {
	return r.exec(tmplHold, struct{ Name, MAC string }{n.Name, n.MAC}, kindIPXE)
}

// UnknownMAC returns the iPXE script for a MAC that is not in the plan: it
// says so on the console and exits to the next boot device. mac comes from
// the network, so anything that is not a MAC is shown as "unknown".
func (r *Renderer) UnknownMAC(mac string) []byte {
	b, err := r.unknownMAC(mac)
	if err != nil {
		return fallbackScript
	}
	return b
}

func (r *Renderer) unknownMAC(mac string) ([]byte, error) {
	m, err := net.ParseMAC(mac)
	shown := "unknown"
	if err == nil {
		shown = m.String()
	}
	return r.exec(tmplUnknownMAC, struct{ MAC string }{shown}, kindIPXE)
}

// file renders one named file from prepared node data.
func (r *Renderer) file(p *plan.Plan, d *nodeData, name string) (out File, err error) {
	prof := d.Profile
	var (
		tmpl string
		kind outputKind
	)
	secret := false
	ks := prof.Installer == profiles.InstallerKickstart
	ai := prof.Installer == profiles.InstallerAutoinstall
	switch {
	case name == nodeapi.FileIPXE:
		tmpl, kind = prof.Templates.IPXE, kindIPXE
	case name == nodeapi.FileKickstart && ks:
		tmpl, kind, secret = prof.Templates.Config, kindKickstart, d.RootHash != ""
	case name == nodeapi.FileUserData && ks:
		tmpl, kind = prof.Templates.FirstBoot, kindCloudConfig
	case name == nodeapi.FileUserData && ai:
		tmpl, kind, secret = prof.Templates.Config, kindAutoinstall, d.RootHash != ""
	case name == nodeapi.FileMetaData && (ks || ai):
		tmpl, kind = prof.Templates.MetaData, kindYAML
	case name == nodeapi.FileVendorData && ai:
		tmpl, kind = prof.Templates.VendorData, kindCloudConfig
	default:
		return File{}, fmt.Errorf("node %s: no file %q for profile %s: %w", d.Node.Name, name, prof.Name, fs.ErrNotExist)
	}
	// Work only the file needs: kernel args for iPXE, the cluster's hosts
	// and the first-boot body for cloud-configs.
	dd := *d
	switch {
	case name == nodeapi.FileIPXE:
		if dd.BootArgs, err = prof.KernelArgs(argsData(d)); err != nil {
			return File{}, fmt.Errorf("node %s: %w", d.Node.Name, err)
		}
	case name == nodeapi.FileUserData && (ks || ai):
		hosts, err := r.clusterHosts(p)
		if err != nil {
			return File{}, err
		}
		dd.Hosts = hostsMarker + "\n"
		defer func() {
			if out.Data != nil {
				out.Data = spliceHosts(out.Data, hosts)
			}
		}()
	}
	if name == nodeapi.FileUserData && ai {
		fb, err := r.exec(prof.Templates.FirstBoot, &dd, kindCloudConfig)
		if err != nil {
			return File{}, fmt.Errorf("node %s: first boot: %w", d.Node.Name, err)
		}
		dd.FirstBoot = strings.TrimPrefix(string(fb), "#cloud-config\n")
	}
	b, err := r.exec(tmpl, &dd, kind)
	if err != nil {
		return File{}, fmt.Errorf("node %s: %s: %w", d.Node.Name, name, err)
	}
	return File{Name: name, Data: b, Secret: secret}, nil
}

// exec runs one template and checks its output.
func (r *Renderer) exec(name string, data any, kind outputKind) ([]byte, error) {
	t := r.tmpl.Lookup(name)
	if t == nil {
		return nil, fmt.Errorf("template %s: %w", name, fs.ErrNotExist)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	b := buf.Bytes()
	if err := check(kind, b); err != nil {
		return nil, fmt.Errorf("template %s produced a bad file: %w", name, err)
	}
	return b, nil
}

// clusterHosts returns the cluster's /etc/hosts, built and checked once
// per plan: as the content of a YAML literal block it must read back
// unchanged, so splicing it into a checked file keeps that file valid.
func (r *Renderer) clusterHosts(p *plan.Plan) (string, error) {
	if c := r.hosts.Load(); c != nil && c.plan == p {
		return c.hosts, c.err
	}
	h := buildHosts(p)
	err := checkHostsBlock(h)
	r.hosts.Store(&hostsCache{plan: p, hosts: h, err: err})
	return h, err
}

func checkHostsBlock(h string) error {
	if strings.Contains(h, hostsMarker) || strings.Contains(h, "<no value>") || strings.Contains(h, "\t") {
		return errors.New("cluster hosts: unexpected text")
	}
	var doc struct{ H string }
	if err := yaml.Unmarshal([]byte("h: |\n"+indent(2, h)), &doc); err != nil || doc.H != h {
		return fmt.Errorf("cluster hosts do not survive as a YAML block: %v", err)
	}
	return nil
}

// spliceHosts replaces each line holding hostsMarker with hosts, every
// line indented like the marker.
func spliceHosts(b []byte, hosts string) []byte {
	marker := []byte(hostsMarker + "\n")
	n := bytes.Count(b, marker)
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n*(len(hosts)+16*strings.Count(hosts, "\n")))
	for {
		i := bytes.Index(b, marker)
		if i < 0 {
			return append(out, b...)
		}
		start := bytes.LastIndexByte(b[:i], '\n') + 1
		pad := b[start:i] // the marker's indentation
		out = append(out, b[:start]...)
		for line := range strings.Lines(hosts) {
			out = append(out, pad...)
			out = append(out, line...)
		}
		b = b[i+len(marker):]
	}
}

// buildHosts lists localhost, the VIPs with an FQDN, and every node's
// management (provisioning) address with its FQDN and short name.
func buildHosts(p *plan.Plan) string {
	var b strings.Builder
	b.Grow(64 * (len(p.Nodes) + len(p.VIPs) + 4))
	b.WriteString("127.0.0.1 localhost localhost.localdomain\n::1 localhost localhost.localdomain ip6-localhost ip6-loopback\n")
	b.WriteString("# cluster ")
	b.WriteString(p.Cluster.Name)
	b.WriteString(" (generated by racklift from the plan)\n")
	for _, v := range p.VIPs {
		if v.FQDN == "" || !plainRE.MatchString(v.FQDN) {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", v.Address, v.FQDN)
	}
	for _, n := range p.Nodes {
		a, ok := n.Provisioning()
		if !ok {
			continue
		}
		b.WriteString(a.Addr.String())
		b.WriteByte(' ')
		if n.FQDN != "" && n.FQDN != n.Name {
			b.WriteString(n.FQDN)
			b.WriteByte(' ')
		}
		b.WriteString(n.Name)
		b.WriteByte('\n')
	}
	return b.String()
}
