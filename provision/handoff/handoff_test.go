package handoff

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden compares the whole bundle of the lab (no facts) and the
// hyperconverged site (facts from every node) with reviewed files.
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		name  string
		facts bool
	}{{"lab", false}, {"hyperconverged", true}} {
		t.Run(c.name, func(t *testing.T) {
			p := loadExample(t, c.name)
			b, err := Build(p, Inputs{Nodes: allVerified(p, c.facts), DeployKey: testKey(t, "racklift-deploy@"+p.Cluster.Name)})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join("testdata", "golden", c.name)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
			var want []string
			for _, f := range b.Files {
				want = append(want, f.Path)
				gp := filepath.Join(dir, filepath.FromSlash(f.Path))
				if *update {
					if err := os.MkdirAll(filepath.Dir(gp), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(gp, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				g, err := os.ReadFile(gp)
				if err != nil {
					t.Fatalf("%v (run go test ./provision/handoff -run TestGolden -update)", err)
				}
				if !bytes.Equal(g, f.Data) {
					t.Errorf("%s differs from %s (run with -update after review):\n%s", f.Path, gp, firstDiff(string(g), string(f.Data)))
				}
			}
			var got []string
			_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, path)
					got = append(got, filepath.ToSlash(rel))
				}
				return nil
			})
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("golden files %v, bundle files %v", got, want)
			}
		})
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n golden: " + x + "\n    got: " + y
		}
	}
	return ""
}

// TestEveryExample hands off every example plan, the 512-node large site
// included, with and without facts, and checks the role mapping.
func TestEveryExample(t *testing.T) {
	names, err := fs.Glob(plan.Examples(), "*.yaml")
	if err != nil || len(names) < 3 {
		t.Fatalf("examples: %v %v", names, err)
	}
	for _, name := range names {
		for _, facts := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: "+facts"}[facts], func(t *testing.T) {
				p := loadExample(t, strings.TrimSuffix(name, ".yaml"))
				nodes := allVerified(p, facts)
				if facts { // the engineer created Neutron's interface where the plan has none (the lab)
					for _, n := range p.NeutronHosts() {
						f := nodes[n.Name].Facts
						if !slices.ContainsFunc(f.Interfaces, func(i nodeapi.Interface) bool { return i.Name == p.OpenStack.NeutronExternalInterface }) {
							f.Interfaces = append(f.Interfaces, nodeapi.Interface{Name: p.OpenStack.NeutronExternalInterface, State: "up"})
						}
					}
				}
				b, err := Build(p, Inputs{Nodes: nodes, DeployKey: testKey(t, "k")})
				if err != nil {
					t.Fatal(err)
				}
				if len(b.Included) != len(p.Nodes) || len(b.Skipped) != 0 {
					t.Errorf("included %d skipped %d of %d", len(b.Included), len(b.Skipped), len(p.Nodes))
				}
				inv := groupsOf(t, b)
				for _, n := range p.Nodes {
					for _, m := range RoleMappings {
						if !n.Has(m.Role) {
							continue
						}
						for _, g := range m.Kolla {
							if !slices.Contains(inv[g], n.Name) {
								t.Errorf("%s (%s) is not in [%s]", n.Name, m.Role, g)
							}
						}
					}
				}
				for _, n := range p.NeutronHosts() {
					if !slices.Contains(inv["network"], n.Name) {
						t.Errorf("Neutron host %s is not in [network]", n.Name)
					}
				}
				spec, hasCeph := b.File("ceph/cluster.yaml")
				if hasCeph != (len(p.NodesWith(plan.RoleStorage)) > 0) {
					t.Errorf("ceph/cluster.yaml present=%v", hasCeph)
				}
				if hasCeph {
					for _, n := range p.NodesWith(plan.RoleStorage) {
						if !bytes.Contains(spec.Data, []byte("service_id: "+n.Name+"\n")) {
							t.Errorf("no OSD spec for %s", n.Name)
						}
					}
				}
				for _, f := range b.Files {
					if bytes.Contains(f.Data, []byte("<no value>")) || bytes.Contains(f.Data, []byte("%!")) {
						t.Errorf("%s has a formatting hole", f.Path)
					}
				}
			})
		}
	}
}

// groupsOf reads kolla/multinode's host groups (hosts listed directly).
func groupsOf(t *testing.T, b *Bundle) map[string][]string {
	t.Helper()
	f, ok := b.File("kolla/multinode")
	if !ok {
		t.Fatal("no kolla/multinode")
	}
	out := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(string(f.Data), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			cur = strings.Trim(l, "[]")
		case !strings.Contains(cur, ":"):
			out[cur] = append(out[cur], strings.Fields(l)[0])
		}
	}
	return out
}

func TestUnverifiedLeftOutOrMarked(t *testing.T) {
	p := loadExample(t, "hyperconverged")
	nodes := allVerified(p, false)
	nodes["hci-compute-06"] = NodeInput{Reason: "phase installing"}
	b, err := Build(p, Inputs{Nodes: nodes, DeployKey: testKey(t, "k")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Skipped, []string{"hci-compute-06"}) {
		t.Errorf("skipped %v", b.Skipped)
	}
	for _, f := range b.Files {
		if f.Path != "README.txt" && bytes.Contains(f.Data, []byte("hci-compute-06")) {
			t.Errorf("%s names the unverified node", f.Path)
		}
	}
	b, err = Build(p, Inputs{Nodes: nodes, DeployKey: testKey(t, "k"), AllowUnverified: true})
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := b.File("kolla/multinode")
	if !bytes.Contains(inv.Data, []byte("# UNVERIFIED (phase installing): written because of --allow-unverified\nhci-compute-06 ansible_host=10.10.0.106")) {
		t.Errorf("unverified node not marked:\n%s", inv.Data)
	}
	// No verified controller at all: refuse, naming them.
	for _, n := range p.NodesWith(plan.RoleController) {
		nodes[n.Name] = NodeInput{}
	}
	_, err = Build(p, Inputs{Nodes: nodes, DeployKey: testKey(t, "k")})
	if err == nil || !strings.Contains(err.Error(), "no controller is verified yet (hci-controller-01, hci-controller-02, hci-controller-03)") {
		t.Errorf("want a no-verified-controller error, got %v", err)
	}
}

// TestMissingData checks that missing data is an error naming the field.
func TestMissingData(t *testing.T) {
	base, err := fs.ReadFile(plan.Examples(), "hyperconverged.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, old, new, want string }{
		{"no neutron external interface", "  neutron_external_interface: bond0  # br-ex on the bond: external networks are VLAN provider networks\n", "",
			"node hci-controller-01 runs the Neutron agents but openstack.neutron_external_interface is not set"},
		{"hci without reserved memory", "      reserved_memory_mb: 28672      # 6 OSDs x 4 GiB + 4 GiB for the host\n", "",
			"hyper-converged node hci-compute-01 (compute + storage) reserves no memory for its OSDs: set reserved_memory_mb (nodes[3].reserved_memory_mb)"},
		{"implicit mons without storage", "roles: [controller, database, messaging, network, ceph-mon]", "roles: [controller, database, messaging, network]",
			"node hci-controller-01 runs a Ceph monitor (the plan has no ceph-mon node, so the controllers do) but has no address on the storage network"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(string(base), c.old) {
				t.Fatalf("%q not in the example", c.old)
			}
			p := loadPlan(t, "h.yaml", []byte(strings.ReplaceAll(string(base), c.old, c.new)))
			_, err := Build(p, Inputs{Nodes: allVerified(p, false), DeployKey: testKey(t, "k")})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
		})
	}
}

// TestFactsWin checks that the node's reported names are used.
func TestFactsWin(t *testing.T) {
	p := loadExample(t, "hyperconverged")
	nodes := allVerified(p, true)
	f := nodes["hci-compute-01"].Facts
	for i := range f.Interfaces {
		if f.Interfaces[i].Name == "bond0.40" {
			f.Interfaces[i].Name = "tenant40"
		}
	}
	b, err := Build(p, Inputs{Nodes: nodes, DeployKey: testKey(t, "k")})
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := b.File("kolla/multinode")
	if !bytes.Contains(inv.Data, []byte("hci-compute-01 ansible_host=10.10.0.101 ansible_user=root ansible_become=true network_interface=eno1 api_interface=eno1 tunnel_interface=tenant40\n")) {
		t.Errorf("facts interface name not used:\n%s", inv.Data)
	}
	if !slices.ContainsFunc(b.Warnings, func(s string) bool {
		return strings.Contains(s, "the plan puts 10.10.40.101 (network \"tenant\") on bond0.40, the node has it on tenant40")
	}) {
		t.Errorf("no warning about the renamed interface: %v", b.Warnings)
	}
	spec, _ := b.File("ceph/cluster.yaml")
	if !bytes.Contains(spec.Data, []byte("      - /dev/disk/by-id/nvme-eui.0025388000001000\n")) {
		t.Errorf("OSD by-id name not taken from facts:\n%s", spec.Data)
	}
	// A node whose facts lack an OSD disk cannot be handed off.
	f.Disks = f.Disks[:1]
	if _, err := Build(p, Inputs{Nodes: nodes, DeployKey: testKey(t, "k")}); err == nil || !strings.Contains(err.Error(), "node hci-compute-01 reports no disk matching OSD /dev/nvme0n1 (nodes[3].disks.osds[0])") {
		t.Errorf("missing OSD disk: %v", err)
	}
	// Neutron's external interface must exist and carry no address.
	nodes = allVerified(p, true)
	c1 := nodes["hci-controller-01"].Facts
	for i := range c1.Interfaces {
		if c1.Interfaces[i].Name == "bond0" {
			c1.Interfaces[i].Addresses = []string{"192.0.2.7/24"}
		}
	}
	if _, err := Build(p, Inputs{Nodes: nodes, DeployKey: testKey(t, "k")}); err == nil || !strings.Contains(err.Error(), "interface bond0 (openstack.neutron_external_interface) has addresses 192.0.2.7/24") {
		t.Errorf("neutron interface with an address: %v", err)
	}
}

func TestWriteDirAndTarGz(t *testing.T) {
	p := loadExample(t, "hyperconverged")
	b, err := Build(p, Inputs{Nodes: allVerified(p, true), DeployKey: testKey(t, "k")})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	for range 2 { // the second write replaces the first hand-off
		if err := b.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range b.Files {
		st, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != f.Mode {
			t.Errorf("%s mode %o want %o", f.Path, st.Mode().Perm(), f.Mode)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "ssh")); st.Mode().Perm() != 0o700 {
		t.Errorf("ssh/ mode %o", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Join(dir, "ssh", "id_ed25519")); st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %o", st.Mode().Perm())
	}
	other := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "thesis.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteDir(other); err == nil {
		t.Error("WriteDir replaced a directory that is not a hand-off")
	}
	if _, err := os.Stat(filepath.Join(other, "thesis.txt")); err != nil {
		t.Errorf("the other directory was touched: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(other))
	if len(ents) != 1 {
		t.Errorf("temporary directory left behind: %v", ents)
	}
	bad := &Bundle{Files: []File{{Path: "ok.txt", Mode: 0o644}, {Path: "../escape", Mode: 0o644}}}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if err := bad.WriteDir(fresh); err == nil {
		t.Error("a path leaving the directory was written")
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Errorf("a failed write left %s behind", fresh)
	}

	var buf bytes.Buffer
	if err := b.WriteTarGz(&buf, "handoff-hci"); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	got := map[string]*tar.Header{}
	data := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		data[h.Name], _ = io.ReadAll(tr)
	}
	for _, f := range b.Files {
		h := got["handoff-hci/"+f.Path]
		if h == nil {
			t.Errorf("%s not in the archive", f.Path)
			continue
		}
		if fs.FileMode(h.Mode) != f.Mode || !bytes.Equal(data[h.Name], f.Data) {
			t.Errorf("%s: mode %o, %d bytes", f.Path, h.Mode, len(data[h.Name]))
		}
	}
	if h := got["handoff-hci/ssh/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o700 {
		t.Errorf("ssh/ directory entry: %+v", h)
	}
}

func TestDeployKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateDeployKey(dir, "racklift-deploy@hci")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateDeployKey(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	if k1.Public != k2.Public || !bytes.Equal(k1.Private, k2.Private) {
		t.Fatal("the key changed between calls")
	}
	if !strings.HasPrefix(k1.Public, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI") || !strings.HasSuffix(k1.Public, " racklift-deploy@hci") {
		t.Errorf("public key line %q", k1.Public)
	}
	pub, err := DeployPublicKey(dir, "x")
	if err != nil || pub != k1.Public {
		t.Errorf("DeployPublicKey = %q, %v", pub, err)
	}
	st, err := os.Stat(filepath.Join(dir, "ssh", "id_ed25519"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "ssh")); st.Mode().Perm() != 0o700 {
		t.Errorf("ssh dir mode %o", st.Mode().Perm())
	}
	if err := os.Chmod(filepath.Join(dir, "ssh", "id_ed25519"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDeployKey(dir, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key accepted: %v", err)
	}
	// A corrupted key is refused, not silently replaced.
	bad := testKey(t, "c").Private
	bad = bytes.Replace(bad, []byte("AAAA"), []byte("AAAB"), 1)
	if err := os.WriteFile(filepath.Join(dir, "ssh", "id_ed25519"), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "ssh", "id_ed25519"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateDeployKey(dir, ""); err == nil {
		t.Error("corrupt key accepted")
	}
}

type fakeSource map[string]struct {
	st    events.NodeState
	facts *nodeapi.Facts
}

func (f fakeSource) Node(_ context.Context, name string) (events.NodeState, bool, error) {
	v, ok := f[name]
	return v.st, ok, nil
}

func (f fakeSource) Facts(_ context.Context, node string) (*nodeapi.Facts, bool, error) {
	v, ok := f[node]
	return v.facts, ok && v.facts != nil, nil
}

func TestGather(t *testing.T) {
	p := loadExample(t, "lab")
	src := fakeSource{
		"lab-01": {st: events.NodeState{Name: "lab-01", Phase: PhaseVerified}, facts: factsFor(p.Nodes[0])},
		"lab-02": {st: events.NodeState{Name: "lab-02", Phase: events.PhaseReady}},
		"lab-03": {st: events.NodeState{Name: "lab-03", Phase: events.PhaseFailed, FailedReason: "bond0 MTU 1500, plan 9000"}},
	}
	in, rd, err := Gather(t.Context(), p, src)
	if err != nil {
		t.Fatal(err)
	}
	if rd.Ready || rd.Verified != 1 || rd.Total != 3 {
		t.Errorf("readiness %+v", rd)
	}
	want := []string{"", "ready, not verified yet", "failed: bond0 MTU 1500, plan 9000"}
	for i, r := range rd.Nodes {
		if r.Reason != want[i] || r.Verified != (i == 0) || r.HasFacts != (i == 0) {
			t.Errorf("node %d: %+v", i, r)
		}
	}
	if !in["lab-01"].Verified || in["lab-01"].Facts == nil || in["lab-02"].Verified {
		t.Errorf("inputs %+v", in)
	}
	delete(src, "lab-03")
	_, rd, _ = Gather(t.Context(), p, src)
	if rd.Nodes[2].Reason != "no event seen yet" {
		t.Errorf("unseen node: %+v", rd.Nodes[2])
	}
}

// TestRoleMappingsComplete checks that the table covers every plan role
// exactly once.
func TestRoleMappingsComplete(t *testing.T) {
	var got []plan.Role
	for _, m := range RoleMappings {
		got = append(got, m.Role)
	}
	want := plan.AllRoles()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("RoleMappings roles %v, plan roles %v", got, want)
	}
}
