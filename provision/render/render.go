// Package render turns a validated plan into the files each server fetches
// to install itself: its iPXE script (or, on the Secure Boot chain, its
// GRUB config), its kickstart (RHEL 9), Ubuntu autoinstall user-data with
// NoCloud meta-data and vendor-data, or the deploy agent's instructions
// with the NoCloud seed of an image (user-data, meta-data,
// network-config), and the first-boot cloud-config of the installed
// system, which ends with the ready callback carrying the node's facts.
//
// Templates are parsed once by New and executed with missingkey=error on
// typed data; every output is checked (cloud-config header and YAML, iPXE
// header, kickstart sections, no "<no value>") before it is returned. The
// same Renderer serves `racklift plan render` and the HTTP boot server, so
// what the engineer reviewed is what the node gets.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// Fixed template names (not chosen by profiles), and named templates
// (define) the renderer executes itself.
const (
	tmplLocalBoot      = "local-boot.ipxe.tmpl"
	tmplUnknownMAC     = "unknown-mac.ipxe.tmpl"
	tmplHold           = "hold.ipxe.tmpl"
	tmplLocalBootGRUB  = "local-boot.grub.cfg.tmpl"
	tmplUnknownMACGRUB = "unknown-mac.grub.cfg.tmpl"
	tmplHoldGRUB       = "hold.grub.cfg.tmpl"
	tmplBootstrapGRUB  = "bootstrap.grub.cfg.tmpl"
	tmplNetplan        = "netplan"
	tmplReadyScript    = "ready-script"
)

// factsScriptName is the facts script's file in the templates FS
// (templates.FactsScriptName; the render package does not import it).
const factsScriptName = "racklift-facts.py"

// ErrNoProfile is returned for a node whose profile is not loaded.
var ErrNoProfile = errors.New("unknown OS profile")

// Renderer renders per-node files. It is safe for concurrent use.
type Renderer struct {
	tmpl  *template.Template
	profs *profiles.Set
	// facts is the facts script the first boot runs, factsSHA its SHA-256.
	facts    []byte
	factsSHA string
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
	// Secret is true when Data holds the root password hash. (Every file
	// but boot.ipxe and grub.cfg holds the node's token: serve them to the
	// node only.)
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
	facts, err := fs.ReadFile(tmpls, factsScriptName)
	if err != nil {
		return nil, fmt.Errorf("render: the facts script: %w", err)
	}
	sum := sha256.Sum256(facts)
	r := &Renderer{tmpl: root, profs: profs, facts: facts, factsSHA: hex.EncodeToString(sum[:])}
	for _, n := range []string{tmplLocalBoot, tmplUnknownMAC, tmplHold, tmplLocalBootGRUB, tmplUnknownMACGRUB, tmplHoldGRUB, tmplBootstrapGRUB, tmplNetplan, tmplReadyScript} {
		if r.tmpl.Lookup(n) == nil {
			return nil, fmt.Errorf("render: template %s is missing", n)
		}
	}
	return r, nil
}

// FactsScript returns the facts script the rendered first boots fetch
// (nodeapi.PathFactsScript) and check against its SHA-256: serve exactly
// these bytes.
func (r *Renderer) FactsScript() []byte { return bytes.Clone(r.facts) }

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
		for _, t := range prof.Templates.Names() {
			if r.tmpl.Lookup(t) == nil {
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
		m.BIOS.SecureBoot = true // grub.cfg too
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
	if _, err := r.localBootGRUB(n); err != nil {
		return fmt.Errorf("render: self-test: %w", err)
	}
	if _, err := r.holdGRUB(n); err != nil {
		return fmt.Errorf("render: self-test: %w", err)
	}
	if _, err := r.unknownMACGRUB("52:54:00:00:00:01"); err != nil {
		return fmt.Errorf("render: self-test: %w", err)
	}
	if _, err := r.GRUBBootstrap(env.ServerURL); err != nil {
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
// returns them: boot.ipxe, grub.cfg for nodes with bios.secure_boot (File
// renders it for any node), then ks.cfg, user-data, meta-data for
// kickstart profiles (user-data is the first-boot cloud-config), or
// user-data, meta-data, vendor-data for autoinstall profiles (the first
// boot is inside user-data), or instructions, user-data, meta-data,
// network-config for image profiles (the agent's instructions carry the
// other three as the NoCloud seed), or nothing more for installer none.
func (r *Renderer) FileNames(n *plan.Node) ([]string, error) {
	prof, err := r.Profile(n)
	if err != nil {
		return nil, err
	}
	return fileNames(prof, n), nil
}

func fileNames(prof *profiles.Profile, n *plan.Node) []string {
	out := []string{nodeapi.FileIPXE}
	if n.BIOS.SecureBoot {
		out = append(out, nodeapi.FileGRUB)
	}
	switch prof.Installer {
	case profiles.InstallerKickstart:
		out = append(out, nodeapi.FileKickstart, nodeapi.FileUserData, nodeapi.FileMetaData)
	case profiles.InstallerAutoinstall:
		out = append(out, nodeapi.FileUserData, nodeapi.FileMetaData, nodeapi.FileVendorData)
	case profiles.InstallerImage:
		out = append(out, nodeapi.FileInstructions, nodeapi.FileUserData, nodeapi.FileMetaData, nodeapi.FileNetworkConfig)
	}
	return out
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
	names := fileNames(prof, n)
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
// initrds) whose download means "the kernel is loading". Image nodes load
// no media (they boot nodeapi.PathAgentKernel): "", nil.
func (r *Renderer) BootFiles(n *plan.Node) (media string, paths []string) {
	prof, ok := r.profs.Get(n.Profile)
	if !ok || prof.Installer == profiles.InstallerImage {
		return "", nil
	}
	return prof.Media, append([]string{prof.Kernel}, prof.Initrd...)
}

// fallbackScript is served if a fixed iPXE script cannot render (New
// checked both, so this only guards against the impossible).
var fallbackScript = []byte("#!ipxe\necho racklift: no boot script; trying the next boot device\nexit 1\n")

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
	return r.exec(tmplUnknownMAC, struct{ MAC string }{shownMAC(mac)}, kindIPXE)
}

func shownMAC(mac string) string {
	if m, err := net.ParseMAC(mac); err == nil {
		return m.String()
	}
	return "unknown"
}

// fallbackGRUB is served if a fixed GRUB config cannot render.
var fallbackGRUB = []byte("# racklift\necho 'racklift: no boot config; trying the next boot device'\nexit 1\n")

// LocalBootGRUB is LocalBoot for the Secure Boot chain: the GRUB config
// of an installed node leaves GRUB, so the firmware boots its next boot
// entry, the installed system.
func (r *Renderer) LocalBootGRUB(n *plan.Node) []byte {
	b, err := r.localBootGRUB(n)
	if err != nil {
		return fallbackGRUB
	}
	return b
}

func (r *Renderer) localBootGRUB(n *plan.Node) ([]byte, error) {
	return r.exec(tmplLocalBootGRUB, struct{ Name, MAC string }{n.Name, n.MAC}, kindGRUB)
}

// HoldGRUB is Hold for the Secure Boot chain.
func (r *Renderer) HoldGRUB(n *plan.Node) []byte {
	b, err := r.holdGRUB(n)
	if err != nil {
		return fallbackGRUB
	}
	return b
}

func (r *Renderer) holdGRUB(n *plan.Node) ([]byte, error) {
	return r.exec(tmplHoldGRUB, struct{ Name, MAC string }{n.Name, n.MAC}, kindGRUB)
}

// UnknownMACGRUB is UnknownMAC for the Secure Boot chain.
func (r *Renderer) UnknownMACGRUB(mac string) []byte {
	b, err := r.unknownMACGRUB(mac)
	if err != nil {
		return fallbackGRUB
	}
	return b
}

func (r *Renderer) unknownMACGRUB(mac string) ([]byte, error) {
	return r.exec(tmplUnknownMACGRUB, struct{ MAC string }{shownMAC(mac)}, kindGRUB)
}

// GRUBBootstrap returns the GRUB config the signed GRUB loads first (the
// same for every machine; serve it over TFTP where the signed GRUB looks
// for its grub.cfg): it loads MAC/grub.cfg by TFTP from serverURL's host,
// for the MAC GRUB booted from (${net_default_mac}).
func (r *Renderer) GRUBBootstrap(serverURL string) ([]byte, error) {
	if err := CheckServerURL(serverURL); err != nil {
		return nil, err
	}
	cfg, err := grubPath(strings.TrimRight(serverURL, "/")+"/"+nodeapi.FileGRUB, "${net_default_mac}")
	if err != nil {
		return nil, err
	}
	return r.exec(tmplBootstrapGRUB, struct{ Server, Config string }{strings.TrimRight(serverURL, "/"), cfg}, kindGRUB)
}

// grubPathRE is what a URL path may hold in a GRUB file name (GRUB
// expands $ and splits on white space and ; | & < >).
var grubPathRE = regexp.MustCompile(`^/[A-Za-z0-9._~/:+,=@-]*$`)

// grubPath turns racklift's http://HOST[:PORT]/PATH into the same file
// over TFTP from HOST, under the node's MAC: (tftp,HOST)/MAC/PATH.
// Debian's signed netboot GRUB has no HTTP (it loads no modules under
// Secure Boot, and http is not built in), only the TFTP it came by, and
// racklift's TFTP server serves MAC/grub.cfg (the node's config, made
// per request), MAC/agent/... and MAC/media/NAME/... (the MAC puts the
// transfer in the node's timeline). mac may be ${net_default_mac}, which
// GRUB expands.
func grubPath(u, mac string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "http" || pu.Host == "" || pu.User != nil || pu.RawQuery != "" || pu.Fragment != "" {
		return "", fmt.Errorf("%q: GRUB can only load plain http://HOST[:PORT]/PATH URLs", u)
	}
	p := pu.EscapedPath()
	if !grubPathRE.MatchString(p) {
		return "", fmt.Errorf("%q: path has characters GRUB would interpret", u)
	}
	if mac != "${net_default_mac}" && !grubPathRE.MatchString("/"+mac) {
		return "", fmt.Errorf("MAC %q has characters GRUB would interpret", mac)
	}
	host := pu.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "(tftp," + host + ")/" + mac + p, nil
}

// grubWordRE is a word GRUB reads as itself without quotes.
var grubWordRE = regexp.MustCompile(`^[A-Za-z0-9._,:/=+@%~-]+$`)

// grubArgs quotes a kernel command line for GRUB's linux command: words
// with characters GRUB would interpret (; $ quotes, ...) in single quotes.
func grubArgs(args string) (string, error) {
	words := strings.Fields(args)
	for i, w := range words {
		switch {
		case grubWordRE.MatchString(w):
		case strings.ContainsAny(w, "'\\\n"):
			return "", fmt.Errorf("kernel argument %q cannot be quoted for GRUB", w)
		default:
			words[i] = "'" + w + "'"
		}
	}
	return strings.Join(words, " "), nil
}

// grubBoot converts the installer's kernel, initrds and arguments.
func grubBoot(d *nodeData) (grubData, error) {
	var g grubData
	var err error
	if g.Kernel, err = grubPath(d.URL.Kernel, d.Node.MAC); err != nil {
		return g, fmt.Errorf("kernel: %w", err)
	}
	for _, i := range d.URL.Initrds {
		p, err := grubPath(i.URL, d.Node.MAC)
		if err != nil {
			return g, fmt.Errorf("initrd: %w", err)
		}
		g.Initrds = append(g.Initrds, p)
	}
	if g.Args, err = grubArgs(d.BootArgs); err != nil {
		return g, err
	}
	return g, nil
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
	img := prof.Installer == profiles.InstallerImage
	switch {
	case name == nodeapi.FileIPXE:
		tmpl, kind = prof.Templates.IPXE, kindIPXE
	case name == nodeapi.FileGRUB:
		tmpl, kind = prof.Templates.GRUB, kindGRUB
	case name == nodeapi.FileKickstart && ks:
		tmpl, kind, secret = prof.Templates.Config, kindKickstart, d.RootHash != ""
	case name == nodeapi.FileUserData && ks:
		tmpl, kind = prof.Templates.FirstBoot, kindCloudConfig
	case name == nodeapi.FileUserData && img:
		tmpl, kind, secret = prof.Templates.FirstBoot, kindCloudConfig, d.RootHash != ""
	case name == nodeapi.FileUserData && ai:
		tmpl, kind, secret = prof.Templates.Config, kindAutoinstall, d.RootHash != ""
	case name == nodeapi.FileMetaData && (ks || ai || img):
		tmpl, kind = prof.Templates.MetaData, kindYAML
	case name == nodeapi.FileVendorData && ai:
		tmpl, kind = prof.Templates.VendorData, kindCloudConfig
	case name == nodeapi.FileNetworkConfig && img:
		tmpl, kind = prof.Templates.NetworkConfig, kindNetworkConfig
	case name == nodeapi.FileInstructions && img:
		return r.instructions(p, d)
	default:
		return File{}, fmt.Errorf("node %s: no file %q for profile %s: %w", d.Node.Name, name, prof.Name, fs.ErrNotExist)
	}
	// Work only the file needs: kernel args for the boot scripts, the
	// cluster's hosts and the first-boot body for cloud-configs.
	dd := *d
	switch {
	case name == nodeapi.FileIPXE || name == nodeapi.FileGRUB:
		if dd.BootArgs, err = prof.KernelArgs(argsData(d)); err != nil {
			return File{}, fmt.Errorf("node %s: %w", d.Node.Name, err)
		}
		if name == nodeapi.FileGRUB {
			if dd.GRUB, err = grubBoot(&dd); err != nil {
				return File{}, fmt.Errorf("node %s: grub.cfg: %w", d.Node.Name, err)
			}
		}
	case name == nodeapi.FileUserData && (ks || ai || img):
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
		rs, err := r.execText(tmplReadyScript, &dd)
		if err != nil {
			return File{}, fmt.Errorf("node %s: ready script: %w", d.Node.Name, err)
		}
		dd.ReadyScript = rs
	}
	if name == nodeapi.FileUserData && ai {
		fb, err := r.exec(prof.Templates.FirstBoot, &dd, kindCloudConfig)
		if err != nil {
			return File{}, fmt.Errorf("node %s: first boot: %w", d.Node.Name, err)
		}
		dd.FirstBoot = strings.TrimPrefix(string(fb), "#cloud-config\n")
		if dd.NetworkConfig, err = r.execText(tmplNetplan, &dd); err != nil {
			return File{}, fmt.Errorf("node %s: network: %w", d.Node.Name, err)
		}
	}
	b, err := r.exec(tmpl, &dd, kind)
	if err != nil {
		return File{}, fmt.Errorf("node %s: %s: %w", d.Node.Name, name, err)
	}
	return File{Name: name, Data: b, Secret: secret}, nil
}

// instructions renders the deploy agent's nodeapi.Instructions, with the
// node's seed (user-data, meta-data, network-config) inside.
func (r *Renderer) instructions(p *plan.Plan, d *nodeData) (File, error) {
	seed := map[string]string{}
	secret := false
	for _, name := range []string{nodeapi.FileUserData, nodeapi.FileMetaData, nodeapi.FileNetworkConfig} {
		f, err := r.file(p, d, name)
		if err != nil {
			return File{}, err
		}
		seed[name] = string(f.Data)
		secret = secret || f.Secret
	}
	in := nodeapi.Instructions{
		Node:   d.Node.Name,
		MAC:    d.Node.MAC,
		Token:  d.Token,
		Server: d.URL.Server,
		Image: nodeapi.ImageRef{
			Name:           d.Profile.Image,
			ManifestURL:    nodeapi.ImageManifestURL(d.URL.Server, d.Profile.Image),
			ManifestSHA256: d.ImageEnv.ManifestSHA256,
			BlobURLs:       d.ImageEnv.BlobURLs,
		},
		OSDisk: diskMatch(d.Node.OSDisk),
		Seed: nodeapi.Seed{
			UserData:      seed[nodeapi.FileUserData],
			MetaData:      seed[nodeapi.FileMetaData],
			NetworkConfig: seed[nodeapi.FileNetworkConfig],
		},
		UEFI:   d.Node.BIOS.UEFI(),
		Reboot: !d.ImageEnv.NoReboot,
	}
	if len(in.Image.BlobURLs) == 0 {
		in.Image.BlobURLs = []string{d.URL.Server}
	}
	for _, o := range d.Node.OSDs {
		in.OSDs = append(in.OSDs, diskMatch(o))
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return File{}, fmt.Errorf("node %s: instructions: %w", d.Node.Name, err)
	}
	b = append(b, '\n')
	if err := check(kindInstructions, b); err != nil {
		return File{}, fmt.Errorf("node %s: instructions: %w", d.Node.Name, err)
	}
	return File{Name: nodeapi.FileInstructions, Data: b, Secret: secret}, nil
}

// diskMatch is how the agent finds a plan disk.
func diskMatch(d plan.Disk) nodeapi.DiskMatch {
	m := nodeapi.DiskMatch{Path: d.Path, ByID: d.ByID, Serial: d.Serial, Wipe: d.Wipe}
	m.MinBytes, m.MaxBytes = d.SizeRange()
	return m
}

// execText runs a named template that is part of another file (checked
// with that file).
func (r *Renderer) execText(name string, data any) (string, error) {
	t := r.tmpl.Lookup(name)
	if t == nil {
		return "", fmt.Errorf("template %s: %w", name, fs.ErrNotExist)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return buf.String(), nil
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
