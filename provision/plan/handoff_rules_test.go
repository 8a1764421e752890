package plan

import (
	"strings"
	"testing"
)

// handoffRuleCases break the base plan (rules_test.go) one way each for the
// hand-off rules of handoff_rules.go.
func handoffRuleCases() []ruleCase {
	os := "  neutron_external_interface: bond0\n"
	cmp := `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}}`
	return []ruleCase{
		{name: "release", old: os, new: os + "  release: 2025.3\n", rule: "openstack-release", path: "openstack.release", sev: Error,
			msg: `"2025.3" is not an OpenStack release`, at: "2025.3"},
		{name: "vrid range", old: os, new: os + "  keepalived_virtual_router_id: 300\n", rule: "keepalived-vrid", path: "openstack.keepalived_virtual_router_id", sev: Error,
			msg: `virtual router id 300 is out of range 1-255`, at: "300"},
		{name: "registry url", old: os, new: os + "  docker_registry: \"http://reg:5000\"\n", rule: "docker-registry", path: "openstack.docker_registry", sev: Error,
			msg: `"http://reg:5000" is not a registry host[:port]`, at: `"http://reg`},
		{name: "registry port", old: os, new: os + "  docker_registry: reg.example.com:99999\n", rule: "docker-registry", path: "openstack.docker_registry", sev: Error,
			msg: `"reg.example.com:99999" is not a registry host[:port]`, at: "reg.example.com:99999"},
		{name: "no internal vip", old: "{name: internal, network: mgmt", new: "{name: api, network: mgmt", rule: "internal-vip", path: "vips", sev: Error,
			msg: `3 controllers but no VIP named "internal": kolla-ansible's HAProxy and Keepalived need kolla_internal_vip_address`, at: "- {name: api"},
		{name: "no vips at all", old: "vips:\n  - {name: internal, network: mgmt, address: 10.0.0.5}\n", new: "", rule: "internal-vip", path: "nodes", sev: Error,
			msg: `3 controllers but no VIP named "internal": kolla-ansible's HAProxy and Keepalived need kolla_internal_vip_address`, at: "- {name: ctl-01"},
		{name: "internal vip off the api network", old: "{name: internal, network: mgmt, address: 10.0.0.5}", new: "{name: internal, network: storage, address: 10.0.2.5}",
			rule: "internal-vip", path: "vips[0].network", sev: Error, msg: `the internal VIP is on network "storage", but the API network is "mgmt"`, at: "storage, address: 10.0.2.5"},
		{name: "ceph without storage network", old: "    purpose: storage\n", new: "    purpose: other\n", rule: "ceph-storage-network", path: "networks", sev: Error,
			msg: `the plan has storage (Ceph OSD) nodes but no storage network`, at: "- name: mgmt"},
		{name: "neutron interface has an address", old: os, new: "  neutron_external_interface: bond0.20\n", rule: "neutron-external-iface", path: "openstack.neutron_external_interface", sev: Error,
			msg: `interface bond0.20 carries node "ctl-01"'s address 10.0.2.11 on network "storage": Neutron's external interface must have no address`, at: "bond0.20"},
		{name: "neutron interface untagged address", old: os, new: "  neutron_external_interface: eno1\n", rule: "neutron-external-iface", path: "openstack.neutron_external_interface", sev: Error,
			msg: `interface eno1 carries node "ctl-01"'s address 10.0.0.11 on network "mgmt": Neutron's external interface must have no address`, at: "eno1\n"},
		{name: "neutron interface bond member", old: os, new: "  neutron_external_interface: eno2\n", rule: "neutron-external-iface", path: "openstack.neutron_external_interface", sev: Error,
			msg: `interface eno2 is a member of a bond on node "ctl-01"`, at: "eno2\n"},
		{name: "neutron interface bad name", old: os, new: "  neutron_external_interface: \"eth 1\"\n", rule: "neutron-external-iface", path: "openstack.neutron_external_interface", sev: Error,
			msg: `"eth 1" is not a valid interface name`, at: `"eth 1"`},
		{name: "neutron interface unknown", old: os, new: "  neutron_external_interface: ens9\n", rule: "neutron-external-iface", path: "openstack.neutron_external_interface", sev: Warning,
			msg: `interface ens9 is not one racklift configures on "ctl-01", "ctl-02", "ctl-03": create it on the node before deploying`, at: "ens9\n"},
		{name: "neutron interface missing", old: "openstack:\n" + os, new: "", rule: "neutron-external-iface", path: "nodes", sev: Warning,
			msg: `Neutron's external interface is not set: racklift handoff cannot write neutron_external_interface for "ctl-01", "ctl-02", "ctl-03"`, at: "- {name: ctl-01"},
		{name: "instance ha without bmc", old: cmp, new: `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04"}`, rule: "instance-ha-fencing", path: "nodes[6]", sev: Error,
			msg: `instance HA needs a fencing path, but compute node "cmp-04" has no BMC`, at: "{name: cmp-04"},
	}
}

// TestHandoffRules checks each hand-off rule's message, severity and exact
// line:col, the way TestRules does for the others.
func TestHandoffRules(t *testing.T) {
	ps := testProfiles(t)
	for _, c := range handoffRuleCases() {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(basePlan, c.old) {
				t.Fatalf("replacement source %q not in base plan", c.old)
			}
			text := strings.Replace(basePlan, c.old, c.new, 1)
			if c.rule == "instance-ha-fencing" {
				text = strings.Replace(text, "  neutron_external_interface: bond0\n", "  neutron_external_interface: bond0\n  instance_ha: true\n", 1)
			}
			p, ds := Load("broken.yaml", []byte(text), Options{Profiles: ps, Secrets: testSecrets(t)})
			if (p == nil) != ds.HasErrors() {
				t.Fatalf("plan nil=%v but HasErrors=%v", p == nil, ds.HasErrors())
			}
			line, col := posOf(t, text, c.at, c.after)
			for _, d := range ds {
				if d.Rule != c.rule || d.Path != c.path {
					continue
				}
				if d.Msg != c.msg {
					t.Errorf("message:\n got %q\nwant %q", d.Msg, c.msg)
				}
				if d.Severity != c.sev {
					t.Errorf("severity: got %s want %s", d.Severity, c.sev)
				}
				if d.Line != line || d.Col != col {
					t.Errorf("position: got %d:%d want %d:%d (%q)", d.Line, d.Col, line, col, c.at)
				}
				if d.File != "broken.yaml" || d.Hint == "" {
					t.Errorf("file %q, hint %q: want file and a fix hint", d.File, d.Hint)
				}
				return
			}
			t.Fatalf("no %s diagnostic at %s; got:\n%s", c.rule, c.path, dump(ds))
		})
	}
}

// TestHandoffRulesNotHA checks that a lab plan (ha: false) only gets a
// warning for a missing internal VIP, and that the openstack: section is
// kept in the plan as written.
func TestHandoffRulesNotHA(t *testing.T) {
	text := strings.Replace(basePlan, "{name: internal, network: mgmt", "{name: api, network: mgmt", 1)
	text = strings.Replace(text, "  profile: rocky9\n", "  profile: rocky9\n  ha: false\n", 1)
	text = strings.Replace(text, "  neutron_external_interface: bond0\n", "  neutron_external_interface: bond0\n  release: \"2025.2\"\n  keepalived_virtual_router_id: 7\n  docker_registry: reg.lab:4000\n", 1)
	p, ds := Load("lab.yaml", []byte(text), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil {
		t.Fatalf("plan does not load:\n%s", dump(ds))
	}
	found := false
	for _, d := range ds {
		if d.Rule == "internal-vip" {
			found = d.Severity == Warning
		}
	}
	if !found {
		t.Errorf("want an internal-vip warning; got:\n%s", dump(ds))
	}
	want := OpenStack{Release: "2025.2", KeepalivedVirtualRouterID: 7, DockerRegistry: "reg.lab:4000", NeutronExternalInterface: "bond0"}
	if p.OpenStack != want {
		t.Errorf("openstack section: got %+v want %+v", p.OpenStack, want)
	}
	if got := nodeNames(p.NeutronHosts()); got != `"ctl-01", "ctl-02", "ctl-03"` {
		t.Errorf("NeutronHosts without network nodes: %s", got)
	}
	if got := nodeNames(p.CephMonHosts()); got != `"ctl-01", "ctl-02", "ctl-03"` {
		t.Errorf("CephMonHosts: %s", got)
	}
}
