package plan

import (
	"strings"
	"testing"
)

func TestParseDiskSize(t *testing.T) {
	good := map[string]int64{
		"480G":    480_000_000_000,
		"480GB":   480_000_000_000,
		"1.92T":   1_920_000_000_000,
		"3.84 TB": 3_840_000_000_000,
		"960GiB":  960 << 30,
		"8gib":    8 << 30,
		"512M":    512_000_000,
		"64MiB":   64 << 20,
		"2TiB":    2 << 40,
	}
	for s, want := range good {
		got, err := ParseDiskSize(s)
		if err != nil || got != want {
			t.Errorf("ParseDiskSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "G", "480", "480X", "1.2.3T", "-1G", "0T", "0.0000000001K", "99999999999P"} {
		if b, err := ParseDiskSize(s); err == nil {
			t.Errorf("ParseDiskSize(%q) = %d, want an error", s, b)
		}
	}
}

func TestDiskSizeRange(t *testing.T) {
	d := Disk{Path: "/dev/sda", SizeBytes: 480_000_000_000}
	lo, hi := d.SizeRange()
	if lo != 470_400_000_000 || hi != 489_600_000_000 {
		t.Errorf("range %d-%d", lo, hi)
	}
	// A real "480G" SSD matches; a 500 GB and a 447 GB one do not.
	for size, want := range map[int64]bool{480_103_981_056: true, 500_107_862_016: false, 447_000_000_000: false} {
		if d.SizeMatches(size) != want {
			t.Errorf("SizeMatches(%d) = %v", size, !want)
		}
	}
	if !(Disk{}).SizeMatches(1) {
		t.Error("no size must match any disk")
	}
	if lo, hi := (Disk{}).SizeRange(); lo != 0 || hi != 0 {
		t.Errorf("no size: range %d-%d", lo, hi)
	}
}

func TestFormatDiskSize(t *testing.T) {
	for b, want := range map[int64]string{
		512:             "512 B",
		480_103_981_056: "480.1 GB (447.1 GiB)",
		8 << 30:         "8.6 GB (8.0 GiB)",
	} {
		if got := FormatDiskSize(b); got != want {
			t.Errorf("FormatDiskSize(%d) = %q, want %q", b, got, want)
		}
	}
}

// TestSecureBootAndSize resolves secure_boot from defaults, role and node,
// and disk sizes.
func TestSecureBootAndSize(t *testing.T) {
	text := strings.NewReplacer(
		"  disks:\n    os: {path: /dev/sda}\n",
		"  disks:\n    os: {path: /dev/sda, size: 480G}\n  bios: {secure_boot: true}\n  roles:\n    storage: {bios: {boot_mode: legacy, secure_boot: false}}\n",
		`{name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}}`,
		`{name: cmp-04, roles: [compute], mac: "52:54:00:00:02:04", bmc: {address: 10.0.1.24}, bios: {secure_boot: false}}`,
		"disks: {osds: [{path: /dev/sdb}]}}", "disks: {osds: [{path: /dev/sdb, size: 1.92T}]}}",
	).Replace(basePlan)
	p, ds := Load("sb.yaml", []byte(text), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil {
		t.Fatal(dump(ds))
	}
	for name, want := range map[string]bool{"ctl-01": true, "osd-01": false, "cmp-04": false} {
		n, _ := p.NodeByName(name)
		if n.BIOS.SecureBoot != want {
			t.Errorf("%s: SecureBoot %v, want %v", name, n.BIOS.SecureBoot, want)
		}
	}
	osd, _ := p.NodeByName("osd-01")
	if osd.OSDisk.SizeBytes != 480_000_000_000 || len(osd.OSDs) != 1 || osd.OSDs[0].SizeBytes != 1_920_000_000_000 {
		t.Errorf("sizes: OS %d, OSDs %+v", osd.OSDisk.SizeBytes, osd.OSDs)
	}
}
