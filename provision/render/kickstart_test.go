package render

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// ksCommands is the RHEL 9 kickstart command set racklift writes, with the
// options each may carry. Every command line of every rendered kickstart
// must use only these (see the Anaconda kickstart reference for RHEL 9).
var ksCommands = map[string][]string{
	"text":       nil,
	"url":        {"--url"},
	"lang":       nil,
	"keyboard":   {"--vckeymap", "--xlayouts"},
	"timezone":   {"--utc"},
	"timesource": {"--ntp-server"},
	"network": {"--device", "--onboot", "--mtu", "--bootproto", "--ip", "--netmask", "--gateway", "--nodefroute",
		"--nameserver", "--noipv4", "--noipv6", "--activate", "--no-activate", "--bondslaves", "--bondopts",
		"--vlanid", "--interfacename", "--hostname"},
	"rootpw":     {"--iscrypted", "--lock"},
	"sshkey":     {"--username"},
	"zerombr":    nil,
	"ignoredisk": {"--only-use"},
	"clearpart":  {"--all", "--initlabel", "--drives"},
	"autopart":   {"--type", "--nohome"},
	"bootloader": {"--boot-drive", "--append"},
	"selinux":    {"--enforcing"},
	"firstboot":  {"--disable"},
	"skipx":      nil,
	"reboot":     nil,
	"%include":   nil,
}

// ksSections are the section headers racklift writes, with their options.
var ksSections = map[string][]string{
	"%pre":      {"--interpreter", "--erroronfail", "--log"},
	"%post":     {"--interpreter", "--erroronfail", "--log", "--nochroot"},
	"%packages": nil,
	"%onerror":  {"--interpreter"},
}

var ksPackageRE = regexp.MustCompile(`^(@\^?[A-Za-z0-9_.-]+|[A-Za-z0-9][A-Za-z0-9_.+:~*-]*)$`)

// checkKickstartCommands checks every line of a kickstart outside scripts.
func checkKickstartCommands(t *testing.T, name string, ks string) {
	t.Helper()
	for _, p := range kickstartProblems(name, ks) {
		t.Error(p)
	}
}

// kickstartProblems lists the lines of ks that use a command, option,
// section or package racklift does not know.
func kickstartProblems(name string, ks string) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	section := ""
	for i, line := range strings.Split(ks, "\n") {
		tl := strings.TrimSpace(line)
		if tl == "" || strings.HasPrefix(tl, "#") && section == "" {
			continue
		}
		fields := strings.Fields(tl)
		if tl == "%end" {
			if section == "" {
				bad("%s:%d: %%end outside a section", name, i+1)
			}
			section = ""
			continue
		}
		if opts, ok := ksSections[fields[0]]; ok && section == "" {
			probs = append(probs, optionProblems(name, i+1, fields, opts)...)
			section = fields[0]
			continue
		}
		switch section {
		case "%packages":
			if !ksPackageRE.MatchString(tl) {
				bad("%s:%d: %q is not a package or group", name, i+1, tl)
			}
			continue
		case "":
		default:
			continue // script body
		}
		opts, ok := ksCommands[fields[0]]
		if !ok {
			bad("%s:%d: %q is not a RHEL 9 kickstart command racklift knows", name, i+1, fields[0])
			continue
		}
		probs = append(probs, optionProblems(name, i+1, fields, opts)...)
	}
	if section != "" {
		bad("%s: section %s not closed", name, section)
	}
	return probs
}

func optionProblems(name string, line int, fields, allowed []string) []string {
	var probs []string
	for _, f := range fields[1:] {
		if !strings.HasPrefix(f, "--") {
			continue // positional (lang, timezone, rootpw hash, quoted key words)
		}
		opt, _, _ := strings.Cut(f, "=")
		if !slices.Contains(allowed, opt) {
			probs = append(probs, fmt.Sprintf("%s:%d: %s: unknown option %s", name, line, fields[0], opt))
		}
	}
	return probs
}

// TestKickstartCommandSet checks every kickstart of every example plan
// (all nodes of the large site included).
func TestKickstartCommandSet(t *testing.T) {
	r := newTestRenderer(t)
	for _, ex := range exampleNames(t) {
		p := loadExample(t, ex)
		for _, n := range p.Nodes {
			b, err := r.File(p, n, nodeapi.FileKickstart, testEnv(n))
			if err != nil {
				if n.Profile != "rocky9" {
					continue
				}
				t.Fatalf("%s/%s: %v", ex, n.Name, err)
			}
			checkKickstartCommands(t, ex+"/"+n.Name, string(b))
		}
	}
	// The special plan: serial-only OS disk, locked root.
	p := loadPlan(t, diskPlan)
	for _, n := range p.Nodes {
		env := testEnv(n)
		env.RootHash = ""
		if b, err := r.File(p, n, nodeapi.FileKickstart, env); err == nil {
			checkKickstartCommands(t, "disks/"+n.Name, string(b))
		}
	}
}

func TestKickstartCommandSetCatchesMistakes(t *testing.T) {
	for _, bad := range []string{
		"text\nnetwork --device=eth0 --bondslave=a,b\n",
		"install\n",
		"%packages\nfoo bar\n%end\n",
		"%pre\necho\n",
		"%end\n",
	} {
		if len(kickstartProblems("bad", bad)) == 0 {
			t.Errorf("not caught:\n%s", bad)
		}
	}
}

// ksCommandLines returns the kickstart command lines outside sections.
func ksCommandLines(ks string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(ks, "\n") {
		tl := strings.TrimSpace(line)
		switch {
		case tl == "%end":
			in = false
		case in:
		case strings.HasPrefix(tl, "%") && !strings.HasPrefix(tl, "%include"):
			in = true
		case tl != "" && !strings.HasPrefix(tl, "#"):
			out = append(out, tl)
		}
	}
	return out
}

// section returns the body of the first section whose header starts with head.
func section(ks, head string) string {
	i := strings.Index(ks, "\n"+head)
	if i < 0 {
		return ""
	}
	rest := ks[i+1:]
	j := strings.Index(rest, "\n%end")
	if j < 0 {
		return rest
	}
	return rest[:j]
}

func TestKickstartBondsAndVLANs(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "hyperconverged")
	n, _ := p.NodeByName("hci-compute-01")
	b, err := r.File(p, n, nodeapi.FileKickstart, testEnv(n))
	if err != nil {
		t.Fatal(err)
	}
	lines := ksCommandLines(string(b))
	var netLines []string
	for _, l := range lines {
		if strings.HasPrefix(l, "network ") {
			netLines = append(netLines, l)
		}
	}
	want := []string{
		"network --device=eno1 --onboot=yes --mtu=1500 --bootproto=static --ip=10.10.0.101 --netmask=255.255.255.0 --gateway=10.10.0.1 --nameserver=10.10.0.2,10.10.0.3 --no-activate",
		"network --device=bond0 --bondslaves=ens1f0,ens1f1 --bondopts=mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4 --onboot=yes --mtu=9000 --noipv4 --noipv6 --no-activate",
		"network --device=bond0 --vlanid=30 --interfacename=bond0.30 --onboot=yes --mtu=9000 --bootproto=static --ip=10.10.30.101 --netmask=255.255.255.0 --nodefroute --no-activate",
		"network --device=bond0 --vlanid=31 --interfacename=bond0.31 --onboot=yes --mtu=9000 --bootproto=static --ip=10.10.31.101 --netmask=255.255.255.0 --nodefroute --no-activate",
		"network --device=bond0 --vlanid=40 --interfacename=bond0.40 --onboot=yes --mtu=9000 --bootproto=static --ip=10.10.40.101 --netmask=255.255.255.0 --nodefroute --no-activate",
		"network --hostname=hci-compute-01.hci.example.net",
	}
	if !slices.Equal(netLines, want) {
		t.Errorf("network lines:\n%s\nwant:\n%s", strings.Join(netLines, "\n"), strings.Join(want, "\n"))
	}
	// Bond members get no line of their own; exactly one default gateway.
	gw := 0
	for _, l := range netLines {
		if strings.Contains(l, "--device=ens1f0 ") || strings.Contains(l, "--device=ens1f1 ") {
			t.Errorf("bond member has its own line: %s", l)
		}
		if strings.Contains(l, "--gateway=") {
			gw++
		}
	}
	if gw != 1 {
		t.Errorf("%d lines with --gateway, want 1", gw)
	}

	// A controller also carries the external network, which has its own
	// gateway but is not the default route.
	c, _ := p.NodeByName("hci-controller-01")
	b, err = r.File(p, c, nodeapi.FileKickstart, testEnv(c))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "--vlanid=50 --interfacename=bond0.50 --onboot=yes --mtu=1500 --bootproto=static --ip=203.0.113.11 --netmask=255.255.255.192 --nodefroute --no-activate") {
		t.Errorf("external VLAN line missing or wrong:\n%s", b)
	}
}

// diskPlan exercises disk identification: serial-only OS disk, by-id, and
// OSD disks with and without wipe.
const diskPlan = `
cluster:
  name: dk
  domain: dk.test
  ntp: [10.1.0.1]
  dns: [10.1.0.1]
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRpc2twbGFudGVzdGtleW5vdHJlYWxhdGFsbA test@dk"]
  root_password_secret: root-hash
  profile: rocky9
  ha: false
networks:
  - {name: mgmt, purpose: management, provisioning: true, cidr: 10.1.0.0/24, gateway: 10.1.0.1, allocate: {default: 10.1.0.100}}
  - {name: storage, purpose: storage, cidr: 10.1.30.0/24, vlan: 30, mtu: 9000, allocate: {default: 10.1.30.100}}
defaults:
  nics: [{name: eno1}, {name: eno2}, {name: eno3}]
  networks: {mgmt: {interface: eno1}, storage: {interface: eno2}}
nodes:
  - name: dk-01
    roles: [controller, storage]
    mac: "52:54:00:aa:00:01"
    disks:
      os: {serial: OSDISK0001}
      osds: [{path: /dev/sdb, wipe: true}, {serial: KEEPME0002}, {path: /dev/sdd}]
  - name: dk-02
    roles: [storage]
    mac: "52:54:00:aa:00:02"
    profile: ubuntu2404
    disks:
      os: {by_id: "wwn-0x5000c500a1b2c3d4"}
      osds: [{serial: WIPEME0003, wipe: true}, {path: /dev/sdc}]
  - name: dk-03
    roles: [storage]
    mac: "52:54:00:aa:00:03"
    profile: ubuntu2404
    disks:
      os: {serial: UBUOS0004}
      osds: [{path: /dev/sdb}]
`

func loadPlan(t testing.TB, src string) *plan.Plan {
	t.Helper()
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load("test.yaml", []byte(src), plan.Options{Profiles: profs})
	if p == nil {
		t.Fatalf("test plan invalid:\n%v", ds)
	}
	return p
}

func TestKickstartDiskConfinement(t *testing.T) {
	r := newTestRenderer(t)
	p := loadPlan(t, diskPlan)
	n, _ := p.NodeByName("dk-01")
	b, err := r.File(p, n, nodeapi.FileKickstart, testEnv(n))
	if err != nil {
		t.Fatal(err)
	}
	ks := string(b)
	cmds := strings.Join(ksCommandLines(ks), "\n")
	// Serial-only OS disk: %pre finds it and %include writes the disk lines.
	if !strings.Contains(cmds, "%include /tmp/racklift-disk.ks") || strings.Contains(cmds, "ignoredisk") {
		t.Errorf("serial OS disk should be confined through %%include:\n%s", cmds)
	}
	pre := section(ks, "%pre")
	for _, want := range []string{`$2=="OSDISK0001"`, "ignoredisk --only-use=%s", "clearpart --all --initlabel --drives=%s", "d='/dev/sdb'", "wipefs -a \"$d\""} {
		if !strings.Contains(pre, want) {
			t.Errorf("%%pre lacks %q:\n%s", want, pre)
		}
	}
	// Only the OSD disk with wipe: true is wiped; the others never appear
	// in a command or script.
	if strings.Count(pre, "wipefs -a") != 1 {
		t.Errorf("want exactly one wipefs:\n%s", pre)
	}
	for _, never := range []string{"KEEPME0002", "/dev/sdd"} {
		for _, l := range strings.Split(ks, "\n") {
			if strings.Contains(l, never) && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				t.Errorf("OSD disk %s used outside a comment: %s", never, l)
			}
		}
	}
	if strings.Contains(cmds, "--boot-drive") {
		t.Errorf("serial-only OS disk cannot be named in --boot-drive:\n%s", cmds)
	}
	if !strings.Contains(cmds, "autopart --type=lvm") || !strings.Contains(cmds, "zerombr") {
		t.Errorf("partitioning commands missing:\n%s", cmds)
	}

	// A path OS disk is named directly in ignoredisk, clearpart and bootloader.
	hp := loadExample(t, "hyperconverged")
	c, _ := hp.NodeByName("hci-compute-02")
	b, err = r.File(hp, c, nodeapi.FileKickstart, testEnv(c))
	if err != nil {
		t.Fatal(err)
	}
	cmds = strings.Join(ksCommandLines(string(b)), "\n")
	os := "/dev/disk/by-path/pci-0000:3b:00.0-scsi-0:2:0:0"
	for _, want := range []string{"ignoredisk --only-use=" + os, "clearpart --all --initlabel --drives=" + os, "bootloader --boot-drive=" + os} {
		if !strings.Contains(cmds, want) {
			t.Errorf("missing %q in:\n%s", want, cmds)
		}
	}
	for _, l := range strings.Split(cmds, "\n") {
		if strings.Contains(l, "nvme") {
			t.Errorf("an OSD disk appears in a command: %s", l)
		}
	}
}

func TestKickstartRootPassword(t *testing.T) {
	r := newTestRenderer(t)
	p := loadExample(t, "lab")
	n, _ := p.NodeByName("lab-01")
	env := testEnv(n)
	b, err := r.File(p, n, nodeapi.FileKickstart, env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nrootpw --iscrypted "+testRootHash+"\n") {
		t.Error("rootpw --iscrypted missing")
	}
	env.RootHash = ""
	b, err = r.File(p, n, nodeapi.FileKickstart, env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\nrootpw --lock\n") || strings.Contains(string(b), "--iscrypted") {
		t.Error("no hash: want rootpw --lock")
	}
	if !strings.Contains(string(b), `sshkey --username=root "ssh-ed25519 `) {
		t.Error("sshkey missing")
	}
}
