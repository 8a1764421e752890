package image

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"

	"github.com/klauspost/compress/zstd"
)

// Writers of synthetic disk images for the tests: a FAT12/16 file system,
// GPT and MBR partition tables, and qcow2 files. They follow the specs
// independently of the readers in this package, so a reader bug does not
// cancel out.

// fatFile is a file in a test FAT file system. Paths use '/'; a name with
// lower-case letters gets a long (VFAT) name entry when lfn is set, else
// NT's lower-case flags.
type fatFile struct {
	path string
	data []byte
	lfn  bool
}

// makeFAT formats a FAT12 or FAT16 file system of total 512-byte sectors
// (spc sectors per cluster; the type follows from the cluster count) and
// writes files into it.
func makeFAT(t testing.TB, total, spc int, files []fatFile) []byte {
	t.Helper()
	const bps, reserved, nfats, rootEntries = 512, 1, 2, 512
	rootSectors := rootEntries * 32 / bps
	// Find the FAT size: clusters depend on it and it on them.
	fatSectors, clusters, kind := 1, 0, 12
	for range 16 {
		clusters = (total - reserved - nfats*fatSectors - rootSectors) / spc
		kind = 12
		if clusters >= 4085 {
			kind = 16
		}
		need := ((clusters+2)*kind/8 + bps) / bps
		if need <= fatSectors {
			break
		}
		fatSectors = need
	}
	if kind == 16 && clusters >= 65525 {
		t.Fatalf("makeFAT: %d clusters is FAT32", clusters)
	}
	img := make([]byte, total*bps)
	le := binary.LittleEndian
	b := img[:512]
	copy(b, []byte{0xeb, 0x3c, 0x90})
	copy(b[3:], "RLTEST  ")
	le.PutUint16(b[11:], bps)
	b[13] = byte(spc)
	le.PutUint16(b[14:], reserved)
	b[16] = nfats
	le.PutUint16(b[17:], rootEntries)
	if total < 65536 {
		le.PutUint16(b[19:], uint16(total))
	} else {
		le.PutUint32(b[32:], uint32(total))
	}
	b[21] = 0xf8
	le.PutUint16(b[22:], uint16(fatSectors))
	b[510], b[511] = 0x55, 0xaa
	fat := make([]uint32, clusters+2)
	fat[0], fat[1] = 0xffffff8, 0xfffffff
	next := uint32(2)
	clusterBytes := spc * bps
	dataStart := (reserved + nfats*fatSectors + rootSectors) * bps
	rootStart := (reserved + nfats*fatSectors) * bps
	alloc := func(n int) uint32 { // contiguous chain of n clusters
		if n == 0 {
			return 0
		}
		first := next
		for i := range n {
			c := first + uint32(i)
			if int(c) >= len(fat) {
				t.Fatal("makeFAT: full")
			}
			fat[c] = c + 1
		}
		fat[first+uint32(n)-1] = 0xfffffff
		next += uint32(n)
		return first
	}
	cl := func(c uint32) []byte {
		o := dataStart + int(c-2)*clusterBytes
		return img[o : o+clusterBytes]
	}
	type dir struct {
		cluster uint32 // 0: root
		used    int
	}
	dirs := map[string]*dir{"": {}}
	var addEntry func(parent string, name string, isDir bool, cluster uint32, size int, lfn bool)
	dirBytes := func(d *dir) []byte {
		if d.cluster == 0 {
			return img[rootStart : rootStart+rootSectors*bps]
		}
		return cl(d.cluster)
	}
	addEntry = func(parent, name string, isDir bool, cluster uint32, size int, lfn bool) {
		d := dirs[parent]
		buf := dirBytes(d)
		short := strings.ToUpper(name)
		base, ext, _ := strings.Cut(short, ".")
		var sn [11]byte
		copy(sn[:], strings.Repeat(" ", 11))
		copy(sn[:8], base)
		copy(sn[8:], ext)
		put := func(e []byte) {
			if d.used+32 > len(buf) {
				t.Fatal("makeFAT: directory full")
			}
			copy(buf[d.used:], e)
			d.used += 32
		}
		var caseFlags byte
		if name != short {
			if lfn {
				u := utf16.Encode([]rune(name))
				u = append(u, 0)
				for len(u)%13 != 0 {
					u = append(u, 0xffff)
				}
				var sum byte
				for _, c := range sn {
					sum = (sum>>1 | sum<<7) + c
				}
				parts := len(u) / 13
				for p := parts; p >= 1; p-- {
					e := make([]byte, 32)
					e[0] = byte(p)
					if p == parts {
						e[0] |= 0x40
					}
					e[11], e[13] = 0x0f, sum
					chars := u[(p-1)*13 : p*13]
					for k, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
						le.PutUint16(e[off:], chars[k])
					}
					put(e)
				}
			} else {
				lb, le2, _ := strings.Cut(name, ".")
				if lb == strings.ToLower(lb) {
					caseFlags |= 0x08
				}
				if le2 == strings.ToLower(le2) {
					caseFlags |= 0x10
				}
			}
		}
		e := make([]byte, 32)
		copy(e, sn[:])
		if isDir {
			e[11] = 0x10
		} else {
			e[11] = 0x20
		}
		e[12] = caseFlags
		le.PutUint16(e[20:], uint16(cluster>>16))
		le.PutUint16(e[26:], uint16(cluster))
		le.PutUint32(e[28:], uint32(size))
		put(e)
	}
	var mkdirs func(path string, lfn bool) *dir
	mkdirs = func(path string, lfn bool) *dir {
		if d, ok := dirs[path]; ok {
			return d
		}
		parent, name := "", path
		if i := strings.LastIndex(path, "/"); i >= 0 {
			parent, name = path[:i], path[i+1:]
		}
		pd := mkdirs(parent, lfn)
		c := alloc(1)
		d := &dir{cluster: c}
		dirs[path] = d
		dot := make([]byte, 64)
		copy(dot, ".          ")
		dot[11] = 0x10
		le.PutUint16(dot[26:], uint16(c))
		copy(dot[32:], "..         ")
		dot[32+11] = 0x10
		le.PutUint16(dot[32+26:], uint16(pd.cluster))
		copy(cl(c), dot)
		d.used = 64
		addEntry(parent, name, true, c, 0, lfn)
		return d
	}
	for _, f := range files {
		parent, name := "", f.path
		if i := strings.LastIndex(f.path, "/"); i >= 0 {
			parent, name = f.path[:i], f.path[i+1:]
		}
		mkdirs(parent, f.lfn)
		n := (len(f.data) + clusterBytes - 1) / clusterBytes
		c := alloc(n)
		for i := range n {
			copy(cl(c+uint32(i)), f.data[i*clusterBytes:min(len(f.data), (i+1)*clusterBytes)])
		}
		addEntry(parent, name, false, c, len(f.data), f.lfn)
	}
	rawFAT := make([]byte, fatSectors*bps)
	for i, v := range fat {
		switch kind {
		case 12:
			v &= 0xfff
			o := i + i/2
			if i&1 == 0 {
				rawFAT[o] = byte(v)
				rawFAT[o+1] = rawFAT[o+1]&0xf0 | byte(v>>8)
			} else {
				rawFAT[o] = rawFAT[o]&0x0f | byte(v<<4)
				rawFAT[o+1] = byte(v >> 4)
			}
		case 16:
			le.PutUint16(rawFAT[2*i:], uint16(v))
		}
	}
	for k := range nfats {
		copy(img[(reserved+k*fatSectors)*bps:], rawFAT)
	}
	return img
}

// gptPart is a partition of a test GPT image.
type gptPart struct {
	typ        string // type GUID
	name       string
	start, end int64 // sectors, end inclusive
	data       []byte
}

func guidBytes(s string) []byte {
	s = strings.ReplaceAll(s, "-", "")
	var raw [16]byte
	for i := range 16 {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		raw[i] = v
	}
	// Mixed endian: the first three fields are little-endian.
	b := raw
	b[0], b[1], b[2], b[3] = raw[3], raw[2], raw[1], raw[0]
	b[4], b[5] = raw[5], raw[4]
	b[6], b[7] = raw[7], raw[6]
	return b[:]
}

// makeGPT writes a protective MBR (with bootCode in its first bytes when
// given), primary and backup GPT and the partitions' data into a zeroed
// image of size bytes.
func makeGPT(t testing.TB, size int64, bootCode []byte, parts []gptPart) []byte {
	t.Helper()
	img := make([]byte, size)
	le := binary.LittleEndian
	copy(img, bootCode)
	pe := img[446:]
	pe[4] = 0xee
	pe[1], pe[2], pe[3] = 0, 2, 0
	le.PutUint32(pe[8:], 1)
	le.PutUint32(pe[12:], uint32(min(size/512-1, 0xffffffff)))
	img[510], img[511] = 0x55, 0xaa
	lastLBA := size/512 - 1
	ents := make([]byte, 128*128)
	for i, p := range parts {
		e := ents[i*128:]
		copy(e, guidBytes(p.typ))
		copy(e[16:], guidBytes("11111111-2222-3333-4444-55555555550"+string(rune('0'+i))))
		le.PutUint64(e[32:], uint64(p.start))
		le.PutUint64(e[40:], uint64(p.end))
		for k, c := range utf16.Encode([]rune(p.name)) {
			le.PutUint16(e[56+2*k:], c)
		}
		copy(img[p.start*512:(p.end+1)*512], p.data)
	}
	entCRC := crc32.ChecksumIEEE(ents)
	hdr := func(my, alt, entLBA int64) []byte {
		h := make([]byte, 92)
		copy(h, "EFI PART")
		le.PutUint32(h[8:], 0x00010000)
		le.PutUint32(h[12:], 92)
		le.PutUint64(h[24:], uint64(my))
		le.PutUint64(h[32:], uint64(alt))
		le.PutUint64(h[40:], 34)
		le.PutUint64(h[48:], uint64(lastLBA-33))
		copy(h[56:], guidBytes("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"))
		le.PutUint64(h[72:], uint64(entLBA))
		le.PutUint32(h[80:], 128)
		le.PutUint32(h[84:], 128)
		le.PutUint32(h[88:], entCRC)
		le.PutUint32(h[16:], crc32.ChecksumIEEE(h))
		return h
	}
	copy(img[512:], hdr(1, lastLBA, 2))
	copy(img[1024:], ents)
	copy(img[(lastLBA-32)*512:], ents)
	copy(img[lastLBA*512:], hdr(lastLBA, 1, lastLBA-32))
	return img
}

// testData returns n pseudo-random bytes (seeded), half of them runs of
// text that compress well.
func testData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; {
		k := min(n-i, 512+r.IntN(4096))
		if r.IntN(2) == 0 {
			for j := 0; j < k; j += 8 {
				v := r.Uint64()
				for q := j; q < min(k, j+8); q++ {
					b[i+q] = byte(v)
					v >>= 8
				}
			}
		} else {
			line := []byte("racklift test data line " + strings.Repeat("x", r.IntN(40)) + "\n")
			for j := range k {
				b[i+j] = line[j%len(line)]
			}
		}
		i += k
	}
	return b
}

// testImageOpts shape makeTestImage.
type testImageOpts struct {
	size      int64 // bytes (default 16 MiB)
	noBoot    bool  // no MBR boot code
	noESP     bool  // no EFI system partition
	debianESP bool  // \EFI\debian\shimx64.efi besides \EFI\BOOT\BOOTX64.EFI
	light     bool  // a 2 MiB FAT12 ESP and little data in the root partition (fast to compress)
	seed      uint64
}

// makeTestImage builds a raw GPT disk image: p1 BIOS boot (1 MiB, some
// bytes of "core.img"), p2 ESP (8 MiB FAT16, \EFI\BOOT\BOOTX64.EFI), p3
// Linux root to the end, holding a run of data longer than MaxChunk,
// holes and scattered blocks.
func makeTestImage(t testing.TB, o testImageOpts) []byte {
	t.Helper()
	if b, ok := testImages.Load(o); ok {
		return bytes.Clone(b.([]byte))
	}
	b := buildTestImage(t, o)
	testImages.Store(o, b)
	return bytes.Clone(b)
}

// testImages caches makeTestImage's results by options (callers get copies).
var testImages sync.Map

func buildTestImage(t testing.TB, o testImageOpts) []byte {
	t.Helper()
	if o.size == 0 {
		o.size = 16 << 20
	}
	sectors := o.size / 512
	var boot []byte
	if !o.noBoot {
		boot = append([]byte{0xeb, 0x63, 0x90}, testData(o.seed+1, 400)...)
	}
	parts := []gptPart{{typ: GPTTypeBIOSBoot, name: "BIOS", start: 2048, end: 4095, data: testData(o.seed+2, 30000)}}
	if !o.noESP {
		loader := append([]byte("MZ"), testData(o.seed+3, 150<<10)...)
		files := []fatFile{{path: "EFI/BOOT/BOOTX64.EFI", data: loader}}
		if o.debianESP {
			files = append(files,
				fatFile{path: "EFI/debian/shimx64.efi", data: loader, lfn: true},
				fatFile{path: "EFI/debian/grubx64.efi", data: append([]byte("MZ"), testData(o.seed+4, 5000)...)},
				fatFile{path: "EFI/debian/grub.cfg", data: []byte("configfile /boot/grub/grub.cfg\n"), lfn: true})
		}
		espSectors, spc := int64(16384), 2 // 8 MiB FAT16
		if o.light {
			espSectors, spc = 4096, 4 // 2 MiB FAT12
		}
		parts = append(parts, gptPart{typ: GPTTypeESP, name: "EFI", start: 4096, end: 4096 + espSectors - 1, data: makeFAT(t, int(espSectors), spc, files)})
	}
	rootStart := int64(4096 + 16384)
	if o.light {
		rootStart = 4096 + 4096
	}
	rootEnd := sectors - 34
	root := make([]byte, (rootEnd-rootStart+1)*512)
	if o.light {
		copy(root, testData(o.seed+5, 32<<10))
	} else {
		copy(root, testData(o.seed+5, MaxChunk+3*BlockSize+100)) // one run longer than a chunk
	}
	for i := int64(0); i < 12 && !o.light; i++ { // scattered single blocks
		at := int64(MaxChunk+64<<10) + i*(97<<10)
		if at+BlockSize <= int64(len(root)) {
			copy(root[at:], testData(o.seed+10+uint64(i), BlockSize))
		}
	}
	copy(root[len(root)-3*BlockSize:], testData(o.seed+6, 2*BlockSize)) // near the end
	parts = append(parts, gptPart{typ: GPTTypeRootAMD64, name: "root", start: rootStart, end: rootEnd, data: root})
	return makeGPT(t, o.size, boot, parts)
}

// makeMBRImage builds a raw MBR disk image: p1 ESP (type 0xef, FAT12),
// p2 an extended partition holding logical p5 (Linux, last on the disk).
func makeMBRImage(t testing.TB) []byte {
	t.Helper()
	const size = 12 << 20
	img := make([]byte, size)
	le := binary.LittleEndian
	copy(img, append([]byte{0xfa, 0x31, 0xc0}, testData(7, 300)...))
	entry := func(b []byte, boot, typ byte, start, count uint32) {
		b[0], b[4] = boot, typ
		le.PutUint32(b[8:], start)
		le.PutUint32(b[12:], count)
	}
	entry(img[446:], 0x80, 0xef, 2048, 4096)
	entry(img[462:], 0, 0x05, 6144, size/512-6144)
	img[510], img[511] = 0x55, 0xaa
	copy(img[2048*512:], makeFAT(t, 4096, 4, []fatFile{{path: "EFI/BOOT/BOOTX64.EFI", data: append([]byte("MZ"), testData(8, 9000)...)}}))
	// The EBR at the start of the extended partition: logical p5 starts
	// 2048 sectors after it.
	ebr := img[6144*512:]
	entry(ebr[446:], 0, 0x83, 2048, size/512-6144-2048)
	ebr[510], ebr[511] = 0x55, 0xaa
	copy(img[(6144+2048)*512:], testData(9, 100<<10))
	return img
}

// qcowOpts shape makeQcow2.
type qcowOpts struct {
	version     int  // 2 or 3 (default 3)
	clusterBits uint // default 16
	compress    bool // every other data cluster compressed (deflate)
	zstd        bool // compressed clusters use zstd (version 3)
	zeroFlag    bool // version 3: zero clusters as L2 entries with the zero flag
	incompat    uint64
	backing     string
	crypt       uint32
}

// makeQcow2 writes raw as a qcow2 file.
func makeQcow2(t testing.TB, raw []byte, o qcowOpts) []byte {
	t.Helper()
	if o.version == 0 {
		o.version = 3
	}
	if o.clusterBits == 0 {
		o.clusterBits = 16
	}
	cs := int64(1) << o.clusterBits
	be := binary.BigEndian
	size := int64(len(raw))
	nclusters := (size + cs - 1) / cs
	perL2 := cs / 8
	l1n := (nclusters + perL2 - 1) / perL2
	l1Clusters := (l1n*8 + cs - 1) / cs
	out := make([]byte, cs*(2+l1Clusters)) // header, refcount table (empty), L1
	l1Off := 2 * cs
	l2 := map[int64][]byte{}
	alignTo := func(a int64) {
		for int64(len(out))%a != 0 {
			out = append(out, 0)
		}
	}
	var zenc *zstd.Encoder
	if o.zstd {
		var err error
		zenc, err = zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer zenc.Close()
	}
	for ci := range nclusters {
		data := make([]byte, cs)
		copy(data, raw[ci*cs:min(size, (ci+1)*cs)])
		li := ci / perL2
		if _, ok := l2[li]; !ok {
			l2[li] = make([]byte, cs)
		}
		var entry uint64
		switch {
		case bytes.Equal(data, make([]byte, cs)):
			if o.zeroFlag && ci%2 == 0 {
				entry = 1
			}
		case o.compress && ci%2 == 1:
			var comp []byte
			if o.zstd {
				comp = zenc.EncodeAll(data, nil)
			} else {
				var buf bytes.Buffer
				w, _ := flate.NewWriter(&buf, flate.BestSpeed)
				w.Write(data)
				w.Close()
				comp = buf.Bytes()
			}
			if int64(len(comp)) >= cs {
				comp = nil
			}
			if comp != nil {
				alignTo(512)
				host := int64(len(out))
				out = append(out, comp...)
				x := 62 - (o.clusterBits - 8)
				nsect := (host%512 + int64(len(comp)) + 511) / 512
				entry = 1<<62 | uint64(nsect-1)<<x | uint64(host)
				break
			}
			fallthrough
		default:
			alignTo(cs)
			host := int64(len(out))
			out = append(out, data...)
			entry = 1<<63 | uint64(host)
		}
		be.PutUint64(l2[li][(ci%perL2)*8:], entry)
	}
	for li := range l1n {
		alignTo(cs)
		host := int64(len(out))
		out = append(out, l2[li]...)
		be.PutUint64(out[l1Off+li*8:], 1<<63|uint64(host))
	}
	alignTo(512)
	h := out[:cs]
	copy(h, qcow2Magic)
	be.PutUint32(h[4:], uint32(o.version))
	be.PutUint32(h[20:], uint32(o.clusterBits))
	be.PutUint64(h[24:], uint64(size))
	be.PutUint32(h[32:], o.crypt)
	be.PutUint32(h[36:], uint32(l1n))
	be.PutUint64(h[40:], uint64(l1Off))
	be.PutUint64(h[48:], uint64(cs)) // refcount table (left empty)
	be.PutUint32(h[56:], 1)
	if o.version == 3 {
		inc := o.incompat
		hlen := uint32(104)
		if o.zstd {
			inc |= 1 << 3
			hlen = 112
			h[104] = 1
		}
		be.PutUint64(h[72:], inc)
		be.PutUint32(h[96:], 4)
		be.PutUint32(h[100:], hlen)
	}
	if o.backing != "" {
		off := int64(512)
		copy(h[off:], o.backing)
		be.PutUint64(h[8:], uint64(off))
		be.PutUint32(h[16:], uint32(len(o.backing)))
	}
	return out
}
