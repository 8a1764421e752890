//go:build integration

package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	agentbuild "github.com/racklift/racklift/hack/agent"
	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/agent/bundle"
	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/nodeapi"
)

// repoRoot is the module root (the directory holding go.mod).
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
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testbed.SkipOrFail(t, "%s is missing (hack/install-deps.sh installs it)", tool)
		}
	}
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// agentFiles builds (or reuses) the agent directory under
// hack/.cache/agent, builds racklift statically, and returns the kernel
// and the served initrd (base + racklift) as files.
type agentFiles struct {
	dir, kernel, initrd  string
	baseSize, initrdSize int64
	info                 bundle.Info
}

func buildAgent(t *testing.T) agentFiles {
	t.Helper()
	requireTools(t, "apt-get", "dpkg-deb", "go")
	root := repoRoot(t)
	cache := filepath.Join(root, "hack", ".cache", "agent")
	dir := filepath.Join(cache, "out")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	info, err := agentbuild.Build(ctx, agentbuild.Options{Out: dir, Cache: cache, Logf: t.Logf})
	if err != nil {
		t.Fatalf("build the agent directory: %v", err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "racklift")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "timetzdata", "-ldflags", "-s -w -X main.version=agent-test", "-o", bin, "./cmd/racklift")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build racklift: %v\n%s", err, out)
	}
	start := time.Now()
	b, err := bundle.Load(dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("agent: bundle loaded (racklift appended) in %v", time.Since(start).Round(time.Millisecond))
	af := agentFiles{dir: dir, kernel: filepath.Join(dir, bundle.FileKernel), initrd: filepath.Join(tmp, "initrd.img"), info: info,
		baseSize: info.Files[bundle.FileBaseInitrd].Size, initrdSize: b.Size(bundle.FileInitrd)}
	f, err := b.FS().Open(bundle.FileInitrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(af.initrd, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(bin)
	t.Logf("agent: initrd base %.1f MiB, with racklift %.1f MiB (racklift binary %.1f MiB); kernel %s", float64(af.baseSize)/(1<<20), float64(af.initrdSize)/(1<<20), float64(st.Size())/(1<<20), info.KernelRelease)
	return af
}

// testImage is a small synthetic GPT disk image like a cloud image: a
// BIOS boot partition, an ESP (FAT) holding \EFI\BOOT\BOOTX64.EFI, and an
// ext4 root (mkfs.ext4 -d) with some files and 48 MiB of random data, so
// the image has real bytes to write.
type synthImage struct {
	path     string
	size     int64
	manifest *image.Manifest
	mbytes   []byte
	blobs    map[string][]byte
	rootPart image.Partition
}

func makeSynthImage(t *testing.T, dir string) synthImage {
	t.Helper()
	requireTools(t, "sgdisk", "mkfs.ext4", "mkfs.vfat", "mmd", "mcopy")
	const size = 128 << 20
	img := filepath.Join(dir, "synth.raw")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	runCmd(t, "sgdisk", "-n", "1:2048:+1M", "-t", "1:ef02", "-c", "1:bios",
		"-n", "2:0:+16M", "-t", "2:ef00", "-c", "2:esp",
		"-n", "3:0:0", "-t", "3:8304", "-c", "3:root", img)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ReadGPT(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var parts []image.Partition
	for i, e := range g.Entries {
		if e.Used() {
			parts = append(parts, image.Partition{Number: i + 1, Start: int64(e.FirstLBA) * 512, Size: int64(e.LastLBA-e.FirstLBA+1) * 512, Name: e.NameString()})
		}
	}
	esp, root := parts[1], parts[2]

	espImg := filepath.Join(dir, "esp.img")
	runCmd(t, "mkfs.vfat", "-n", "ESP", "-C", espImg, strconv.FormatInt(esp.Size/1024, 10))
	loader := filepath.Join(dir, "BOOTX64.EFI")
	if err := os.WriteFile(loader, []byte("MZ placeholder loader of the synthetic image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, "mmd", "-i", espImg, "::/EFI", "::/EFI/BOOT")
	runCmd(t, "mcopy", "-i", espImg, loader, "::/EFI/BOOT/BOOTX64.EFI")

	tree := filepath.Join(dir, "rootfs")
	for _, d := range []string{"etc", "var/lib/cloud", "usr/bin", "root"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "etc/os-release"), []byte("ID=racklift-synthetic\nVERSION_ID=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 48<<20)
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i+8 <= len(data); i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			data[i+k] = byte(v >> (8 * k))
		}
	}
	if err := os.WriteFile(filepath.Join(tree, "usr/bin/payload.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	rootImg := filepath.Join(dir, "root.img")
	runCmd(t, "mkfs.ext4", "-q", "-F", "-L", "root", "-E", "root_owner=0:0", "-d", tree, rootImg, strconv.FormatInt(root.Size/1024, 10)+"k")
	for _, p := range []struct {
		file string
		off  int64
	}{{espImg, esp.Start}, {rootImg, root.Start}} {
		runCmd(t, "dd", "if="+p.file, "of="+img, "bs=1M", "oflag=seek_bytes", "seek="+strconv.FormatInt(p.off, 10), "conv=notrunc", "status=none")
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// The importer's format (until provision/image's Store lands here).
	m, blobs := encodeTestImage(t, "synthetic", raw, 0)
	m.Table, m.Partitions, m.GrowPartition, m.BIOS = "gpt", parts, 3, true
	m.EFILoader, m.EFIPartition = `\EFI\BOOT\BOOTX64.EFI`, 2
	mb, _ := json.Marshal(m)
	return synthImage{path: img, size: size, manifest: m, mbytes: mb, blobs: blobs, rootPart: root}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestAgentInstall boots the agent's kernel and initrd in QEMU (direct
// kernel boot, BIOS and UEFI) with three disks, serves it instructions,
// the manifest and the blobs from a test double of racklift in a network
// namespace, and checks the disks after the agent reports installed.
func TestAgentInstall(t *testing.T) {
	requireTools(t, testbed.QEMUBinary, "dnsmasq", "debugfs", "e2fsck", "wipefs", "blkid")
	af := buildAgent(t)
	for _, fw := range []testbed.Firmware{testbed.BIOS, testbed.UEFI} {
		t.Run(fw.String(), func(t *testing.T) { installOnce(t, af, fw) })
	}
}

func installOnce(t *testing.T, af agentFiles, fw testbed.Firmware) {
	dir := t.TempDir()
	if keep := os.Getenv("RACKLIFT_TESTBED_KEEP"); keep != "" {
		dir = filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
		_ = os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := makeSynthImage(t, dir)
	const mac = "52:54:00:99:0a:01"
	const diskSize = 512 << 20
	osDisk := filepath.Join(dir, "os.raw")
	keepDisk := filepath.Join(dir, "osd-keep.raw")
	wipeDisk := filepath.Join(dir, "osd-wipe.raw")
	// An old system on the OS disk; markers on the OSD disks, a GPT
	// (and a BlueStore label in its partition) on the one to wipe.
	for _, p := range []string{osDisk, keepDisk, wipeDisk} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Truncate(osDisk, diskSize); err != nil {
		t.Fatal(err)
	}
	old := bytes.Repeat([]byte("OLD-SYSTEM"), 1<<16)
	writeAt(t, osDisk, old, 0)
	writeAt(t, osDisk, old, diskSize-int64(len(old)))
	for _, p := range []string{keepDisk, wipeDisk} {
		if err := os.Truncate(p, 64<<20); err != nil {
			t.Fatal(err)
		}
	}
	writeAt(t, keepDisk, []byte("bluestore block device\nOSD-KEEP-MARKER"), 0)
	writeAt(t, keepDisk, []byte("OSD-KEEP-MARKER-AT-32MIB"), 32<<20)
	runCmd(t, "sgdisk", "-n", "1:2048:0", "-t", "1:8300", "-c", "1:ceph", wipeDisk)
	writeAt(t, wipeDisk, []byte("bluestore block device\nOSD-WIPE-MARKER"), 2048*512)
	keepSum := sha256File(t, keepDisk)
	if out, _ := exec.Command("wipefs", "--no-act", wipeDisk).CombinedOutput(); !strings.Contains(string(out), "gpt") {
		t.Fatalf("the disk to wipe carries no GPT before the test:\n%s", out)
	}

	ns := testbed.NewNetns(t, "agt", "10.99.0.1/24")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	testbed.SiteDHCP(ctx, t, ns, dir)
	ln, err := ns.Listen("tcp", "10.99.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	server := "http://10.99.0.1:8080"
	in := nodeapi.Instructions{
		Node: "agent-test-01", MAC: mac, Token: "agent-test-token", Server: server,
		Image: nodeapi.ImageRef{Name: img.manifest.Name, ManifestURL: nodeapi.ImageManifestURL(server, img.manifest.Name),
			ManifestSHA256: sha256Hex(img.mbytes), BlobURLs: []string{server}},
		OSDisk: nodeapi.DiskMatch{Serial: "OS-DISK-1", MinBytes: 256 << 20},
		OSDs:   []nodeapi.DiskMatch{{ByID: "virtio-OSD-KEEP"}, {Serial: "OSD-WIPE", Wipe: true}},
		Seed: nodeapi.Seed{
			UserData:      "#cloud-config\nhostname: agent-test-01\n",
			MetaData:      "instance-id: agent-test-01\nlocal-hostname: agent-test-01\n",
			NetworkConfig: "version: 2\nethernets:\n  eth0:\n    match: {macaddress: \"" + mac + "\"}\n    dhcp4: true\n",
		},
		UEFI:   fw.IsUEFI(),
		Reboot: true, // with -no-reboot, the reboot ends QEMU
	}
	fake := newFakeRacklift(in, img.mbytes, img.blobs)
	srv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	args := "console=ttyS0,115200 panic=-1 racklift.server=" + server + " racklift.mac=" + mac + " racklift.onerror=poweroff"
	vm := testbed.StartVM(t, ns, testbed.VMOptions{
		Name: "agent", MAC: mac, Firmware: fw, Dir: dir, MemMB: 768,
		Kernel: af.kernel, Initrd: af.initrd, Append: args,
		DiskPath: osDisk, DiskSerial: "OS-DISK-1",
		Disks:    []testbed.Disk{{Path: keepDisk, Serial: "OSD-KEEP"}, {Path: wipeDisk, Serial: "OSD-WIPE"}},
		NoReboot: true,
	})
	if err := vm.WaitSerial(ctx, MarkerInstalled); err != nil {
		t.Fatalf("%v\ncallbacks: %+v", err, fake.Callbacks())
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("VM: %v", err)
	}
	total, _ := vm.Exited()
	serial := vm.SerialLog()

	// Callbacks: pre, progress (image bytes), post, installed; no error.
	phases := strings.Join(fake.phases(), " ")
	if phases != "pre post installed" {
		t.Errorf("phases %q", phases)
	}
	var imageProgress int
	for _, c := range fake.Callbacks() {
		if c.Phase == nodeapi.PhaseProgress && c.Body.Step == StepImage && c.Body.Bytes > 0 {
			imageProgress++
		}
	}
	if imageProgress == 0 {
		t.Errorf("no image progress callback with bytes: %+v", fake.Callbacks())
	}

	// The OS disk: the image, except the partition table (grown) and the
	// root file system (the agent mounted it and wrote the seed, which
	// changes its blocks; its content is checked below). The agent's own
	// whole-image SHA-256, computed as it wrote, is the manifest's.
	disk, err := os.ReadFile(osDisk)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(img.path)
	if m := regexp.MustCompile(`image written .* sha256=([0-9a-f]{64})`).FindStringSubmatch(serial); m == nil || m[1] != img.manifest.SHA256 {
		t.Errorf("the agent's whole-image SHA-256 %v, the manifest's %s", m, img.manifest.SHA256)
	}
	rs, re := img.rootPart.Start, img.rootPart.Start+img.rootPart.Size
	if !bytes.Equal(disk[34*512:rs], raw[34*512:rs]) {
		t.Error("the OS disk's bytes between the partition table and the root partition (BIOS boot, ESP) are not the image's")
	}
	if !bytes.Equal(disk[re:img.size-33*512], raw[re:img.size-33*512]) {
		t.Error("the OS disk's bytes after the root partition are not the image's")
	}
	if !bytes.Equal(disk[img.size-33*512:img.size], make([]byte, 33*512)) {
		t.Error("the image's backup GPT (now inside the disk) was not cleared")
	}
	if disk[446+4] != 0xee || binary.LittleEndian.Uint32(disk[446+12:]) != diskSize/512-1 {
		t.Errorf("protective MBR entry %x does not cover the disk", disk[446:462])
	}
	if out, _ := exec.Command("sgdisk", "-v", osDisk).CombinedOutput(); !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v on the OS disk:\n%s", out)
	}
	g, err := ReadGPT(bytes.NewReader(disk))
	if err != nil {
		t.Fatal(err)
	}
	if e := g.Entries[2]; e.LastLBA != diskSize/512-34 || g.Header.AlternateLBA != diskSize/512-1 {
		t.Errorf("root partition ends at LBA %d, backup header at %d; want %d, %d", e.LastLBA, g.Header.AlternateLBA, diskSize/512-34, diskSize/512-1)
	}
	if !bytes.Equal(disk[diskSize-1<<20:diskSize-33*512], make([]byte, 1<<20-33*512)) {
		t.Error("the old system's backup partition table area (the disk's last MiB) was not cleared")
	}

	// The seed, read back by e2fsprogs from the root partition.
	rootFS := filepath.Join(dir, "root-after.img")
	if err := os.WriteFile(rootFS, disk[img.rootPart.Start:img.rootPart.Start+img.rootPart.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("e2fsck", "-fn", rootFS).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on the root file system after the agent wrote the seed: %v\n%s", err, out)
	}
	payload := filepath.Join(dir, "payload-after.bin")
	runCmd(t, "debugfs", "-R", "dump /usr/bin/payload.bin "+payload, rootFS)
	if sha256File(t, payload) != sha256File(t, filepath.Join(dir, "rootfs/usr/bin/payload.bin")) {
		t.Error("the root file system's 48 MiB payload file differs from the image's")
	}
	for name, want := range map[string]string{"user-data": in.Seed.UserData, "meta-data": in.Seed.MetaData, "network-config": in.Seed.NetworkConfig} {
		p := "/" + SeedDir + "/" + name
		got := runCmd(t, "debugfs", "-R", "cat "+p, rootFS)
		if !strings.Contains(got, want) {
			t.Errorf("%s in the root file system: %q, want %q", p, got, want)
		}
		st := runCmd(t, "debugfs", "-R", "stat "+p, rootFS)
		if !regexp.MustCompile(`Mode:\s+0600\b`).MatchString(st) {
			t.Errorf("%s: %s", p, firstLine(st, "Mode"))
		}
	}

	// OSD disks: the unmarked one is untouched, the marked one has no
	// signature left that wipefs or blkid would find.
	if sha256File(t, keepDisk) != keepSum {
		t.Error("the OSD disk not marked wipe was changed")
	}
	if out, _ := exec.Command("wipefs", "--no-act", wipeDisk).CombinedOutput(); len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("wipefs still finds signatures on the wiped OSD disk:\n%s", out)
	}
	if out, err := exec.Command("blkid", "-p", wipeDisk).CombinedOutput(); err == nil {
		t.Errorf("blkid -p still identifies the wiped OSD disk: %s", out)
	}

	// UEFI: the new entry, first in BootOrder, as efibootmgr -v printed it.
	if fw.IsUEFI() {
		i := strings.Index(serial, MarkerBootEntries)
		if i < 0 {
			t.Fatalf("no %q on the console", MarkerBootEntries)
		}
		bt := ParseBootTable(serial[i:])
		var num string
		for _, e := range bt.Entries {
			if e.Label == BootLabel(img.manifest.Name) {
				num = e.Num
			}
		}
		if num == "" || len(bt.Order) == 0 || bt.Order[0] != num {
			t.Errorf("boot table after install: %+v", bt)
		}
		if !regexp.MustCompile(`(?m)^Boot` + num + `\* racklift synthetic\s+HD\(2,GPT,[^)]*\)/File\(\\EFI\\BOOT\\BOOTX64.EFI\)`).MatchString(serial[i:]) {
			t.Errorf("efibootmgr -v shows no HD(2,GPT)/File(\\EFI\\BOOT\\BOOTX64.EFI) entry:\n%s", serial[i:min(len(serial), i+2000)])
		}
	}

	// Figures.
	fetched := markerUptime(serial, MarkerInstructions)
	written := regexp.MustCompile(`image written bytes=(\d+) zeroed=(\d+) seconds=([\d.]+) rate=([\d.]+)MB/s (\S+)`).FindStringSubmatch(serial)
	t.Logf("figures (%s): initrd base %.1f MiB / with racklift %.1f MiB; kernel start to instructions fetched %.1f s (uptime); image %.1f MB written in %s s = %s MB/s, %s; power-on to reboot %.1f s (VM CPU %.1f s)",
		fw, float64(af.baseSize)/(1<<20), float64(af.initrdSize)/(1<<20), fetched, atoiOr(written, 1)/1e6, at(written, 3), at(written, 4), at(written, 5), total.Seconds(), vm.CPUTime().Seconds())
	if strings.Contains(serial, in.Token) {
		t.Error("the token appears on the console")
	}
}

func writeAt(t *testing.T, p string, b []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func firstLine(s, prefix string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), prefix) {
			return sc.Text()
		}
	}
	return ""
}

// markerUptime returns the uptime= printed on the marker's line.
func markerUptime(serial, marker string) float64 {
	for _, line := range strings.Split(serial, "\n") {
		if strings.Contains(line, marker) {
			if m := regexp.MustCompile(`uptime=([\d.]+)`).FindStringSubmatch(line); m != nil {
				f, _ := strconv.ParseFloat(m[1], 64)
				return f
			}
		}
	}
	return -1
}

func at(m []string, i int) string {
	if i < len(m) {
		return m[i]
	}
	return "?"
}

func atoiOr(m []string, i int) float64 {
	if i < len(m) {
		f, _ := strconv.ParseFloat(m[i], 64)
		return f
	}
	return 0
}

// TestAgentSecureBootPieces checks that what the Secure Boot chain loads
// is signed: Debian's kernel, shim and GRUB, with sbverify (sbsigntool)
// as the peer and our own PE parser. (OVMF's direct kernel boot bypasses
// shim, so the chain itself is booted by the lead's e2e test.)
func TestAgentSecureBootPieces(t *testing.T) {
	requireTools(t, "sbverify")
	af := buildAgent(t)
	for _, f := range []string{bundle.FileKernel, bundle.FileShim, bundle.FileGRUB} {
		p := filepath.Join(af.dir, f)
		out, err := exec.Command("sbverify", "--list", p).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "signature 1") {
			t.Errorf("sbverify --list %s: %v\n%s", f, err, out)
		}
		t.Logf("%s: %s", f, firstLine(string(out), "subject:"))
		b, _ := os.ReadFile(p)
		if ok, err := bundle.Signed(b); !ok || err != nil {
			t.Errorf("bundle.Signed(%s) = %v, %v", f, ok, err)
		}
	}
	out, _ := exec.Command("sbverify", "--list", filepath.Join(af.dir, bundle.FileKernel)).CombinedOutput()
	if !strings.Contains(string(out), "Debian Secure Boot") {
		t.Errorf("the kernel is not signed by Debian's Secure Boot key:\n%s", out)
	}
	if af.info.GRUBPrefix != "/grub" {
		t.Errorf("GRUB prefix %q", af.info.GRUBPrefix)
	}
}
