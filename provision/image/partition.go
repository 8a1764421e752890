package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Partition type identifiers racklift looks for.
const (
	// GPT type GUIDs (lower case, as in Partition.Type).
	GPTTypeESP       = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	GPTTypeBIOSBoot  = "21686148-6449-6e6f-744e-656564454649"
	GPTTypeLinuxData = "0fc63daf-8483-4772-8e79-3d69d8477de4"
	GPTTypeRootAMD64 = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	// MBR type bytes.
	MBRTypeLinux = "0x83"
	MBRTypeESP   = "0xef"
)

// growableTypes are the partition types of a Linux file system the agent
// may extend to the end of the disk (not LVM, swap or RAID: those need more
// than a bigger partition).
var growableTypes = map[string]bool{
	GPTTypeLinuxData:                       true,
	GPTTypeRootAMD64:                       true,
	"44479540-f297-41b2-9af7-d131d5f0458a": true, // root (x86)
	"b921b045-1df0-41c3-af44-4c6f280d3fae": true, // root (arm64)
	MBRTypeLinux:                           true,
}

// ErrNoPartitionTable is wrapped by the error for an image without a GPT or
// MBR partition table: racklift deploys whole disks, which cannot boot
// without one.
var ErrNoPartitionTable = errors.New("no partition table")

// layout is what readTable finds.
type layout struct {
	table      string // "gpt" or "mbr"
	sectorSize int64
	partitions []Partition
	// grow is the partition that ends last when it holds a Linux file
	// system (0 otherwise).
	grow int
	// bootCode is true when the MBR's boot code area is not all zero.
	bootCode bool
	// biosBoot is the GPT BIOS boot partition (0: none).
	biosBoot int
	// esp is the EFI system partition (0: none).
	esp int
}

func (l *layout) partition(n int) *Partition {
	for i := range l.partitions {
		if l.partitions[i].Number == n {
			return &l.partitions[i]
		}
	}
	return nil
}

// readTable reads the partition table of a disk image of size bytes
// (size < 0: not known yet; partitions are then not checked against it).
// GPT headers and entry arrays must have valid CRCs.
func readTable(r io.ReaderAt, size int64) (*layout, error) {
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, fmt.Errorf("read the first sector: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil, fmt.Errorf("%w: the first sector has no MBR signature (55 AA); racklift deploys whole-disk images with a GPT or MBR partition table (not a file-system image)", ErrNoPartitionTable)
	}
	l := &layout{bootCode: !allZero(mbr[:440]), sectorSize: 512}
	protective := false
	for i := range 4 {
		if mbr[446+16*i+4] == 0xee {
			protective = true
		}
	}
	if protective {
		if err := readGPT(r, size, l); err != nil {
			return nil, err
		}
	} else if err := readMBR(r, size, mbr, l); err != nil {
		return nil, err
	}
	if len(l.partitions) == 0 {
		return nil, fmt.Errorf("%w: the %s partition table is empty", ErrNoPartitionTable, strings.ToUpper(l.table))
	}
	var last *Partition
	for i := range l.partitions {
		p := &l.partitions[i]
		if last == nil || p.Start+p.Size > last.Start+last.Size {
			last = p
		}
		switch p.Type {
		case GPTTypeESP, MBRTypeESP:
			if l.esp == 0 {
				l.esp = p.Number
			}
		case GPTTypeBIOSBoot:
			if l.biosBoot == 0 {
				l.biosBoot = p.Number
			}
		}
	}
	if growableTypes[last.Type] {
		l.grow = last.Number
	}
	return l, nil
}

func readGPT(r io.ReaderAt, size int64, l *layout) error {
	l.table = "gpt"
	var hdr []byte
	for _, ss := range []int64{512, 4096} {
		b := make([]byte, ss)
		if _, err := r.ReadAt(b, ss); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the GPT header: %w", err)
		}
		if string(b[:8]) == "EFI PART" {
			hdr, l.sectorSize = b, ss
			break
		}
	}
	if hdr == nil {
		return fmt.Errorf("%w: a protective MBR (type 0xee) but no GPT header (\"EFI PART\") at LBA 1", ErrNoPartitionTable)
	}
	ss := l.sectorSize
	le := binary.LittleEndian
	hsize := le.Uint32(hdr[12:])
	if hsize < 92 || int64(hsize) > ss {
		return fmt.Errorf("GPT header size %d is invalid: the image is damaged", hsize)
	}
	want := le.Uint32(hdr[16:])
	h := bytes.Clone(hdr[:hsize])
	clear(h[16:20])
	if got := crc32.ChecksumIEEE(h); got != want {
		return fmt.Errorf("GPT header CRC is %08x, the header says %08x: the image is damaged", got, want)
	}
	if my := le.Uint64(hdr[24:]); my != 1 {
		return fmt.Errorf("GPT header at LBA 1 says it is at LBA %d: the image is damaged", my)
	}
	entriesLBA := int64(le.Uint64(hdr[72:]))
	n := int64(le.Uint32(hdr[80:]))
	esize := int64(le.Uint32(hdr[84:]))
	if esize < 128 || esize%8 != 0 || n > 4096 || n*esize > 4<<20 || entriesLBA < 2 {
		return fmt.Errorf("GPT header: %d entries of %d bytes at LBA %d is invalid: the image is damaged", n, esize, entriesLBA)
	}
	ents := make([]byte, n*esize)
	if _, err := r.ReadAt(ents, entriesLBA*ss); err != nil {
		return fmt.Errorf("read the GPT partition entries: %w", err)
	}
	if got, want := crc32.ChecksumIEEE(ents), le.Uint32(hdr[88:]); got != want {
		return fmt.Errorf("GPT partition entries CRC is %08x, the header says %08x: the image is damaged", got, want)
	}
	for i := range n {
		e := ents[i*esize : (i+1)*esize]
		if allZero(e[:16]) {
			continue
		}
		first, last := int64(le.Uint64(e[32:])), int64(le.Uint64(e[40:]))
		p := Partition{Number: int(i + 1), Type: guidString(e[:16]), Name: utf16Name(e[56:128])}
		if last < first || first < 1 {
			return fmt.Errorf("GPT partition %d: sectors %d-%d are invalid", p.Number, first, last)
		}
		p.Start, p.Size = first*ss, (last-first+1)*ss
		if err := checkInside(p, size); err != nil {
			return err
		}
		l.partitions = append(l.partitions, p)
	}
	return nil
}

func readMBR(r io.ReaderAt, size int64, mbr []byte, l *layout) error {
	l.table = "mbr"
	le := binary.LittleEndian
	var ext int64 // start of the extended partition (bytes)
	for i := range 4 {
		e := mbr[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start, count := int64(le.Uint32(e[8:])), int64(le.Uint32(e[12:]))
		if typ == 0 || count == 0 {
			continue
		}
		if e[0] != 0 && e[0] != 0x80 {
			return fmt.Errorf("%w: MBR partition %d has boot flag %#02x (only 0x00 and 0x80 are valid): the first sector is not a partition table", ErrNoPartitionTable, i+1, e[0])
		}
		p := Partition{Number: i + 1, Start: start * 512, Size: count * 512, Type: fmt.Sprintf("%#02x", typ)}
		if err := checkInside(p, size); err != nil {
			return err
		}
		if isExtended(typ) {
			if ext == 0 {
				ext = p.Start
			}
			continue
		}
		l.partitions = append(l.partitions, p)
	}
	if ext == 0 {
		return nil
	}
	// Logical partitions: a chain of extended boot records, each giving one
	// partition (relative to itself) and the next EBR (relative to ext).
	ebr := make([]byte, 512)
	at := ext
	for n := 5; n < 5+128; n++ {
		if _, err := r.ReadAt(ebr, at); err != nil {
			return fmt.Errorf("read the extended boot record of partition %d: %w", n, err)
		}
		if ebr[510] != 0x55 || ebr[511] != 0xaa {
			return fmt.Errorf("the extended boot record of partition %d has no signature: the image is damaged", n)
		}
		if typ := ebr[446+4]; typ != 0 {
			p := Partition{Number: n, Start: at + int64(le.Uint32(ebr[446+8:]))*512, Size: int64(le.Uint32(ebr[446+12:])) * 512, Type: fmt.Sprintf("%#02x", typ)}
			if err := checkInside(p, size); err != nil {
				return err
			}
			l.partitions = append(l.partitions, p)
		}
		next := int64(le.Uint32(ebr[446+16+8:]))
		if ebr[446+16+4] == 0 || next == 0 {
			return nil
		}
		at = ext + next*512
	}
	return errors.New("more than 128 logical partitions: the extended partition chain loops")
}

func isExtended(t byte) bool { return t == 0x05 || t == 0x0f || t == 0x85 }

func checkInside(p Partition, size int64) error {
	if size >= 0 && p.Start+p.Size > size {
		return fmt.Errorf("partition %d ends at byte %d, past the end of the image (%d bytes): the image is truncated", p.Number, p.Start+p.Size, size)
	}
	return nil
}

// guidString formats a GPT GUID (mixed endian) in lower case.
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:]), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

var zeroBlock = make([]byte, 64<<10)

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
