package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/nodeapi"
)

func TestParseCmdline(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want Cmdline
		err  string
	}{
		"racklift args": {in: "console=ttyS0,115200 racklift.server=http://10.99.0.1:8080/ racklift.mac=52:54:00:99:00:AB quiet",
			want: Cmdline{Server: "http://10.99.0.1:8080", MAC: "52:54:00:99:00:ab", OnError: OnErrorWait, Verify: true}},
		"BOOTIF from iPXE": {in: "racklift.server=http://h:8080 BOOTIF=01-52-54-00-99-00-ab",
			want: Cmdline{Server: "http://h:8080", MAC: "52:54:00:99:00:ab", OnError: OnErrorWait, Verify: true}},
		"racklift.mac wins over BOOTIF": {in: "BOOTIF=01-52-54-00-99-00-01 racklift.mac=52:54:00:99:00:02 racklift.server=http://h",
			want: Cmdline{Server: "http://h", MAC: "52:54:00:99:00:02", OnError: OnErrorWait, Verify: true}},
		"options and quotes": {in: `racklift.server="http://h:1" racklift.mac=52-54-00-99-00-03 racklift.onerror=poweroff racklift.verify=0 x="a b"`,
			want: Cmdline{Server: "http://h:1", MAC: "52:54:00:99:00:03", OnError: OnErrorPowerOff, Verify: false}},
		"last wins": {in: "racklift.server=http://a racklift.server=http://b racklift.mac=52:54:00:99:00:04",
			want: Cmdline{Server: "http://b", MAC: "52:54:00:99:00:04", OnError: OnErrorWait, Verify: true}},
		"nothing":        {in: "console=ttyS0", err: "racklift.server= is missing"},
		"no MAC":         {in: "racklift.server=http://h", err: "racklift.mac= (or BOOTIF=) is missing"},
		"bad server":     {in: "racklift.server=10.0.0.1:8080 racklift.mac=52:54:00:99:00:04", err: "want http://HOST:PORT"},
		"bad MAC":        {in: "racklift.server=http://h racklift.mac=nope", err: "is not an Ethernet MAC"},
		"bad onerror":    {in: "racklift.server=http://h racklift.mac=52:54:00:99:00:04 racklift.onerror=explode", err: "want wait, reboot or poweroff"},
		"infiniband MAC": {in: "racklift.server=http://h racklift.mac=00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01", err: "not an Ethernet MAC"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseCmdline(tc.in)
			if tc.err != "" {
				if !errors.Is(err, ErrCmdline) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestKernelArgsRoundTrip(t *testing.T) {
	a := KernelArgs("http://10.99.0.1:8080/", "52:54:00:99:00:01")
	if a != "racklift.server=http://10.99.0.1:8080 racklift.mac=52:54:00:99:00:01" {
		t.Errorf("KernelArgs = %q", a)
	}
	c, err := ParseCmdline("console=ttyS0,115200 " + a)
	if err != nil || c.Server != "http://10.99.0.1:8080" || c.MAC != "52:54:00:99:00:01" {
		t.Errorf("round trip: %+v %v", c, err)
	}
}

// TestProgressCadence: one callback per interval however often the
// stream reports, the first at once, and always one for the last byte.
func TestProgressCadence(t *testing.T) {
	now := time.Unix(1000, 0)
	var sent []nodeapi.CallbackBody
	p := &Progress{Interval: 5 * time.Second, Now: func() time.Time { return now }, Send: func(b nodeapi.CallbackBody) { sent = append(sent, b) }}
	const total = 1000 << 20
	// 100 chunk writes, 0.5 s apart: 50 s in all.
	for i := 1; i <= 100; i++ {
		now = now.Add(500 * time.Millisecond)
		p.Update(int64(i)*(total/100), total)
	}
	// first call, then every 5 s (t=5.5, 10.5, ... 50.5 would be past the
	// end): 1 + 9 on the clock, + the final one at 100%.
	if len(sent) != 11 {
		t.Fatalf("%d callbacks, want 11", len(sent))
	}
	last := sent[len(sent)-1]
	if *last.Percent != 85 || last.Bytes != total || last.Total != total || last.Step != StepImage {
		t.Errorf("last %+v", last)
	}
	if r := last.RateMBps; r != 21.1 { // 1048.6 MB in 49.5 s (from the first update), one decimal
		t.Errorf("rate %.2f MB/s", r)
	}
	if *sent[0].Percent != 10 || !strings.Contains(last.Detail, "1000.0 MiB of 1000.0 MiB") {
		t.Errorf("first %d%%, last detail %q", *sent[0].Percent, last.Detail)
	}
	for i := 1; i < len(sent); i++ {
		if *sent[i].Percent < *sent[i-1].Percent {
			t.Errorf("percent went down at %d", i)
		}
	}
}

func TestParseBootTable(t *testing.T) {
	// efibootmgr 17 (Debian 12) -v output.
	out := "BootCurrent: 0002\nTimeout: 0 seconds\nBootOrder: 0007,0001,0002\n" +
		"Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)\n" +
		"Boot0001* UEFI PXEv4 (MAC:525400990021)\tPciRoot(0x0)/Pci(0x2,0x0)/MAC(525400990021,1)/IPv4(0.0.0.00.0.0.0,0,0)N.....YM....R,Y.\n" +
		"Boot0002  UEFI QEMU HARDDISK\tPciRoot(0x0)/Pci(0x3,0x0)\n" +
		"Boot0007* racklift debian12\tHD(2,GPT,2c4e...,0x1000,0x1000)/File(\\EFI\\debian\\shimx64.efi)\n"
	bt := ParseBootTable(out)
	if bt.Current != "0002" || strings.Join(bt.Order, ",") != "0007,0001,0002" || len(bt.Entries) != 4 {
		t.Fatalf("%+v", bt)
	}
	if e := bt.Entries[3]; e.Num != "0007" || e.Label != "racklift debian12" || !e.Active {
		t.Errorf("%+v", e)
	}
	if e := bt.Entries[2]; e.Active || e.Label != "UEFI QEMU HARDDISK" {
		t.Errorf("%+v", e)
	}
}

func TestSignaturesAndWipe(t *testing.T) {
	const size = 64 << 20
	for name, plant := range map[string]func(f *os.File){
		"gpt with ext4 and LVM partitions": func(f *os.File) {
			writeTestGPT(t, f, size/512,
				testPart{typ: typeLinux, first: 2048, last: 40959},
				testPart{typ: typeLinux, first: 40960, last: size/512 - 34})
			b := make([]byte, 2)
			binary.LittleEndian.PutUint16(b, 0xef53)
			_, _ = f.WriteAt(b, 2048*512+1080)
			_, _ = f.WriteAt([]byte("LABELONE"), 40960*512+512)
			_, _ = f.WriteAt([]byte("LVM2 001"), 40960*512+512+24)
		},
		"whole-disk bluestore": func(f *os.File) {
			_ = f.Truncate(size)
			_, _ = f.WriteAt([]byte("bluestore block device\n"), 0)
		},
		"mbr with xfs": func(f *os.File) {
			_ = f.Truncate(size)
			mbr := make([]byte, 512)
			mbr[446+4] = 0x83
			binary.LittleEndian.PutUint32(mbr[446+8:], 2048)
			binary.LittleEndian.PutUint32(mbr[446+12:], size/512-2048)
			mbr[510], mbr[511] = 0x55, 0xaa
			_, _ = f.WriteAt(mbr, 0)
			_, _ = f.WriteAt([]byte("XFSB"), 2048*512)
		},
		"backup GPT only": func(f *os.File) {
			writeTestGPT(t, f, size/512, testPart{typ: typeLinux, first: 2048, last: size/512 - 34})
			_, _ = f.WriteAt(make([]byte, 34*512), 0) // primary gone, backup left
		},
		"md v1.0 and swap": func(f *os.File) {
			_ = f.Truncate(size)
			_, _ = f.WriteAt([]byte("SWAPSPACE2"), 4086)
			b := make([]byte, 4)
			binary.LittleEndian.PutUint32(b, 0xa92b4efc)
			_, _ = f.WriteAt(b, (size/512-16)&^7*512)
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "osd.raw")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			plant(f)
			marker := []byte("DATA-IN-THE-MIDDLE")
			_, _ = f.WriteAt(marker, 30<<20)
			f.Close()
			d, err := OpenDevice(p)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			before := Signatures(d, size)
			if len(before) == 0 {
				t.Fatal("planted signatures not found")
			}
			res, err := Wipe(d, size)
			if err != nil {
				t.Fatal(err)
			}
			if res.Kinds() == "none" || len(res.Before) != len(before) {
				t.Errorf("wipe saw %s, want %v", res.Kinds(), before)
			}
			if left := Signatures(d, size); len(left) != 0 {
				t.Errorf("left %v", left)
			}
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got[30<<20:30<<20+len(marker)], marker) {
				t.Error("wipe erased data it does not need to (it clears signatures, not the disk)")
			}
		})
	}
}

func TestFSType(t *testing.T) {
	img := make([]byte, 128<<10)
	binary.LittleEndian.PutUint16(img[1080:], 0xef53)
	if got := FSType(bytes.NewReader(img), int64(len(img))); got != "ext4" {
		t.Errorf("FSType = %q", got)
	}
	if got := FSType(bytes.NewReader(make([]byte, 128<<10)), 128<<10); got != "" {
		t.Errorf("blank FSType = %q", got)
	}
}

func TestWriteSeed(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	// An image whose /var/lib is a symlink out of the file system: the
	// seed must land inside the root, or not at all.
	if err := os.MkdirAll(filepath.Join(root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "var", "lib")); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteSeed(root, nodeapi.Seed{UserData: "#cloud-config\n", MetaData: "instance-id: x\n"}); err == nil {
		t.Error("wrote through a symlink leaving the root")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("files written outside the root: %v", ents)
	}

	root = t.TempDir()
	seedDir := filepath.Join(root, SeedDir)
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seedDir, "network-config"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := WriteSeed(root, nodeapi.Seed{UserData: "#cloud-config\n", MetaData: "instance-id: x\n"})
	if err != nil || strings.Join(files, " ") != SeedDir+"/user-data "+SeedDir+"/meta-data" {
		t.Fatalf("files %v, %v", files, err)
	}
	if _, err := os.Stat(filepath.Join(seedDir, "network-config")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a stale network-config was left")
	}
}
