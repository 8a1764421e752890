package agent

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/racklift/racklift/provision/nodeapi"
)

// fakeDisk is one disk of a fake sysfs tree: the block device's own
// attributes and its parent device's (reached through the "device" link,
// as in the kernel's tree).
type fakeDisk struct {
	name   string
	sizeMB int64
	block  map[string]string // attributes of /sys/block/NAME
	device map[string]string // attributes of /sys/block/NAME/device
	lbs    int
}

// fakeSysfs builds sysRoot/devices/<...>/NAME and sysRoot/block/NAME ->
// ../devices/.../NAME, with NAME/device -> the parent device directory,
// like the kernel's layout.
func fakeSysfs(t *testing.T, disks ...fakeDisk) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "block"), 0o755))
	for i, d := range disks {
		parent := filepath.Join(root, "devices", "pci0000:00", "dev"+d.name)
		bdir := filepath.Join(parent, "block", d.name)
		must(os.MkdirAll(filepath.Join(bdir, "queue"), 0o755))
		lbs := d.lbs
		if lbs == 0 {
			lbs = 512
		}
		attrs := map[string]string{
			"size":                     itoa(d.sizeMB << 11),
			"ro":                       "0",
			"removable":                "0",
			"dev":                      "253:" + itoa(int64(16*i)),
			"queue/logical_block_size": itoa(int64(lbs)),
		}
		for k, v := range d.block {
			attrs[k] = v
		}
		for k, v := range attrs {
			must(os.WriteFile(filepath.Join(bdir, k), []byte(v+"\n"), 0o444))
		}
		if d.device != nil {
			for k, v := range d.device {
				must(os.WriteFile(filepath.Join(parent, k), []byte(v), 0o444))
			}
			must(os.Symlink("../..", filepath.Join(bdir, "device")))
		}
		rel, _ := filepath.Rel(filepath.Join(root, "block"), bdir)
		must(os.Symlink(rel, filepath.Join(root, "block", d.name)))
	}
	return root
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// vpd83 builds a Device Identification VPD page from designators.
func vpd83(ds ...designator) string {
	var body []byte
	for _, d := range ds {
		body = append(body, byte(d.codeSet), byte(d.assoc<<4|d.typ), 0, byte(len(d.data)))
		body = append(body, d.data...)
	}
	return string(append([]byte{0, 0x83, byte(len(body) >> 8), byte(len(body))}, body...))
}

func vpd80(serial string) string {
	return string(append([]byte{0, 0x80, 0, byte(len(serial))}, serial...))
}

func pad(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// The expected names are the ones udev 252 (Debian 12) creates for these
// devices; the NVMe, ATA and SCSI ones are real devices' names.
func TestByIDNames(t *testing.T) {
	ataT10 := "ATA     " + pad("Samsung SSD 860 EVO 500GB", 40) + pad("S3Z1NB0K123456", 20)
	sys := fakeSysfs(t,
		fakeDisk{name: "vda", sizeMB: 8192, block: map[string]string{"serial": "OS-1"}, device: map[string]string{}},
		fakeDisk{name: "vdb", sizeMB: 100, device: map[string]string{}}, // no serial: no by-id name
		fakeDisk{name: "nvme0n1", sizeMB: 953869, block: map[string]string{"wwid": "eui.0025388b91b35d36"},
			device: map[string]string{"serial": pad("S4EWNX0R123456", 20) + "\n", "model": pad("Samsung SSD 970 EVO Plus 1TB", 40) + "\n"}},
		fakeDisk{name: "nvme1n1", sizeMB: 1024, block: map[string]string{"wwid": "nvme.1b36-6465616462656566-51454d55204e564d65204374726c-00000001"},
			device: map[string]string{"serial": pad("deadbeef", 20) + "\n", "model": pad("QEMU NVMe Ctrl", 40) + "\n"}},
		fakeDisk{name: "sda", sizeMB: 476940, device: map[string]string{
			"vendor": "ATA     \n", "model": "Samsung SSD 860 \n",
			"vpd_pg80": vpd80("S3Z1NB0K123456"),
			"vpd_pg83": vpd83(
				designator{codeSet: 2, typ: desigVendor, data: []byte(pad("S3Z1NB0K123456", 20))},
				designator{codeSet: 2, typ: desigT10, data: []byte(ataT10)},
				designator{codeSet: 1, typ: desigNAA, data: mustHex("5002538e40a1b2c3")}),
		}},
		fakeDisk{name: "sdb", sizeMB: 10240, device: map[string]string{ // QEMU ide-hd on AHCI: no WWN
			"vendor": "ATA     \n", "model": "QEMU HARDDISK   \n",
			"vpd_pg83": vpd83(designator{codeSet: 2, typ: desigT10, data: []byte("ATA     " + pad("QEMU HARDDISK", 40) + pad("QM00001", 20))}),
		}},
		fakeDisk{name: "sdc", sizeMB: 1 << 20, device: map[string]string{ // MegaRAID virtual drive: NAA 6
			"vendor": "AVAGO   \n", "model": "MR9361-8i       \n",
			"vpd_pg83": vpd83(designator{codeSet: 1, typ: desigNAA, data: mustHex("600605b00d5e8f402a7b1c2d3e4f5a6b")}),
		}},
		fakeDisk{name: "sdd", sizeMB: 2048, device: map[string]string{ // QEMU scsi-hd serial=SCSI-7
			"vendor": "QEMU    \n", "model": "QEMU HARDDISK   \n",
			"vpd_pg80": vpd80("SCSI-7"),
			"vpd_pg83": vpd83(designator{codeSet: 2, typ: desigVendor, data: []byte("SCSI-7")}),
		}},
		fakeDisk{name: "sde", sizeMB: 2048, device: map[string]string{ // no page 0x83: scsi_id falls back to page 0x80
			"vendor": "HP      \n", "model": "LOGICAL VOLUME  \n",
			"vpd_pg80": vpd80("PDNLH0BRH9F2OX"),
		}},
		fakeDisk{name: "loop0", sizeMB: 10},
		fakeDisk{name: "sr0", sizeMB: 10, device: map[string]string{}},
	)
	disks, err := ScanDisks(sys)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Disk{}
	var names []string
	for _, d := range disks {
		got[d.Name] = d
		names = append(names, d.Name)
	}
	if strings.Join(names, " ") != "nvme0n1 nvme1n1 sda sdb sdc sdd sde vda vdb" {
		t.Errorf("disks %v (loop0, sr0 must be skipped)", names)
	}
	for name, want := range map[string]struct {
		byID           string
		serial, wwn    string
		model          string
		size           int64
		logicalBlockSz int
	}{
		"vda":     {byID: "virtio-OS-1", serial: "OS-1", size: 8 << 30},
		"vdb":     {},
		"nvme0n1": {byID: "nvme-Samsung_SSD_970_EVO_Plus_1TB_S4EWNX0R123456 nvme-eui.0025388b91b35d36", serial: "S4EWNX0R123456", wwn: "eui.0025388b91b35d36", model: "Samsung SSD 970 EVO Plus 1TB"},
		"nvme1n1": {byID: "nvme-QEMU_NVMe_Ctrl_deadbeef nvme-nvme.1b36-6465616462656566-51454d55204e564d65204374726c-00000001", serial: "deadbeef", model: "QEMU NVMe Ctrl"},
		"sda":     {byID: "ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456 wwn-0x5002538e40a1b2c3", serial: "S3Z1NB0K123456", wwn: "0x5002538e40a1b2c3", model: "Samsung SSD 860 EVO 500GB"},
		"sdb":     {byID: "ata-QEMU_HARDDISK_QM00001", serial: "QM00001", model: "QEMU HARDDISK"},
		"sdc":     {byID: "scsi-3600605b00d5e8f402a7b1c2d3e4f5a6b wwn-0x600605b00d5e8f402a7b1c2d3e4f5a6b", wwn: "0x600605b00d5e8f402a7b1c2d3e4f5a6b", model: "MR9361-8i"},
		"sdd":     {byID: "scsi-0QEMU_QEMU_HARDDISK_SCSI-7", serial: "SCSI-7", model: "QEMU HARDDISK"},
		"sde":     {byID: "scsi-SHP_LOGICAL_VOLUME_PDNLH0BRH9F2OX", serial: "PDNLH0BRH9F2OX", model: "LOGICAL VOLUME"},
	} {
		d := got[name]
		if g := strings.Join(d.ByID, " "); g != want.byID {
			t.Errorf("%s by-id %q, want %q", name, g, want.byID)
		}
		if d.Serial != want.serial || d.WWN != want.wwn || d.Model != want.model {
			t.Errorf("%s serial %q wwn %q model %q, want %q %q %q", name, d.Serial, d.WWN, d.Model, want.serial, want.wwn, want.model)
		}
		if want.size != 0 && d.Size != want.size {
			t.Errorf("%s size %d, want %d", name, d.Size, want.size)
		}
		if d.Path != "/dev/"+name || d.LogicalBlockSize != 512 {
			t.Errorf("%s path %q lbs %d", name, d.Path, d.LogicalBlockSize)
		}
	}
	if got["vda"].String() != "vda (serial OS-1, 8.0 GiB, by-id virtio-OS-1)" {
		t.Errorf("String() = %q", got["vda"].String())
	}
}

func TestUdevEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"virtio-AB/CD": "virtio-AB/CD", // '/' is kept (udev makes a subdirectory)
		"virtio-A B":   "virtio-A",     // udev splits SYMLINK at spaces
		"virtio-x$y":   "virtio-x_y",
		"virtio-é":     "virtio-__",
	} {
		if got := symlinkName(replaceChars(in, allowedInput)); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
	if got := replaceWhitespace("  QEMU   HARDDISK  "); got != "QEMU_HARDDISK" {
		t.Errorf("replaceWhitespace = %q", got)
	}
}

func TestMatchDisk(t *testing.T) {
	const g = int64(1) << 30
	disks := []Disk{
		{Name: "vda", Path: "/dev/vda", Size: 8 * g, Serial: "OS-1", ByID: []string{"virtio-OS-1"}},
		{Name: "vdb", Path: "/dev/vdb", Size: 100 * g, Serial: "OSD-1", ByID: []string{"virtio-OSD-1"}},
		{Name: "vdc", Path: "/dev/vdc", Size: 100 * g, Serial: "OSD-2", ByID: []string{"virtio-OSD-2"}},
		{Name: "vdd", Path: "/dev/vdd", Size: 100 * g, Serial: "DUP", ByID: []string{"virtio-DUP"}},
		{Name: "vde", Path: "/dev/vde", Size: 100 * g, Serial: "DUP", ByID: []string{"virtio-DUP"}, ReadOnly: true},
		{Name: "sda", Path: "/dev/sda", Size: 4 * g, ByID: []string{"wwn-0x5000c500a1b2c3d4"}},
	}
	for name, tc := range map[string]struct {
		m       nodeapi.DiskMatch
		want    string
		err     error
		errText string
	}{
		"serial":                  {m: nodeapi.DiskMatch{Serial: "OS-1"}, want: "vda"},
		"serial case-insensitive": {m: nodeapi.DiskMatch{Serial: "os-1"}, want: "vda"},
		"by-id":                   {m: nodeapi.DiskMatch{ByID: "wwn-0x5000c500a1b2c3d4"}, want: "sda"},
		"path":                    {m: nodeapi.DiskMatch{Path: "/dev/vdb"}, want: "vdb"},
		"path by-id":              {m: nodeapi.DiskMatch{Path: "/dev/disk/by-id/virtio-OSD-2"}, want: "vdc"},
		"size in range":           {m: nodeapi.DiskMatch{Serial: "OS-1", MinBytes: 4 * g, MaxBytes: 16 * g}, want: "vda"},
		"size does not narrow":    {m: nodeapi.DiskMatch{Serial: "DUP", MaxBytes: 200 * g, MinBytes: 1}, err: ErrAmbiguousDisk},
		"no such serial":          {m: nodeapi.DiskMatch{Serial: "NOPE"}, err: ErrNoDisk, errText: "no disk matches serial NOPE; disks seen: vda (serial OS-1, 8.0 GiB, by-id virtio-OS-1); vdb"},
		"too small":               {m: nodeapi.DiskMatch{Serial: "OS-1", MinBytes: 16 * g}, err: ErrNoDisk, errText: "vda is 8.0 GiB, smaller than 16.0 GiB"},
		"too large":               {m: nodeapi.DiskMatch{Serial: "OS-1", MaxBytes: 4 * g}, err: ErrNoDisk, errText: "vda is 8.0 GiB, larger than 4.0 GiB"},
		"ambiguous":               {m: nodeapi.DiskMatch{Serial: "DUP"}, err: ErrAmbiguousDisk, errText: "more than one disk matches serial DUP: vdd, vde"},
		"two selectors":           {m: nodeapi.DiskMatch{Serial: "OS-1", Path: "/dev/vda"}, err: ErrBadDiskMatch},
		"no selector":             {m: nodeapi.DiskMatch{}, err: ErrBadDiskMatch},
		"by-path unsupported":     {m: nodeapi.DiskMatch{Path: "/dev/disk/by-path/pci-0000:00:04.0"}, err: ErrBadDiskMatch, errText: "give by_id or serial"},
		"no disks at all":         {m: nodeapi.DiskMatch{Serial: "OS-1"}, err: ErrNoDisk, errText: "no disks seen"},
	} {
		t.Run(name, func(t *testing.T) {
			in := disks
			if name == "no disks at all" {
				in = nil
			}
			d, err := MatchDisk(in, tc.m)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.err, tc.errText)
				}
				return
			}
			if err != nil || d.Name != tc.want {
				t.Fatalf("got %s, %v; want %s", d.Name, err, tc.want)
			}
		})
	}
}

func TestPlanDisks(t *testing.T) {
	const g = int64(1) << 30
	disks := []Disk{
		{Name: "vda", Size: 8 * g, Serial: "OS-1"},
		{Name: "vdb", Size: 100 * g, Serial: "OSD-1"},
		{Name: "vdc", Size: 100 * g, Serial: "OSD-2"},
		{Name: "vdd", Size: 100 * g, Serial: "RO", ReadOnly: true},
		{Name: "vde", Size: 100 * g, Serial: "TWIN"},
		{Name: "vdf", Size: 100 * g, Serial: "TWIN"},
	}
	osd := func(serial string, wipe bool) nodeapi.DiskMatch { return nodeapi.DiskMatch{Serial: serial, Wipe: wipe} }
	p, err := PlanDisks(disks, osd("OS-1", false), []nodeapi.DiskMatch{osd("OSD-1", true), osd("OSD-2", false), osd("GONE", false)})
	if err != nil {
		t.Fatal(err)
	}
	if p.OS.Name != "vda" || len(p.OSDs) != 3 || p.OSDs[0].Disk.Name != "vdb" || p.OSDs[1].Disk.Name != "vdc" || p.OSDs[2].Disk != nil {
		t.Errorf("plan %+v", p)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "OSD disk 3 (serial GONE) not found") {
		t.Errorf("warnings %q", p.Warnings)
	}
	for name, tc := range map[string]struct {
		os   nodeapi.DiskMatch
		osds []nodeapi.DiskMatch
		err  error
		text string
	}{
		"OS disk missing":         {os: osd("NOPE", false), err: ErrNoDisk, text: "OS disk: no disk matches serial NOPE"},
		"OS disk read-only":       {os: osd("RO", false), err: ErrDiskConflict, text: "read-only"},
		"OSD is the OS disk":      {os: osd("OS-1", false), osds: []nodeapi.DiskMatch{{Path: "/dev/vda"}}, err: ErrDiskConflict, text: "OSD disk 1 (/dev/vda) is vda, which is also the OS disk (serial OS-1)"},
		"two OSDs one disk":       {os: osd("OS-1", false), osds: []nodeapi.DiskMatch{osd("OSD-1", false), {Path: "/dev/vdb"}}, err: ErrDiskConflict, text: "also OSD disk 1"},
		"wipe OSD missing":        {os: osd("OS-1", false), osds: []nodeapi.DiskMatch{osd("GONE", true)}, err: ErrNoDisk, text: "OSD disk 1: no disk matches serial GONE"},
		"wipe OSD read-only":      {os: osd("OS-1", false), osds: []nodeapi.DiskMatch{osd("RO", true)}, err: ErrDiskConflict, text: "marked wipe but is read-only"},
		"ambiguous OSD":           {os: osd("OS-1", false), osds: []nodeapi.DiskMatch{osd("TWIN", false)}, err: ErrAmbiguousDisk, text: "OSD disk 1: more than one disk matches serial TWIN: vde, vdf"},
		"OSD with a bad selector": {os: osd("OS-1", false), osds: []nodeapi.DiskMatch{{}}, err: ErrBadDiskMatch},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := PlanDisks(disks, tc.os, tc.osds)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %v, want %v containing %q", err, tc.err, tc.text)
			}
		})
	}
}
