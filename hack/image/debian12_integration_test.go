//go:build integration

package imagetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/image"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestDebian12Image(t *testing.T) {
	if os.Geteuid() != 0 {
		testbed.SkipOrFail(t, "needs root (mmdebstrap, network namespaces)")
	}
	for _, tool := range []string{"mmdebstrap", "sgdisk", "mkfs.ext4", "mkfs.vfat", "mcopy", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			testbed.SkipOrFail(t, "%s not installed (hack/install-deps.sh)", tool)
		}
	}
	for _, f := range []string{testbed.OVMFSecureCode, testbed.OVMFSecureVars} {
		if _, err := os.Stat(f); err != nil {
			testbed.SkipOrFail(t, "%s missing (Debian package ovmf)", f)
		}
	}
	repo := repoRoot(t)
	raw := os.Getenv("RACKLIFT_DEBIAN12_IMAGE")
	if raw == "" {
		raw = filepath.Join(repo, "out", "debian12.raw")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()

	// Build, or reuse a build with the same inputs.
	start := time.Now()
	build := exec.CommandContext(ctx, filepath.Join(repo, "hack", "image", "build-debian12.sh"))
	build.Env = append(os.Environ(), "IMAGE_OUT="+raw)
	out, err := build.CombinedOutput()
	buildTime := time.Since(start)
	if err != nil {
		t.Fatalf("build-debian12.sh: %v\n%s", err, tail(string(out), 4000))
	}
	reused := strings.Contains(string(out), "reusing ")
	t.Logf("image: %s in %.0f s (reused: %v)", raw, buildTime.Seconds(), reused)

	// Import with racklift's store.
	s, err := image.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	m, err := s.Import(ctx, "debian12", raw, nil)
	importTime := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	blobs, blobBytes := m.BlobStats()
	t.Logf("import: %.1f s, %.0f MB/s; size %s, mapped %s (%d chunks), %d blobs = %s zstd",
		importTime.Seconds(), float64(m.Size)/1e6/importTime.Seconds(), image.FormatBytes(m.Size),
		image.FormatBytes(m.MappedBytes), len(m.Chunks), blobs, image.FormatBytes(blobBytes))
	checkManifest(t, m)

	// The guest's VLAN 42 is not terminated here: this machine's kernel has
	// neither 8021q nor bridge VLAN filtering. The bridge floods the
	// guest's tagged ARP requests to br0, where a packet socket sees them.
	ns := testbed.NewNetns(t, "img", "10.99.0.1/24")
	for i, fw := range []testbed.Firmware{testbed.BIOS, testbed.SecureBoot} {
		t.Run(fw.String(), func(t *testing.T) { bootImage(ctx, t, s, ns, fw, i) })
	}
}

func checkManifest(t *testing.T, m *image.Manifest) {
	t.Helper()
	if m.Table != "gpt" || !m.BIOS || m.EFILoader != `\EFI\debian\shimx64.efi` || m.EFIPartition != 2 || m.GrowPartition != 3 {
		t.Fatalf("manifest: table %s bios %v loader %q esp %d grow %d", m.Table, m.BIOS, m.EFILoader, m.EFIPartition, m.GrowPartition)
	}
	files := strings.Join(m.EFIFiles, " ")
	for _, f := range []string{`\EFI\BOOT\BOOTX64.EFI`, `\EFI\BOOT\grubx64.efi`, `\EFI\debian\grubx64.efi`} {
		if !strings.Contains(files, f) {
			t.Fatalf("ESP lacks %s: %s", f, files)
		}
	}
	if len(m.Partitions) != 3 || m.Partitions[0].Type != image.GPTTypeBIOSBoot || m.Partitions[2].Type != image.GPTTypeRootAMD64 {
		t.Fatalf("partitions %+v", m.Partitions)
	}
	if m.Size != 2<<30 || m.MappedBytes > m.Size/2 {
		t.Fatalf("size %d mapped %d", m.Size, m.MappedBytes)
	}
}

// The guest's report: one "RLTEST key=value" line per fact on the console.
const reportScript = `#!/bin/sh
out() { echo "RLTEST $*" > /dev/console; }
if [ -d /sys/firmware/efi ]; then out firmware=uefi; else out firmware=bios; fi
out sb_state="$(mokutil --sb-state 2>&1 | head -n 1)"
v=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c
[ -r "$v" ] && out sb_var="$(od -An -tu1 -j4 -N1 "$v" | tr -d ' ')"
out lockdown="$(cat /sys/kernel/security/lockdown 2>/dev/null)"
out hostname="$(hostname)"
out bond_mode="$(cut -d' ' -f1 /sys/class/net/bond0/bonding/mode 2>/dev/null)"
out bond_slaves="$(cat /sys/class/net/bond0/bonding/slaves 2>/dev/null)"
out vlan="$(awk -F'|' '$1 ~ /bond0.42/ { gsub(/ /, ""); print $2 "@" $3 }' /proc/net/vlan/config 2>/dev/null)"
out addrs="$(ip -o -4 addr show | awk '$2 != "lo" { printf "%s=%s ", $2, $4 }')"
ping -c 1 -W 5 10.99.0.1 >/dev/null 2>&1 && out ping_lan=ok || out ping_lan=fail
# No one answers on VLAN 42 (see watchVLAN): this sends tagged ARP requests.
ping -c 3 -W 2 10.99.42.1 >/dev/null 2>&1 || true
out default_route="$(ip -4 route show default | head -n 1)"
out dns="$(awk '/^nameserver/ { printf "%s ", $2 }' /etc/resolv.conf)"
out root_fs_bytes="$(df -B1 --output=size / | tail -n 1 | tr -d ' ')"
out root_part_bytes="$(lsblk -bno SIZE /dev/vda3)"
out machine_id="$(cat /etc/machine-id)"
out ssh_host_keys="$(ls /etc/ssh/ssh_host_*_key.pub 2>/dev/null | wc -l)"
out ssh="$(systemctl is-active ssh)"
out root_password="$(passwd -S root | cut -d' ' -f2)"
out users="$(awk -F: '$3 >= 1000 && $3 < 65534 { printf "%s ", $1 }' /etc/passwd)"
out tools="$(command -v python3) $(command -v lsblk) $(command -v growpart) $(command -v route)"
out eni="$(ls /etc/network/interfaces.d/ 2>/dev/null | tr '\n' ' ')"
out failed="$(systemctl --failed --no-legend --plain | awk '{ printf "%s ", $1 }')"
echo RLTEST-DONE > /dev/console
`

func bootImage(ctx context.Context, t *testing.T, s *image.Store, ns *testbed.Netns, fw testbed.Firmware, i int) {
	dir := t.TempDir()
	if keep := os.Getenv("RACKLIFT_TESTBED_KEEP"); keep != "" {
		dir = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The disk as the store gives it back (every checksum checked), on a
	// larger virtual disk so that growpart has room.
	disk := filepath.Join(dir, "os.raw")
	start := time.Now()
	if err := s.Extract(ctx, "debian12", disk); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 3<<30); err != nil {
		t.Fatal(err)
	}
	t.Logf("extract: %.1f s", time.Since(start).Seconds())

	host := "rl-" + fw.String()
	ip := fmt.Sprintf("10.99.0.%d", 50+i)
	vip := fmt.Sprintf("10.99.42.%d", 50+i)
	mac0 := fmt.Sprintf("52:54:00:99:0a:%02x", i)
	mac1 := fmt.Sprintf("52:54:00:98:0a:%02x", i)
	files := map[string]string{
		"meta-data": "instance-id: rltest-" + fw.String() + "\nlocal-hostname: " + host + "\n",
		"user-data": "#cloud-config\n" +
			"write_files:\n  - path: /usr/local/sbin/rltest\n    permissions: '0755'\n    content: |\n" +
			indent(reportScript, "      ") +
			"runcmd:\n  - [/usr/local/sbin/rltest]\n",
		"network-config": "version: 2\n" +
			"ethernets:\n" +
			"  nic0: {match: {macaddress: '" + mac0 + "'}, set-name: nic0}\n" +
			"  nic1: {match: {macaddress: '" + mac1 + "'}, set-name: nic1}\n" +
			"bonds:\n" +
			"  bond0:\n" +
			"    interfaces: [nic0, nic1]\n" +
			"    parameters: {mode: active-backup, primary: nic0, mii-monitor-interval: 100}\n" +
			"    addresses: [" + ip + "/24]\n" +
			"    routes: [{to: 0.0.0.0/0, via: 10.99.0.1}]\n" +
			"    nameservers: {addresses: [10.99.0.1], search: [lab.example]}\n" +
			"vlans:\n" +
			"  bond0.42: {id: 42, link: bond0, addresses: [" + vip + "/24]}\n",
	}
	seed := filepath.Join(dir, "seed.img")
	os.Remove(seed)
	run(t, "mkfs.vfat", "-n", "CIDATA", "-C", seed, "2048")
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "mcopy", "-i", seed, p, "::/"+name)
	}

	tagged := watchVLAN(t, ns, 42, mac0, vip)
	vm := testbed.StartVM(t, ns, testbed.VMOptions{
		Name: "deb-" + fw.String(), Firmware: fw, MAC: mac0, MemMB: 1024,
		DiskPath: disk, BootDisk: true, Dir: dir, NoReboot: true,
		Disks: []testbed.Disk{{Path: seed, Serial: "seed"}},
		NICs:  []testbed.NIC{{MAC: mac1}},
	})
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Minute)
	defer wcancel()
	done, err := vm.WaitSerialTime(wctx, "RLTEST-DONE")
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]string{}
	for _, l := range vm.Timeline() {
		i := strings.Index(l.Text, "RLTEST ")
		if i < 0 {
			continue
		}
		if k, v, ok := strings.Cut(l.Text[i+len("RLTEST "):], "="); ok {
			facts[k] = strings.TrimSpace(v)
		}
	}
	vm.Kill()
	t.Logf("%s: boot to marker %.0f s (QEMU CPU %.0f s); %s", fw, done.Seconds(), vm.CPUTime().Seconds(), milestones(vm))
	for _, k := range slices.Sorted(maps.Keys(facts)) {
		t.Logf("  %s = %s", k, facts[k])
	}

	want := map[string]string{
		"hostname":      host,
		"bond_mode":     "active-backup",
		"bond_slaves":   "nic0 nic1",
		"vlan":          "42@bond0",
		"ping_lan":      "ok",
		"ssh":           "active",
		"root_password": "L",
		// cloud-init's Debian default user (locked, no key): the image adds none.
		"users": "debian",
	}
	if fw == testbed.BIOS {
		want["firmware"] = "bios"
	} else {
		want["firmware"] = "uefi"
		want["sb_state"] = "SecureBoot enabled"
		want["sb_var"] = "1"
	}
	for k, v := range want {
		if facts[k] != v {
			t.Errorf("%s = %q, want %q", k, facts[k], v)
		}
	}
	if !strings.Contains(facts["addrs"], "bond0="+ip+"/24") || !strings.Contains(facts["addrs"], "bond0.42="+vip+"/24") {
		t.Errorf("addresses %q", facts["addrs"])
	}
	if n := tagged(); n == 0 {
		t.Errorf("no ARP request from %s tagged with VLAN 42 reached the bridge", vip)
	} else {
		t.Logf("  %d ARP requests from %s tagged with VLAN 42 seen on br0", n, vip)
	}
	if !strings.Contains(facts["default_route"], "via 10.99.0.1 dev bond0") {
		t.Errorf("default route %q", facts["default_route"])
	}
	if facts["dns"] != "10.99.0.1" {
		t.Errorf("dns %q, want 10.99.0.1 (resolvconf applies the dns-nameservers cloud-init writes)", facts["dns"])
	}
	if n, _ := strconv.ParseInt(facts["root_fs_bytes"], 10, 64); n < 2<<30 {
		t.Errorf("root file system %s bytes: growpart/resize_rootfs did not grow it onto the 3 GiB disk", facts["root_fs_bytes"])
	}
	if id := facts["machine_id"]; len(id) != 32 {
		t.Errorf("machine-id %q", id)
	}
	if facts["ssh_host_keys"] == "0" || facts["ssh_host_keys"] == "" {
		t.Error("no SSH host keys made at first boot")
	}
	if !strings.Contains(facts["tools"], "/usr/bin/python3") || !strings.Contains(facts["tools"], "lsblk") || !strings.Contains(facts["tools"], "route") {
		t.Errorf("tools %q", facts["tools"])
	}
	if facts["failed"] != "" {
		t.Errorf("failed units: %s", facts["failed"])
	}
}

// milestones reports when the boot passed its stages (since power on).
func milestones(vm *testbed.VM) string {
	marks := []struct{ name, text string }{
		{"grub", "GRUB"},
		{"kernel", "Linux version"},
		{"systemd", "systemd["},
		{"cloud-init", "Cloud-init v."},
		{"login", "login:"},
	}
	var out []string
	tl := vm.Timeline()
	for _, m := range marks {
		for _, l := range tl {
			if strings.Contains(l.Text, m.text) {
				out = append(out, fmt.Sprintf("%s %.0f s", m.name, l.At.Seconds()))
				break
			}
		}
	}
	return strings.Join(out, ", ")
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

// watchVLAN counts the ARP requests for sender IP src that reach br0 from
// MAC mac tagged with VLAN vid, until the returned function is called; it
// returns the count. The tag is read in the frame or, when the kernel has
// moved it out of the frame, from the packet socket's auxiliary data.
func watchVLAN(t *testing.T, ns *testbed.Netns, vid int, mac, src string) func() int {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	sip := net.ParseIP(src).To4()
	// The protocol in network byte order, as the socket calls want it.
	proto := int(binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, unix.ETH_P_ALL)))
	var fd int
	err = ns.Do(func() error {
		ifi, err := net.InterfaceByName(testbed.Bridge)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 0, Usec: 200000})
	})
	if err != nil {
		t.Fatalf("packet socket on br0: %v", err)
	}
	var mu sync.Mutex
	count := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		oob := make([]byte, 256)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil || n < 14 {
				continue
			}
			frame := buf[:n]
			if !bytes.Equal(frame[6:12], hw) {
				continue
			}
			tag, eth := -1, frame[12:]
			if binary.BigEndian.Uint16(eth) == 0x8100 && len(eth) >= 6 {
				tag, eth = int(binary.BigEndian.Uint16(eth[2:])&0xfff), eth[4:]
			} else if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					// struct tpacket_auxdata: status, len, snaplen (u32);
					// mac, net, vlan_tci, vlan_tpid (u16).
					if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= 20 &&
						binary.NativeEndian.Uint32(m.Data)&unix.TP_STATUS_VLAN_VALID != 0 {
						tag = int(binary.NativeEndian.Uint16(m.Data[16:]) & 0xfff)
					}
				}
			}
			// An ARP request (ethertype 0x0806, opcode 1) from src.
			if tag == vid && len(eth) >= 2+28 && binary.BigEndian.Uint16(eth) == 0x0806 &&
				binary.BigEndian.Uint16(eth[2+6:]) == 1 && bytes.Equal(eth[2+14:2+18], sip) {
				mu.Lock()
				count++
				mu.Unlock()
			}
		}
	}()
	var once sync.Once
	finish := func() int {
		once.Do(func() {
			close(stop)
			<-done
			unix.Close(fd)
		})
		mu.Lock()
		defer mu.Unlock()
		return count
	}
	t.Cleanup(func() { finish() })
	return finish
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
