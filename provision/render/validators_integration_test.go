//go:build integration

package render

// Real validators: Debian's cloud-init (`cloud-init schema --config-file`)
// for every cloud-config, cloud-init's network config converter
// (`cloud-init devel net-convert ... --output-kind eni -D debian`) for
// every network-config, GRUB's parser (grub-script-check) for every GRUB
// config, and Subiquity's published autoinstall JSON schema (checked with
// python3-jsonschema) for every autoinstall section.
//
//	apt-get install cloud-init python3-jsonschema grub-common
//	touch /etc/cloud/cloud-init.disabled   # never let cloud-init configure the test host
//	go test -tags integration ./provision/render/
//
// The autoinstall schema is ../shared/autoinstall-schema.json relative to
// the repository root (CI checks out shared/ beside the clone).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// validatedFile is one rendered file to check.
type validatedFile struct {
	name string // plan/node/file, for messages
	data []byte
	kind outputKind
}

// filesToValidate renders every node of the small examples and the disk
// test plan, and the golden nodes (one per role set) of the large site:
// the large site's other nodes differ only in addresses and names.
func filesToValidate(t *testing.T) []validatedFile {
	t.Helper()
	r := newTestRenderer(t)
	plans := map[string]*plan.Plan{"disks": loadPlan(t, diskPlan)}
	for _, ex := range exampleNames(t) {
		plans[ex] = loadExample(t, ex)
	}
	var out []validatedFile
	for name, p := range plans {
		keep := goldenNodes(p)
		for _, n := range p.Nodes {
			if !keep[n.Name] && name != "disks" {
				continue
			}
			prof, err := r.Profile(n)
			if err != nil {
				t.Fatal(err)
			}
			files, err := r.Files(p, n, testEnv(n))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				var kind outputKind
				switch {
				case f.Name == nodeapi.FileUserData && prof.Installer == "autoinstall":
					kind = kindAutoinstall
				case f.Name == nodeapi.FileUserData || f.Name == nodeapi.FileVendorData:
					kind = kindCloudConfig
				default:
					continue
				}
				out = append(out, validatedFile{name + "/" + n.Name + "/" + f.Name, f.Data, kind})
			}
		}
	}
	return out
}

func TestCloudInitSchema(t *testing.T) {
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		testbed.SkipOrFail(t, "cloud-init is not installed (apt-get install cloud-init; touch /etc/cloud/cloud-init.disabled)")
	}
	if _, err := os.Stat("/etc/cloud/cloud-init.disabled"); err != nil {
		t.Log("note: /etc/cloud/cloud-init.disabled is missing; create it so cloud-init never configures this host")
	}
	dir := t.TempDir()
	files := filesToValidate(t)
	// Each cloud-config, plus the installed system's config nested in each
	// autoinstall (cloud-init does not look inside autoinstall:).
	type job struct{ name, path string }
	var jobs []job
	for _, f := range files {
		p := filepath.Join(dir, strings.ReplaceAll(f.name, "/", "_"))
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job{f.name, p})
		if f.kind != kindAutoinstall {
			continue
		}
		ai := autoinstallSection(t, f)
		inner, ok := ai["user-data"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no autoinstall.user-data", f.name)
		}
		b, err := yaml.Marshal(inner)
		if err != nil {
			t.Fatal(err)
		}
		ip := filepath.Join(dir, strings.ReplaceAll(f.name, "/", "_")+".inner")
		if err := os.WriteFile(ip, append([]byte("#cloud-config\n"), b...), 0o600); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job{f.name + " (autoinstall.user-data)", ip})
	}
	// The validator must be able to fail.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("#cloud-config\nruncmd: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ci, "schema", "--config-file", bad).CombinedOutput(); err == nil {
		t.Fatalf("cloud-init schema accepted a bad config: %s", out)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := exec.Command(ci, "schema", "--config-file", j.path).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("Valid cloud-config")) {
				t.Errorf("%s: cloud-init schema: %v\n%s", j.name, err, out)
			}
		}()
	}
	wg.Wait()
	t.Logf("cloud-init schema: %d configs valid", len(jobs))
}

// autoinstallSection returns the autoinstall: mapping of a user-data.
func autoinstallSection(t *testing.T, f validatedFile) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(f.data, &doc); err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	ai, ok := doc["autoinstall"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no autoinstall section", f.name)
	}
	return ai
}

// repoRoot finds the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

const jsonschemaCheck = `
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
bad = 0
for path in sys.argv[2:]:
    doc = json.load(open(path))
    for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path)):
        bad += 1
        print("%s: %s: %s" % (path, "/".join(str(p) for p in e.path), e.message))
sys.exit(1 if bad else 0)
`

func TestAutoinstallSchema(t *testing.T) {
	schema := filepath.Join(repoRoot(t), "..", "shared", "autoinstall-schema.json")
	if _, err := os.Stat(schema); errors.Is(err, os.ErrNotExist) {
		t.Skipf("Subiquity's autoinstall schema is not at %s (CI checks out shared/ beside the repository); skipping", schema)
	}
	// Debian's interpreter, where python3-jsonschema (make deps) installs;
	// a python3 earlier on PATH (pyenv) may not have the module.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if py, err = exec.LookPath("python3"); err != nil {
			testbed.SkipOrFail(t, "python3 is not installed")
		}
	}
	if err := exec.Command(py, "-c", "import jsonschema").Run(); err != nil {
		testbed.SkipOrFail(t, "%s has no jsonschema module (apt-get install python3-jsonschema)", py)
	}
	dir := t.TempDir()
	var paths, names []string
	for _, f := range filesToValidate(t) {
		if f.kind != kindAutoinstall {
			continue
		}
		b, err := json.Marshal(autoinstallSection(t, f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, strings.ReplaceAll(f.name, "/", "_")+".json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths, names = append(paths, p), append(names, f.name)
	}
	if len(paths) == 0 {
		t.Fatal("no autoinstall user-data rendered")
	}
	// The check must be able to fail: version 2 and an unknown key.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version": 2, "storage": {}, "bogus": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, "-c", jsonschemaCheck, schema, bad).CombinedOutput(); err == nil {
		t.Fatalf("the schema accepted a bad autoinstall: %s", out)
	}
	out, err := exec.Command(py, append([]string{"-c", jsonschemaCheck, schema}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("autoinstall schema: %v\n%s", err, out)
	}
	t.Logf("autoinstall schema: %d sections valid: %s", len(paths), strings.Join(names, ", "))
}

// networkConfigs renders a network-config for the golden nodes of every
// example plan as image nodes (profile debian12): the image-lab's own
// active-backup bonds, and the 802.3ad bonds with many VLANs of the
// hyperconverged and large sites.
func networkConfigs(t *testing.T) map[string]struct {
	node *plan.Node
	data []byte
} {
	t.Helper()
	r := newTestRenderer(t)
	out := map[string]struct {
		node *plan.Node
		data []byte
	}{}
	for _, ex := range exampleNames(t) {
		p := loadExample(t, ex)
		keep := goldenNodes(p)
		for _, n := range p.Nodes {
			if !keep[n.Name] {
				continue
			}
			m := *n
			m.Profile = "debian12"
			b, err := r.File(p, &m, nodeapi.FileNetworkConfig, testEnv(&m))
			if err != nil {
				t.Fatal(err)
			}
			out[ex+"/"+n.Name] = struct {
				node *plan.Node
				data []byte
			}{&m, b}
		}
	}
	return out
}

// eniStanzas parses ifupdown's interfaces(5): iface name -> option lines.
func eniStanzas(s string) map[string][]string {
	out := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "iface":
			cur = f[1]
			out[cur] = append(out[cur], "inet "+strings.Join(f[2:], " "))
		case len(f) > 0 && (f[0] == "auto" || f[0] == "allow-hotplug" || strings.HasPrefix(f[0], "#")):
			cur = ""
		case len(f) > 0 && cur != "" && strings.HasPrefix(line, " "):
			out[cur] = append(out[cur], strings.Join(f, " "))
		}
	}
	return out
}

// TestNetworkConfigENI: cloud-init 22.4's own converter (what the Debian
// 12 image runs at first boot) turns every network-config into ifupdown
// configuration with the plan's bonds, VLANs, MTUs, addresses, default
// route and resolvers, and udev rules naming each NIC by its MAC.
func TestNetworkConfigENI(t *testing.T) {
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		testbed.SkipOrFail(t, "cloud-init is not installed (apt-get install cloud-init; touch /etc/cloud/cloud-init.disabled)")
	}
	dir := t.TempDir()
	// The converter must be able to fail: cloud-init 22.4 refuses a route
	// "to: default" (netplan's spelling).
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.2/24]\n    routes: [{to: default, via: 10.0.0.1}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ci, "devel", "net-convert", "--network-data", bad, "--kind", "yaml", "--output-kind", "eni", "-D", "debian", "--directory", filepath.Join(dir, "bad")).CombinedOutput(); err == nil {
		t.Fatalf("net-convert accepted a route to: default:\n%s", out)
	}
	configs := networkConfigs(t)
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for name, c := range configs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			base := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
			in := base + ".yaml"
			if err := os.WriteFile(in, c.data, 0o600); err != nil {
				t.Error(err)
				return
			}
			out, err := exec.Command(ci, "devel", "net-convert", "--network-data", in, "--kind", "yaml", "--output-kind", "eni", "-D", "debian", "--directory", base).CombinedOutput()
			if err != nil {
				t.Errorf("%s: net-convert: %v\n%s", name, err, out)
				return
			}
			eni, err := os.ReadFile(filepath.Join(base, "etc", "network", "interfaces.d", "50-cloud-init"))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			udev, _ := os.ReadFile(filepath.Join(base, "etc", "udev", "rules.d", "70-persistent-net.rules"))
			for _, p := range eniProblems(c.node, eniStanzas(string(eni)), string(udev)) {
				t.Errorf("%s: %s", name, p)
			}
		}()
	}
	wg.Wait()
	t.Logf("cloud-init net-convert: %d network configs rendered for ifupdown as planned", len(configs))
}

// eniProblems compares ifupdown stanzas with the node's plan.
func eniProblems(n *plan.Node, st map[string][]string, udev string) []string {
	var probs []string
	has := func(dev, opt string) bool { return slices.Contains(st[dev], opt) }
	need := func(dev, opt string) {
		if !has(dev, opt) {
			probs = append(probs, fmt.Sprintf("%s lacks %q (has %q)", dev, opt, st[dev]))
		}
	}
	for _, l := range n.Links() {
		need(l.Name, fmt.Sprintf("mtu %d", l.MTU))
		switch l.Kind {
		case plan.LinkNIC:
			if l.Bond != "" {
				b, _ := n.Link(l.Bond)
				need(l.Name, "bond-master "+l.Bond)
				need(l.Name, "bond-mode "+b.Mode)
			}
			if l.MAC != "" && !strings.Contains(udev, `ATTR{address}=="`+l.MAC+`", NAME="`+l.Name+`"`) {
				probs = append(probs, fmt.Sprintf("no udev rule names %s (MAC %s)", l.Name, l.MAC))
			}
		case plan.LinkBond:
			need(l.Name, "bond-mode "+l.Mode)
			// cloud-init 22.4 writes "bond-slaves none" on the bond and
			// "bond-master" on each member (checked above).
			need(l.Name, "bond-slaves none")
		case plan.LinkVLAN:
			need(l.Name, "vlan-raw-device "+l.Parent)
			need(l.Name, fmt.Sprintf("vlan_id %d", l.VLAN))
		}
	}
	for _, a := range n.Addresses {
		need(a.Device, "address "+a.Prefix().String())
		if a.Network.DefaultRoute && a.Network.Gateway.IsValid() {
			need(a.Device, "gateway "+a.Network.Gateway.String())
			if len(a.Network.DNS) > 0 {
				need(a.Device, "dns-nameservers "+a.Network.DNS[0].String())
			}
		}
	}
	return probs
}

// TestGRUBScriptCheck: GRUB's own parser accepts every grub.cfg (every
// node of every example plan, every installer kind), the local-boot guard,
// the failed-install hold, the unknown-MAC notice and the bootstrap config.
func TestGRUBScriptCheck(t *testing.T) {
	gsc, err := exec.LookPath("grub-script-check")
	if err != nil {
		testbed.SkipOrFail(t, "grub-script-check is not installed (apt-get install grub-common)")
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cfg")
	if err := os.WriteFile(bad, []byte("# racklift\nif linux (http,h)/k; then\n  boot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gsc, bad).CombinedOutput(); err == nil {
		t.Fatalf("grub-script-check accepted an unclosed if:\n%s", out)
	}
	r := newTestRenderer(t)
	files := map[string][]byte{}
	for _, ex := range exampleNames(t) {
		p := loadExample(t, ex)
		keep := goldenNodes(p)
		for _, n := range p.Nodes {
			if !keep[n.Name] {
				continue
			}
			b, err := r.File(p, n, nodeapi.FileGRUB, testEnv(n))
			if err != nil {
				t.Fatal(err)
			}
			files[ex+"_"+n.Name+".cfg"] = b
			files[ex+"_"+n.Name+"_local.cfg"] = r.LocalBootGRUB(n)
			files[ex+"_"+n.Name+"_hold.cfg"] = r.HoldGRUB(n)
		}
	}
	files["unknown.cfg"] = r.UnknownMACGRUB("52:54:00:00:00:99")
	bs, err := r.GRUBBootstrap("http://10.99.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	files["bootstrap.cfg"] = bs
	for name, b := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(gsc, path).CombinedOutput(); err != nil {
			t.Errorf("%s: grub-script-check: %v\n%s\n%s", name, err, out, b)
		}
	}
	t.Logf("grub-script-check: %d GRUB configs valid", len(files))
}
