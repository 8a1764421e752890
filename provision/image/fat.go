package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf16"
)

// A read-only FAT12/16/32 directory reader, just enough to find the UEFI
// loader in an EFI system partition: the boot sector's BPB, the FAT's
// cluster chains, directories with long (VFAT) names and NT's lower-case
// flags for short names, and the first bytes of a file.

type fatFS struct {
	r           io.ReaderAt // the partition
	kind        int         // 12, 16 or 32
	bps         int64       // bytes per sector
	clusterSize int64
	fatStart    int64 // byte offset of the first FAT
	fatBytes    int64
	rootStart   int64 // FAT12/16: byte offset of the fixed root directory
	rootBytes   int64
	rootCluster uint32 // FAT32
	dataStart   int64  // byte offset of cluster 2
	clusters    uint32 // number of data clusters
	fat         []byte // the first FAT, read on first use
}

type fatEntry struct {
	name    string // the long name if there is one, else the short name
	dir     bool
	cluster uint32
	size    uint32
}

func openFAT(r io.ReaderAt, size int64) (*fatFS, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read the boot sector: %w", err)
	}
	le := binary.LittleEndian
	if b[510] != 0x55 || b[511] != 0xaa || (b[0] != 0xeb && b[0] != 0xe9) {
		return nil, errors.New("no FAT boot sector (jump instruction and 55 AA signature)")
	}
	bps := int64(le.Uint16(b[11:]))
	spc := int64(b[13])
	reserved := int64(le.Uint16(b[14:]))
	nfats := int64(b[16])
	rootEntries := int64(le.Uint16(b[17:]))
	total := int64(le.Uint16(b[19:]))
	if total == 0 {
		total = int64(le.Uint32(b[32:]))
	}
	fatSize := int64(le.Uint16(b[22:]))
	if fatSize == 0 {
		fatSize = int64(le.Uint32(b[36:]))
	}
	switch {
	case bps != 512 && bps != 1024 && bps != 2048 && bps != 4096:
		return nil, fmt.Errorf("FAT: %d bytes per sector is invalid", bps)
	case spc == 0 || spc&(spc-1) != 0:
		return nil, fmt.Errorf("FAT: %d sectors per cluster is invalid", spc)
	case reserved == 0 || nfats == 0 || fatSize == 0 || total == 0:
		return nil, errors.New("FAT: boot sector fields are zero")
	case size > 0 && total*bps > size:
		return nil, fmt.Errorf("FAT: the file system (%d bytes) is larger than its partition (%d bytes)", total*bps, size)
	}
	rootSectors := (rootEntries*32 + bps - 1) / bps
	meta := reserved + nfats*fatSize + rootSectors
	if meta >= total {
		return nil, errors.New("FAT: no data area")
	}
	f := &fatFS{
		r: r, bps: bps, clusterSize: spc * bps,
		fatStart: reserved * bps, fatBytes: fatSize * bps,
		rootStart: (reserved + nfats*fatSize) * bps, rootBytes: rootSectors * bps,
		dataStart: meta * bps,
		clusters:  uint32((total - meta) / spc),
	}
	switch {
	case f.clusters < 4085:
		f.kind = 12
	case f.clusters < 65525:
		f.kind = 16
	default:
		f.kind = 32
		f.rootCluster = le.Uint32(b[44:])
		if f.rootCluster < 2 {
			return nil, fmt.Errorf("FAT32: root directory cluster %d is invalid", f.rootCluster)
		}
	}
	if need := int64(f.clusters+2) * int64(f.kind) / 8; need > f.fatBytes {
		return nil, fmt.Errorf("FAT%d: the FAT (%d bytes) is too small for %d clusters", f.kind, f.fatBytes, f.clusters)
	}
	return f, nil
}

// next returns the cluster after c in its chain, and whether c was the last.
func (f *fatFS) next(c uint32) (uint32, bool, error) {
	if f.fat == nil {
		f.fat = make([]byte, f.fatBytes)
		if _, err := f.r.ReadAt(f.fat, f.fatStart); err != nil {
			return 0, false, fmt.Errorf("read the FAT: %w", err)
		}
	}
	width := int64(2)
	if f.kind == 32 {
		width = 4
	}
	if o := int64(c) * int64(f.kind) / 8; o+width > int64(len(f.fat)) {
		return 0, false, fmt.Errorf("FAT: cluster %d is past the end of the FAT", c)
	}
	le := binary.LittleEndian
	var v, eoc, bad uint32
	switch f.kind {
	case 12:
		o := c + c/2
		v = uint32(le.Uint16(f.fat[o:]))
		if c&1 == 1 {
			v >>= 4
		}
		v &= 0xfff
		eoc, bad = 0xff8, 0xff7
	case 16:
		v, eoc, bad = uint32(le.Uint16(f.fat[2*c:])), 0xfff8, 0xfff7
	default:
		v, eoc, bad = le.Uint32(f.fat[4*c:])&0x0fffffff, 0x0ffffff8, 0x0ffffff7
	}
	switch {
	case v >= eoc:
		return 0, true, nil
	case v == bad:
		return 0, false, fmt.Errorf("FAT: cluster %d is marked bad", c)
	case v < 2 || v >= f.clusters+2:
		return 0, false, fmt.Errorf("FAT: cluster %d points to invalid cluster %d", c, v)
	}
	return v, false, nil
}

// read returns up to limit bytes of the chain starting at cluster c.
func (f *fatFS) read(c uint32, limit int64) ([]byte, error) {
	var out []byte
	for n := uint32(0); int64(len(out)) < limit; n++ {
		if c < 2 || c >= f.clusters+2 {
			return nil, fmt.Errorf("FAT: cluster %d is out of range", c)
		}
		if n > f.clusters {
			return nil, errors.New("FAT: a cluster chain loops")
		}
		buf := make([]byte, min(f.clusterSize, limit-int64(len(out))))
		if _, err := f.r.ReadAt(buf, f.dataStart+int64(c-2)*f.clusterSize); err != nil {
			return nil, fmt.Errorf("read cluster %d: %w", c, err)
		}
		out = append(out, buf...)
		nc, last, err := f.next(c)
		if err != nil {
			return nil, err
		}
		if last {
			break
		}
		c = nc
	}
	return out, nil
}

// maxDirBytes bounds a directory read (an ESP's directories are tiny).
const maxDirBytes = 1 << 20

// readDir lists a directory; cluster 0 is the root.
func (f *fatFS) readDir(cluster uint32) ([]fatEntry, error) {
	var raw []byte
	var err error
	switch {
	case cluster == 0 && f.kind != 32:
		raw = make([]byte, f.rootBytes)
		_, err = f.r.ReadAt(raw, f.rootStart)
	case cluster == 0:
		raw, err = f.read(f.rootCluster, maxDirBytes)
	default:
		raw, err = f.read(cluster, maxDirBytes)
	}
	if err != nil {
		return nil, err
	}
	return parseDir(raw), nil
}

// parseDir decodes 32-byte directory entries, joining long names.
func parseDir(raw []byte) []fatEntry {
	le := binary.LittleEndian
	var out []fatEntry
	var lfn []uint16
	var lfnSum byte
	lfnOK := false
	for i := 0; i+32 <= len(raw); i += 32 {
		e := raw[i : i+32]
		switch {
		case e[0] == 0:
			return out
		case e[0] == 0xe5:
			lfnOK = false
			continue
		case e[11] == 0x0f: // long name part, stored last part first
			ord := e[0] & 0x3f
			if e[0]&0x40 != 0 {
				lfn, lfnSum, lfnOK = make([]uint16, 13*int(ord)), e[13], ord > 0
			}
			if !lfnOK || ord == 0 || int(ord)*13 > len(lfn) || e[13] != lfnSum {
				lfnOK = false
				continue
			}
			part := lfn[(int(ord)-1)*13:]
			for k, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				part[k] = le.Uint16(e[off:])
			}
			continue
		case e[11]&0x08 != 0: // volume label
			lfnOK = false
			continue
		}
		name := shortName(e)
		if lfnOK && shortSum(e[:11]) == lfnSum {
			u := lfn
			for k, c := range u {
				if c == 0 || c == 0xffff {
					u = u[:k]
					break
				}
			}
			name = string(utf16.Decode(u))
		}
		lfnOK = false
		if name == "." || name == ".." {
			continue
		}
		out = append(out, fatEntry{
			name:    name,
			dir:     e[11]&0x10 != 0,
			cluster: uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:])),
			size:    le.Uint32(e[28:]),
		})
	}
	return out
}

func shortName(e []byte) string {
	base := []byte(strings.TrimRight(string(e[0:8]), " "))
	ext := []byte(strings.TrimRight(string(e[8:11]), " "))
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xe5
	}
	// Windows NT's case flags: the base name or extension is lower case.
	if e[12]&0x08 != 0 {
		base = []byte(strings.ToLower(string(base)))
	}
	if e[12]&0x10 != 0 {
		ext = []byte(strings.ToLower(string(ext)))
	}
	if len(ext) == 0 {
		return string(base)
	}
	return string(base) + "." + string(ext)
}

func shortSum(name []byte) byte {
	var s byte
	for _, c := range name {
		s = (s>>1 | s<<7) + c
	}
	return s
}

// find returns the entry named name (case-insensitive) in entries.
func find(entries []fatEntry, name string) *fatEntry {
	for i := range entries {
		if strings.EqualFold(entries[i].name, name) {
			return &entries[i]
		}
	}
	return nil
}

// efiLoader is what findEFILoader found in an ESP.
type efiLoader struct {
	// path of the loader to boot, e.g. \EFI\debian\shimx64.efi ("" if none).
	path string
	// files are every *.efi file in \EFI\*\, with their stored names.
	files []string
}

// findEFILoader looks for the loader a boot entry should name: Debian's
// shim (\EFI\debian\shimx64.efi), else another vendor's shim
// (\EFI\<vendor>\shimx64.efi, vendors in name order), else the removable
// media path \EFI\BOOT\BOOTX64.EFI. A loader must be a PE file ("MZ").
func findEFILoader(r io.ReaderAt, size int64) (*efiLoader, error) {
	f, err := openFAT(r, size)
	if err != nil {
		return nil, err
	}
	root, err := f.readDir(0)
	if err != nil {
		return nil, err
	}
	res := &efiLoader{}
	efi := find(root, "EFI")
	if efi == nil || !efi.dir {
		return res, nil
	}
	vendors, err := f.readDir(efi.cluster)
	if err != nil {
		return nil, fmt.Errorf(`\%s: %w`, efi.name, err)
	}
	sort.Slice(vendors, func(i, j int) bool {
		return strings.ToLower(vendors[i].name) < strings.ToLower(vendors[j].name)
	})
	type cand struct {
		rank int
		path string
		e    fatEntry
	}
	var cands []cand
	for _, v := range vendors {
		if !v.dir || v.cluster == 0 {
			continue
		}
		files, err := f.readDir(v.cluster)
		if err != nil {
			return nil, fmt.Errorf(`\%s\%s: %w`, efi.name, v.name, err)
		}
		for _, file := range files {
			if file.dir || !strings.HasSuffix(strings.ToLower(file.name), ".efi") {
				continue
			}
			p := `\` + efi.name + `\` + v.name + `\` + file.name
			res.files = append(res.files, p)
			switch {
			case strings.EqualFold(v.name, "debian") && strings.EqualFold(file.name, "shimx64.efi"):
				cands = append(cands, cand{0, p, file})
			case !strings.EqualFold(v.name, "BOOT") && strings.EqualFold(file.name, "shimx64.efi"):
				cands = append(cands, cand{1, p, file})
			case strings.EqualFold(v.name, "BOOT") && strings.EqualFold(file.name, "BOOTX64.EFI"):
				cands = append(cands, cand{2, p, file})
			}
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].rank < cands[j].rank })
	var bad []string
	for _, c := range cands {
		if c.e.size < 64 || c.e.cluster < 2 {
			bad = append(bad, c.path+" is empty")
			continue
		}
		head, err := f.read(c.e.cluster, 2)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.path, err)
		}
		if string(head) != "MZ" {
			bad = append(bad, c.path+" is not an EFI executable (no MZ header)")
			continue
		}
		res.path = c.path
		return res, nil
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	return res, nil
}
