package agent

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Partition type GUIDs in on-disk (mixed-endian) byte order.
var (
	typeBIOSBoot = guidBytes("21686148-6449-6e6f-744e-656564454649")
	typeESP      = guidBytes("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
	typeLinux    = guidBytes("0fc63daf-8483-4772-8e79-3d69d8477de4")
)

// guidBytes encodes a textual GUID the way GPT stores it (the first three
// fields little-endian).
func guidBytes(s string) [16]byte {
	h := mustHex(strings.ReplaceAll(s, "-", ""))
	var g [16]byte
	g[0], g[1], g[2], g[3] = h[3], h[2], h[1], h[0]
	g[4], g[5] = h[5], h[4]
	g[6], g[7] = h[7], h[6]
	copy(g[8:], h[8:])
	return g
}

type testPart struct {
	typ         [16]byte
	first, last uint64
	name        string
}

// writeTestGPT writes a protective MBR and a GPT (128 entries) for a disk
// of sectors sectors into f, the way a disk image builder would.
func writeTestGPT(t *testing.T, f *os.File, sectors uint64, parts ...testPart) {
	t.Helper()
	if err := f.Truncate(int64(sectors) * SectorSize); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, SectorSize)
	mbr[446+4] = 0xee
	binary.LittleEndian.PutUint32(mbr[446+8:], 1)
	binary.LittleEndian.PutUint32(mbr[446+12:], uint32(sectors-1))
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	g := &GPT{Header: GPTHeader{
		Revision: 0x00010000, HeaderSize: 92, MyLBA: 1, AlternateLBA: sectors - 1,
		FirstUsableLBA: 34, LastUsableLBA: sectors - 34, EntriesLBA: 2, NumEntries: 128, EntrySize: 128,
		DiskGUID: guidBytes("11111111-2222-3333-4444-555555555555"),
	}}
	g.Entries = make([]GPTEntry, 128)
	for i, p := range parts {
		e := GPTEntry{Type: p.typ, FirstLBA: p.first, LastLBA: p.last}
		e.Unique[0] = byte(i + 1)
		for j, c := range p.name {
			binary.LittleEndian.PutUint16(e.Name[2*j:], uint16(c))
		}
		g.Entries[i] = e
	}
	if err := g.Write(f, f); err != nil {
		t.Fatal(err)
	}
}

func newFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// imageParts is the layout of the test images: BIOS boot, ESP, root.
var imageParts = []testPart{
	{typ: typeBIOSBoot, first: 2048, last: 4095, name: "bios"},
	{typ: typeESP, first: 4096, last: 36863, name: "esp"},
	{typ: typeLinux, first: 36864, last: 131038, name: "root"},
}

func TestGrowGPT(t *testing.T) {
	const imgSectors, diskSectors = 131072, 1 << 20 // 64 MiB image, 512 MiB disk
	f := newFile(t)
	writeTestGPT(t, f, imgSectors, imageParts...)
	if _, err := f.WriteAt([]byte("root data"), 36864*SectorSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(diskSectors * SectorSize); err != nil {
		t.Fatal(err)
	}
	res, err := GrowTable(f, diskSectors*SectorSize, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := GrowResult{OldBackupLBA: imgSectors - 1, NewBackupLBA: diskSectors - 1, Partition: 3, OldLastLBA: 131038, NewLastLBA: diskSectors - 34}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}
	g, err := ReadGPT(f)
	if err != nil {
		t.Fatal(err)
	}
	if g.Header.AlternateLBA != diskSectors-1 || g.Header.LastUsableLBA != diskSectors-34 || g.Header.FirstUsableLBA != 34 {
		t.Errorf("primary header %+v", g.Header)
	}
	if e := g.Entries[2]; e.FirstLBA != 36864 || e.LastLBA != diskSectors-34 || e.NameString() != "root" {
		t.Errorf("root entry %+v %q", e, e.NameString())
	}
	if e := g.Entries[1]; e.FirstLBA != 4096 || e.LastLBA != 36863 || e.NameString() != "esp" {
		t.Errorf("esp entry changed: %+v", e)
	}
	b, err := readGPTAt(f, diskSectors-1)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if b.Header.EntriesLBA != diskSectors-33 || b.Header.AlternateLBA != 1 || b.Entries[2].LastLBA != diskSectors-34 {
		t.Errorf("backup header %+v", b.Header)
	}
	old := make([]byte, 33*SectorSize)
	if _, err := f.ReadAt(old, (imgSectors-33)*SectorSize); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, make([]byte, len(old))) {
		t.Errorf("the old backup GPT was not cleared")
	}
	data := make([]byte, 9)
	if _, err := f.ReadAt(data, 36864*SectorSize); err != nil || string(data) != "root data" {
		t.Errorf("partition data changed: %q %v", data, err)
	}
	mbr := make([]byte, SectorSize)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(mbr[446+12:]); got != diskSectors-1 {
		t.Errorf("protective MBR size %d, want %d", got, diskSectors-1)
	}

	// Growing again is a no-op that still succeeds.
	if res, err := GrowTable(f, diskSectors*SectorSize, 3); err != nil || res.NewLastLBA != diskSectors-34 {
		t.Errorf("second grow: %+v %v", res, err)
	}
}

func TestGrowGPTRefusals(t *testing.T) {
	const imgSectors = 131072
	t.Run("partition not last", func(t *testing.T) {
		f := newFile(t)
		writeTestGPT(t, f, imgSectors, imageParts...)
		if _, err := GrowTable(f, 4*imgSectors*SectorSize, 2); err == nil || !strings.Contains(err.Error(), "partition 2 cannot grow: partition 3") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no such partition", func(t *testing.T) {
		f := newFile(t)
		writeTestGPT(t, f, imgSectors, imageParts...)
		if _, err := GrowTable(f, 4*imgSectors*SectorSize, 7); err == nil || !strings.Contains(err.Error(), "partition 7 is not in the partition table") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("disk smaller than the partitions", func(t *testing.T) {
		f := newFile(t)
		writeTestGPT(t, f, imgSectors, imageParts...)
		if _, err := GrowTable(f, 100000*SectorSize, 3); err == nil || !strings.Contains(err.Error(), "past the disk's last usable LBA") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("corrupt header", func(t *testing.T) {
		f := newFile(t)
		writeTestGPT(t, f, imgSectors, imageParts...)
		if _, err := f.WriteAt([]byte{0xff}, SectorSize+40); err != nil {
			t.Fatal(err)
		}
		if _, err := GrowTable(f, 4*imgSectors*SectorSize, 3); err == nil || !strings.Contains(err.Error(), "CRC") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("corrupt entries", func(t *testing.T) {
		f := newFile(t)
		writeTestGPT(t, f, imgSectors, imageParts...)
		if _, err := f.WriteAt([]byte{0xff}, 2*SectorSize+200); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadGPT(f); err == nil || !strings.Contains(err.Error(), "entries at LBA 2: CRC") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestGrowMBR(t *testing.T) {
	f := newFile(t)
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, SectorSize)
	put := func(i int, typ byte, start, size uint32) {
		e := mbr[446+16*i:]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], size)
	}
	put(0, 0x83, 2048, 20480)
	put(1, 0x82, 22528, 4096)
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := GrowTable(f, 64<<20, 1); err == nil || !strings.Contains(err.Error(), "partition 2 starts after it") {
		t.Errorf("grow 1: %v", err)
	}
	res, err := GrowTable(f, 64<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.OldLastLBA != 22528+4096-1 || res.NewLastLBA != 131071 {
		t.Errorf("result %+v", res)
	}
	ents, _, _ := readMBR(f)
	if ents[1].Size != 131072-22528 || ents[0].Size != 20480 {
		t.Errorf("entries %+v", ents)
	}
	if _, err := GrowTable(f, 64<<20, 4); err == nil {
		t.Error("grew an empty partition")
	}
}

func TestGrowNoTable(t *testing.T) {
	f := newFile(t)
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if res, err := GrowTable(f, 1<<20, 0); err != nil || res != (GrowResult{}) {
		t.Errorf("no table, no grow: %+v %v", res, err)
	}
	if _, err := GrowTable(f, 1<<20, 1); err == nil || !strings.Contains(err.Error(), "no MBR partition table") {
		t.Errorf("err = %v", err)
	}
}
