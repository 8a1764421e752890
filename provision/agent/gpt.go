package agent

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"
)

// The partition table code below follows the UEFI specification 2.10,
// section 5.3 (GUID Partition Table): the protective MBR in LBA 0, the
// primary header in LBA 1 followed by the partition entry array, and the
// backup entry array and backup header in the disk's last LBAs. Headers
// and entry arrays carry CRC32s (IEEE, as zlib computes them).

// SectorSize is the logical sector size the agent writes images for.
// Images are built with 512-byte sectors; a 4Kn disk is refused.
const SectorSize = 512

var gptSignature = []byte("EFI PART")

// ErrNoGPT is returned when LBA 1 holds no valid GPT header.
var ErrNoGPT = errors.New("no GPT")

// GPTHeader is a GPT header (UEFI 2.10 table 5.5).
type GPTHeader struct {
	Revision       uint32
	HeaderSize     uint32
	MyLBA          uint64
	AlternateLBA   uint64
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	DiskGUID       [16]byte
	EntriesLBA     uint64
	NumEntries     uint32
	EntrySize      uint32
	EntriesCRC     uint32
}

// GPTEntry is one partition entry (UEFI 2.10 table 5.6).
type GPTEntry struct {
	Type       [16]byte
	Unique     [16]byte
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
	Name       [72]byte // UTF-16LE
}

// Used reports whether the entry describes a partition.
func (e GPTEntry) Used() bool { return e.Type != [16]byte{} }

// NameString decodes the entry's UTF-16LE name.
func (e GPTEntry) NameString() string {
	u := make([]uint16, 0, 36)
	for i := 0; i+1 < len(e.Name); i += 2 {
		c := binary.LittleEndian.Uint16(e.Name[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// GPT is a parsed partition table: a header and its raw entry array (the
// entries' bytes, so entries this code does not interpret survive).
type GPT struct {
	Header  GPTHeader
	Entries []GPTEntry
	// headerTail is the header's bytes past the 92 defined ones (up to
	// HeaderSize), kept as read.
	headerTail []byte
}

// ReadGPT reads and checks the primary GPT of r (LBA 1 and its entry
// array): signature, header CRC, entry array CRC.
func ReadGPT(r io.ReaderAt) (*GPT, error) {
	return readGPTAt(r, 1)
}

func readGPTAt(r io.ReaderAt, lba uint64) (*GPT, error) {
	sec := make([]byte, SectorSize)
	if _, err := r.ReadAt(sec, int64(lba)*SectorSize); err != nil {
		return nil, fmt.Errorf("read GPT header at LBA %d: %w", lba, err)
	}
	if !bytes.Equal(sec[:8], gptSignature) {
		return nil, fmt.Errorf("LBA %d: %w (no \"EFI PART\" signature)", lba, ErrNoGPT)
	}
	le := binary.LittleEndian
	h := GPTHeader{
		Revision:       le.Uint32(sec[8:]),
		HeaderSize:     le.Uint32(sec[12:]),
		MyLBA:          le.Uint64(sec[24:]),
		AlternateLBA:   le.Uint64(sec[32:]),
		FirstUsableLBA: le.Uint64(sec[40:]),
		LastUsableLBA:  le.Uint64(sec[48:]),
		EntriesLBA:     le.Uint64(sec[72:]),
		NumEntries:     le.Uint32(sec[80:]),
		EntrySize:      le.Uint32(sec[84:]),
		EntriesCRC:     le.Uint32(sec[88:]),
	}
	copy(h.DiskGUID[:], sec[56:72])
	if h.HeaderSize < 92 || h.HeaderSize > SectorSize {
		return nil, fmt.Errorf("GPT header at LBA %d: header size %d", lba, h.HeaderSize)
	}
	crc := le.Uint32(sec[16:])
	hb := append([]byte(nil), sec[:h.HeaderSize]...)
	le.PutUint32(hb[16:], 0)
	if got := crc32.ChecksumIEEE(hb); got != crc {
		return nil, fmt.Errorf("GPT header at LBA %d: CRC %08x, computed %08x", lba, crc, got)
	}
	if h.MyLBA != lba {
		return nil, fmt.Errorf("GPT header at LBA %d says it is at LBA %d", lba, h.MyLBA)
	}
	if h.EntrySize < 128 || h.EntrySize%8 != 0 || h.NumEntries == 0 || h.NumEntries > 1024 {
		return nil, fmt.Errorf("GPT header at LBA %d: %d entries of %d bytes", lba, h.NumEntries, h.EntrySize)
	}
	arr := make([]byte, int(h.NumEntries)*int(h.EntrySize))
	if _, err := r.ReadAt(arr, int64(h.EntriesLBA)*SectorSize); err != nil {
		return nil, fmt.Errorf("read GPT entries at LBA %d: %w", h.EntriesLBA, err)
	}
	if got := crc32.ChecksumIEEE(arr); got != h.EntriesCRC {
		return nil, fmt.Errorf("GPT entries at LBA %d: CRC %08x, computed %08x", h.EntriesLBA, h.EntriesCRC, got)
	}
	g := &GPT{Header: h, headerTail: append([]byte(nil), sec[92:h.HeaderSize]...)}
	for i := 0; i < int(h.NumEntries); i++ {
		b := arr[i*int(h.EntrySize):]
		var e GPTEntry
		copy(e.Type[:], b[0:16])
		copy(e.Unique[:], b[16:32])
		e.FirstLBA = le.Uint64(b[32:])
		e.LastLBA = le.Uint64(b[40:])
		e.Attributes = le.Uint64(b[48:])
		copy(e.Name[:], b[56:128])
		g.Entries = append(g.Entries, e)
	}
	return g, nil
}

// entriesSectors is the size of the entry array in sectors.
func (g *GPT) entriesSectors() uint64 {
	n := uint64(g.Header.NumEntries) * uint64(g.Header.EntrySize)
	return (n + SectorSize - 1) / SectorSize
}

func (g *GPT) entryBytes() []byte {
	le := binary.LittleEndian
	arr := make([]byte, int(g.Header.NumEntries)*int(g.Header.EntrySize))
	for i, e := range g.Entries {
		b := arr[i*int(g.Header.EntrySize):]
		copy(b[0:16], e.Type[:])
		copy(b[16:32], e.Unique[:])
		le.PutUint64(b[32:], e.FirstLBA)
		le.PutUint64(b[40:], e.LastLBA)
		le.PutUint64(b[48:], e.Attributes)
		copy(b[56:128], e.Name[:])
	}
	return arr
}

func (g *GPT) headerBytes(h GPTHeader, entriesCRC uint32) []byte {
	le := binary.LittleEndian
	sec := make([]byte, SectorSize)
	copy(sec, gptSignature)
	le.PutUint32(sec[8:], h.Revision)
	le.PutUint32(sec[12:], h.HeaderSize)
	le.PutUint64(sec[24:], h.MyLBA)
	le.PutUint64(sec[32:], h.AlternateLBA)
	le.PutUint64(sec[40:], h.FirstUsableLBA)
	le.PutUint64(sec[48:], h.LastUsableLBA)
	copy(sec[56:72], h.DiskGUID[:])
	le.PutUint64(sec[72:], h.EntriesLBA)
	le.PutUint32(sec[80:], h.NumEntries)
	le.PutUint32(sec[84:], h.EntrySize)
	le.PutUint32(sec[88:], entriesCRC)
	copy(sec[92:h.HeaderSize], g.headerTail)
	le.PutUint32(sec[16:], crc32.ChecksumIEEE(sec[:h.HeaderSize]))
	return sec
}

// GrowResult says what GrowGPT changed.
type GrowResult struct {
	// OldBackupLBA and NewBackupLBA are where the backup header was (the
	// image's last sector) and is now (the disk's last sector).
	OldBackupLBA, NewBackupLBA uint64
	// Partition is the grown partition's number (0: none), OldLastLBA
	// and NewLastLBA its last sector before and after.
	Partition              int
	OldLastLBA, NewLastLBA uint64
}

// Relocate moves the table's backup to the end of a disk of diskSectors
// sectors (the header in the last sector, the entry array before it) and
// sets LastUsableLBA accordingly. It refuses a disk too small for the
// partitions already there.
func (g *GPT) Relocate(diskSectors uint64) error {
	es := g.entriesSectors()
	if diskSectors < 2+2*es+2 {
		return fmt.Errorf("disk of %d sectors cannot hold a GPT", diskSectors)
	}
	lastUsable := diskSectors - 1 - es - 1
	for i, e := range g.Entries {
		if e.Used() && e.LastLBA > lastUsable {
			return fmt.Errorf("partition %d ends at LBA %d, past the disk's last usable LBA %d", i+1, e.LastLBA, lastUsable)
		}
	}
	g.Header.AlternateLBA = diskSectors - 1
	g.Header.LastUsableLBA = lastUsable
	return nil
}

// Grow extends partition number part (1-based) to the table's
// LastUsableLBA. It must be the partition that ends last.
func (g *GPT) Grow(part int) (oldLast, newLast uint64, err error) {
	if part < 1 || part > len(g.Entries) || !g.Entries[part-1].Used() {
		return 0, 0, fmt.Errorf("partition %d is not in the partition table", part)
	}
	e := &g.Entries[part-1]
	for i, o := range g.Entries {
		if i != part-1 && o.Used() && o.FirstLBA > e.LastLBA {
			return 0, 0, fmt.Errorf("partition %d cannot grow: partition %d (LBA %d-%d) comes after it", part, i+1, o.FirstLBA, o.LastLBA)
		}
	}
	oldLast = e.LastLBA
	if g.Header.LastUsableLBA > e.LastLBA {
		e.LastLBA = g.Header.LastUsableLBA
	}
	return oldLast, e.LastLBA, nil
}

// Write writes the backup entry array and header at the end of the disk,
// then the primary entry array and header, as the header fields say.
// The protective MBR's partition (type 0xEE) is resized to cover the
// disk (capped at 0xFFFFFFFF sectors, as the specification says).
func (g *GPT) Write(w io.WriterAt, r io.ReaderAt) error {
	arr := g.entryBytes()
	crc := crc32.ChecksumIEEE(arr)
	primary := g.Header
	primary.MyLBA = 1
	backup := g.Header
	backup.MyLBA, backup.AlternateLBA = g.Header.AlternateLBA, 1
	backup.EntriesLBA = g.Header.AlternateLBA - g.entriesSectors()
	writes := []struct {
		off  int64
		data []byte
	}{
		{int64(backup.EntriesLBA) * SectorSize, arr},
		{int64(backup.MyLBA) * SectorSize, g.headerBytes(backup, crc)},
		{int64(primary.EntriesLBA) * SectorSize, arr},
		{SectorSize, g.headerBytes(primary, crc)},
	}
	for _, x := range writes {
		if _, err := w.WriteAt(x.data, x.off); err != nil {
			return fmt.Errorf("write GPT at byte %d: %w", x.off, err)
		}
	}
	return fixProtectiveMBR(w, r, g.Header.AlternateLBA+1)
}

// fixProtectiveMBR resizes the protective MBR's 0xEE partition (UEFI
// 2.10 table 5.4: StartingLBA 1, SizeInLBA the disk's size minus one,
// or 0xFFFFFFFF when larger). Hybrid MBRs keep their other entries.
func fixProtectiveMBR(w io.WriterAt, r io.ReaderAt, diskSectors uint64) error {
	mbr := make([]byte, SectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("read MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil // no MBR; firmware does not need one to read the GPT
	}
	size := diskSectors - 1
	if size > 0xffffffff {
		size = 0xffffffff
	}
	changed := false
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i:]
		if e[4] != 0xee || binary.LittleEndian.Uint32(e[8:]) != 1 {
			continue
		}
		binary.LittleEndian.PutUint32(e[12:], uint32(size))
		changed = true
	}
	if !changed {
		return nil
	}
	_, err := w.WriteAt(mbr, 0)
	return err
}

// MBR partition table (for images without GPT).

// mbrEntry is one of the four primary entries of an MBR.
type mbrEntry struct {
	Type  byte
	Start uint32 // LBA
	Size  uint32 // sectors
}

func readMBR(r io.ReaderAt) ([4]mbrEntry, bool, error) {
	var out [4]mbrEntry
	mbr := make([]byte, SectorSize)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return out, false, err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return out, false, nil
	}
	for i := range out {
		e := mbr[446+16*i:]
		out[i] = mbrEntry{Type: e[4], Start: binary.LittleEndian.Uint32(e[8:]), Size: binary.LittleEndian.Uint32(e[12:])}
	}
	return out, true, nil
}

// growMBR extends primary partition part (1-4) of an MBR-partitioned
// disk to its end (at most 2 TiB of 512-byte sectors, MBR's limit).
func growMBR(w io.WriterAt, r io.ReaderAt, part int, diskSectors uint64) (oldLast, newLast uint64, err error) {
	ents, ok, err := readMBR(r)
	if err != nil {
		return 0, 0, err
	}
	if !ok {
		return 0, 0, errors.New("no MBR partition table (no 0x55AA signature)")
	}
	if part < 1 || part > 4 {
		return 0, 0, fmt.Errorf("MBR partition %d: only primary partitions 1-4 can be grown", part)
	}
	e := ents[part-1]
	if e.Type == 0 || e.Size == 0 {
		return 0, 0, fmt.Errorf("MBR partition %d is empty", part)
	}
	if e.Type == 0x05 || e.Type == 0x0f || e.Type == 0x85 {
		return 0, 0, fmt.Errorf("MBR partition %d is an extended partition", part)
	}
	for i, o := range ents {
		if i != part-1 && o.Type != 0 && o.Start > e.Start {
			return 0, 0, fmt.Errorf("MBR partition %d cannot grow: partition %d starts after it", part, i+1)
		}
	}
	end := diskSectors
	if end > 0xffffffff {
		end = 0xffffffff
	}
	oldLast = uint64(e.Start) + uint64(e.Size) - 1
	if end <= uint64(e.Start) {
		return 0, 0, fmt.Errorf("MBR partition %d starts past the disk's end", part)
	}
	size := uint32(end - uint64(e.Start))
	if size <= e.Size {
		return oldLast, oldLast, nil
	}
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, size)
	if _, err := w.WriteAt(b, int64(446+16*(part-1)+12)); err != nil {
		return 0, 0, err
	}
	return oldLast, uint64(e.Start) + uint64(size) - 1, nil
}

// ReadWriterAt is a disk: read and written at offsets.
type ReadWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// GrowTable makes the partition table of an image just written to a disk
// of diskSize bytes fit the disk: for GPT it moves the backup header and
// entry array to the disk's end (zeroing the old backup, which is now
// inside the disk), grows partition part (0: none) to the last usable
// sector, fixes the protective MBR, and reads the table back from both
// ends to check it. For an MBR table it grows primary partition part.
func GrowTable(d ReadWriterAt, diskSize int64, part int) (GrowResult, error) {
	diskSectors := uint64(diskSize / SectorSize)
	g, err := ReadGPT(d)
	if errors.Is(err, ErrNoGPT) {
		if part == 0 {
			return GrowResult{}, nil
		}
		oldLast, newLast, err := growMBR(d, d, part, diskSectors)
		if err != nil {
			return GrowResult{}, fmt.Errorf("grow partition %d: %w", part, err)
		}
		return GrowResult{Partition: part, OldLastLBA: oldLast, NewLastLBA: newLast}, nil
	}
	if err != nil {
		return GrowResult{}, fmt.Errorf("partition table: %w", err)
	}
	res := GrowResult{OldBackupLBA: g.Header.AlternateLBA}
	oldBackupEntries := g.Header.AlternateLBA - g.entriesSectors()
	if err := g.Relocate(diskSectors); err != nil {
		return GrowResult{}, err
	}
	res.NewBackupLBA = g.Header.AlternateLBA
	if part > 0 {
		res.Partition = part
		if res.OldLastLBA, res.NewLastLBA, err = g.Grow(part); err != nil {
			return GrowResult{}, err
		}
	}
	if res.OldBackupLBA != res.NewBackupLBA && res.OldBackupLBA < diskSectors {
		// The old backup is inside the disk now: left alone, a tool
		// scanning for "EFI PART" could take it for a table.
		zero := make([]byte, int(res.OldBackupLBA-oldBackupEntries+1)*SectorSize)
		if _, err := d.WriteAt(zero, int64(oldBackupEntries)*SectorSize); err != nil {
			return GrowResult{}, fmt.Errorf("clear the old backup GPT: %w", err)
		}
	}
	if err := g.Write(d, d); err != nil {
		return GrowResult{}, err
	}
	// Read both copies back: what the firmware and the kernel will read.
	p, err := ReadGPT(d)
	if err != nil {
		return GrowResult{}, fmt.Errorf("primary GPT after growing: %w", err)
	}
	b, err := readGPTAt(d, p.Header.AlternateLBA)
	if err != nil {
		return GrowResult{}, fmt.Errorf("backup GPT after growing: %w", err)
	}
	if p.Header.AlternateLBA != diskSectors-1 || b.Header.AlternateLBA != 1 || p.Header.EntriesCRC != b.Header.EntriesCRC {
		return GrowResult{}, fmt.Errorf("GPT after growing: primary and backup disagree")
	}
	return res, nil
}
