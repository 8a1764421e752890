package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/nodeapi"
)

const testMAC = "52:54:00:99:00:21"

// fakeSystem records mounts and the final action instead of doing them.
type fakeSystem struct {
	mu      sync.Mutex
	mounts  []string
	actions []string
}

func (s *fakeSystem) Mount(dev, dir, fstype string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts = append(s.mounts, dev+" "+fstype)
	return nil
}
func (s *fakeSystem) Unmount(string) error { return nil }
func (s *fakeSystem) MountEFIVars(string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts = append(s.mounts, "efivarfs")
	return nil
}
func (s *fakeSystem) Reboot() error   { s.act("reboot"); return nil }
func (s *fakeSystem) PowerOff() error { s.act("poweroff"); return nil }
func (s *fakeSystem) act(a string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actions = append(s.actions, a)
}

// fakeEfibootmgr plays efibootmgr over an in-memory boot table.
type fakeEfibootmgr struct {
	entries map[string]string // num -> label
	order   []string
	calls   []string
}

func (f *fakeEfibootmgr) run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	if name != "efibootmgr" {
		return nil, fmt.Errorf("unexpected %s", name)
	}
	a := strings.Join(args, " ")
	switch {
	case a == "" || a == "-v":
	case strings.HasPrefix(a, "-q -b "):
		delete(f.entries, args[2])
		f.order = slices.DeleteFunc(f.order, func(n string) bool { return n == args[2] })
		return nil, nil
	case strings.HasPrefix(a, "-q -c "):
		num := fmt.Sprintf("%04X", len(f.entries)+7)
		f.entries[num] = args[7]
		f.order = append([]string{num}, f.order...)
		return nil, nil
	case strings.HasPrefix(a, "-q -o "):
		f.order = strings.Split(args[2], ",")
		return nil, nil
	default:
		return nil, fmt.Errorf("unexpected efibootmgr %s", a)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "BootCurrent: 0001\nTimeout: 0 seconds\nBootOrder: %s\n", strings.Join(f.order, ","))
	for _, n := range f.order {
		fmt.Fprintf(&b, "Boot%s* %s\tHD(2,GPT,...)/File(...)\n", n, f.entries[n])
	}
	return []byte(b.String()), nil
}

// testNode is a fake node: sysfs, /dev with disk files, an image, a
// test double of racklift.
type testNode struct {
	t                *testing.T
	sys, dev, mnt    string
	img              []byte
	m                *image.Manifest
	srv              *fakeRacklift
	in               nodeapi.Instructions
	osdKeep, osdWipe []byte
}

const (
	nodeImageSectors = 16384 // 8 MiB
	nodeDiskSize     = 32 << 20
	osdSize          = 4 << 20
)

func newTestNode(t *testing.T, uefi bool) *testNode {
	n := &testNode{t: t}
	n.sys = fakeSysfs(t,
		fakeDisk{name: "vda", sizeMB: nodeDiskSize >> 20, block: map[string]string{"serial": "OS-1"}, device: map[string]string{}},
		fakeDisk{name: "vdb", sizeMB: osdSize >> 20, block: map[string]string{"serial": "OSD-KEEP"}, device: map[string]string{}},
		fakeDisk{name: "vdc", sizeMB: osdSize >> 20, block: map[string]string{"serial": "OSD-WIPE"}, device: map[string]string{}},
	)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(n.sys, "class/net/eth0"), 0o755))
	must(os.WriteFile(filepath.Join(n.sys, "class/net/eth0/address"), []byte(testMAC+"\n"), 0o644))
	if uefi {
		must(os.MkdirAll(filepath.Join(n.sys, "firmware/efi/efivars"), 0o755))
	}
	n.dev = t.TempDir()
	n.mnt = t.TempDir()

	// The image: BIOS boot, ESP, root (with an ext4 magic), in 8 MiB.
	f, err := os.Create(filepath.Join(t.TempDir(), "image.raw"))
	must(err)
	writeTestGPT(t, f, nodeImageSectors,
		testPart{typ: typeBIOSBoot, first: 2048, last: 4095, name: "bios"},
		testPart{typ: typeESP, first: 4096, last: 8191, name: "esp"},
		testPart{typ: typeLinux, first: 8192, last: nodeImageSectors - 34, name: "root"})
	sb := make([]byte, 2)
	binary.LittleEndian.PutUint16(sb, 0xef53)
	_, err = f.WriteAt(sb, 8192*512+1080)
	must(err)
	_, err = f.WriteAt(bytes.Repeat([]byte("rootfs"), 1000), 8192*512+4096)
	must(err)
	f.Close()
	n.img, err = os.ReadFile(f.Name())
	must(err)
	m, blobs := encodeTestImage(t, "debian12", n.img, 1<<20)
	m.Table = "gpt"
	m.Partitions = []image.Partition{{Number: 1, Start: 2048 * 512, Size: 2048 * 512}, {Number: 2, Start: 4096 * 512, Size: 4096 * 512}, {Number: 3, Start: 8192 * 512, Size: (nodeImageSectors - 34 - 8192 + 1) * 512}}
	m.GrowPartition, m.BIOS, m.EFILoader, m.EFIPartition = 3, true, `\EFI\BOOT\BOOTX64.EFI`, 2
	mb, _ := json.Marshal(m)
	n.m = m

	// The disks: an old system's bytes on the OS disk; OSD disks with
	// a GPT and a marker.
	must(os.WriteFile(filepath.Join(n.dev, "vda"), bytes.Repeat([]byte{0xaa}, nodeDiskSize), 0o644))
	for _, osd := range []struct {
		name string
		keep *[]byte
	}{{"vdb", &n.osdKeep}, {"vdc", &n.osdWipe}} {
		f, err := os.Create(filepath.Join(n.dev, osd.name))
		must(err)
		writeTestGPT(t, f, osdSize/512, testPart{typ: typeLinux, first: 2048, last: osdSize/512 - 34, name: "osd"})
		_, err = f.WriteAt([]byte("bluestore block device\nMARKER-"+osd.name), 2048*512)
		must(err)
		f.Close()
		*osd.keep, err = os.ReadFile(f.Name())
		must(err)
	}
	// The root partition's device node, which the kernel would create
	// after BLKRRPART.
	must(os.WriteFile(filepath.Join(n.dev, "vda3"), n.img[8192*512:], 0o644))

	n.in = nodeapi.Instructions{
		Node: "lab-01", MAC: testMAC, Token: "tok-secret",
		Image:  nodeapi.ImageRef{Name: "debian12", ManifestSHA256: sha256Hex(mb)},
		OSDisk: nodeapi.DiskMatch{Serial: "OS-1"},
		OSDs:   []nodeapi.DiskMatch{{Serial: "OSD-KEEP"}, {ByID: "virtio-OSD-WIPE", Wipe: true}},
		Seed:   nodeapi.Seed{UserData: "#cloud-config\nhostname: lab-01\n", MetaData: "instance-id: lab-01\n", NetworkConfig: "version: 2\n"},
		UEFI:   uefi,
	}
	n.srv = newFakeRacklift(n.in, mb, blobs)
	return n
}

// runResult is what one Run did.
type runResult struct {
	err     error
	sys     *fakeSystem
	efi     *fakeEfibootmgr
	console string
}

func (n *testNode) run(t *testing.T, mutate func(*nodeapi.Instructions)) runResult {
	t.Helper()
	hs := httptest.NewServer(n.srv.Handler())
	t.Cleanup(hs.Close)
	in := n.in
	in.Server = hs.URL
	in.Image.ManifestURL = nodeapi.ImageManifestURL(hs.URL, "debian12")
	in.Image.BlobURLs = []string{hs.URL}
	if mutate != nil {
		mutate(&in)
	}
	b, _ := json.Marshal(in)
	n.srv.instructions = b
	sys := &fakeSystem{}
	efi := &fakeEfibootmgr{entries: map[string]string{"0001": "UEFI PXEv4", "0003": BootLabel("debian12")}, order: []string{"0001", "0003"}}
	var console bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := Run(ctx, Config{
		Cmdline: Cmdline{Server: hs.URL, MAC: testMAC, OnError: OnErrorPowerOff, Verify: true},
		SysRoot: n.sys, DevRoot: n.dev, MountDir: n.mnt,
		Console: &console, Sys: sys, Run: efi.run,
		Timeouts:         Timeouts{Disks: time.Millisecond},
		ProgressInterval: time.Millisecond,
	})
	return runResult{err: err, sys: sys, efi: efi, console: console.String()}
}

func TestRunInstalls(t *testing.T) {
	for _, uefi := range []bool{false, true} {
		t.Run(fmt.Sprintf("uefi=%v", uefi), func(t *testing.T) {
			n := newTestNode(t, uefi)
			r := n.run(t, nil)
			err, sys, efi, console := r.err, r.sys, r.efi, r.console
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, console)
			}
			if got := strings.Join(n.srv.phases(), " "); got != "pre post installed" {
				t.Errorf("phases %q", got)
			}
			if !slices.Equal(sys.actions, []string{"poweroff"}) {
				t.Errorf("actions %v (instructions say no reboot)", sys.actions)
			}
			for _, m := range []string{MarkerStart, MarkerInstructions, MarkerWritten, MarkerInstalled} {
				if !strings.Contains(console, m) {
					t.Errorf("console lacks %q:\n%s", m, console)
				}
			}
			if strings.Contains(console, "tok-secret") {
				t.Error("the token was printed")
			}
			disk, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
			// Outside the GPT, the disk's first Size bytes are the image.
			gptEnd := 34 * 512
			backup := len(n.img) - 33*512
			if !bytes.Equal(disk[gptEnd:backup], n.img[gptEnd:backup]) {
				t.Error("the image is not on the disk")
			}
			g, err := ReadGPT(bytes.NewReader(disk))
			if err != nil {
				t.Fatal(err)
			}
			if g.Entries[2].LastLBA != nodeDiskSize/512-34 || g.Header.AlternateLBA != nodeDiskSize/512-1 {
				t.Errorf("root ends at %d, backup at %d", g.Entries[2].LastLBA, g.Header.AlternateLBA)
			}
			for f, want := range map[string]string{"user-data": n.in.Seed.UserData, "meta-data": n.in.Seed.MetaData, "network-config": n.in.Seed.NetworkConfig} {
				p := filepath.Join(n.mnt, SeedDir, f)
				b, err := os.ReadFile(p)
				st, _ := os.Stat(p)
				if err != nil || string(b) != want || st.Mode().Perm() != 0o600 {
					t.Errorf("%s: %q %v %v", f, b, err, st.Mode())
				}
			}
			if !slices.Contains(sys.mounts, filepath.Join(n.dev, "vda3")+" ext4") {
				t.Errorf("mounts %v", sys.mounts)
			}
			if keep, _ := os.ReadFile(filepath.Join(n.dev, "vdb")); !bytes.Equal(keep, n.osdKeep) {
				t.Error("the OSD disk not marked wipe changed")
			}
			wiped, _ := os.ReadFile(filepath.Join(n.dev, "vdc"))
			if s := Signatures(bytes.NewReader(wiped), osdSize); len(s) != 0 {
				t.Errorf("wiped OSD disk still has %v", s)
			}
			if uefi {
				if efi.order[0] != "0008" || efi.entries["0008"] != BootLabel("debian12") || len(efi.entries) != 2 {
					t.Errorf("boot table %v %v (calls %q)", efi.order, efi.entries, efi.calls)
				}
				if !strings.Contains(console, MarkerBootEntries) || !slices.Contains(efi.calls, `efibootmgr -q -c -d `+filepath.Join(n.dev, "vda")+` -p 2 -L racklift debian12 -l \EFI\BOOT\BOOTX64.EFI`) {
					t.Errorf("calls %q\n%s", efi.calls, console)
				}
			} else if len(efi.calls) != 0 {
				t.Errorf("efibootmgr called on BIOS: %q", efi.calls)
			}
			var sawImage bool
			for _, c := range n.srv.Callbacks() {
				if c.Phase == nodeapi.PhaseProgress && c.Body.Step == StepImage && c.Body.Bytes > 0 && c.Body.Total == n.m.MappedBytes {
					sawImage = true
				}
			}
			if !sawImage {
				t.Errorf("no image progress callback: %+v", n.srv.Callbacks())
			}
		})
	}
}

// Every failure before writing leaves the OS disk as it was, and posts
// the error phase with a reason naming what is wrong.
func TestRunRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		uefi   bool
		mutate func(*nodeapi.Instructions)
		step   string
		reason string
	}{
		"no OS disk": {mutate: func(in *nodeapi.Instructions) { in.OSDisk = nodeapi.DiskMatch{Serial: "NOPE"} }, step: StepDisk,
			reason: "OS disk: no disk matches serial NOPE; disks seen: vda (serial OS-1, 32.0 MiB, by-id virtio-OS-1); vdb"},
		"OSD is the OS disk": {mutate: func(in *nodeapi.Instructions) { in.OSDs = []nodeapi.DiskMatch{{Path: "/dev/vda", Wipe: true}} }, step: StepDisk, reason: "which is also the OS disk"},
		"OS disk too small":  {mutate: func(in *nodeapi.Instructions) { in.OSDisk.MinBytes = 1 << 30 }, step: StepDisk, reason: "vda is 32.0 MiB, smaller than 1.0 GiB"},
		"wrong manifest checksum": {mutate: func(in *nodeapi.Instructions) { in.Image.ManifestSHA256 = strings.Repeat("0", 64) }, step: StepManifest,
			reason: "SHA-256"},
		"UEFI plan, BIOS boot":       {mutate: func(in *nodeapi.Instructions) { in.UEFI = true }, step: StepDisk, reason: "boots UEFI, but the deploy agent was started in BIOS"},
		"image bigger than the disk": {step: StepManifest, reason: "smaller than image"},
	} {
		t.Run(name, func(t *testing.T) {
			n := newTestNode(t, tc.uefi)
			if name == "image bigger than the disk" {
				n.m.Size = 1 << 30 // the chunks stay valid: only the size grows
				mb, _ := json.Marshal(n.m)
				n.srv.manifest = mb
				n.in.Image.ManifestSHA256 = sha256Hex(mb)
			}
			before, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
			r := n.run(t, tc.mutate)
			err, sys, console := r.err, r.sys, r.console
			if err == nil || StepOf(err) != tc.step || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v (step %q), want step %q with %q", err, StepOf(err), tc.step, tc.reason)
			}
			cbs := n.srv.Callbacks()
			last := cbs[len(cbs)-1]
			if last.Phase != nodeapi.PhaseError || last.Body.Step != tc.step || !strings.Contains(last.Body.Detail, tc.reason) {
				t.Errorf("last callback %+v", last)
			}
			if !strings.Contains(console, MarkerError) {
				t.Errorf("console:\n%s", console)
			}
			if !slices.Equal(sys.actions, []string{"poweroff"}) {
				t.Errorf("on-error action %v", sys.actions)
			}
			after, _ := os.ReadFile(filepath.Join(n.dev, "vda"))
			if !bytes.Equal(before, after) {
				t.Error("the OS disk was written")
			}
		})
	}
}

func TestRunInstructions(t *testing.T) {
	t.Run("retried until racklift answers", func(t *testing.T) {
		n := newTestNode(t, false)
		n.srv.refuseInstructions = 1
		r := n.run(t, nil)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !strings.Contains(r.console, "attempts=2") {
			t.Errorf("console:\n%s", r.console)
		}
	})
	t.Run("for another node", func(t *testing.T) {
		n := newTestNode(t, false)
		r := n.run(t, func(in *nodeapi.Instructions) { in.MAC = "52:54:00:99:00:99" })
		if r.err == nil || !strings.Contains(r.err.Error(), "they are for MAC 52:54:00:99:00:99") {
			t.Fatalf("err = %v", r.err)
		}
		if len(n.srv.Callbacks()) != 0 || !slices.Equal(r.sys.actions, []string{"poweroff"}) {
			t.Errorf("callbacks %v actions %v", n.srv.Callbacks(), r.sys.actions)
		}
	})
}
