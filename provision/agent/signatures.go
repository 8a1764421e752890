package agent

import (
	"bytes"
	"encoding/binary"
	"io"
)

// Signature is an on-disk signature that a tool (blkid, a firmware, the
// kernel, LVM, Ceph) recognises a disk or partition by.
type Signature struct {
	// Kind is the name blkid uses ("gpt", "dos", "ext4", "xfs", "btrfs",
	// "vfat", "LVM2_member", "ceph_bluestore", "swap",
	// "linux_raid_member", "iso9660").
	Kind string
	// Offset is where the magic is, in bytes from the start.
	Offset int64
}

// Signatures finds the signatures wipefs -a (libblkid) would report at
// the start and end of a device of size bytes: partition tables (GPT at
// both ends, the MBR boot signature), file systems (ext2/3/4, XFS, Btrfs,
// FAT, ISO 9660), LVM2 physical volumes, Ceph BlueStore, swap and Linux
// MD RAID superblocks (v1.1 and v1.2 at the start, v0.90 and v1.0 at the
// end). It reads a few kilobytes; unreadable areas count as blank.
func Signatures(r io.ReaderAt, size int64) []Signature {
	read := func(off int64, n int) []byte {
		if off < 0 || off+int64(n) > size {
			return nil
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, off); err != nil {
			return nil
		}
		return b
	}
	var out []Signature
	add := func(kind string, off int64) { out = append(out, Signature{Kind: kind, Offset: off}) }
	has := func(off int64, magic string) bool {
		b := read(off, len(magic))
		return b != nil && string(b) == magic
	}
	head := read(0, 8192)
	if head == nil {
		return nil
	}
	le := binary.LittleEndian
	if has(512, "EFI PART") {
		add("gpt", 512)
	}
	if size >= 1024 && has(size-512, "EFI PART") {
		add("gpt (backup)", size-512)
	}
	fat := bytes.Equal(head[54:57], []byte("FAT")) || bytes.Equal(head[82:87], []byte("FAT32"))
	if head[510] == 0x55 && head[511] == 0xaa {
		if fat {
			add("vfat", 54)
		} else if !has(512, "EFI PART") {
			add("dos", 510)
		}
	}
	if le.Uint16(head[1080:]) == 0xef53 {
		add("ext4", 1080)
	}
	if bytes.Equal(head[:4], []byte("XFSB")) {
		add("xfs", 0)
	}
	if has(65536+64, "_BHRfS_M") {
		add("btrfs", 65536+64)
	}
	for s := int64(0); s < 4; s++ {
		if has(s*512, "LABELONE") && has(s*512+24, "LVM2 001") {
			add("LVM2_member", s*512)
		}
	}
	if bytes.HasPrefix(head, []byte("bluestore block device")) {
		add("ceph_bluestore", 0)
	}
	if string(head[4086:4096]) == "SWAPSPACE2" || string(head[4086:4096]) == "SWAP-SPACE" {
		add("swap", 4086)
	}
	md := func(off int64) {
		if b := read(off, 4); b != nil && le.Uint32(b) == 0xa92b4efc {
			add("linux_raid_member", off)
		}
	}
	md(0)    // v1.1
	md(4096) // v1.2
	if size >= 128<<10 {
		md(size&^(64<<10-1) - 64<<10)  // v0.90: last 64 KiB-aligned block but one
		md((size/512 - 16) &^ 7 * 512) // v1.0: 8 KiB from the end, 4 KiB aligned
	}
	if has(32769, "CD001") {
		add("iso9660", 32769)
	}
	return out
}

// FSType returns the file system the device starts with, as mount(2)
// names it ("ext4" for ext2/3/4, "xfs", "btrfs", "vfat"), or "".
func FSType(r io.ReaderAt, size int64) string {
	for _, s := range Signatures(r, size) {
		switch s.Kind {
		case "ext4", "xfs", "btrfs", "vfat":
			return s.Kind
		}
	}
	return ""
}
