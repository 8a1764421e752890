package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExamples loads and validates every example plan shipped in the repo.
// HA examples must be free of warnings; the lab may only warn about HA and
// about Neutron's external interface (its VMs have a single NIC).
func TestExamples(t *testing.T) {
	names, err := fs.Glob(Examples(), "*.yaml")
	if err != nil || len(names) < 3 {
		t.Fatalf("examples: %v %v", names, err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(Examples(), name)
			if err != nil {
				t.Fatal(err)
			}
			p, ds := Load(name, data, Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
			if p == nil {
				t.Fatalf("example does not validate:\n%s", dump(ds))
			}
			for _, d := range ds {
				if p.Cluster.HA || !strings.HasPrefix(d.Rule, "ha-") && d.Rule != "neutron-external-iface" {
					t.Errorf("unexpected diagnostic: %s [%s]", d, d.Rule)
				}
			}
			for _, n := range p.Nodes {
				if _, ok := n.Provisioning(); !ok {
					t.Errorf("%s has no provisioning address", n.Name)
				}
			}
		})
	}
}

func TestBIOSMerge(t *testing.T) {
	text := strings.Replace(basePlan, "  disks:\n    os: {path: /dev/sda}\n",
		"  disks:\n    os: {path: /dev/sda}\n  bios: {virtualization: true, attributes: {SriovGlobalEnable: Enabled}}\n  roles:\n    storage: {bios: {boot_mode: legacy, attributes: {SriovGlobalEnable: Disabled}}}\n", 1)
	p, ds := Load("b.yaml", []byte(text), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil {
		t.Fatal(dump(ds))
	}
	osd, _ := p.NodeByName("osd-01")
	ctl, _ := p.NodeByName("ctl-01")
	if osd.BIOS.UEFI() || osd.BIOS.Attributes["SriovGlobalEnable"] != "Disabled" || osd.BIOS.Virtualization == nil || !*osd.BIOS.Virtualization {
		t.Errorf("storage node BIOS: %+v", osd.BIOS)
	}
	if !ctl.BIOS.UEFI() || ctl.BIOS.Attributes["SriovGlobalEnable"] != "Enabled" {
		t.Errorf("controller BIOS: %+v", ctl.BIOS)
	}
}

func TestLargeSiteShape(t *testing.T) {
	data, err := fs.ReadFile(Examples(), "large-site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, ds := Load("large-site.yaml", data, Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil {
		t.Fatal(dump(ds))
	}
	want := map[Role]int{RoleController: 5, RoleDatabase: 5, RoleMessaging: 3, RoleNetwork: 3, RoleMonitoring: 1, RoleStorage: 6, RoleCompute: 512, RoleCephMon: 3}
	for r, n := range want {
		if got := len(p.NodesWith(r)); got != n {
			t.Errorf("%s: %d nodes, want %d", r, got, n)
		}
	}
	c, _ := p.NodeByName("cs-compute-0020")
	a, _ := c.AddressOn("tenant")
	if a.Addr.String() != "10.24.16.20" || a.Device != "bond0.140" {
		t.Errorf("cs-compute-0020 tenant: %s on %s", a.Addr, a.Device)
	}
}

// TestLargeSiteAdviceWarns checks the 512-compute sizing advice fires for a
// large plan with only 3 combined database+messaging controllers.
func TestLargeSiteAdviceWarns(t *testing.T) {
	var b bytes.Buffer
	sz := LargeSite(150)
	sz.Controllers, sz.Database, sz.Messaging, sz.Monitoring = 3, 0, 0, 0
	if err := WriteSite(&b, "big", sz); err != nil {
		t.Fatal(err)
	}
	_, ds := Load("big.yaml", b.Bytes(), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	for _, d := range ds {
		if d.Rule == "large-site" {
			want := "150 compute nodes: recommended 5 controllers (have 3); 5 dedicated database nodes (have 0); 3 dedicated messaging nodes (have 0); 1 monitoring node (have 0)"
			if d.Msg != want || d.Severity != Warning {
				t.Fatalf("got %q (%s)\nwant %q", d.Msg, d.Severity, want)
			}
			return
		}
	}
	t.Fatalf("no large-site warning:\n%s", dump(ds))
}

// TestAddressesStable checks the allocation rule: adding or removing other
// nodes never changes an existing node's addresses.
func TestAddressesStable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSite(&b, "cs", LargeSite(40)); err != nil {
		t.Fatal(err)
	}
	full := b.String()
	p, ds := Load("full", []byte(full), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil {
		t.Fatal(dump(ds))
	}
	addrs := func(p *Plan) map[string]string {
		out := map[string]string{}
		for _, n := range p.Nodes {
			for _, a := range n.Addresses {
				out[n.Name+"/"+a.Network.Name] = a.Addr.String()
			}
		}
		return out
	}
	want := addrs(p)
	head, body, _ := strings.Cut(full, "\nnodes:\n")
	lines := strings.Split(strings.TrimRight(body, "\n"), "\n")
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		// Keep all non-compute nodes (HA rules), drop a random half of the computes.
		var kept []string
		for _, l := range lines {
			if !strings.Contains(l, "-compute-") || rng.IntN(2) == 0 {
				kept = append(kept, l)
			}
		}
		text := head + "\nnodes:\n" + strings.Join(kept, "\n") + "\n"
		q, ds := Load("subset", []byte(text), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
		if q == nil {
			t.Fatalf("round %d: %s", round, dump(ds))
		}
		for k, v := range addrs(q) {
			if want[k] != v {
				t.Fatalf("round %d: %s moved from %s to %s", round, k, want[k], v)
			}
		}
	}
}

func TestSecretsFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(f, []byte("bmc: s3cret-bmc\nroot-hash: \"$6$abcdefgh$0123456789abcdefghijklmnopqrstuv\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecrets(f, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group/world readable secrets must be refused, got %v", err)
	}
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSecrets(f, func(k string) (string, bool) {
		if k == "RACKLIFT_SECRET_BMC" {
			return "from-env", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Lookup("bmc"); v != "from-env" {
		t.Errorf("env must override the file, got %q", v)
	}
	if v, _ := s.Lookup("root-hash"); !isCryptHash(v) {
		t.Errorf("root-hash: %q", v)
	}
	for _, out := range []string{s.String(), fmt.Sprintf("%v %+v %#v", s, s, s)} {
		if strings.Contains(out, "s3cret") || strings.Contains(out, "from-env") || strings.Contains(out, "$6$") {
			t.Fatalf("secret value printed: %s", out)
		}
	}
	if EnvName("bmc-rack.1") != "RACKLIFT_SECRET_BMC_RACK_1" {
		t.Error(EnvName("bmc-rack.1"))
	}

	// With a secrets file, a missing secret is an error; a plain-text root
	// password is refused.
	if err := os.WriteFile(f, []byte("root-hash: hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = LoadSecrets(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(basePlan, "  profile: rocky9\n", "  profile: rocky9\n  root_password_secret: root-hash\n", 1)
	_, ds := Load("s.yaml", []byte(text), Options{Profiles: testProfiles(t), Secrets: s})
	var rules []string
	for _, d := range ds {
		if d.Severity == Error {
			rules = append(rules, d.Rule+"@"+d.Path)
		}
		if strings.Contains(d.String(), "hunter2") {
			t.Fatalf("secret value in diagnostic: %s", d)
		}
	}
	if strings.Join(rules, " ") != "root-hash@cluster.root_password_secret secret-missing@defaults.bmc.password_secret" {
		t.Fatalf("got %v\n%s", rules, dump(ds))
	}
	// A broken secrets file must not echo its content.
	if err := os.WriteFile(f, []byte("bmc: [unclosed hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecrets(f, nil); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("want an error without the value, got %v", err)
	}
}

func TestSchema(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	// Every property of every object must be described, so editors can help.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k, pv := range props {
				pm, _ := pv.(map[string]any)
				if pm["description"] == nil || pm["description"] == "" {
					t.Errorf("%s.%s has no description", path, k)
				}
				walk(path+"."+k, pv)
			}
		}
		walk(path+"[]", m["items"])
		walk(path+"{}", m["additionalProperties"])
	}
	walk("", s)
	if !strings.Contains(string(b), `"controller"`) || !strings.Contains(string(b), `"additionalProperties": false`) {
		t.Error("schema lacks role enum or closed objects")
	}
}

// TestTypoSuggestions checks unknown keys get a "did you mean" hint.
func TestTypoSuggestions(t *testing.T) {
	text := strings.Replace(basePlan, "    purpose: bmc\n", "    purpse: bmc\n    purpose: bmc\n", 1)
	_, ds := Load("t.yaml", []byte(text), Options{Profiles: testProfiles(t)})
	for _, d := range ds {
		if d.Rule == "unknown-field" && d.Hint == `did you mean "purpose"?` {
			return
		}
	}
	t.Fatal(dump(ds))
}

// TestMergeKeysAndAliases checks YAML anchors work for repetitive plans.
func TestMergeKeysAndAliases(t *testing.T) {
	text := strings.Replace(basePlan, `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}}`,
		"  - &cmp\n    name: cmp-04\n    roles: [compute]\n    mac: \"52:54:00:00:02:04\"\n    bmc: {address: 10.0.1.24}\n  - <<: *cmp\n    name: cmp-05\n    mac: \"52:54:00:00:02:05\"\n    bmc: {address: 10.0.1.25}\n", 1)
	p, ds := Load("m.yaml", []byte(text), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil {
		t.Fatal(dump(ds))
	}
	n, ok := p.NodeByName("cmp-05")
	if !ok || !n.Has(RoleCompute) || n.BMC.Address != "10.0.1.25" {
		t.Fatalf("merge key: %+v", n)
	}
}

// TestAliasBomb checks that aliases expanding to millions of values are
// refused quickly instead of eating the laptop's memory.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("defaults:\n  disks:\n    osds: &o [")
	for i := range 3000 {
		fmt.Fprintf(&b, "{path: /dev/x%d},", i)
	}
	b.WriteString("]\nnodes:\n")
	for range 3000 {
		b.WriteString("  - {disks: {osds: *o}}\n")
	}
	start := time.Now()
	_, ds := Load("bomb.yaml", []byte(b.String()), Options{})
	if time.Since(start) > 20*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
	for _, d := range ds {
		if d.Rule == "yaml-size" {
			return
		}
	}
	t.Fatalf("no yaml-size error; %d diagnostics", len(ds))
}

func FuzzLoad(f *testing.F) {
	names, _ := fs.Glob(Examples(), "*.yaml")
	for _, n := range names {
		if n == "large-site.yaml" {
			continue
		}
		data, _ := fs.ReadFile(Examples(), n)
		f.Add(data)
	}
	f.Add([]byte(basePlan))
	for _, c := range ruleCases() {
		f.Add([]byte(strings.Replace(basePlan, c.old, c.new, 1)))
	}
	ps := testProfiles(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ds := Load("fuzz.yaml", data, Options{Profiles: ps})
		if (p == nil) != ds.HasErrors() {
			t.Fatalf("plan nil=%v but HasErrors=%v", p == nil, ds.HasErrors())
		}
		for _, d := range ds {
			if d.Line < 1 || d.Col < 1 || d.Msg == "" {
				t.Fatalf("bad diagnostic %+v", d)
			}
		}
	})
}

// BenchmarkValidate5000 validates a generated 5,000-compute plan.
func BenchmarkValidate5000(b *testing.B) {
	var buf bytes.Buffer
	if err := WriteSite(&buf, "cs", LargeSite(5000)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	opts := Options{Profiles: testProfiles(b), Secrets: testSecrets(b)}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		p, ds := Load("bench.yaml", data, opts)
		if p == nil || len(p.Nodes) != 5023 {
			b.Fatal(dump(ds))
		}
	}
}

func TestDiskWholeKey(t *testing.T) {
	for _, c := range []struct {
		d    Disk
		want string
	}{
		{Disk{Path: "/dev/sda"}, "path:/dev/sda"},
		{Disk{Path: "/dev/sdb1"}, "path:/dev/sdb"},
		{Disk{Path: "/dev/sdab12"}, "path:/dev/sdab"},
		{Disk{Path: "/dev/vda3"}, "path:/dev/vda"},
		{Disk{Path: "/dev/nvme0n1"}, "path:/dev/nvme0n1"},
		{Disk{Path: "/dev/nvme0n1p2"}, "path:/dev/nvme0n1"},
		{Disk{Path: "/dev/mmcblk0p1"}, "path:/dev/mmcblk0"},
		{Disk{Path: "/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part2"}, "path:/dev/disk/by-path/pci-0000:00:1f.2-ata-1"},
		{Disk{ByID: "wwn-0x5000c500a1b2c3d4-part1"}, "id:wwn-0x5000c500a1b2c3d4"},
		{Disk{ByID: "wwn-0x5000c500a1b2c3d4"}, "id:wwn-0x5000c500a1b2c3d4"},
		{Disk{Serial: "S1-part1"}, "serial:S1-part1"},
	} {
		if got := c.d.WholeKey(); got != c.want {
			t.Errorf("%+v: WholeKey %q, want %q", c.d, got, c.want)
		}
	}
}
