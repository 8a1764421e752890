package profiles

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// TestBuiltinProfiles loads every embedded profile and renders its kernel
// arguments with the sample variables.
func TestBuiltinProfiles(t *testing.T) {
	files, err := fs.Glob(Builtin(), "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load(Builtin())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Names()) != len(files) || len(files) < 2 {
		t.Fatalf("loaded %v from %v", s.Names(), files)
	}
	for _, name := range []string{"rocky9", "ubuntu2404"} {
		p, ok := s.Get(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		args, err := p.KernelArgs(SampleArgsData())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(args, "  ") || strings.Contains(args, "\n") || !strings.Contains(args, DefaultConsole) {
			t.Errorf("%s args: %q", name, args)
		}
		if p.Templates.IPXE == "" || p.Templates.Config == "" || p.Templates.MetaData == "" || p.Templates.FirstBoot == "" {
			t.Errorf("%s: template defaults not applied: %+v", name, p.Templates)
		}
	}
	rocky, _ := s.Get("rocky9")
	args, _ := rocky.KernelArgs(SampleArgsData())
	for _, want := range []string{"inst.ks=http://10.99.0.1:8080/ks/52:54:00:99:00:01", "inst.repo=http://10.99.0.1:8080/media/rocky9", "ip=10.99.0.101::10.99.0.1:255.255.255.0:lab-01:eno1:none", "ifname=eno1:52:54:00:99:00:01"} {
		if !strings.Contains(args, want) {
			t.Errorf("rocky9 args lack %q: %s", want, args)
		}
	}
	ubuntu, _ := s.Get("ubuntu2404")
	if ubuntu.Templates.VendorData == "" || ubuntu.Installer != InstallerAutoinstall {
		t.Errorf("ubuntu2404: %+v", ubuntu)
	}
	deb, ok := s.Get("debian12")
	if !ok {
		t.Fatal("debian12 missing")
	}
	if deb.Installer != InstallerImage || deb.Image != "debian12" || deb.Kernel != "" || deb.Templates.NetworkConfig != "network-config.tmpl" ||
		deb.Templates.GRUB != "grub.cfg.tmpl" || deb.Templates.FirstBoot == "" || deb.Templates.MetaData == "" || deb.Templates.Config != "" {
		t.Errorf("debian12: %+v", deb)
	}
	args, _ = deb.KernelArgs(SampleArgsData())
	if args != "racklift.server=http://10.99.0.1:8080 racklift.mac=52:54:00:99:00:01 "+DefaultConsole {
		t.Errorf("debian12 args: %q", args)
	}
}

// TestNoSecretsInArgs: the kernel command line is public, so a profile
// cannot even name the token.
func TestNoSecretsInArgs(t *testing.T) {
	for _, v := range []string{"{{.Token}}", "{{.ProgressURL}}", "{{.RootHash}}"} {
		src := "installer: kickstart\nkernel: k\nargs: \"x=" + v + "\"\n"
		if _, err := Load(fstest.MapFS{"x.yaml": {Data: []byte(src)}}); err == nil || !strings.Contains(err.Error(), "can't evaluate field") {
			t.Errorf("%s: got %v, want a template error", v, err)
		}
	}
}

func TestOverrideByName(t *testing.T) {
	extra := fstest.MapFS{"my-rocky.yaml": {Data: []byte("name: rocky9\ninstaller: kickstart\nkernel: k\nargs: \"x={{.MAC}}\"\n")}}
	s, err := Load(Builtin(), extra)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Get("rocky9")
	if p.Kernel != "k" || p.Media != "rocky9" || p.Console != DefaultConsole {
		t.Errorf("override: %+v", p)
	}
	if a, _ := p.KernelArgs(SampleArgsData()); a != "x=52:54:00:99:00:01" {
		t.Errorf("args %q", a)
	}
}

func TestRejectsBadProfiles(t *testing.T) {
	cases := map[string]string{
		"unknown field":      "installer: kickstart\nkernel: k\nkernal: x\n",
		"bad installer":      "installer: preseed\nkernel: k\n",
		"no kernel":          "installer: kickstart\n",
		"absolute kernel":    "installer: kickstart\nkernel: /boot/vmlinuz\n",
		"dotdot initrd":      "installer: kickstart\nkernel: k\ninitrd: [../../etc/shadow]\n",
		"bad name":           "name: Rocky_9\ninstaller: kickstart\nkernel: k\n",
		"bad media":          "installer: kickstart\nkernel: k\nmedia: \"a b\"\n",
		"args syntax":        "installer: kickstart\nkernel: k\nargs: \"{{.ConfigURL\"\n",
		"args unknown var":   "installer: kickstart\nkernel: k\nargs: \"{{.KickstartURL}}\"\n",
		"bad template name":  "installer: kickstart\nkernel: k\ntemplates: {config: ../x.tmpl}\n",
		"unknown template":   "installer: kickstart\nkernel: k\ntemplates: {preseed: x.tmpl}\n",
		"bad package":        "installer: kickstart\nkernel: k\npackages: [\"a b\"]\n",
		"multi-line console": "installer: kickstart\nkernel: k\nconsole: \"a\\nb\"\n",
		"bad repo":           "installer: kickstart\nkernel: k\nrepo: /abs\n",
		"image with kernel":  "installer: image\nkernel: k\n",
		"image with initrd":  "installer: image\ninitrd: [i]\n",
		"image bad name":     "installer: image\nimage: Debian_12\n",
		"image with config":  "installer: image\ntemplates: {config: kickstart.ks.tmpl}\n",
		"image on kickstart": "installer: kickstart\nkernel: k\nimage: debian12\n",
	}
	for name, src := range cases {
		if _, err := Load(fstest.MapFS{"x.yaml": {Data: []byte(src)}}); err == nil {
			t.Errorf("%s: accepted:\n%s", name, src)
		}
	}
}
