// Package profiles holds the OS profiles racklift can install: where the
// kernel and initrd live on the OS media (or, for installer kind image,
// which imported image racklift's deploy agent writes), the kernel
// arguments, the package repository path, and which templates render the
// node's install config.
// The built-in profiles are embedded; --profiles-dir adds or overrides
// profiles by name with files of the same format.
package profiles

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var builtin embed.FS

// Builtin returns the embedded profile files.
func Builtin() fs.FS { return builtin }

// Installer kinds.
const (
	InstallerKickstart   = "kickstart"
	InstallerAutoinstall = "autoinstall"
	// InstallerNone boots the kernel and initrd with no install config (a
	// rescue or test image).
	InstallerNone = "none"
	// InstallerImage boots racklift's deploy agent, which writes an
	// imported OS image (Profile.Image) onto the OS disk and seeds its
	// cloud-init; the profile names no kernel or initrd.
	InstallerImage = "image"
)

// DefaultConsole is the console part of the kernel command line when a
// profile does not set console: (VGA plus the first serial port, which is
// what BMC serial-over-LAN shows).
const DefaultConsole = "console=tty0 console=ttyS0,115200n8"

// Profile describes one installable OS.
type Profile struct {
	// Name is how plans refer to the profile, e.g. rocky9.
	Name string `yaml:"name"`
	// Description is shown to people.
	Description string `yaml:"description"`
	// Installer is kickstart, autoinstall, image or none.
	Installer string `yaml:"installer"`
	// Media is the --media name whose files are served for this profile
	// (default: the profile name). Not used by image profiles.
	Media string `yaml:"media"`
	// Image is the name of the imported OS image (`racklift image import
	// NAME FILE`) an image profile deploys (default: the profile name).
	// Only for installer image.
	Image string `yaml:"image"`
	// Kernel and Initrd are paths inside the media. Image profiles set
	// neither: they boot racklift's deploy agent
	// (nodeapi.AgentKernelURL, nodeapi.AgentInitrdURL).
	Kernel string   `yaml:"kernel"`
	Initrd []string `yaml:"initrd"`
	// Args is a text/template for the kernel command line; its variables
	// are the fields of ArgsData ({{.ConfigURL}}, {{.Console}}, ...). The
	// command line is public (anyone can fetch a boot script): it never
	// holds a secret.
	Args string `yaml:"args"`
	// Console is the console part of the command line, {{.Console}} in
	// Args (default DefaultConsole).
	Console string `yaml:"console"`
	// Repo is the path of the package repository inside the media ("" =
	// media root); {{.RepoURL}} in Args and the kickstart url command.
	Repo string `yaml:"repo"`
	// Stage2 is the path of the installer runtime inside the media ("" =
	// media root); {{.Stage2URL}} in Args.
	Stage2 string `yaml:"stage2"`
	// Packages are installed on every node of this profile in addition to
	// the plan's packages (e.g. cloud-init, which runs the first boot).
	Packages []string `yaml:"packages"`
	// Templates names the templates (files of the templates package) that
	// render each file; empty names get the installer kind's default.
	Templates Templates `yaml:"templates"`

	args *template.Template
}

// Templates names the template of each rendered file. A name must be a
// file of the templates package (racklift checks this at start-up).
type Templates struct {
	// IPXE renders boot.ipxe (default boot.ipxe.tmpl).
	IPXE string `yaml:"ipxe"`
	// Config renders the installer config: ks.cfg for kickstart (default
	// kickstart.ks.tmpl), user-data for autoinstall (default
	// autoinstall.user-data.tmpl).
	Config string `yaml:"config"`
	// MetaData renders the NoCloud meta-data (default meta-data.tmpl).
	MetaData string `yaml:"meta_data"`
	// VendorData renders the NoCloud vendor-data of autoinstall profiles
	// (default vendor-data.tmpl).
	VendorData string `yaml:"vendor_data"`
	// FirstBoot renders the cloud-config of the installed system's first
	// boot (default first-boot.cloud-config.tmpl). Kickstart and image
	// nodes get it as their user-data; autoinstall embeds it in
	// autoinstall.user-data.
	FirstBoot string `yaml:"first_boot"`
	// GRUB renders grub.cfg, the Secure Boot chain's counterpart of
	// boot.ipxe (default grub.cfg.tmpl).
	GRUB string `yaml:"grub"`
	// NetworkConfig renders the NoCloud network-config (version 2) of
	// image profiles (default network-config.tmpl).
	NetworkConfig string `yaml:"network_config"`
}

// Names lists the template names that are set.
func (t Templates) Names() []string {
	var out []string
	for _, n := range []string{t.IPXE, t.GRUB, t.Config, t.MetaData, t.VendorData, t.FirstBoot, t.NetworkConfig} {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// ArgsData holds the variables a profile's kernel arguments template may
// use. Every URL is absolute and has no trailing slash unless noted. There
// is deliberately no token and no secret here: the kernel command line is
// in the boot script (boot.ipxe, grub.cfg), which anyone on the LAN can
// fetch for any MAC, and is readable on the booted system by every user
// (/proc/cmdline). Tokens travel only in files served to the node itself.
type ArgsData struct {
	// ServerURL is racklift's HTTP base URL, e.g. http://10.99.0.1:8080.
	ServerURL string
	// MediaURL is the directory of the profile's OS media files,
	// {ServerURL}/media/{media}.
	MediaURL string
	// RepoURL is the package repository: MediaURL plus the profile's repo path.
	RepoURL string
	// Stage2URL is the installer runtime: MediaURL plus the profile's stage2 path.
	Stage2URL string
	// ISOURL is the whole ISO image, {ServerURL}/media/{media}.iso (for
	// casper's url=).
	ISOURL string
	// ConfigURL is the node's install config: {ServerURL}/ks/{mac} for
	// kickstart, {ServerURL}/ci/{mac}/user-data for autoinstall, the
	// agent's {ServerURL}/agent/{mac}/instructions for image.
	ConfigURL string
	// ConfigDirURL is the node's NoCloud seed directory, with a trailing
	// slash: {ServerURL}/ci/{mac}/.
	ConfigDirURL string
	// Node is the node name, Hostname its short host name, FQDN its full name.
	Node, Hostname, FQDN string
	// MAC is the PXE MAC, lower-case with colons.
	MAC string
	// BootDevice is the name of the interface on the provisioning network
	// (from the plan); IfNames binds it and every other NIC with a known
	// MAC to its name ("ifname=eno1:b8:ca:3a:10:00:01 ...", dracut syntax).
	BootDevice, IfNames string
	// BootIP, Netmask and Gateway are the node's provisioning address, its
	// dotted mask, and the provisioning network's gateway ("" if none).
	BootIP, Netmask, Gateway string
	// DNS is the first resolver of the provisioning network ("" if none).
	DNS string
	// Console is the profile's console settings.
	Console string
}

// SampleArgsData returns ArgsData filled with example values, for checking
// templates and for documentation.
func SampleArgsData() ArgsData {
	return ArgsData{
		ServerURL:    "http://10.99.0.1:8080",
		MediaURL:     "http://10.99.0.1:8080/media/rocky9",
		RepoURL:      "http://10.99.0.1:8080/media/rocky9",
		Stage2URL:    "http://10.99.0.1:8080/media/rocky9",
		ISOURL:       "http://10.99.0.1:8080/media/rocky9.iso",
		ConfigURL:    "http://10.99.0.1:8080/ks/52:54:00:99:00:01",
		ConfigDirURL: "http://10.99.0.1:8080/ci/52:54:00:99:00:01/",
		Node:         "lab-01", Hostname: "lab-01", FQDN: "lab-01.lab.racklift.test",
		MAC:        "52:54:00:99:00:01",
		BootDevice: "eno1", IfNames: "ifname=eno1:52:54:00:99:00:01",
		BootIP: "10.99.0.101", Netmask: "255.255.255.0", Gateway: "10.99.0.1", DNS: "10.99.0.1",
		Console: DefaultConsole,
	}
}

// KernelArgs renders the profile's kernel command line. Runs of white
// space (the YAML folding) become single spaces.
func (p *Profile) KernelArgs(d ArgsData) (string, error) {
	var b strings.Builder
	if err := p.args.Execute(&b, d); err != nil {
		return "", fmt.Errorf("profile %s: kernel args: %w", p.Name, err)
	}
	return strings.Join(strings.Fields(b.String()), " "), nil
}

// Set is a loaded collection of profiles.
type Set struct {
	byName map[string]*Profile
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// Load reads every *.yaml file of each fs in order; a later profile with the
// same name replaces an earlier one (so --profiles-dir overrides built-ins).
func Load(fsyss ...fs.FS) (*Set, error) {
	s := &Set{byName: map[string]*Profile{}}
	for _, fsys := range fsyss {
		if fsys == nil {
			continue
		}
		names, err := fs.Glob(fsys, "*.yaml")
		if err != nil {
			return nil, fmt.Errorf("list profiles: %w", err)
		}
		for _, n := range names {
			data, err := fs.ReadFile(fsys, n)
			if err != nil {
				return nil, fmt.Errorf("read profile %s: %w", n, err)
			}
			p, err := parse(n, data)
			if err != nil {
				return nil, err
			}
			s.byName[p.Name] = p
		}
	}
	return s, nil
}

// relPathRE is what a path inside the media may look like.
var relPathRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$`)

// tmplNameRE is what a template file name may look like.
var tmplNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*\.tmpl$`)

func parse(file string, data []byte) (*Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	if p.Name == "" {
		p.Name = strings.TrimSuffix(path.Base(file), ".yaml")
	}
	if !nameRE.MatchString(p.Name) {
		return nil, fmt.Errorf("profile %s: name %q: use lower-case letters, digits, '.' and '-'", file, p.Name)
	}
	if err := p.withDefaults(); err != nil {
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	return &p, nil
}

// withDefaults fills the defaults documented on the fields and parses Args.
func (p *Profile) withDefaults() error {
	if p.Media == "" {
		p.Media = p.Name
	}
	if p.Console == "" {
		p.Console = DefaultConsole
	}
	if p.Installer == InstallerImage && p.Image == "" {
		p.Image = p.Name
	}
	t := &p.Templates
	if t.IPXE == "" {
		t.IPXE = "boot.ipxe.tmpl"
	}
	if t.GRUB == "" {
		t.GRUB = "grub.cfg.tmpl"
	}
	switch p.Installer {
	case InstallerKickstart:
		if t.Config == "" {
			t.Config = "kickstart.ks.tmpl"
		}
	case InstallerAutoinstall:
		if t.Config == "" {
			t.Config = "autoinstall.user-data.tmpl"
		}
		if t.VendorData == "" {
			t.VendorData = "vendor-data.tmpl"
		}
	case InstallerImage:
		if t.NetworkConfig == "" {
			t.NetworkConfig = "network-config.tmpl"
		}
	}
	if p.Installer != InstallerNone {
		if t.MetaData == "" {
			t.MetaData = "meta-data.tmpl"
		}
		if t.FirstBoot == "" {
			t.FirstBoot = "first-boot.cloud-config.tmpl"
		}
	}
	args, err := template.New(p.Name + ".args").Option("missingkey=error").Parse(p.Args)
	if err != nil {
		return fmt.Errorf("args: %w", err)
	}
	p.args = args
	return nil
}

// check rejects profiles racklift cannot use.
func (p *Profile) check() error {
	switch p.Installer {
	case InstallerKickstart, InstallerAutoinstall, InstallerNone, InstallerImage:
	default:
		return fmt.Errorf("installer %q: want kickstart, autoinstall, image or none", p.Installer)
	}
	if !nameRE.MatchString(p.Media) {
		return fmt.Errorf("media %q: use lower-case letters, digits, '.' and '-'", p.Media)
	}
	if p.Installer == InstallerImage {
		if p.Kernel != "" || len(p.Initrd) > 0 || p.Repo != "" || p.Stage2 != "" {
			return fmt.Errorf("installer image boots racklift's deploy agent: remove kernel, initrd, repo and stage2")
		}
		if !nameRE.MatchString(p.Image) {
			return fmt.Errorf("image %q: use lower-case letters, digits, '.' and '-' (the name given to racklift image import)", p.Image)
		}
		if p.Templates.Config != "" || p.Templates.VendorData != "" {
			return fmt.Errorf("installer image has no templates.config or templates.vendor_data (racklift writes the agent's instructions itself)")
		}
	} else {
		if p.Image != "" {
			return fmt.Errorf("image: is only for installer image")
		}
		if p.Kernel == "" {
			return fmt.Errorf("kernel is required")
		}
	}
	for _, f := range append([]string{p.Kernel}, p.Initrd...) {
		if f == "" && p.Installer == InstallerImage {
			continue
		}
		if !relPathRE.MatchString(f) || strings.Contains("/"+f+"/", "/../") {
			return fmt.Errorf("%q: kernel and initrd must be relative paths inside the media (letters, digits, . _ + - and /)", f)
		}
	}
	for _, f := range []string{p.Repo, p.Stage2} {
		if f != "" && (!relPathRE.MatchString(f) || strings.Contains("/"+f+"/", "/../")) {
			return fmt.Errorf("repo/stage2 %q: want a relative path inside the media", f)
		}
	}
	for _, pkg := range p.Packages {
		if pkg == "" || strings.ContainsAny(pkg, " \t\n'\"") {
			return fmt.Errorf("package %q: want a package name", pkg)
		}
	}
	for _, n := range p.Templates.Names() {
		if n != "" && !tmplNameRE.MatchString(n) {
			return fmt.Errorf("template %q: want a file name like kickstart.ks.tmpl", n)
		}
	}
	if p.Installer != InstallerNone && p.Installer != InstallerImage && p.Templates.Config == "" {
		return fmt.Errorf("templates.config is required for installer %s", p.Installer)
	}
	if strings.ContainsAny(p.Console, "\n\r") {
		return fmt.Errorf("console must be one line")
	}
	args, err := p.KernelArgs(SampleArgsData())
	if err != nil {
		return fmt.Errorf("args: %w", err)
	}
	if strings.Contains(args, "<no value>") {
		return fmt.Errorf("args: template produced <no value>")
	}
	return nil
}

// Has reports whether a profile exists.
func (s *Set) Has(name string) bool { _, ok := s.byName[name]; return ok }

// Get returns a profile by name.
func (s *Set) Get(name string) (*Profile, bool) { p, ok := s.byName[name]; return p, ok }

// Names lists the profile names in order.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
