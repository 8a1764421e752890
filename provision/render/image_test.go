package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/templates"
)

func fileMap(t *testing.T, files []File) map[string]File {
	t.Helper()
	m := map[string]File{}
	for _, f := range files {
		m[f.Name] = f
	}
	return m
}

func TestImageFileNames(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "image-lab")
	for name, want := range map[string][]string{
		"img-01": {"boot.ipxe", "instructions", "user-data", "meta-data", "network-config"},
		"img-02": {"boot.ipxe", "grub.cfg", "instructions", "user-data", "meta-data", "network-config"},
	} {
		n, _ := p.NodeByName(name)
		got, err := r.FileNames(n)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", name, got, err, want)
		}
		files, err := r.Files(p, n, testEnv(n))
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			if f.Name != want[i] {
				t.Errorf("%s: file %d is %s, want %s", name, i, f.Name, want[i])
			}
		}
	}
	// A kickstart node with secure_boot gets grub.cfg too; File renders it
	// for any node.
	hp := loadExample(t, "hyperconverged")
	c, _ := hp.NodeByName("hci-controller-01")
	sb := *c
	sb.BIOS.SecureBoot = true
	if got, _ := r.FileNames(&sb); !slices.Equal(got, []string{"boot.ipxe", "grub.cfg", "ks.cfg", "user-data", "meta-data"}) {
		t.Errorf("secure boot kickstart: %v", got)
	}
	if _, err := r.File(hp, c, nodeapi.FileGRUB, testEnv(c)); err != nil {
		t.Errorf("grub.cfg of a non-Secure Boot node: %v", err)
	}
	if _, err := r.File(hp, c, nodeapi.FileInstructions, testEnv(c)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("instructions of a kickstart node: %v", err)
	}
	if m, paths := r.BootFiles(c); m != "rocky9" || len(paths) != 2 {
		t.Errorf("BootFiles kickstart: %s %v", m, paths)
	}
	n, _ := p.NodeByName("img-01")
	if m, paths := r.BootFiles(n); m != "" || paths != nil {
		t.Errorf("BootFiles image: %q %v", m, paths)
	}
}

func TestInstructions(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "image-lab")
	sum := strings.Repeat("ab", 32)
	for _, name := range []string{"img-01", "img-02", "img-03"} {
		n, _ := p.NodeByName(name)
		env := testEnv(n)
		env.Image = ImageEnv{ManifestSHA256: sum, BlobURLs: []string{"http://10.99.0.1:8080", "http://10.99.0.7:8080"}}
		files, err := r.Files(p, n, env)
		if err != nil {
			t.Fatal(err)
		}
		fm := fileMap(t, files)
		var in nodeapi.Instructions
		dec := json.NewDecoder(bytes.NewReader(fm[nodeapi.FileInstructions].Data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			t.Fatal(err)
		}
		if in.Node != name || in.MAC != n.MAC || in.Token != env.Token || in.Server != "http://10.99.0.1:8080" || !in.Reboot {
			t.Errorf("%s: %+v", name, in)
		}
		if in.Image.Name != "debian12" || in.Image.ManifestURL != "http://10.99.0.1:8080/images/debian12/manifest.json" ||
			in.Image.ManifestSHA256 != sum || !slices.Equal(in.Image.BlobURLs, env.Image.BlobURLs) {
			t.Errorf("%s image: %+v", name, in.Image)
		}
		lo, hi := n.OSDisk.SizeRange()
		if in.OSDisk != (nodeapi.DiskMatch{Path: "/dev/vda", MinBytes: lo, MaxBytes: hi}) || lo == 0 {
			t.Errorf("%s OS disk: %+v", name, in.OSDisk)
		}
		if len(in.OSDs) != 2 || in.OSDs[0].Path != "/dev/vdb" || in.OSDs[0].Wipe || in.OSDs[1].Path != "/dev/vdc" || !in.OSDs[1].Wipe || in.OSDs[1].MinBytes == 0 {
			t.Errorf("%s OSDs: %+v", name, in.OSDs)
		}
		if in.UEFI != n.BIOS.UEFI() {
			t.Errorf("%s: UEFI %v, boot mode %s", name, in.UEFI, n.BIOS.BootMode)
		}
		// The seed is exactly the node's three seed files.
		for file, got := range map[string]string{nodeapi.FileUserData: in.Seed.UserData, nodeapi.FileMetaData: in.Seed.MetaData, nodeapi.FileNetworkConfig: in.Seed.NetworkConfig} {
			if got != string(fm[file].Data) {
				t.Errorf("%s: seed %s differs from the rendered file", name, file)
			}
		}
		if !fm[nodeapi.FileInstructions].Secret || !fm[nodeapi.FileUserData].Secret || fm[nodeapi.FileNetworkConfig].Secret {
			t.Errorf("%s: Secret flags wrong", name)
		}
	}
	n, _ := p.NodeByName("img-01")
	if n.BIOS.UEFI() {
		t.Fatal("img-01 should boot legacy")
	}
	// Defaults: no SHA known, racklift serves the blobs; NoReboot for tests.
	env := testEnv(n)
	env.Image.NoReboot = true
	b, err := r.File(p, n, nodeapi.FileInstructions, env)
	if err != nil {
		t.Fatal(err)
	}
	var in nodeapi.Instructions
	if err := json.Unmarshal(b, &in); err != nil || in.Reboot || in.Image.ManifestSHA256 != "" || !slices.Equal(in.Image.BlobURLs, []string{"http://10.99.0.1:8080"}) {
		t.Errorf("defaults: %+v %v", in, err)
	}
	// Bad image values are refused.
	for _, ie := range []ImageEnv{{ManifestSHA256: "ABC"}, {ManifestSHA256: strings.Repeat("A", 64)}, {BlobURLs: []string{"ftp://x"}}, {BlobURLs: []string{"http://a b"}}} {
		env := testEnv(n)
		env.Image = ie
		if _, err := r.File(p, n, nodeapi.FileInstructions, env); err == nil {
			t.Errorf("image env %+v accepted", ie)
		}
	}
}

// netConfig is the part of a network config version 2 the tests read.
type netConfig struct {
	Version   int `yaml:"version"`
	Ethernets map[string]struct {
		Match     map[string]string `yaml:"match"`
		SetName   string            `yaml:"set-name"`
		MTU       int               `yaml:"mtu"`
		Addresses []string          `yaml:"addresses"`
		Routes    []map[string]string
		Gateway4  string `yaml:"gateway4"`
		DNS       struct {
			Addresses []string `yaml:"addresses"`
			Search    []string `yaml:"search"`
		} `yaml:"nameservers"`
	} `yaml:"ethernets"`
	Bonds map[string]struct {
		Interfaces []string       `yaml:"interfaces"`
		MTU        int            `yaml:"mtu"`
		Parameters map[string]any `yaml:"parameters"`
	} `yaml:"bonds"`
	VLANs map[string]struct {
		ID        int      `yaml:"id"`
		Link      string   `yaml:"link"`
		MTU       int      `yaml:"mtu"`
		Addresses []string `yaml:"addresses"`
	} `yaml:"vlans"`
}

// TestNetworkConfigFromPlan checks every image node's network-config
// against plan.Node.Links and its addresses.
func TestNetworkConfigFromPlan(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "image-lab")
	for _, n := range p.Nodes {
		b, err := r.File(p, n, nodeapi.FileNetworkConfig, testEnv(n))
		if err != nil {
			t.Fatal(err)
		}
		var nc netConfig
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(false)
		if err := dec.Decode(&nc); err != nil {
			t.Fatal(err)
		}
		if nc.Version != 2 {
			t.Errorf("%s: version %d", n.Name, nc.Version)
		}
		for _, l := range n.Links() {
			switch l.Kind {
			case plan.LinkNIC:
				e, ok := nc.Ethernets[l.Name]
				if !ok || e.MTU != l.MTU {
					t.Errorf("%s %s: %+v, want MTU %d", n.Name, l.Name, e, l.MTU)
				}
				if l.MAC != "" && (e.Match["macaddress"] != l.MAC || e.SetName != l.Name) {
					t.Errorf("%s %s: not matched by MAC %s: %+v", n.Name, l.Name, l.MAC, e)
				}
				if l.MAC == "" && (e.Match != nil || e.SetName != "") {
					t.Errorf("%s %s: matched without a MAC: %+v", n.Name, l.Name, e)
				}
			case plan.LinkBond:
				bd := nc.Bonds[l.Name]
				if !slices.Equal(bd.Interfaces, l.Members) || bd.MTU != l.MTU || bd.Parameters["mode"] != l.Mode {
					t.Errorf("%s %s: %+v, want %+v", n.Name, l.Name, bd, l)
				}
			case plan.LinkVLAN:
				v := nc.VLANs[l.Name]
				if v.ID != l.VLAN || v.Link != l.Parent || v.MTU != l.MTU {
					t.Errorf("%s %s: %+v, want %+v", n.Name, l.Name, v, l)
				}
			}
		}
		for _, a := range n.Addresses {
			var addrs []string
			if a.Network.VLAN != 0 {
				addrs = nc.VLANs[a.Device].Addresses
			} else {
				addrs = nc.Ethernets[a.Device].Addresses
			}
			if !slices.Equal(addrs, []string{a.Prefix().String()}) {
				t.Errorf("%s %s: addresses %v, want %s", n.Name, a.Device, addrs, a.Prefix())
			}
		}
		eno1 := nc.Ethernets["eno1"]
		if len(eno1.Routes) != 0 || eno1.Gateway4 != "10.99.0.1" ||
			!slices.Equal(eno1.DNS.Addresses, []string{"10.99.0.1"}) || !slices.Equal(eno1.DNS.Search, []string{"img.racklift.test"}) {
			t.Errorf("%s eno1 route/DNS: %+v", n.Name, eno1)
		}
	}
}

// TestBootScriptsHoldNoSecrets: boot.ipxe, grub.cfg and the kernel command
// line are public (issue 21): no token, no root hash, for every node of
// every example plan, every profile kind.
func TestBootScriptsHoldNoSecrets(t *testing.T) {
	r := newTestRenderer(t)
	for _, ex := range exampleNames(t) {
		p := loadExample(t, ex)
		for _, n := range p.Nodes {
			env := testEnv(n)
			for _, name := range []string{nodeapi.FileIPXE, nodeapi.FileGRUB} {
				b, err := r.File(p, n, name, env)
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", ex, n.Name, name, err)
				}
				if bytes.Contains(b, []byte(env.Token)) || bytes.Contains(b, []byte(env.RootHash)) || bytes.Contains(b, []byte("token")) {
					t.Errorf("%s/%s/%s holds a secret:\n%s", ex, n.Name, name, b)
				}
			}
			args, err := r.KernelArgs(p, n, env)
			if err != nil || strings.Contains(args, env.Token) || strings.Contains(strings.ToLower(args), "token") {
				t.Errorf("%s/%s kernel args %q: %v", ex, n.Name, args, err)
			}
			if b := r.LocalBootGRUB(n); bytes.Contains(b, []byte(env.Token)) {
				t.Errorf("local-boot grub holds the token")
			}
		}
	}
}

// TestFirstBootReadyCallback: every kind's first boot ends with the ready
// script, which fetches the facts script, checks its SHA-256, runs it with
// /usr/bin/python3 and posts its output with the token header read from a
// root-only file; the token is written once, by a shell built-in.
func TestFirstBootReadyCallback(t *testing.T) {
	r := newTestRenderer(t)
	sum := sha256.Sum256(r.FactsScript())
	want := hex.EncodeToString(sum[:])
	for _, ex := range exampleNames(t) {
		p := loadExample(t, ex)
		keep := goldenNodes(p)
		for _, n := range p.Nodes {
			if !keep[n.Name] {
				continue
			}
			env := testEnv(n)
			b, err := r.File(p, n, nodeapi.FileUserData, env)
			if err != nil {
				t.Fatal(err)
			}
			ud := string(b)
			name := ex + "/" + n.Name
			for _, s := range []string{
				"'" + nodeapi.FactsScriptURL(env.ServerURL) + "'",
				want,
				"sha256sum -c --status",
				"py=/usr/bin/python3",
				`-H "@$dir/token-header"`,
				"'" + nodeapi.PhoneHomeURL(env.ServerURL, n.MAC, nodeapi.PhaseReady) + "'",
				"first boot finished, but no facts",
				"[sh, /run/racklift/ready]",
				`permissions: "0700"`,
			} {
				if !strings.Contains(ud, s) {
					t.Errorf("%s: user-data lacks %q", name, s)
				}
			}
			fb := ud
			if i := strings.Index(ud, "\n  user-data:\n"); i >= 0 {
				fb = ud[i:] // autoinstall: the installed system's part
			}
			if c := strings.Count(fb, env.Token); c != 1 {
				t.Errorf("%s: token appears %d times, want once (the printf into the root-only header file)", name, c)
			}
			if !strings.Contains(ud, "umask 077; mkdir -p /run/racklift; printf '%s\\\\n' 'X-Racklift-Token: "+env.Token+"' > /run/racklift/token-header") {
				t.Errorf("%s: token header not written with umask 077 by printf", name)
			}
		}
	}
}

func TestGRUBSyntaxHelpers(t *testing.T) {
	const mac = "52:54:00:99:10:02"
	for in, want := range map[string]string{
		"http://10.99.0.1:8080/agent/vmlinuz":                "(tftp,10.99.0.1)/" + mac + "/agent/vmlinuz",
		"http://10.99.0.1/media/rocky9/images/pxeboot/x.img": "(tftp,10.99.0.1)/" + mac + "/media/rocky9/images/pxeboot/x.img",
		"http://[fd00:99::1]:8080/agent/vmlinuz":             "(tftp,[fd00:99::1])/" + mac + "/agent/vmlinuz",
	} {
		if got, err := grubPath(in, mac); err != nil || got != want {
			t.Errorf("grubPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := grubPath("http://h:1/grub.cfg", "${net_default_mac}"); err != nil || got != "(tftp,h)/${net_default_mac}/grub.cfg" {
		t.Errorf("grubPath with GRUB's MAC variable = %q, %v", got, err)
	}
	for _, bad := range []string{"https://h/x", "http://h/a b", "http://h/a;b", "http://u@h/x", "http://h/x?y=1", "ftp://h/x", "http://h/$x"} {
		if got, err := grubPath(bad, mac); err == nil {
			t.Errorf("grubPath(%q) = %q, want an error", bad, got)
		}
	}
	if got, err := grubPath("http://h/x", "52:54;00"); err == nil {
		t.Errorf("a MAC with ; = %q, want an error", got)
	}
	got, err := grubArgs("ip=dhcp url=http://h/x.iso autoinstall ds=nocloud-net;s=http://h/ci/m/ console=ttyS0,115200n8  x=$y")
	if err != nil || got != "ip=dhcp url=http://h/x.iso autoinstall 'ds=nocloud-net;s=http://h/ci/m/' console=ttyS0,115200n8 'x=$y'" {
		t.Errorf("grubArgs: %q %v", got, err)
	}
	if _, err := grubArgs("a='b'"); err == nil {
		t.Error("a quote was accepted")
	}
}

func TestGRUBConfigs(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "lab")
	// Ubuntu: the ; of ds=nocloud-net is quoted; the media kernel and initrd.
	u, _ := p.NodeByName("lab-03")
	b, err := r.File(p, u, nodeapi.FileGRUB, testEnv(u))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"linux (tftp,10.99.0.1)/52:54:00:99:00:03/media/ubuntu2404/casper/vmlinuz ip=dhcp url=http://10.99.0.1:8080/media/ubuntu2404.iso autoinstall 'ds=nocloud-net;s=http://10.99.0.1:8080/ci/52:54:00:99:00:03/'",
		"initrd (tftp,10.99.0.1)/52:54:00:99:00:03/media/ubuntu2404/casper/initrd; then",
		"\n      boot\n",
	} {
		if !strings.Contains(string(b), s) {
			t.Errorf("ubuntu grub.cfg lacks %q:\n%s", s, b)
		}
	}
	// The kernel arguments are the iPXE script's.
	ipxe, _ := r.File(p, u, nodeapi.FileIPXE, testEnv(u))
	args, _ := r.KernelArgs(p, u, testEnv(u))
	if !strings.Contains(string(ipxe), args) {
		t.Errorf("boot.ipxe does not carry %q", args)
	}
	// https media cannot be loaded by GRUB: a clear error.
	env := testEnv(u)
	env.MediaURL = "https://mirror.example/ubuntu"
	if _, err := r.File(p, u, nodeapi.FileGRUB, env); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("https media: %v", err)
	}
	// The installed node boots its disk's own GRUB config with this
	// signed GRUB (leaving GRUB would end in the firmware's menu; chain-
	// loading the disk's shim fails under Secure Boot), and exits with an
	// error status only when no disk has a system.
	if lb := string(r.LocalBootGRUB(u)); !strings.Contains(lb, "chainloader \"($racklift_esp)$racklift_loader\"") ||
		!strings.Contains(lb, "configfile \"($racklift_root)$racklift_cfg\"") || !strings.Contains(lb, "/boot/grub/grub.cfg") || !strings.HasSuffix(lb, "\nexit 1\n") || !strings.Contains(lb, "lab-03 is installed") {
		t.Errorf("local boot:\n%s", lb)
	}
	if h := string(r.HoldGRUB(u)); !strings.Contains(h, "lab-03 failed its install") || !strings.HasSuffix(h, "\nexit 1\n") {
		t.Errorf("hold:\n%s", h)
	}
	if um := string(r.UnknownMACGRUB("not a mac")); !strings.Contains(um, "MAC unknown") || !strings.HasSuffix(um, "\nexit 1\n") {
		t.Errorf("unknown MAC:\n%s", um)
	}
	bs, err := r.GRUBBootstrap("http://10.99.0.1:8080")
	if err != nil || !strings.Contains(string(bs), "configfile (tftp,10.99.0.1)/${net_default_mac}/grub.cfg\n") {
		t.Errorf("bootstrap: %v\n%s", err, bs)
	}
	if _, err := r.GRUBBootstrap("https://x"); err == nil {
		t.Error("bootstrap over https accepted")
	}
}

// TestRealFactsScript: the renderer reads the facts script from the
// templates FS and the first boot checks exactly its SHA-256.
func TestRealFactsScript(t *testing.T) {
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(templates.FS(), profs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.FactsScript(), templates.FactsScript()) {
		t.Fatal("FactsScript differs from templates.FactsScript")
	}
	sum := sha256.Sum256(templates.FactsScript())
	p := loadExample(t, "image-lab")
	n, _ := p.NodeByName("img-01")
	b, err := r.File(p, n, nodeapi.FileUserData, testEnv(n))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "printf '%s  %s\\n' "+hex.EncodeToString(sum[:])+" ") {
		t.Errorf("user-data does not check the real script's SHA-256")
	}
	// Without the script the renderer refuses to start.
	if _, err := New(fstest.MapFS{"boot.ipxe.tmpl": {Data: []byte("#!ipxe\n")}}, profs); err == nil || !strings.Contains(err.Error(), "facts script") {
		t.Errorf("New without the facts script: %v", err)
	}
}
