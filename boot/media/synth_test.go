package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"
	"time"
)

// synth builds small ISO 9660 images by hand, for structures xorriso does not
// write cheaply (multi-extent files need a file over 4 GiB) or at all
// (corruption, unusual Rock Ridge encodings).
type synth struct{ b []byte }

func newSynth(sectors int) *synth { return &synth{b: make([]byte, sectors*sectorSize)} }

func both32(b []byte, v uint32) {
	binary.LittleEndian.PutUint32(b, v)
	binary.BigEndian.PutUint32(b[4:], v)
}

func both16(b []byte, v uint16) {
	binary.LittleEndian.PutUint16(b, v)
	binary.BigEndian.PutUint16(b[2:], v)
}

// volume writes a primary volume descriptor (sector 16) whose root directory
// is at rootLBA, and the set terminator (sector 17).
func (s *synth) volume(rootLBA, rootLen uint32) {
	p := s.b[16*sectorSize:]
	p[0], p[6] = 1, 1
	copy(p[1:], "CD001")
	copy(p[40:72], "SYNTH                           ")
	both32(p[80:], uint32(len(s.b)/sectorSize))
	both16(p[128:], sectorSize)
	copy(p[156:], rec("\x00", rootLBA, rootLen, flagDir, nil))
	t := s.b[17*sectorSize:]
	t[0], t[6] = 255, 1
	copy(t[1:], "CD001")
}

// rec builds a directory record recorded at 2020-01-02 03:04:05 UTC.
func rec(id string, lba, length uint32, flags byte, sua []byte) []byte {
	l := 33 + len(id)
	if len(id)%2 == 0 {
		l++
	}
	l += len(sua)
	b := make([]byte, l)
	b[0] = byte(l)
	both32(b[2:], lba)
	both32(b[10:], length)
	copy(b[18:25], []byte{120, 1, 2, 3, 4, 5, 0})
	b[25] = flags
	both16(b[28:], 1)
	b[32] = byte(len(id))
	copy(b[33:], id)
	copy(b[l-len(sua):], sua)
	return b
}

// dir writes records from sector lba on, never across a sector boundary.
func (s *synth) dir(lba int, recs ...[]byte) {
	pos := lba * sectorSize
	for _, r := range recs {
		if pos%sectorSize+len(r) > sectorSize {
			pos = (pos/sectorSize + 1) * sectorSize
		}
		copy(s.b[pos:], r)
		pos += len(r)
	}
}

func (s *synth) put(lba int, data []byte) { copy(s.b[lba*sectorSize:], data) }

// su builds a SUSP entry.
func su(sig string, data ...byte) []byte {
	return append([]byte{sig[0], sig[1], byte(4 + len(data)), 1}, data...)
}

func px(mode uint32) []byte {
	d := make([]byte, 32)
	both32(d, mode)
	both32(d[8:], 1)
	return su("PX", d...)
}

func nm(flags byte, name string) []byte { return su("NM", append([]byte{flags}, name...)...) }

func ce(lba, off, n uint32) []byte {
	d := make([]byte, 24)
	both32(d, lba)
	both32(d[8:], off)
	both32(d[16:], n)
	return su("CE", d...)
}

// slComp builds one SL component record.
func slComp(flags byte, content string) []byte {
	return append([]byte{flags, byte(len(content))}, content...)
}

func sl(flags byte, comps ...[]byte) []byte {
	return su("SL", append([]byte{flags}, slices.Concat(comps...)...)...)
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// multiExtentImage returns a plain ISO 9660 image with a.txt and big.bin, a
// file of three extents (4096 + 2048 + 1000 bytes, the last one first on
// disk), and big.bin's content.
func multiExtentImage() (img, big []byte) {
	s := newSynth(25)
	s.volume(18, sectorSize)
	big = randBytes(7, 4096+2048+1000)
	s.dir(18,
		rec("\x00", 18, sectorSize, flagDir, nil),
		rec("\x01", 18, sectorSize, flagDir, nil),
		rec("A.TXT;1", 19, 5, 0, nil),
		rec("BIG.BIN;1", 21, 4096, flagMulti, nil),
		rec("BIG.BIN;1", 23, 2048, flagMulti, nil),
		rec("BIG.BIN;1", 20, 1000, 0, nil),
	)
	s.put(19, []byte("hello"))
	s.put(21, big[:4096])
	s.put(23, big[4096:6144])
	s.put(20, big[6144:])
	return s.b, big
}

func TestMultiExtent(t *testing.T) {
	img, big := multiExtentImage()
	x, err := NewISO(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if x.ns != nsPlain {
		t.Fatalf("namespace %v", x.ns)
	}
	if got := readDirNames(t, x, "."); !slices.Equal(got, []string{"a.txt", "big.bin"}) {
		t.Fatalf("root = %q", got)
	}
	st, err := x.Stat("big.bin")
	if err != nil || st.Size() != int64(len(big)) {
		t.Fatalf("Stat = %v, %v; want size %d", st, err, len(big))
	}
	want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if !st.ModTime().Equal(want) {
		t.Errorf("ModTime %v, want %v", st.ModTime(), want)
	}
	if b, err := fs.ReadFile(x, "big.bin"); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("ReadFile: %v, equal %v", err, bytes.Equal(b, big))
	}
	f, err := x.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra, _ := f.(interface {
		ReadAt([]byte, int64) (int, error)
	})
	for _, off := range []int64{0, 4094, 4095, 4096, 4097, 6142, 6143, 6144, 6145, 7140} {
		buf := make([]byte, 3)
		n, _ := ra.ReadAt(buf, off)
		if !bytes.Equal(buf[:n], big[off:min(off+3, int64(len(big)))]) {
			t.Errorf("ReadAt(3 at %d) = %x, want %x", off, buf[:n], big[off:off+int64(n)])
		}
	}
	checkReads(t, x, "big.bin", big)
	if err := fstest.TestFS(x, "a.txt", "big.bin"); err != nil {
		t.Fatal(err)
	}
	t.Run("ServeContent", func(t *testing.T) { checkRanges(t, serve(t, x), "big.bin", big) })
}

// rockRidgeImage returns a hand-made Rock Ridge image exercising NM
// continuation, CE areas (also for the ER entry), TF, SL with several
// components and entries, PX types that are skipped, and RE.
func rockRidgeImage() []byte {
	s := newSynth(26)
	s.volume(18, sectorSize)
	er := su("ER", append([]byte{10, 0, 0, 1}, "RRIP_1991A"...)...)
	dirPX := px(sIFDIR | 0o755)
	// Continuation areas in sector 25: the root's ER at 0, a name at 128.
	s.put(25, cat(er, su("ST")))
	tf := su("TF", 0x02, 121, 6, 7, 8, 9, 10, 4) // modify 2021-06-07 08:09:10 +01:00
	copy(s.b[25*sectorSize+128:], cat(nm(0, "continued.txt"), tf))
	ceLen := uint32(len(nm(0, "continued.txt")) + len(tf))
	link := func(target ...[]byte) []byte { return cat(px(sIFLNK|0o777), sl(0, target...)) }
	s.dir(18,
		rec("\x00", 18, sectorSize, flagDir, cat(su("SP", 0xBE, 0xEF, 0), dirPX, ce(25, 0, uint32(len(er)+4)))),
		rec("\x01", 18, sectorSize, flagDir, dirPX),
		rec("ABS.;1", 0, 0, 0, cat(nm(0, "abs"), link(slComp(0x08, ""), slComp(0, "etc"), slComp(0, "passwd")))),
		rec("CEFILE.;1", 21, 10, 0, cat(px(sIFREG|0o644), ce(25, 128, ceLen))),
		rec("DEV.;1", 0, 0, 0, cat(px(0o020644), nm(0, "dev"))),
		rec("DIR", 19, sectorSize, flagDir, cat(dirPX, nm(0, "dir"))),
		rec("ESCAPE.;1", 0, 0, 0, cat(nm(0, "escape"), link(slComp(0x04, ""), slComp(0, "x")))),
		rec("HIDDEN", 19, sectorSize, flagDir, cat(dirPX, nm(0, "hidden"), su("RE"))),
		// ./dir/../split-name.txt, the last component split over two SL entries.
		rec("LINK1.;1", 0, 0, 0, cat(px(sIFLNK|0o777), nm(0, "link1"),
			sl(0x01, slComp(0x02, ""), slComp(0, "dir"), slComp(0x04, ""), slComp(0x01, "split-")),
			sl(0, slComp(0, "name.txt")))),
		rec("LOOPA.;1", 0, 0, 0, cat(nm(0, "loopa"), link(slComp(0, "loopb")))),
		rec("LOOPB.;1", 0, 0, 0, cat(nm(0, "loopb"), link(slComp(0, "loopa")))),
		rec("NAME1.;1", 20, 6, 0, cat(px(sIFREG|0o600), nm(0x01, "split-"), nm(0, "name.txt"))),
		rec("PLAIN.TXT;1", 22, 6, 0, px(sIFREG|0o444)),
	)
	s.dir(19,
		rec("\x00", 19, sectorSize, flagDir, dirPX),
		rec("\x01", 18, sectorSize, flagDir, dirPX),
	)
	s.put(20, []byte("split\n"))
	s.put(21, []byte("continued\n"))
	s.put(22, []byte("plain\n"))
	return s.b
}

func TestSyntheticRockRidge(t *testing.T) {
	img := rockRidgeImage()
	x, err := NewISO(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if x.ns != nsRockRidge {
		t.Fatalf("namespace %v, want rockridge", x.ns)
	}
	want := []string{"PLAIN.TXT", "abs", "continued.txt", "dir", "escape", "link1", "loopa", "loopb", "split-name.txt"}
	if got := readDirNames(t, x, "."); !slices.Equal(got, want) {
		t.Fatalf("root = %q\nwant   %q", got, want)
	}
	for name, content := range map[string]string{"split-name.txt": "split\n", "continued.txt": "continued\n", "PLAIN.TXT": "plain\n", "link1": "split\n"} {
		if b, err := fs.ReadFile(x, name); err != nil || string(b) != content {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, b, err, content)
		}
	}
	if st, _ := x.Stat("split-name.txt"); st.Mode() != 0o600 {
		t.Errorf("split-name.txt mode %v, want 0600", st.Mode())
	}
	if st, _ := x.Stat("."); st.Mode() != fs.ModeDir|0o755 {
		t.Errorf("root mode %v, want drwxr-xr-x", st.Mode())
	}
	if st, _ := x.Stat("continued.txt"); !st.ModTime().Equal(time.Date(2021, 6, 7, 7, 9, 10, 0, time.UTC)) {
		t.Errorf("continued.txt ModTime %v (TF)", st.ModTime())
	}
	for name, target := range map[string]string{"abs": "/etc/passwd", "escape": "../x", "link1": "./dir/../split-name.txt", "loopa": "loopb"} {
		if got, err := x.ReadLink(name); err != nil || got != target {
			t.Errorf("ReadLink(%s) = %q, %v; want %q", name, got, err, target)
		}
	}
	for name, want := range map[string]error{"abs": fs.ErrNotExist, "escape": fs.ErrNotExist, "loopa": fs.ErrInvalid, "dev": fs.ErrNotExist, "hidden": fs.ErrNotExist} {
		if _, err := x.Open(name); !errors.Is(err, want) {
			t.Errorf("Open(%s) = %v, want %v", name, err, want)
		}
	}
}

// corruptImage returns a plain image with a directory cycle, out-of-bounds
// extents, an oversized directory, an interleaved file, a junk record and a
// multi-extent run cut short.
func corruptImage() []byte {
	s := newSynth(24)
	s.volume(18, 2*sectorSize)
	s.dir(18,
		rec("\x00", 18, 2*sectorSize, flagDir, nil),
		rec("\x01", 18, 2*sectorSize, flagDir, nil),
		rec("BAD.BIN;1", 100000, 10, 0, nil),
		rec("CUT.BIN;1", 21, 2048, flagMulti, nil),
		rec("GOOD.TXT;1", 22, 5, 0, nil),
		rec("HUGE", 20, 0xFFFFF000, flagDir, nil),
		rec("INTER.BIN;1", 22, 5, 0, nil),
		rec("LOOP", 18, 2*sectorSize, flagDir, nil),
		rec("SELF", 20, sectorSize, flagDir, nil),
		rec("TRUNC.BIN;1", 23, 4096, 0, nil),
	)
	// An interleaved file: file unit size 1, gap 1.
	for p := 18 * sectorSize; p < 19*sectorSize; {
		r := s.b[p:]
		if r[0] == 0 {
			break
		}
		if bytes.HasPrefix(r[33:], []byte("INTER.BIN")) {
			r[26], r[27] = 1, 1
		}
		p += int(r[0])
	}
	// Junk at the start of the second sector, then a valid record further on.
	copy(s.b[19*sectorSize:], []byte{20, 1, 2, 3})
	copy(s.b[19*sectorSize+sectorSize/2:], []byte{60}) // crosses nothing, but too short to hold its name
	s.dir(20,
		rec("\x00", 20, sectorSize, flagDir, nil),
		rec("\x01", 18, 2*sectorSize, flagDir, nil),
		rec("SELF", 20, sectorSize, flagDir, nil),
	)
	s.put(21, bytes.Repeat([]byte("c"), 2048))
	s.put(22, []byte("good\n"))
	return s.b
}

func TestCorrupt(t *testing.T) {
	img := corruptImage()
	x, err := NewISO(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bad.bin", "cut.bin", "good.txt", "huge", "inter.bin", "loop", "self", "trunc.bin"}
	if got := readDirNames(t, x, "."); !slices.Equal(got, want) {
		t.Fatalf("root = %q\nwant   %q", got, want)
	}
	for name, want := range map[string]error{
		"bad.bin":   ErrCorrupt,
		"trunc.bin": ErrCorrupt,
		"huge":      ErrCorrupt,
		"loop":      ErrCorrupt,
		"self/self": ErrCorrupt,
		"inter.bin": errors.ErrUnsupported,
	} {
		if _, err := x.Open(name); !errors.Is(err, want) {
			t.Errorf("Open(%s) = %v, want %v", name, err, want)
		}
	}
	if b, err := fs.ReadFile(x, "good.txt"); err != nil || string(b) != "good\n" {
		t.Errorf("good.txt = %q, %v", b, err)
	}
	if b, err := fs.ReadFile(x, "cut.bin"); err != nil || len(b) != 2048 {
		t.Errorf("cut.bin = %d bytes, %v; want the 2048 bytes of its only extent", len(b), err)
	}
	var visited, errs int
	fs.WalkDir(x, ".", func(p string, d fs.DirEntry, err error) error {
		visited++
		if err != nil {
			errs++
		}
		return nil
	})
	if visited > 20 || errs != 3 {
		t.Errorf("WalkDir visited %d entries with %d errors; want a short walk with 3 errors (huge, loop, self/self)", visited, errs)
	}

	for name, mutate := range map[string]func(b []byte){
		"block size":     func(b []byte) { both16(b[16*sectorSize+128:], 4096) },
		"root beyond":    func(b []byte) { both32(b[16*sectorSize+156+2:], 1<<30) },
		"no descriptor":  func(b []byte) { b[16*sectorSize+1] = 'X' },
		"root not a dir": func(b []byte) { b[16*sectorSize+156+25] = 0 },
	} {
		b := slices.Clone(img)
		mutate(b)
		if _, err := NewISO(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("%s: NewISO succeeded", name)
		}
	}
}
