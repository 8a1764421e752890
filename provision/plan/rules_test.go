package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/racklift/racklift/profiles"
)

// basePlan is a small valid HA plan; each rule test breaks one thing in it.
const basePlan = `cluster:
  name: t
  domain: t.example.com
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBaseTestKeyBaseTestKeyBaseTestKey t@t"]
  profile: rocky9
openstack:
  neutron_external_interface: bond0
networks:
  - name: mgmt
    purpose: management
    provisioning: true
    cidr: 10.0.0.0/24
    gateway: 10.0.0.1
    allocate: {default: 10.0.0.100, controller: 10.0.0.10}
  - name: ipmi
    purpose: bmc
    cidr: 10.0.1.0/24
  - name: storage
    purpose: storage
    cidr: 10.0.2.0/24
    vlan: 20
    mtu: 9000
    allocate: {default: 10.0.2.100, controller: 10.0.2.10}
vips:
  - {name: internal, network: mgmt, address: 10.0.0.5}
defaults:
  bmc: {driver: ipmi, user: admin, password_secret: bmc}
  nics: [{name: eno1}, {name: eno2}, {name: eno3}]
  bonds: [{name: bond0, members: [eno2, eno3]}]
  networks:
    storage: {interface: bond0}
  disks:
    os: {path: /dev/sda}
nodes:
  - {name: ctl-01, roles: [controller, ceph-mon], mac: "52:54:00:00:00:01", bmc: {address: 10.0.1.1}}
  - {name: ctl-02, roles: [controller, ceph-mon], mac: "52:54:00:00:00:02", bmc: {address: 10.0.1.2}}
  - {name: ctl-03, roles: [controller, ceph-mon], mac: "52:54:00:00:00:03", bmc: {address: 10.0.1.3}}
  - {name: osd-01, roles: [storage], mac: "52:54:00:00:01:01", bmc: {address: 10.0.1.11}, disks: {osds: [{path: /dev/sdb}]}}
  - {name: osd-02, roles: [storage], mac: "52:54:00:00:01:02", bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}}
  - {name: osd-03, roles: [storage], mac: "52:54:00:00:01:03", bmc: {address: 10.0.1.13}, disks: {osds: [{path: /dev/sdb}]}}
  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}}
`

// testSecrets resolves every secret (as if from RACKLIFT_SECRET_* variables).
func testSecrets(t testing.TB) *Secrets {
	t.Helper()
	s, err := LoadSecrets("", func(string) (string, bool) { return "$6$testsalt$0123456789abcdefghijklmnopqrstuv", true })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testProfiles(t testing.TB) *profiles.Set {
	t.Helper()
	ps, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestBasePlanValid(t *testing.T) {
	p, ds := Load("base.yaml", []byte(basePlan), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil || len(ds) != 1 || ds[0].Rule != "ha-osd-hosts" {
		// the only diagnostic: 3 OSD hosts equals the pool size (a warning).
		t.Fatalf("base plan: want exactly the ha-osd-hosts warning, got:\n%v", dump(ds))
	}
	n, ok := p.NodeByName("osd-02")
	if !ok {
		t.Fatal("osd-02 missing")
	}
	a, _ := n.AddressOn("storage")
	if a.Addr.String() != "10.0.2.102" || a.Device != "bond0.20" || !a.Allocated {
		t.Errorf("osd-02 storage: got %s on %s (allocated %v)", a.Addr, a.Device, a.Allocated)
	}
	c, _ := p.NodeByName("ctl-01")
	if pa, _ := c.Provisioning(); pa.Addr.String() != "10.0.0.11" || pa.Device != "eno1" {
		t.Errorf("ctl-01 pxe: %s on %s", pa.Addr, pa.Device)
	}
	if _, ok := c.AddressOn("storage"); !ok {
		t.Error("ceph-mon ctl-01 should be on the storage network")
	}
	if m, ok := p.NodeByMAC("52-54-00-00-00-02"); !ok || m.Name != "ctl-02" {
		t.Error("NodeByMAC with dashes failed")
	}
}

func dump(ds Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + " [" + d.Rule + "]\n")
	}
	return b.String()
}

// ruleCase breaks the base plan with one text replacement and expects one
// diagnostic: its rule, severity, path, exact message, and that its position
// is where the text `at` starts in the broken plan (after `after`, if set).
type ruleCase struct {
	name       string
	old, new   string
	rule, path string
	sev        Severity
	msg        string
	at, after  string
	// extra is a second replacement (old, new), applied first.
	extra [2]string
}

// longName is a valid DNS label (at most 63) whose FQDN in basePlan's
// domain is longer than a Linux host name may be (64).
var longName = "cmp-" + strings.Repeat("x", 55)

func ruleCases() []ruleCase {
	ctl1 := `  - {name: ctl-01, roles: [controller, ceph-mon], mac: "52:54:00:00:00:01", bmc: {address: 10.0.1.1}}`
	cmp := `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}}`
	return []ruleCase{
		{name: "yaml syntax", old: "  profile: rocky9\n", new: "  profile: rocky9\n  ntp: [a, b\n", rule: "yaml-syntax", path: "#syntax", sev: Error,
			msg: "did not find expected ',' or ']'", at: "  ntp: [a"},
		{name: "unknown field with suggestion", old: "  profile: rocky9\n", new: "  profile: rocky9\n  timezon: UTC\n", rule: "unknown-field", path: "cluster.timezon", sev: Error,
			msg: `unknown field "timezon"`, at: "timezon"},
		{name: "password in plan", old: "password_secret: bmc}", new: "password: hunter2}", rule: "unknown-field", path: "defaults.bmc.password", sev: Error,
			msg: `unknown field "password"`, at: "password:"},
		{name: "duplicate key", old: "  profile: rocky9\n", new: "  profile: rocky9\n  profile: ubuntu2404\n", rule: "yaml-duplicate", path: "cluster.profile#dup", sev: Error,
			msg: `"profile" is set twice`, at: "profile: ubuntu2404"},
		{name: "wrong type", old: "    vlan: 20\n", new: "    vlan: twenty\n", rule: "yaml-type", path: "networks[2].vlan", sev: Error,
			msg: `want a whole number, got "twenty"`, at: "twenty"},
		{name: "bad mac", old: `"52:54:00:00:01:02"`, new: `"52:54:00:00:01:zz"`, rule: "mac", path: "nodes[4].mac", sev: Error,
			msg: `"52:54:00:00:01:zz": not a MAC address`, at: `"52:54:00:00:01:zz"`},
		{name: "multicast mac", old: `"52:54:00:00:01:02"`, new: `"01:00:5e:00:00:01"`, rule: "mac", path: "nodes[4].mac", sev: Error,
			msg: `"01:00:5e:00:00:01": multicast MAC`, at: `"01:00:5e`},
		{name: "duplicate mac", old: `"52:54:00:00:01:02"`, new: `"52:54:00:00:01:01"`, rule: "mac-unique", path: "nodes[4].mac", sev: Error,
			msg: `MAC 52:54:00:00:01:01 is already used by node "osd-01"`, at: `"52:54:00:00:01:01"`, after: "osd-02"},
		{name: "duplicate name", old: "name: osd-02", new: "name: osd-01", rule: "name-unique", path: "nodes[4].name", sev: Error,
			msg: `node "osd-01" is defined twice`, at: "osd-01", after: `"52:54:00:00:01:01"`},
		{name: "name not dns-safe", old: "name: cmp-04", new: "name: Cmp_04", rule: "name-dns", path: "nodes[6].name", sev: Error,
			msg: `"Cmp_04" is not a valid host name`, at: "Cmp_04"},
		{name: "bmc address duplicate", old: "address: 10.0.1.12}", new: "address: 10.0.1.11}", rule: "address-unique", path: "nodes[4].bmc.address", sev: Error,
			msg: `10.0.1.11 is already used by the BMC of "osd-01"`, at: "10.0.1.11}", after: "osd-02"},
		{name: "bmc outside bmc network", old: "address: 10.0.1.24}", new: "address: 10.0.9.24}", rule: "bmc-in-network", path: "nodes[6].bmc.address", sev: Error,
			msg: `BMC address 10.0.9.24 is not inside the BMC network "ipmi" (10.0.1.0/24)`, at: "10.0.9.24"},
		{name: "bmc driver", old: "driver: ipmi", new: "driver: ilo", rule: "bmc-driver", path: "defaults.bmc.driver", sev: Error,
			msg: `unknown BMC driver "ilo"`, at: "ilo"},
		{name: "bmc driver on node", old: "address: 10.0.1.24}", new: "address: 10.0.1.24, driver: idrac}", rule: "bmc-driver", path: "nodes[6].bmc.driver", sev: Error,
			msg: `unknown BMC driver "idrac"`, at: "idrac"},
		{name: "cidr overlap", old: "cidr: 10.0.2.0/24", new: "cidr: 10.0.0.0/16", rule: "cidr-overlap", path: "networks[2].cidr", sev: Error,
			msg: `10.0.0.0/16 overlaps network "mgmt" (10.0.0.0/24)`, at: "10.0.0.0/16"},
		{name: "cidr host bits", old: "cidr: 10.0.1.0/24", new: "cidr: 10.0.1.7/24", rule: "cidr", path: "networks[1].cidr", sev: Error,
			msg: `10.0.1.7/24 has host bits set`, at: "10.0.1.7/24"},
		{name: "vlan range", old: "vlan: 20", new: "vlan: 5000", rule: "vlan", path: "networks[2].vlan", sev: Error,
			msg: `VLAN 5000 is out of range`, at: "5000"},
		{name: "vlan unique", old: "    cidr: 10.0.1.0/24\n", new: "    cidr: 10.0.1.0/24\n    vlan: 20\n", rule: "vlan-unique", path: "networks[2].vlan", sev: Error,
			msg: `VLAN 20 is already used by network "ipmi"`, at: "20\n    mtu"},
		{name: "provisioning tagged", old: "    provisioning: true\n", new: "    provisioning: true\n    vlan: 10\n", rule: "provisioning-vlan", path: "networks[0].vlan", sev: Error,
			msg: `the provisioning network must be untagged: PXE firmware cannot tag VLANs`, at: "10\n"},
		{name: "no provisioning network", old: "    provisioning: true\n", new: "", rule: "provisioning", path: "networks", sev: Error,
			msg: `no network is the provisioning network`, at: "- name: mgmt"},
		{name: "gateway outside", old: "gateway: 10.0.0.1", new: "gateway: 10.0.5.1", rule: "address-in-network", path: "networks[0].gateway", sev: Error,
			msg: `gateway 10.0.5.1 is not a host address of 10.0.0.0/24`, at: "10.0.5.1"},
		{name: "vip outside network", old: "address: 10.0.0.5}", new: "address: 10.0.2.5}", rule: "address-in-network", path: "vips[0].address", sev: Error,
			msg: `VIP 10.0.2.5 is not inside network "mgmt" (10.0.0.0/24)`, at: "10.0.2.5"},
		{name: "vip same as gateway", old: "address: 10.0.0.5}", new: "address: 10.0.0.1}", rule: "address-unique", path: "vips[0].address", sev: Error,
			msg: `10.0.0.1 is already used by the gateway of network "mgmt"`, at: "10.0.0.1}"},
		{name: "node address used twice", old: cmp, new: `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}, networks: {mgmt: {address: 10.0.0.11}}}`,
			rule: "address-unique", path: "nodes[6].networks.mgmt.address", sev: Error,
			msg: `10.0.0.11 is already used by node "ctl-01" on "mgmt"`, at: "10.0.0.11"},
		{name: "address outside network", old: cmp, new: `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}, networks: {mgmt: {address: 10.0.7.4}}}`,
			rule: "address-in-network", path: "nodes[6].networks.mgmt.address", sev: Error,
			msg: `10.0.7.4 is not a host address of network "mgmt" (10.0.0.0/24)`, at: "10.0.7.4"},
		{name: "dynamic range holds a node", old: "    allocate: {default: 10.0.0.100, controller: 10.0.0.10}\n", new: "    allocate: {default: 10.0.0.100, controller: 10.0.0.10}\n    dynamic_range: {start: 10.0.0.104, end: 10.0.0.150}\n",
			rule: "address-unique", path: "nodes[6].networks.mgmt.address", sev: Error, msg: `10.0.0.104 is inside the dynamic range of "mgmt"`, at: "{name: cmp-04"},
		{name: "missing interface for role network", old: "    storage: {interface: bond0}\n", new: "", rule: "network-iface", path: "nodes[0].networks.storage", sev: Error,
			msg: `node "ctl-01" needs network "storage" but no interface carries it`, at: "{name: ctl-01"},
		{name: "interface is a bond member", old: "storage: {interface: bond0}", new: "storage: {interface: eno2}", rule: "network-iface", path: "nodes[0].networks.storage.interface", sev: Error,
			msg: `NIC "eno2" is a bond member and cannot carry network "storage"`, at: "{name: ctl-01"},
		{name: "no automatic address", old: "    allocate: {default: 10.0.2.100, controller: 10.0.2.10}\n", new: "", rule: "address-missing", path: "nodes[0].networks.storage.address", sev: Error,
			msg: `node "ctl-01" has no address on network "storage"`, at: "{name: ctl-01"},
		{name: "storage mtu", old: "    mtu: 9000\n", new: "", rule: "storage-mtu", path: "networks[2].mtu", sev: Warning,
			msg: `storage network "storage" has MTU 1500`, at: "name: storage"},
		{name: "bond member unknown", old: "members: [eno2, eno3]", new: "members: [eno2, eno9]", rule: "bond-members", path: "defaults.bonds[0].members[1]", sev: Error,
			msg: `bond "bond0" member "eno9" is not a NIC of node "ctl-01"`, at: "eno9"},
		{name: "one controller", old: "roles: [controller, ceph-mon], mac: \"52:54:00:00:00:02\"", new: "roles: [ceph-mon], mac: \"52:54:00:00:00:02\"", rule: "ha-controllers", path: "nodes", sev: Warning,
			msg: `2 controllers can only run active/passive: HAProxy/Keepalived fail over but Galera and RabbitMQ lose quorum when one is down`, at: "- {name: ctl-01"},
		{name: "galera even", old: cmp, new: cmp + "\n" + `  - {name: db-01, roles: [database], mac: "52:54:00:00:03:01", bmc: {address: 10.0.1.31}}` + "\n" + `  - {name: db-02, roles: [database], mac: "52:54:00:00:03:02", bmc: {address: 10.0.1.32}}`,
			rule: "ha-galera", path: "nodes", sev: Error, msg: `MariaDB Galera needs at least 3 nodes for quorum; the plan has 2 database node(s)`, at: "- {name: ctl-01"},
		{name: "galera on 4 controllers", old: cmp, new: `  - {name: ctl-04, roles: [controller], mac: "52:54:00:00:00:04", bmc: {address: 10.0.1.4}}`,
			rule: "ha-galera", path: "nodes", sev: Error, msg: `MariaDB Galera with 4 controller (Galera runs on the controllers) nodes is even: a network split into halves stops both`, at: "- {name: ctl-01"},
		{name: "rabbitmq too few", old: cmp, new: cmp + "\n" + `  - {name: mq-01, roles: [messaging], mac: "52:54:00:00:04:01", bmc: {address: 10.0.1.41}}`,
			rule: "ha-rabbitmq", path: "nodes", sev: Error, msg: `RabbitMQ needs a cluster of at least 3 for quorum queues; the plan has 1 messaging node(s)`, at: "- {name: ctl-01"},
		{name: "one network node", old: cmp, new: cmp + "\n" + `  - {name: net-01, roles: [network], mac: "52:54:00:00:05:01", bmc: {address: 10.0.1.51}}`,
			rule: "ha-network", path: "nodes", sev: Error, msg: `1 network node: Neutron L3 HA (VRRP) and redundant DHCP agents need at least 2`, at: "- {name: ctl-01"},
		{name: "ceph mons too few", old: "roles: [controller, ceph-mon], mac: \"52:54:00:00:00:03\"", new: "roles: [controller], mac: \"52:54:00:00:00:03\"",
			rule: "ha-ceph-mon", path: "nodes", sev: Error, msg: `Ceph monitors need at least 3 for quorum; the plan has 2 ceph-mon node(s)`, at: "- {name: ctl-01"},
		{name: "ceph mons even", old: "roles: [storage], mac: \"52:54:00:00:01:01\"", new: "roles: [storage, ceph-mon], mac: \"52:54:00:00:01:01\"",
			rule: "ha-ceph-mon", path: "nodes", sev: Error, msg: `Ceph monitors should be odd; the plan has 4 ceph-mon nodes`, at: "- {name: ctl-01"},
		{name: "osd hosts below pool size", old: "  profile: rocky9\n", new: "  profile: rocky9\n  ceph_pool_size: 4\n",
			rule: "ha-osd-hosts", path: "nodes", sev: Error, msg: `3 OSD host(s) is fewer than the pool size 4: Ceph cannot place every replica on its own host`, at: "- {name: ctl-01"},
		{name: "compute without bmc", old: cmp, new: `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04"}`,
			rule: "fencing", path: "nodes[6]", sev: Warning, msg: `compute node "cmp-04" has no BMC: no fencing path for instance HA, and it must be powered on by hand`, at: "{name: cmp-04"},
		{name: "osd is os disk", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sda}]}`,
			rule: "osd-os-disk", path: "nodes[4].disks.osds[0]", sev: Error, msg: `/dev/sda is the OS disk of node "osd-02"`, at: "{path: /dev/sda}", after: "osd-02"},
		{name: "disk twice", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}, {path: /dev/sdb}]}`,
			rule: "disk-twice", path: "nodes[4].disks.osds[1]", sev: Error, msg: `/dev/sdb is already listed as OSD 0`, at: "{path: /dev/sdb}]", after: "osd-02"},
		{name: "osd is os disk, path with //", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev//sda}]}`,
			rule: "osd-os-disk", path: "nodes[4].disks.osds[0]", sev: Error, msg: `/dev/sda is the OS disk of node "osd-02"`, at: "{path: /dev//sda}", after: "osd-02"},
		{name: "osd path not clean", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/./sdc}]}`,
			rule: "disk-ref", path: "nodes[4].disks.osds[0].path", sev: Warning, msg: `"/dev/./sdc" is /dev/sdc; racklift uses /dev/sdc`, at: "/dev/./sdc", after: "osd-02"},
		{name: "osd on a partition of the os disk", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sda2}]}`,
			rule: "osd-os-disk", path: "nodes[4].disks.osds[0]", sev: Error, msg: `/dev/sda2 is the OS disk of node "osd-02" (/dev/sda and /dev/sda2 are on one disk)`, at: "{path: /dev/sda2}", after: "osd-02"},
		{name: "osd and its partition", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}, {path: /dev/sdb1}]}`,
			rule: "disk-twice", path: "nodes[4].disks.osds[1]", sev: Error, msg: `/dev/sdb1 is already listed as OSD 0 (/dev/sdb and /dev/sdb1 are on one disk)`, at: "{path: /dev/sdb1}", after: "osd-02"},
		{name: "fqdn too long for a host name", old: "name: cmp-04", new: "name: " + longName, rule: "name-length", path: "nodes[6].name", sev: Error,
			msg: `node "` + longName + `": FQDN "` + (longName + ".t.example.com")[:60] + `"… (` + fmt.Sprint(len(longName)+14-60) + ` more characters) is ` + fmt.Sprint(len(longName)+14) + ` characters`, at: longName},
		{name: "disk two identifiers", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb, serial: X1}]}`,
			rule: "disk-ref", path: "nodes[4].disks.osds[0]", sev: Error, msg: `a disk needs exactly one of path, by_id, serial (found 2)`, at: "{path: /dev/sdb, serial"},
		{name: "storage without osds", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}`,
			rule: "osd-missing", path: "nodes[4]", sev: Error, msg: `storage node "osd-02" has no OSD disks`, at: "{name: osd-02"},
		{name: "hyperconverged memory", old: cmp, new: `  - {name: cmp-04, roles: [compute, storage], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}, disks: {osds: [{path: /dev/sdb}]}}`,
			rule: "hci-memory", path: "nodes[6]", sev: Warning, msg: `hyper-converged node "cmp-04" (compute + storage) reserves no memory for its 1 OSD(s)`, at: "{name: cmp-04"},
		{name: "bad sysctl in defaults", old: "  disks:\n    os: {path: /dev/sda}\n", new: "  disks:\n    os: {path: /dev/sda}\n  sysctl: {\"vm swappiness\": \"1\"}\n",
			rule: "sysctl", path: `defaults.sysctl["vm swappiness"]`, sev: Error, msg: `"vm swappiness" is not a valid sysctl setting`, at: `"1"}`},
		{name: "kernel arg with space", old: cmp, new: `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}, kernel_args: ["quiet splash"]}`,
			rule: "kernel-arg", path: "nodes[6].kernel_args[0]", sev: Error, msg: `"quiet splash" is not a single kernel argument`, at: `"quiet splash"`},
		{name: "bios boot mode", old: "  disks:\n    os: {path: /dev/sda}\n", new: "  disks:\n    os: {path: /dev/sda}\n  bios: {boot_mode: efi}\n",
			rule: "bios-boot-mode", path: "defaults.bios.boot_mode", sev: Error, msg: `unknown boot mode "efi"`, at: "efi}"},
		{name: "secure boot needs uefi", old: "  disks:\n    os: {path: /dev/sda}\n", new: "  disks:\n    os: {path: /dev/sda}\n  bios: {boot_mode: legacy, secure_boot: true}\n",
			rule: "secure-boot-mode", path: "defaults.bios.secure_boot", sev: Error, msg: `node "ctl-01" has secure_boot: true but boot_mode legacy`, at: "true}"},
		{name: "secure boot on a legacy node", old: cmp, new: `  - {name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}, bios: {boot_mode: legacy}}` + "\n  - {name: cmp-05, roles: [compute], mac: \"52:54:00:00:02:05\", bmc: {address: 10.0.1.25}}",
			rule: "secure-boot-mode", path: "nodes[6].bios.boot_mode", sev: Error, msg: `node "cmp-04" has secure_boot: true but boot_mode legacy`, at: "legacy}}",
			extra: [2]string{"  disks:\n    os: {path: /dev/sda}\n", "  disks:\n    os: {path: /dev/sda}\n  bios: {secure_boot: true}\n"}},
		{name: "disk size unit", old: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb}]}`, new: `bmc: {address: 10.0.1.12}, disks: {osds: [{path: /dev/sdb, size: 480X}]}`,
			rule: "disk-size", path: "nodes[4].disks.osds[0].size", sev: Error, msg: `"480X" is not a disk size: unknown unit "X"`, at: "480X"},
		{name: "disk size zero", old: "    os: {path: /dev/sda}\n", new: "    os: {path: /dev/sda, size: 0G}\n",
			rule: "disk-size", path: "defaults.disks.os.size", sev: Error, msg: `"0G" is not a disk size: the size is zero`, at: "0G}"},
		{name: "unknown profile", old: "profile: rocky9", new: "profile: rocky8", rule: "profile", path: "cluster.profile", sev: Error,
			msg: `unknown OS profile "rocky8"`, at: "rocky8"},
		{name: "unknown role", old: "roles: [compute]", new: "roles: [compute, nova]", rule: "role", path: "nodes[6].roles[1]", sev: Error,
			msg: `unknown role "nova"`, at: "nova"},
		{name: "ssh key", old: `ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBaseTestKeyBaseTestKeyBaseTestKey t@t"]`, new: `ssh_keys: ["not a key"]`, rule: "ssh-key", path: "cluster.ssh_keys[0]", sev: Error,
			msg: `not an SSH public key`, at: `"not a key"`},
		{name: "timezone", old: "  domain: t.example.com\n", new: "  domain: t.example.com\n  timezone: Mars/Olympus\n", rule: "timezone", path: "cluster.timezone", sev: Error,
			msg: `unknown time zone "Mars/Olympus"`, at: "Mars/Olympus"},
		{name: "pxe nic mac mismatch", old: ctl1, new: `  - {name: ctl-01, roles: [controller, ceph-mon], mac: "52:54:00:00:00:01", bmc: {address: 10.0.1.1}, networks: {mgmt: {interface: eno1}}, nics: [{name: eno1, mac: "52:54:00:00:09:01"}, {name: eno2}, {name: eno3}]}`,
			rule: "pxe-nic", path: "nodes[0].networks.mgmt.interface", sev: Error, msg: `NIC "eno1" has MAC 52:54:00:00:09:01 but the node PXE-boots from 52:54:00:00:00:01`, at: "eno1}}"},
		{name: "no pxe nic", old: ctl1, new: `  - {name: ctl-01, roles: [controller, ceph-mon], mac: "52:54:00:00:00:01", bmc: {address: 10.0.1.1}, nics: [{name: eno1, mac: "52:54:00:00:09:01"}, {name: eno2}, {name: eno3}]}`,
			rule: "pxe-nic", path: "nodes[0].networks.mgmt", sev: Error, msg: `no unbonded NIC of node "ctl-01" has its PXE MAC 52:54:00:00:00:01`, at: "{name: ctl-01"},
	}
}

// posOf returns the 1-based line and column where needle starts in s, after
// the first occurrence of after (if given).
func posOf(t *testing.T, s, needle, after string) (int, int) {
	t.Helper()
	start := 0
	if after != "" {
		i := strings.Index(s, after)
		if i < 0 {
			t.Fatalf("after-marker %q not in plan", after)
		}
		start = i
	}
	i := strings.Index(s[start:], needle)
	if i < 0 {
		t.Fatalf("position marker %q not in plan", needle)
	}
	i += start
	line := strings.Count(s[:i], "\n") + 1
	col := i - strings.LastIndex(s[:i], "\n")
	return line, col
}

func TestRules(t *testing.T) {
	ps := testProfiles(t)
	seen := map[string]bool{}
	for _, c := range ruleCases() {
		t.Run(c.name, func(t *testing.T) {
			text := basePlan
			if c.extra[0] != "" {
				if !strings.Contains(text, c.extra[0]) {
					t.Fatalf("replacement source %q not in base plan", c.extra[0])
				}
				text = strings.Replace(text, c.extra[0], c.extra[1], 1)
			}
			if !strings.Contains(text, c.old) {
				t.Fatalf("replacement source %q not in base plan", c.old)
			}
			text = strings.Replace(text, c.old, c.new, 1)
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
				seen[c.rule] = true
				return
			}
			t.Fatalf("no %s diagnostic at %s; got:\n%s", c.rule, c.path, dump(ds))
		})
	}
}

// TestEveryProblemAtOnce checks that several independent problems are all
// reported in one run, in file order.
func TestEveryProblemAtOnce(t *testing.T) {
	text := strings.NewReplacer(
		`"52:54:00:00:01:02"`, `"zz"`,
		"vlan: 20", "vlan: 9999",
		"profile: rocky9", "profile: nope",
		"roles: [compute]", "roles: [compute, bogus]",
	).Replace(basePlan)
	_, ds := Load("multi.yaml", []byte(text), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	want := []string{"profile", "vlan", "mac", "role"}
	var got []string
	for _, d := range ds {
		if d.Severity == Error && (d.Rule == "profile" && d.Path == "cluster.profile" || d.Rule == "vlan" || d.Rule == "mac" || d.Rule == "role") {
			got = append(got, d.Rule)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got rules %v, want %v in file order; all:\n%s", got, want, dump(ds))
	}
	for i := 1; i < len(ds); i++ {
		if ds[i].Line < ds[i-1].Line {
			t.Fatalf("diagnostics not in file order:\n%s", dump(ds))
		}
	}
}
