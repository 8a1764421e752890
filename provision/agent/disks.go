package agent

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Disk is one whole disk the agent sees in sysfs.
type Disk struct {
	// Name is the kernel name (vda, nvme0n1, sda); Path is /dev/NAME.
	Name string
	Path string
	// Size is in bytes; LogicalBlockSize is the sector size the disk
	// addresses (512 or 4096).
	Size             int64
	LogicalBlockSize int
	// Serial is the serial number as lsblk shows it (udev's
	// ID_SERIAL_SHORT): virtio-blk's serial, the NVMe controller's
	// serial, an ATA disk's IDENTIFY serial, a SCSI disk's unit serial
	// number (VPD page 0x80). Empty when the disk has none.
	Serial string
	// Model is the model string (trimmed), when known.
	Model string
	// WWN is the World Wide Name ("0x5000c500a1b2c3d4"), when known.
	WWN string
	// ByID are the names udev would create under /dev/disk/by-id/ for
	// the disk (see ByIDNames).
	ByID []string
	// ReadOnly is the kernel's ro flag; Removable its removable flag.
	ReadOnly  bool
	Removable bool
	// Major and Minor are the device numbers (from sysfs "dev").
	Major, Minor uint32
}

// String describes the disk for an error message a field engineer reads:
// "vda (serial OS-1, 8.0 GiB, by-id virtio-OS-1)".
func (d Disk) String() string {
	var parts []string
	if d.Serial != "" {
		parts = append(parts, "serial "+d.Serial)
	} else {
		parts = append(parts, "no serial")
	}
	parts = append(parts, HumanBytes(d.Size))
	if d.Model != "" {
		parts = append(parts, "model "+d.Model)
	}
	if len(d.ByID) > 0 {
		parts = append(parts, "by-id "+strings.Join(d.ByID, " "))
	}
	if d.ReadOnly {
		parts = append(parts, "read-only")
	}
	return d.Name + " (" + strings.Join(parts, ", ") + ")"
}

// HumanBytes formats n as "8.0 GiB" (binary units).
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// skipDisk reports whether a /sys/block entry is not a disk the agent
// may consider: virtual devices (no "device" link: loop, ram, zram, dm,
// md, nbd), optical drives (sr), floppies.
func skipDisk(sysBlock, name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	_, err := os.Stat(filepath.Join(sysBlock, name, "device"))
	return err != nil
}

// ScanDisks lists the whole disks under sysRoot/block (sysRoot is "/sys"
// on a node), sorted by name, with their by-id names computed as udev
// would (there is no udev in the agent's initramfs).
func ScanDisks(sysRoot string) ([]Disk, error) {
	sysBlock := filepath.Join(sysRoot, "block")
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var out []Disk
	for _, e := range ents {
		name := e.Name()
		if skipDisk(sysBlock, name) {
			continue
		}
		d, err := readDisk(sysBlock, name)
		if err != nil {
			return nil, err
		}
		if d.Size == 0 {
			continue // an empty card reader slot or a disk without medium
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readAttr(p string) (string, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// attr reads a sysfs attribute with trailing whitespace (and newline)
// removed, as udev's $attr{} does.
func attr(p string) string {
	s, _ := readAttr(p)
	return strings.TrimRight(s, " \t\n\r\v\f")
}

func readDisk(sysBlock, name string) (Disk, error) {
	dir := filepath.Join(sysBlock, name)
	d := Disk{Name: name, Path: "/dev/" + name, LogicalBlockSize: 512}
	sectors, err := strconv.ParseInt(attr(filepath.Join(dir, "size")), 10, 64)
	if err != nil {
		return Disk{}, fmt.Errorf("disk %s: size: %w", name, err)
	}
	d.Size = sectors * 512 // sysfs "size" is always in 512-byte units
	if n, err := strconv.Atoi(attr(filepath.Join(dir, "queue", "logical_block_size"))); err == nil && n > 0 {
		d.LogicalBlockSize = n
	}
	d.ReadOnly = attr(filepath.Join(dir, "ro")) == "1"
	d.Removable = attr(filepath.Join(dir, "removable")) == "1"
	if maj, min, ok := strings.Cut(attr(filepath.Join(dir, "dev")), ":"); ok {
		a, _ := strconv.ParseUint(maj, 10, 32)
		b, _ := strconv.ParseUint(min, 10, 32)
		d.Major, d.Minor = uint32(a), uint32(b)
	}
	id := identify(dir, name)
	d.Serial, d.Model, d.WWN, d.ByID = id.serial, id.model, id.wwn, id.byID
	return d, nil
}

// identity is what ByIDNames derives from sysfs for one disk.
type identity struct {
	serial, model, wwn string
	byID               []string
}

// ByIDNames returns the /dev/disk/by-id/ names udev would give the disk
// NAME whose sysfs directory is sysBlock/NAME (see the package doc for
// the rules, which are those of Debian 12's systemd 252
// 60-persistent-storage.rules with ata_id and scsi_id).
func ByIDNames(sysBlock, name string) []string {
	return identify(filepath.Join(sysBlock, name), name).byID
}

func identify(dir, name string) identity {
	switch {
	case strings.HasPrefix(name, "vd"):
		return identifyVirtio(dir)
	case strings.HasPrefix(name, "nvme"):
		return identifyNVMe(dir)
	case strings.HasPrefix(name, "sd"):
		return identifySCSI(dir)
	}
	return identity{}
}

// identifyVirtio: KERNEL=="vd*[!0-9]", ATTRS{serial}=="?*",
// ENV{ID_SERIAL}="$attr{serial}", SYMLINK+="disk/by-id/virtio-$env{ID_SERIAL}".
func identifyVirtio(dir string) identity {
	serial := attr(filepath.Join(dir, "serial"))
	if serial == "" {
		serial = attr(filepath.Join(dir, "device", "serial"))
	}
	var id identity
	if serial == "" {
		return id
	}
	id.serial = strings.TrimSpace(serial)
	if l := symlinkName("virtio-" + replaceChars(serial, allowedInput)); l != "" {
		id.byID = append(id.byID, l)
	}
	return id
}

// identifyNVMe: the namespace's wwid gives nvme-$attr{wwid} (e.g.
// nvme-eui.0025388b91b35d36); the controller's model and serial give
// nvme-MODEL_SERIAL (string_escape=replace: every space becomes '_').
func identifyNVMe(dir string) identity {
	var id identity
	if w := attr(filepath.Join(dir, "wwid")); w != "" {
		if l := symlinkName("nvme-" + replaceChars(w, allowedInput)); l != "" {
			id.byID = append(id.byID, l)
		}
		if v, ok := strings.CutPrefix(w, "eui."); ok && len(v) == 16 {
			id.wwn = "eui." + v
		}
	}
	serial := attr(filepath.Join(dir, "device", "serial"))
	model := attr(filepath.Join(dir, "device", "model"))
	id.serial = strings.TrimSpace(serial)
	id.model = strings.TrimSpace(model)
	if serial != "" && model != "" {
		s := replaceChars(replaceChars(model, allowedInput)+"_"+replaceChars(serial, allowedInput), "/")
		id.byID = append([]string{"nvme-" + s}, id.byID...)
	}
	return id
}

// identifySCSI handles sd* disks. ATA disks (SCSI vendor "ATA", behind
// libata or a SAS HBA's SAT layer) get udev's ata_id names
// ata-MODEL_SERIAL and wwn-0xWWN; other SCSI disks scsi_id's
// scsi-<type digit><designator> and wwn-0xNAA, from VPD page 0x83
// (vpd_pg83), else page 0x80.
func identifySCSI(dir string) identity {
	dev := filepath.Join(dir, "device")
	vendor, _ := readAttr(filepath.Join(dev, "vendor"))
	vendor = strings.TrimRight(vendor, "\n")
	model, _ := readAttr(filepath.Join(dev, "model"))
	model = strings.TrimRight(model, "\n")
	pg80, _ := os.ReadFile(filepath.Join(dev, "vpd_pg80"))
	pg83, _ := os.ReadFile(filepath.Join(dev, "vpd_pg83"))
	serial80 := parseVPD80(pg80)
	desigs := parseVPD83(pg83)
	if strings.TrimSpace(vendor) == "ATA" {
		return identifyATA(model, serial80, desigs)
	}
	var id identity
	id.serial = strings.TrimSpace(serial80)
	id.model = strings.TrimSpace(model)
	serial := ""
	if d, ok := pickDesignator(desigs); ok {
		serial = scsiSerial(d, vendor, model)
		if d.typ == desigNAA {
			id.wwn = "0x" + hex.EncodeToString(d.data)
		}
	} else if serial80 != "" {
		serial = "S" + vendor + model + serial80
	}
	if serial != "" {
		id.byID = append(id.byID, "scsi-"+replaceChars(replaceWhitespace(serial), ""))
	}
	if id.wwn != "" {
		id.byID = append(id.byID, "wwn-"+id.wwn)
	}
	return id
}

// identifyATA computes ata_id's ID_SERIAL (MODEL_SERIAL from the ATA
// IDENTIFY data, whitespace runs as one '_') and ID_WWN. The full
// 40-character model and the serial are read from the SAT "T10 vendor
// identification" designator libata puts in VPD page 0x83 ("ATA     " +
// model + serial); without it the 16-character SCSI INQUIRY model and VPD
// page 0x80 serial are used (a SAS HBA's SAT layer may truncate names
// this way, as its own INQUIRY does).
func identifyATA(model, serial80 string, desigs []designator) identity {
	var id identity
	fullModel, serial := model, serial80
	for _, d := range desigs {
		if d.typ == desigT10 && d.assoc == 0 && len(d.data) == 8+40+20 && strings.TrimSpace(string(d.data[:8])) == "ATA" {
			fullModel, serial = string(d.data[8:48]), string(d.data[48:68])
			break
		}
	}
	for _, d := range desigs {
		if d.typ == desigNAA && d.assoc == 0 && len(d.data) == 8 {
			id.wwn = "0x" + hex.EncodeToString(d.data)
			break
		}
	}
	m, s := replaceChars(replaceWhitespace(fullModel), ""), replaceChars(replaceWhitespace(serial), "")
	id.model = strings.TrimSpace(fullModel)
	id.serial = s // ID_SERIAL_SHORT, what lsblk shows
	idSerial := m
	if s != "" {
		idSerial = m + "_" + s
	}
	if idSerial != "" {
		id.byID = append(id.byID, "ata-"+idSerial)
	}
	if id.wwn != "" {
		id.byID = append(id.byID, "wwn-"+id.wwn)
	}
	return id
}

// SCSI VPD page 0x83 designator types (SPC-4 7.8.6).
const (
	desigVendor = 0
	desigT10    = 1
	desigEUI64  = 2
	desigNAA    = 3
)

type designator struct {
	codeSet int // 1 binary, 2 ASCII, 3 UTF-8
	assoc   int // 0 logical unit, 1 target port, 2 target device
	typ     int
	data    []byte
}

// parseVPD83 splits a Device Identification VPD page (with its 4-byte
// header) into designators; a short or malformed page gives what parsed.
func parseVPD83(b []byte) []designator {
	if len(b) < 4 || b[1] != 0x83 {
		return nil
	}
	n := int(b[2])<<8 | int(b[3])
	b = b[4:]
	if n < len(b) {
		b = b[:n]
	}
	var out []designator
	for len(b) >= 4 {
		l := int(b[3])
		if 4+l > len(b) {
			break
		}
		out = append(out, designator{codeSet: int(b[0] & 0x0f), assoc: int(b[1]>>4) & 3, typ: int(b[1] & 0x0f), data: b[4 : 4+l]})
		b = b[4+l:]
	}
	return out
}

// parseVPD80 returns the Unit Serial Number of VPD page 0x80.
func parseVPD80(b []byte) string {
	if len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	b = b[4:]
	if n < len(b) {
		b = b[:n]
	}
	return strings.TrimRight(string(b), "\x00")
}

// pickDesignator chooses a logical-unit designator the way scsi_id's
// search list does: NAA IEEE Registered Extended (6), NAA IEEE Registered
// (5), any other NAA, EUI-64, T10 vendor ID, vendor specific; binary
// before ASCII within each.
func pickDesignator(ds []designator) (designator, bool) {
	type want struct{ typ, naa, codeSet int }
	order := []want{
		{desigNAA, 6, 1}, {desigNAA, 6, 2}, {desigNAA, 5, 1}, {desigNAA, 5, 2},
		{desigNAA, -1, 1}, {desigNAA, -1, 2},
		{desigEUI64, -1, 1}, {desigEUI64, -1, 2},
		{desigT10, -1, 1}, {desigT10, -1, 2},
		{desigVendor, -1, 1}, {desigVendor, -1, 2},
	}
	for _, w := range order {
		for _, d := range ds {
			if d.assoc != 0 || d.typ != w.typ || d.codeSet != w.codeSet || len(d.data) == 0 {
				continue
			}
			if w.naa >= 0 && int(d.data[0]>>4) != w.naa {
				continue
			}
			return d, true
		}
	}
	return designator{}, false
}

// scsiSerial is scsi_id's ID_SERIAL for a designator: the type as one hex
// digit, then the designator in hex (binary) or as is (ASCII); vendor
// specific designators are not unique, so the INQUIRY vendor and model
// come first.
func scsiSerial(d designator, vendor, model string) string {
	s := strconv.FormatInt(int64(d.typ), 16)
	if d.typ == desigVendor {
		s += vendor + model
	}
	if d.codeSet == 1 {
		return s + hex.EncodeToString(d.data)
	}
	return s + strings.TrimRight(string(d.data), "\x00")
}

// Characters udev keeps in names (udev-util.c whitelisted_char_for_devnode:
// 0-9A-Za-z#+-.:=@_) plus the extra ones a context allows.
const allowedInput = "/ $%?," // UDEV_ALLOWED_CHARS_INPUT: for $attr{} values

func replaceChars(s, extra string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case strings.IndexByte("#+-.:=@_", c) >= 0, strings.IndexByte(extra, c) >= 0:
		default:
			// Including bytes >= 0x80: udev keeps valid UTF-8, but
			// serials and models are ASCII (SPC and ATA say so), and a
			// replaced byte can only make a name not match.
			b[i] = '_'
		}
	}
	return string(b)
}

// replaceWhitespace is udev's udev_replace_whitespace: leading and
// trailing whitespace removed, each run of whitespace inside written as
// one '_'.
func replaceWhitespace(s string) string {
	return strings.Join(strings.Fields(s), "_")
}

// symlinkName applies udev's default SYMLINK escaping (characters other
// than '/' and ' ' replaced) and keeps the first space-separated name:
// udev splits a SYMLINK value at spaces into several links.
func symlinkName(s string) string {
	s = replaceChars(s, "/ ")
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}
