//go:build integration

package verify_test

// The facts script and verification against a real Linux network stack:
// Debian's kernel boots in QEMU (TCG) with three virtio NICs and three
// virtio disks; its /init builds the plan's network the way cloud-init's
// ifupdown rendering does (bond0 active-backup over eth1 and eth2, VLAN
// bond0.30 with MTU 9000 and an address, the default route), then runs the
// facts script with this host's /usr/bin/python3 (the host's /usr is
// shared read-only over 9p: Debian 12 has a merged /usr). verify.Compare
// then checks the facts against the plan the network was built from; a
// second run after setting bond0.30's MTU to 1500 must add exactly that
// mismatch.
//
// Why a VM and not a network namespace: the test machines' kernels have
// no bonding and no 802.1Q support (CONFIG_BONDING and CONFIG_VLAN_8021Q
// are off, no modules), so a namespace on the host cannot hold a bond or
// a VLAN; Debian's kernel in the guest has both, as an installed node has.
//
//	go test -tags integration -run TestFactsOnRealKernel -v ./provision/verify/

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/provision/verify"
	"github.com/racklift/racklift/templates"
)

// factsPlan is the plan of the guest: eth0 on the provisioning network,
// bond0 over eth1+eth2 carrying VLAN 30 (MTU 9000), an OS disk by serial
// and size, one OSD disk with a partition table and one blank.
const factsPlan = `
cluster:
  name: ft
  domain: ft.test
  dns: [10.99.0.53]
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZhY3RzdGVzdGtleW5vdHJlYWxhdGFsbGF0YWxs test@ft"]
  profile: debian12
  ha: false
networks:
  - {name: mgmt, purpose: management, provisioning: true, cidr: 10.99.0.0/24, gateway: 10.99.0.1}
  - {name: storage, purpose: storage, cidr: 10.99.30.0/24, vlan: 30, mtu: 9000}
nodes:
  - name: ft-01
    roles: [storage]
    mac: "52:54:00:99:20:01"
    bios: {boot_mode: legacy}
    nics:
      - {name: eth0}
      - {name: eth1, mac: "52:54:00:99:21:01"}
      - {name: eth2, mac: "52:54:00:99:22:01"}
    bonds: [{name: bond0, mode: active-backup, members: [eth1, eth2]}]
    networks:
      mgmt: {interface: eth0, address: 10.99.0.5}
      storage: {interface: bond0, address: 10.99.30.5}
    disks:
      os: {serial: RLOS0001, size: 64MiB}
      osds: [{path: /dev/vdb}, {serial: RLOSD0003, size: 64MiB}]
`

// guestModules are loaded by the guest's /init (with their dependencies).
var guestModules = []string{"virtio_pci", "virtio_net", "virtio_blk", "9pnet_virtio", "9p", "bonding", "8021q"}

// guestInit is the guest's /init (busybox sh). It never runs on the host.
const guestInit = `#!/busybox sh
/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
bb=/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sys /sys
$bb mount -t tmpfs tmp /tmp
$bb mount -t tmpfs run /run
for m in $($bb cat /modules/order); do
  opts=""
  [ "$m" = bonding.ko ] && opts=max_bonds=0   # no automatic bond0: ip creates it
  $bb insmod /modules/$m $opts || echo "FACTS-TEST: insmod $m failed"
done
$bb mount -t 9p -o trans=virtio,version=9p2000.L,ro hostusr /usr || echo "FACTS-TEST: error: mount /usr"
$bb mount -t 9p -o trans=virtio,version=9p2000.L work /work || echo "FACTS-TEST: error: mount /work"
$bb hostname ft-01
export PATH=/usr/sbin:/usr/bin
# busybox sh prefers its own applets: run Debian's iproute2 by path, as
# cloud-init's ifupdown would.
ip() { /usr/bin/ip "$@"; }
step() { echo "FACTS-TEST: $*"; "$@" || echo "FACTS-TEST: error: $*"; }
step ip link set lo up
step ip link set eth0 mtu 1500 up
step ip addr add 10.99.0.5/24 dev eth0
step ip link add bond0 type bond mode active-backup miimon 100
step ip link set eth1 down
step ip link set eth1 master bond0
step ip link set eth2 down
step ip link set eth2 master bond0
step ip link set bond0 mtu 9000 up
step ip link add link bond0 name bond0.30 type vlan id 30
step ip link set bond0.30 mtu 9000 up
step ip addr add 10.99.30.5/24 dev bond0.30
step ip route add default via 10.99.0.1 dev eth0
$bb sleep 2
/usr/bin/python3 /work/racklift-facts.py > /work/facts-1.json 2> /work/facts-1.err || echo "FACTS-TEST: error: facts 1"
step ip link set bond0.30 mtu 1500
/usr/bin/python3 /work/racklift-facts.py > /work/facts-2.json 2> /work/facts-2.err || echo "FACTS-TEST: error: facts 2"
$bb sync
echo "FACTS-TEST: done"
$bb poweroff -f
`

func TestFactsOnRealKernel(t *testing.T) {
	for _, tool := range []string{"qemu-system-x86_64", "dpkg-deb", "cpio"} {
		if _, err := exec.LookPath(tool); err != nil {
			testbed.SkipOrFail(t, "%s is missing (make deps)", tool)
		}
	}
	for _, f := range []string{testbed.BusyboxPath, "/usr/bin/python3", "/usr/bin/ip", "/usr/bin/lsblk"} {
		if _, err := os.Stat(f); err != nil {
			testbed.SkipOrFail(t, "%s is missing (make deps)", f)
		}
	}
	// The guest's /lib64 and /lib point into the host's /usr.
	if l, err := os.Readlink("/lib64"); err != nil || !strings.HasSuffix(l, "usr/lib64") {
		testbed.SkipOrFail(t, "this host has no merged /usr (/lib64 -> usr/lib64); the guest needs it to run the host's python3")
	}
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load("facts.yaml", []byte(factsPlan), plan.Options{Profiles: profs})
	if p == nil {
		t.Fatalf("test plan: %v", ds)
	}
	n, _ := p.NodeByName("ft-01")

	cacheDir, err := testbed.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	kernel, _ := testbed.BuildPayload(t, cacheDir)
	deb := filepath.Join(cacheDir, strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")+".deb")
	mods := guestModuleFiles(t, cacheDir, deb)
	dir := t.TempDir()
	initrd := buildGuestInitrd(t, dir, mods)

	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, templates.FactsScriptName), templates.FactsScript(), 0o755); err != nil {
		t.Fatal(err)
	}
	disks := map[string]string{"RLOS0001": "", "RLOSD0002": "", "RLOSD0003": ""}
	for serial := range disks {
		img := filepath.Join(dir, serial+".img")
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 64<<20); err != nil {
			t.Fatal(err)
		}
		disks[serial] = img
	}
	writeMBR(t, disks["RLOSD0002"])

	serial := filepath.Join(dir, "serial.log")
	args := []string{"-accel", "tcg", "-machine", "pc", "-m", "768", "-smp", "1", "-nodefaults", "-no-reboot",
		"-display", "none", "-serial", "file:" + serial,
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0,115200 panic=-1 net.ifnames=0",
		"-virtfs", "local,path=/usr,mount_tag=hostusr,security_model=none,readonly=on,id=fs0",
		"-virtfs", "local,path=" + work + ",mount_tag=work,security_model=none,id=fs1"}
	for i, mac := range []string{"52:54:00:99:20:01", "52:54:00:99:21:01", "52:54:00:99:22:01"} {
		args = append(args, "-netdev", fmt.Sprintf("hubport,id=n%d,hubid=%d", i, i),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=n%d,mac=%s", i, mac))
	}
	for i, s := range []string{"RLOS0001", "RLOSD0002", "RLOSD0003"} {
		args = append(args, "-drive", fmt.Sprintf("file=%s,if=none,id=d%d,format=raw", disks[s], i),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=d%d,serial=%s", i, s))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	start := time.Now()
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(serial)
		t.Fatalf("qemu: %v\n%s\nserial:\n%s", err, qout.String(), tail(log, 4000))
	}
	log, _ := os.ReadFile(serial)
	t.Logf("guest ran %v (TCG)", time.Since(start).Round(100*time.Millisecond))
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "FACTS-TEST") || strings.Contains(line, "bond") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if !bytes.Contains(log, []byte("FACTS-TEST: done")) || bytes.Contains(log, []byte("FACTS-TEST: error")) || bytes.Contains(log, []byte("insmod")) && bytes.Contains(log, []byte("failed")) {
		t.Fatalf("guest did not finish cleanly; serial:\n%s", tail(log, 6000))
	}

	// Run 1: the network as planned.
	f1 := decodeFacts(t, work, "facts-1")
	checkGuestFacts(t, f1)
	r := verify.Compare(p, n, f1)
	want := []string{
		"OS disk serial RLOS0001 (vda) does not hold the root file system (no disk holds it)",
		"OSD disk /dev/vdb has a partition table (dos), partitions vdb1: Ceph needs a blank disk",
	}
	if got := reasons(r); !slices.Equal(got, want) {
		t.Errorf("run 1 mismatches:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	t.Logf("run 1: %d checks; %s", r.Checked, r.Summary())

	// Run 2: bond0.30's MTU lowered to 1500.
	f2 := decodeFacts(t, work, "facts-2")
	r = verify.Compare(p, n, f2)
	want = append([]string{"bond0.30 MTU 1500, plan 9000"}, want...)
	if got := reasons(r); !slices.Equal(got, want) {
		t.Errorf("run 2 mismatches:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	t.Logf("run 2: %s", r.Summary())
}

func reasons(r verify.Result) []string {
	var out []string
	for _, m := range r.Mismatches {
		out = append(out, m.Reason)
	}
	return out
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// decodeFacts reads a facts run's output as the server does.
func decodeFacts(t *testing.T, work, name string) *nodeapi.Facts {
	t.Helper()
	out, err := os.ReadFile(filepath.Join(work, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	stderr, _ := os.ReadFile(filepath.Join(work, name+".err"))
	var body nodeapi.CallbackBody
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Facts == nil {
		t.Fatalf("%s: %v\n%s\nstderr: %s", name, err, out, stderr)
	}
	t.Logf("%s: %s", name, body.Detail)
	return body.Facts
}

// checkGuestFacts checks what the script saw, field by field, beyond what
// Compare looks at.
func checkGuestFacts(t *testing.T, f *nodeapi.Facts) {
	t.Helper()
	byName := map[string]nodeapi.Interface{}
	for _, x := range f.Interfaces {
		byName[x.Name] = x
	}
	if _, ok := byName["lo"]; ok {
		t.Error("lo is listed")
	}
	b := byName["bond0"]
	if b.Kind != "bond" || b.Bond == nil || b.Bond.Mode != "active-backup" || !slices.Equal(b.Bond.Members, []string{"eth1", "eth2"}) || b.MTU != 9000 || b.State != "up" {
		t.Errorf("bond0: %+v %+v", b, b.Bond)
	}
	e1, e2 := byName["eth1"], byName["eth2"]
	if e1.Master != "bond0" || e2.Master != "bond0" || e1.MTU != 9000 || e2.MTU != 9000 {
		t.Errorf("members: %+v %+v", e1, e2)
	}
	// active-backup gives every member the bond's MAC; the script reports
	// the second member's own MAC as perm_mac.
	if e2.MAC != b.MAC || e2.PermMAC != "52:54:00:99:22:01" || e1.Driver != "virtio_net" {
		t.Errorf("member MACs: eth1 %s/%s, eth2 %s/%s, bond %s", e1.MAC, e1.PermMAC, e2.MAC, e2.PermMAC, b.MAC)
	}
	v := byName["bond0.30"]
	if v.Kind != "vlan" || v.VLAN == nil || v.VLAN.ID != 30 || v.VLAN.Parent != "bond0" || v.MTU != 9000 || !slices.Equal(v.Addresses, []string{"10.99.30.5/24"}) {
		t.Errorf("bond0.30: %+v %+v", v, v.VLAN)
	}
	if !slices.Contains(f.Routes, nodeapi.Route{Dst: "default", Gateway: "10.99.0.1", Dev: "eth0"}) ||
		!slices.Contains(f.Routes, nodeapi.Route{Dst: "10.99.30.0/24", Dev: "bond0.30"}) {
		t.Errorf("routes: %+v", f.Routes)
	}
	if f.Hostname != "ft-01" || f.FQDN != "ft-01.ft.test" || !slices.Equal(f.DNS, []string{"10.99.0.53"}) {
		t.Errorf("names: %q %q %v", f.Hostname, f.FQDN, f.DNS)
	}
	var serials []string
	for _, d := range f.Disks {
		serials = append(serials, d.Name+"="+d.Serial)
		if d.SizeBytes != 64<<20 {
			t.Errorf("%s: size %d", d.Name, d.SizeBytes)
		}
	}
	if !slices.Equal(serials, []string{"vda=RLOS0001", "vdb=RLOSD0002", "vdc=RLOSD0003"}) {
		t.Errorf("disks: %v", serials)
	}
	if f.UEFI || f.SecureBoot != nil || f.Kernel == "" || f.OS.ID != "debian" {
		t.Errorf("firmware/os: uefi %v sb %v kernel %q os %+v", f.UEFI, f.SecureBoot, f.Kernel, f.OS)
	}
}

// writeMBR writes a DOS partition table with one Linux partition (sectors
// 2048-6143) into the disk image at path.
func writeMBR(t *testing.T, path string) {
	t.Helper()
	var mbr [512]byte
	e := mbr[446:462]
	e[4] = 0x83 // Linux
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], 4096)
	mbr[510], mbr[511] = 0x55, 0xaa
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(mbr[:], 0); err != nil {
		t.Fatal(err)
	}
}

// guestModuleFiles returns the guest's modules in load order, extracted
// once from the kernel package into the cache (with their dependencies,
// from each module's .modinfo "depends=").
func guestModuleFiles(t *testing.T, cacheDir, deb string) []string {
	t.Helper()
	dst := filepath.Join(cacheDir, "facts-modules-"+strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if b, err := os.ReadFile(filepath.Join(dst, "order")); err == nil {
		var out []string
		for _, m := range strings.Fields(string(b)) {
			out = append(out, filepath.Join(dst, m))
		}
		return out
	}
	tmp, err := os.MkdirTemp(cacheDir, "facts-unpack-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if out, err := exec.Command("dpkg-deb", "-x", deb, tmp).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v: %s", deb, err, out)
	}
	index := map[string]string{}
	err = filepath.WalkDir(filepath.Join(tmp, "lib", "modules"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".ko") {
			index[strings.ReplaceAll(strings.TrimSuffix(d.Name(), ".ko"), "-", "_")] = p
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	done := map[string]bool{}
	var visit func(name string, depth int)
	visit = func(name string, depth int) {
		name = strings.ReplaceAll(name, "-", "_")
		if done[name] || depth > 20 {
			return
		}
		p, ok := index[name]
		if !ok {
			t.Fatalf("module %s not in %s", name, deb)
		}
		for _, d := range modDeps(t, p) {
			visit(d, depth+1)
		}
		done[name] = true
		order = append(order, p)
	}
	for _, m := range guestModules {
		visit(m, 0)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	var names, out []string
	for _, p := range order {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(p))
		out = append(out, filepath.Join(dst, filepath.Base(p)))
	}
	if err := os.WriteFile(filepath.Join(dst, "order"), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func modDeps(t *testing.T, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok && len(v) > 0 {
			return strings.Split(string(v), ",")
		}
	}
	return nil
}

// buildGuestInitrd writes the guest's initramfs (an uncompressed newc
// cpio made with the cpio tool): busybox, /init, the modules, a minimal
// /etc (the names the plan gives), empty /usr and /work for the 9p mounts,
// and /lib, /lib64, /bin, /sbin pointing into /usr as on Debian 12.
func buildGuestInitrd(t *testing.T, dir string, mods []string) string {
	t.Helper()
	root := filepath.Join(dir, "initramfs")
	files := map[string]string{
		"init":              guestInit,
		"etc/hosts":         "127.0.0.1 localhost\n10.99.0.5 ft-01.ft.test ft-01\n",
		"etc/resolv.conf":   "nameserver 10.99.0.53\n",
		"etc/nsswitch.conf": "hosts: files dns\n",
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":         "root:x:0:\n",
	}
	for _, d := range []string{"usr", "work", "proc", "sys", "dev", "tmp", "run", "modules", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"lib": "usr/lib", "lib64": "usr/lib64", "bin": "usr/bin", "sbin": "usr/sbin"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(testbed.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range mods {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "modules", filepath.Base(m)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		order = append(order, filepath.Base(m))
	}
	if err := os.WriteFile(filepath.Join(root, "modules", "order"), []byte(strings.Join(order, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var list bytes.Buffer
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			list.WriteString(rel + "\n")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd.cpio")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("cpio", "-o", "-H", "newc", "--quiet")
	cmd.Dir, cmd.Stdin, cmd.Stdout = root, &list, f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cpio: %v: %s", err, stderr.String())
	}
	return out
}
