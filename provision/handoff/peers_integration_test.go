//go:build integration

package handoff

// The hand-off's files checked by the deployers' own parsers, for every
// example plan (the 512-node large site included):
//
//	ansible-inventory (Debian ansible-core) parses kolla/multinode strictly,
//	    and each kolla group a deploy needs has the plan's nodes;
//	Ceph's own spec classes (Debian python3-ceph-common, run with
//	    /usr/bin/python3) load and validate every document of
//	    ceph/cluster.yaml;
//	bash -n and shellcheck accept ceph/bootstrap.sh;
//	the YAML files parse (PyYAML, a dependency of both);
//	ssh-keygen reads the deployment key and derives the same public key.
//
//	apt-get install ansible-core python3-ceph-common shellcheck openssh-client

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

func need(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		testbed.SkipOrFail(t, "%s is not installed (hack/install-deps.sh)", bin)
	}
	return p
}

// cephCheck loads a multi-document cephadm spec file with Ceph's classes.
const cephCheck = `
import sys, yaml
from ceph.deployment.service_spec import ServiceSpec
from ceph.deployment.hostspec import HostSpec
n = 0
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc is None:
        continue
    if doc.get("service_type") == "host":
        h = HostSpec.from_json(doc)
        assert h.hostname and h.addr, doc
    else:
        s = ServiceSpec.from_json(doc)
        s.validate()
        if s.service_type == "osd":
            assert s.data_devices.paths, doc
    n += 1
print(n)
`

const yamlCheck = `
import sys, yaml
for f in sys.argv[1:]:
    list(yaml.safe_load_all(open(f)))
`

func TestDeployersAcceptHandoff(t *testing.T) {
	ansible := need(t, "ansible-inventory")
	shellcheck := need(t, "shellcheck")
	keygen := need(t, "ssh-keygen")
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import ceph.deployment.service_spec, ceph.deployment.hostspec, yaml").CombinedOutput(); err != nil {
		testbed.SkipOrFail(t, "Ceph's Python classes are not importable with %s (python3-ceph-common): %v %s", py, err, out)
	}
	names, err := fs.Glob(plan.Examples(), "*.yaml")
	if err != nil || len(names) < 3 {
		t.Fatalf("examples %v %v", names, err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p := loadExample(t, strings.TrimSuffix(name, ".yaml"))
			nodes := allVerified(p, true)
			for _, n := range p.NeutronHosts() { // the lab's veth pair, made by the engineer
				f := nodes[n.Name].Facts
				if !slices.ContainsFunc(f.Interfaces, func(i nodeapi.Interface) bool { return i.Name == p.OpenStack.NeutronExternalInterface }) {
					f.Interfaces = append(f.Interfaces, nodeapi.Interface{Name: p.OpenStack.NeutronExternalInterface})
				}
			}
			key, err := LoadOrCreateDeployKey(t.TempDir(), "racklift-deploy@"+p.Cluster.Name)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Build(p, Inputs{Nodes: nodes, DeployKey: key})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "handoff")
			if err := b.WriteDir(dir); err != nil {
				t.Fatal(err)
			}

			// ansible-inventory, strictly: an unparsable inventory fails.
			start := time.Now()
			cmd := exec.Command(ansible, "-i", filepath.Join(dir, "kolla", "multinode"), "--list")
			cmd.Env = append(os.Environ(), "ANSIBLE_INVENTORY_UNPARSED_FAILED=True", "ANSIBLE_INVENTORY_ENABLED=ini", "ANSIBLE_LOCAL_TEMP="+t.TempDir(), "HOME="+t.TempDir())
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ansible-inventory: %v\n%s", err, exitText(err))
			}
			t.Logf("ansible-inventory --list: %d nodes in %v", len(p.Nodes), time.Since(start).Round(time.Millisecond))
			hosts := inventoryHosts(t, out)
			checkGroups(t, p, hosts)

			// Ceph's own classes.
			if _, ok := b.File("ceph/cluster.yaml"); ok {
				out, err := exec.Command(py, "-c", cephCheck, filepath.Join(dir, "ceph", "cluster.yaml")).CombinedOutput()
				if err != nil {
					t.Fatalf("Ceph spec classes refuse ceph/cluster.yaml: %v\n%s", err, out)
				}
				t.Logf("Ceph accepted %s specs", strings.TrimSpace(string(out)))
				sh := filepath.Join(dir, "ceph", "bootstrap.sh")
				if out, err := exec.Command("bash", "-n", sh).CombinedOutput(); err != nil {
					t.Errorf("bash -n bootstrap.sh: %v\n%s", err, out)
				}
				if out, err := exec.Command(shellcheck, "-s", "bash", sh).CombinedOutput(); err != nil {
					t.Errorf("shellcheck bootstrap.sh: %v\n%s", err, out)
				}
			}

			var ymls []string
			for _, f := range b.Files {
				if strings.HasSuffix(f.Path, ".yml") || strings.HasSuffix(f.Path, ".yaml") {
					ymls = append(ymls, filepath.Join(dir, f.Path))
				}
			}
			if out, err := exec.Command(py, append([]string{"-c", yamlCheck}, ymls...)...).CombinedOutput(); err != nil {
				t.Errorf("YAML does not parse: %v\n%s", err, out)
			}

			// ssh-keygen reads the private key and derives the same public key.
			out, err = exec.Command(keygen, "-y", "-f", filepath.Join(dir, "ssh", "id_ed25519")).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh-keygen -y: %v\n%s", err, out)
			}
			if got := strings.Fields(string(out)); len(got) < 2 || !strings.HasPrefix(key.Public, got[0]+" "+got[1]) {
				t.Errorf("ssh-keygen derives %q, the bundle says %q", strings.TrimSpace(string(out)), key.Public)
			}
		})
	}
}

func exitText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// inventoryHosts resolves every group of ansible-inventory --list output to
// its hosts, children included.
func inventoryHosts(t *testing.T, out []byte) map[string][]string {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("ansible-inventory output: %v", err)
	}
	type group struct {
		Hosts    []string `json:"hosts"`
		Children []string `json:"children"`
	}
	groups := map[string]group{}
	for k, v := range raw {
		if k == "_meta" {
			continue
		}
		var g group
		if err := json.Unmarshal(v, &g); err != nil {
			t.Fatalf("group %s: %v", k, err)
		}
		groups[k] = g
	}
	memo := map[string][]string{}
	var resolve func(string, int) []string
	resolve = func(name string, depth int) []string {
		if v, ok := memo[name]; ok || depth > 20 {
			return v
		}
		g := groups[name]
		hs := slices.Clone(g.Hosts)
		for _, c := range g.Children {
			hs = append(hs, resolve(c, depth+1)...)
		}
		slices.Sort(hs)
		hs = slices.Compact(hs)
		memo[name] = hs
		return hs
	}
	out2 := map[string][]string{}
	for name := range groups {
		out2[name] = resolve(name, 0)
	}
	return out2
}

// checkGroups asserts that each kolla group a deploy needs exists and holds
// the plan's nodes of the role that runs it.
func checkGroups(t *testing.T, p *plan.Plan, hosts map[string][]string) {
	t.Helper()
	for _, sg := range kollaServiceGroups {
		if _, ok := hosts[sg.name]; !ok && !slices.Contains([]string{"mariadb", "rabbitmq"}, sg.name) {
			// ansible-inventory --list leaves out groups with no host at all.
			if len(hosts[sg.children[0]]) > 0 {
				t.Errorf("group %s is missing", sg.name)
			}
		}
	}
	want := func(g string, nodes []*plan.Node) {
		t.Helper()
		if len(nodes) == 0 {
			return
		}
		for _, n := range nodes {
			if !slices.Contains(hosts[g], n.Name) {
				t.Errorf("[%s] lacks %s (has %d hosts)", g, n.Name, len(hosts[g]))
			}
		}
	}
	ctl := p.NodesWith(plan.RoleController)
	for _, g := range []string{"control", "loadbalancer", "keystone", "glance-api", "nova-api", "nova-scheduler", "nova-conductor", "placement-api", "neutron-server", "horizon", "memcached", "heat-api", "cinder-api"} {
		want(g, ctl)
	}
	db := p.NodesWith(plan.RoleDatabase)
	if len(db) == 0 {
		db = ctl
	}
	want("mariadb", db)
	mq := p.NodesWith(plan.RoleMessaging)
	if len(mq) == 0 {
		mq = ctl
	}
	want("rabbitmq", mq)
	for _, g := range []string{"network", "neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent", "openvswitch"} {
		want(g, p.NeutronHosts())
	}
	for _, g := range []string{"compute", "openvswitch", "baremetal", "common"} {
		want(g, p.NodesWith(plan.RoleCompute))
	}
	for _, g := range []string{"baremetal", "common", "cron", "fluentd", "kolla-toolbox"} {
		want(g, p.Nodes)
	}
	if len(p.NodesWith(plan.RoleStorage)) > 0 {
		want("cinder-volume", p.NodesWith(plan.RoleStorage))
		want("cinder-backup", p.NodesWith(plan.RoleStorage))
	}
	want("monitoring", p.NodesWith(plan.RoleMonitoring))
	if p.OpenStack.InstanceHA {
		want("hacluster", ctl)
		want("masakari-hostmonitor", ctl)
		want("hacluster-remote", p.NodesWith(plan.RoleCompute))
		want("masakari-instancemonitor", p.NodesWith(plan.RoleCompute))
	}
}
