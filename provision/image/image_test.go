package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.Now = func() time.Time { return time.Date(2025, 5, 20, 12, 0, 0, 0, time.UTC) }
	return s
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func xzc(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(b, nil)
}

// checkRoundTrip checks a manifest against the raw image it came from:
// whole SHA-256, chunk bounds and contents, holes all zero, and the image
// read back from the blobs.
func checkRoundTrip(t *testing.T, s *Store, m *Manifest, raw []byte) {
	t.Helper()
	if m.Size != int64(len(raw)) || m.SHA256 != sha(raw) {
		t.Fatalf("size %d sha %s, want %d %s", m.Size, m.SHA256, len(raw), sha(raw))
	}
	var pos, mapped int64
	for i, c := range m.Chunks {
		if c.Offset%BlockSize != 0 || c.Length > MaxChunk || c.Offset < pos {
			t.Fatalf("chunk %d: %+v", i, c)
		}
		if !allZero(raw[pos:c.Offset]) {
			t.Fatalf("hole before chunk %d holds data", i)
		}
		if sha(raw[c.Offset:c.Offset+c.Length]) != c.SHA256 {
			t.Fatalf("chunk %d sha", i)
		}
		// Every non-hole block of the chunk is really not zero, except
		// that a chunk is only cut at a zero block, so all its blocks are.
		for b := c.Offset; b < c.Offset+c.Length; b += BlockSize {
			if allZero(raw[b:min(b+BlockSize, c.Offset+c.Length)]) {
				t.Fatalf("chunk %d holds a zero block at %d", i, b)
			}
		}
		pos = c.Offset + c.Length
		mapped += c.Length
	}
	if !allZero(raw[pos:]) || mapped != m.MappedBytes {
		t.Fatalf("tail not zero or mapped %d != %d", mapped, m.MappedBytes)
	}
	out := filepath.Join(t.TempDir(), "out.raw")
	if err := s.Extract(context.Background(), m.Name, out); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatal("extracted image differs from the raw input")
	}
}

func TestImportFormatsRoundTrip(t *testing.T) {
	t.Parallel()
	raw := makeTestImage(t, testImageOpts{debianESP: true})
	s := newStore(t)
	inputs := []struct {
		name, format string
		data         []byte
	}{
		{"raw", FormatRaw, raw},
		{"gz", FormatGzip, gz(t, raw)},

		{"zst", FormatZstd, zst(t, raw)},
		{"qcow2-v2", FormatQcow2, makeQcow2(t, raw, qcowOpts{version: 2})},
		{"qcow2-v3-zlib", FormatQcow2, makeQcow2(t, raw, qcowOpts{compress: true, zeroFlag: true, clusterBits: 12})},
		{"qcow2-v3-zstd", FormatQcow2, makeQcow2(t, raw, qcowOpts{compress: true, zstd: true, clusterBits: 17})},
	}
	var first *Manifest
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			path := writeTemp(t, "disk."+in.name, in.data)
			var reports []Progress
			m, err := s.Import(context.Background(), in.name, path, func(p Progress) { reports = append(reports, p) })
			if err != nil {
				t.Fatal(err)
			}
			if m.Source.Format != in.format || m.Source.SHA256 != sha(in.data) || m.Source.Size != int64(len(in.data)) || m.Source.File != "disk."+in.name {
				t.Fatalf("source %+v", m.Source)
			}
			if n := len(reports); n == 0 || !reports[n-1].Final || reports[n-1].Done != int64(len(raw)) || reports[n-1].Mapped != m.MappedBytes {
				t.Fatalf("progress reports %+v", reports)
			}
			checkRoundTrip(t, s, m, raw)
			if m.Table != "gpt" || m.GrowPartition != 3 || !m.BIOS || m.EFIPartition != 2 || m.EFILoader != `\EFI\debian\shimx64.efi` {
				t.Fatalf("boot fields: table %s grow %d bios %v esp %d loader %q", m.Table, m.GrowPartition, m.BIOS, m.EFIPartition, m.EFILoader)
			}
			want := []string{`\EFI\BOOT\BOOTX64.EFI`, `\EFI\debian\shimx64.efi`, `\EFI\debian\grubx64.efi`}
			if strings.Join(m.EFIFiles, " ") != strings.Join(want, " ") {
				t.Fatalf("EFI files %q, want %q", m.EFIFiles, want)
			}
			if len(m.Partitions) != 3 || m.Partitions[2].Type != GPTTypeRootAMD64 || m.Partitions[2].Name != "root" || m.Partitions[1].Start != 4096*512 {
				t.Fatalf("partitions %+v", m.Partitions)
			}
			if first == nil {
				first = m
			} else if !equalChunks(first.Chunks, m.Chunks) {
				t.Fatal("the same raw image gave different chunks")
			}
		})
	}
	// Seven imports of one raw image share one set of blobs.
	ents, err := os.ReadDir(filepath.Join(s.Dir(), "_blobs"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := first.BlobStats(); len(ents) != n {
		t.Fatalf("%d blobs stored, one image has %d", len(ents), n)
	}
	ms, err := s.List()
	if err != nil || len(ms) != len(inputs) {
		t.Fatalf("list: %d, %v", len(ms), err)
	}
}

// xz is slow to write in Go: its round trip uses a lighter image.
func TestImportXZ(t *testing.T) {
	t.Parallel()
	raw := makeTestImage(t, testImageOpts{light: true, debianESP: true, size: 6 << 20})
	data := xzc(t, raw)
	s := newStore(t)
	m, err := s.Import(context.Background(), "xz", writeTemp(t, "disk.raw.xz", data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Source.Format != FormatXZ || m.Source.SHA256 != sha(data) {
		t.Fatalf("source %+v", m.Source)
	}
	checkRoundTrip(t, s, m, raw)
	if m.EFILoader != `\EFI\debian\shimx64.efi` || m.GrowPartition != 3 {
		t.Fatalf("loader %q grow %d", m.EFILoader, m.GrowPartition)
	}
}

func equalChunks(a, b []Chunk) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestChunking(t *testing.T) {
	t.Parallel()
	raw := makeTestImage(t, testImageOpts{})
	s := newStore(t)
	m, err := s.Import(context.Background(), "img", writeTemp(t, "img.raw", raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The root partition starts at 10 MiB with a run of MaxChunk + 3
	// blocks + 100 bytes: one full chunk, then a chunk of 4 blocks.
	var at []Chunk
	for _, c := range m.Chunks {
		if c.Offset >= 10<<20 && c.Offset < 10<<20+MaxChunk+BlockSize*8 {
			at = append(at, c)
		}
	}
	if len(at) != 2 || at[0].Offset != 10<<20 || at[0].Length != MaxChunk || at[1].Length != 4*BlockSize {
		t.Fatalf("chunks at the root partition: %+v", at)
	}
	if m.MappedBytes >= m.Size/2 {
		t.Fatalf("mapped %d of %d: holes were not skipped", m.MappedBytes, m.Size)
	}
	if m.EFILoader != `\EFI\BOOT\BOOTX64.EFI` || len(m.EFIFiles) != 1 {
		t.Fatalf("loader %q files %q", m.EFILoader, m.EFIFiles)
	}
	// Readable by a server running as another user.
	for _, p := range []string{filepath.Join(s.Dir(), "img"), filepath.Join(s.Dir(), "img", "manifest.json"),
		filepath.Join(s.Dir(), "_blobs", m.Chunks[0].Blob)} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm()&0o044 != 0o044 {
			t.Fatalf("%s: %v %v", p, st.Mode(), err)
		}
	}
	// Every blob is one zstd frame that decodes to its chunk.
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	for _, c := range m.Chunks[:3] {
		f, err := s.OpenBlob(c.Blob)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if sha(b) != c.Blob || int64(len(b)) != c.BlobSize {
			t.Fatal("blob name is not its SHA-256")
		}
		d, err := dec.DecodeAll(b, nil)
		if err != nil || sha(d) != c.SHA256 {
			t.Fatalf("blob does not decode to its chunk: %v", err)
		}
	}
}

func TestImportMBR(t *testing.T) {
	t.Parallel()
	raw := makeMBRImage(t)
	s := newStore(t)
	m, err := s.Import(context.Background(), "mbr", writeTemp(t, "mbr.img", raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, s, m, raw)
	if m.Table != "mbr" || m.GrowPartition != 5 || !m.BIOS || m.EFIPartition != 1 || m.EFILoader != `\EFI\BOOT\BOOTX64.EFI` {
		t.Fatalf("table %s grow %d bios %v esp %d loader %q; %+v", m.Table, m.GrowPartition, m.BIOS, m.EFIPartition, m.EFILoader, m.Partitions)
	}
	if len(m.Partitions) != 2 || m.Partitions[1].Number != 5 || m.Partitions[1].Type != MBRTypeLinux || m.Partitions[1].Start != (6144+2048)*512 {
		t.Fatalf("partitions %+v", m.Partitions)
	}
}

// corrupt returns a copy of b with f applied.
func corrupt(b []byte, f func([]byte)) []byte {
	c := bytes.Clone(b)
	f(c)
	return c
}

func TestImportRefuses(t *testing.T) {
	t.Parallel()
	raw := makeTestImage(t, testImageOpts{light: true, size: 6 << 20})
	gzRaw := gz(t, raw)
	q := makeQcow2(t, raw, qcowOpts{compress: true})
	cases := []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"zeros", make([]byte, 1<<20), "no MBR signature", ErrNoPartitionTable},
		{"random", testData(1, 1<<20), "no partition table", ErrNoPartitionTable},
		{"tiny", []byte("hello"), "too small for a disk image", nil},
		{"odd size", append(bytes.Clone(raw), 1, 2, 3), "not a multiple of 512", nil},
		{"gpt header crc", corrupt(raw, func(b []byte) { b[512+40]++ }), "GPT header CRC", nil},
		{"gpt entries crc", corrupt(raw, func(b []byte) { b[1024+130]++ }), "GPT partition entries CRC", nil},
		{"protective mbr, no gpt", corrupt(raw, func(b []byte) { copy(b[512:], "NOT PART") }), "no GPT header", ErrNoPartitionTable},
		{"no boot loader", makeTestImage(t, testImageOpts{noBoot: true, noESP: true, light: true, size: 6 << 20}), "cannot boot", nil},
		{"loader not PE", loaderNotPE(t), "not an EFI executable", nil},
		{"truncated gzip", gzRaw[:len(gzRaw)/2], "unexpected EOF", nil},
		{"truncated qcow2", q[:len(q)*2/3], "damaged or truncated", nil},
		{"qcow2 bad version", corrupt(q, func(b []byte) { b[7] = 4 }), "version 4", ErrUnsupported},
		{"qcow2 backing file", makeQcow2(t, raw, qcowOpts{backing: "base.qcow2"}), `backing file "base.qcow2"`, ErrUnsupported},
		{"qcow2 encrypted", makeQcow2(t, raw, qcowOpts{crypt: 2}), "encrypted (LUKS)", ErrUnsupported},
		{"qcow2 external data file", makeQcow2(t, raw, qcowOpts{incompat: 1 << 2}), "external data file", ErrUnsupported},
		{"qcow2 extended L2", makeQcow2(t, raw, qcowOpts{incompat: 1 << 4}), "extended L2 entries", ErrUnsupported},
		{"qcow2 corrupt bit", makeQcow2(t, raw, qcowOpts{incompat: 1 << 1}), "marked corrupt", ErrUnsupported},
		{"qcow2 unknown feature", makeQcow2(t, raw, qcowOpts{incompat: 1 << 9}), "incompatible feature bit 9", ErrUnsupported},
		{"qcow2 inside xz", xzc(t, q[:256<<10]), "holds a qcow2 image", ErrUnsupported},
		{"vmdk", append([]byte("KDMV"), make([]byte, 4096)...), "VMDK", ErrUnsupported},
		{"iso", isoLike(), "ISO 9660", ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Import(context.Background(), "bad", writeTemp(t, "bad.img", c.data), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("err %v, want %q (%v)", err, c.want, c.is)
			}
			if !strings.Contains(err.Error(), "bad.img") {
				t.Fatalf("error does not name the file: %v", err)
			}
			// Nothing is left behind: no manifest, no blob, no temp file.
			if _, _, err := s.Manifest("bad"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("manifest after a failed import: %v", err)
			}
			for _, d := range []string{"_blobs", "_tmp"} {
				if ents, _ := os.ReadDir(filepath.Join(s.Dir(), d)); len(ents) != 0 {
					t.Fatalf("%s holds %d files after a failed import", d, len(ents))
				}
			}
		})
	}
}

func loaderNotPE(t *testing.T) []byte {
	img := makeTestImage(t, testImageOpts{noBoot: true, light: true, size: 6 << 20})
	i := 4096*512 + bytes.Index(img[4096*512:], []byte("MZ"))
	img[i] = 'X'
	return img
}

func isoLike() []byte {
	b := make([]byte, 64<<10)
	copy(b[0x8001:], "CD001")
	return b
}

func TestImportCancelled(t *testing.T) {
	raw := makeTestImage(t, testImageOpts{})
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Import(ctx, "img", writeTemp(t, "img.raw", raw), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

func TestReimportReplacesOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	a := makeTestImage(t, testImageOpts{seed: 1})
	b := makeTestImage(t, testImageOpts{seed: 2})
	if _, err := s.Import(context.Background(), "os", writeTemp(t, "a.raw", a), nil); err != nil {
		t.Fatal(err)
	}
	_, before, err := s.Manifest("os")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(context.Background(), "os", writeTemp(t, "bad.raw", corrupt(a, func(b []byte) { b[512+40]++ })), nil); err == nil {
		t.Fatal("corrupt image imported")
	}
	m, after, err := s.Manifest("os")
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("a failed re-import changed the image: %v", err)
	}
	checkRoundTrip(t, s, m, a) // and its blobs are all still there
	m, err = s.Import(context.Background(), "os", writeTemp(t, "b.raw", b), nil)
	if err != nil {
		t.Fatal(err)
	}
	m2, stored, err := s.Manifest("os")
	if err != nil || m2.SHA256 != sha(b) || m2.Source.File != "b.raw" {
		t.Fatalf("re-import did not replace: %v", err)
	}
	// The stored bytes are the manifest, as served.
	var again Manifest
	if err := json.Unmarshal(stored, &again); err != nil || again.SHA256 != m.SHA256 {
		t.Fatal("stored bytes are not the manifest")
	}
	checkRoundTrip(t, s, m2, b)
	// a's blobs are garbage now.
	st, err := s.GC()
	if err != nil || st.Blobs == 0 {
		t.Fatalf("gc %+v %v", st, err)
	}
	checkRoundTrip(t, s, m2, b)
}

func TestRemoveAndGC(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	a := makeTestImage(t, testImageOpts{})
	// b shares all of a's data but one block.
	b := corrupt(a, func(x []byte) { x[12<<20+17] ^= 0xff })
	ma, err := s.Import(context.Background(), "a", writeTemp(t, "a.raw", a), nil)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := s.Import(context.Background(), "b", writeTemp(t, "b.raw", b), nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs := func() int {
		ents, _ := os.ReadDir(filepath.Join(s.Dir(), "_blobs"))
		return len(ents)
	}
	na, _ := ma.BlobStats()
	if got := blobs(); got != na+1 {
		t.Fatalf("%d blobs for two images that differ in one chunk (a has %d)", got, na)
	}
	// GC with nothing to collect.
	if st, err := s.GC(); err != nil || st.Blobs != 0 {
		t.Fatalf("gc: %+v %v", st, err)
	}
	st, err := s.Remove("a")
	if err != nil || st.Blobs != 1 {
		t.Fatalf("remove a: %+v %v", st, err)
	}
	if _, _, err := s.Manifest("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a still there: %v", err)
	}
	checkRoundTrip(t, s, mb, b)
	if _, err := s.Remove("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove a twice: %v", err)
	}
	if _, err := s.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if got := blobs(); got != 0 {
		t.Fatalf("%d blobs left after removing every image", got)
	}
	// GC refuses to collect while a manifest is unreadable.
	if _, err := s.Import(context.Background(), "c", writeTemp(t, "c.raw", a), nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), "c", "manifest.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(); err == nil || !strings.Contains(err.Error(), "not collecting") {
		t.Fatalf("gc with a broken manifest: %v", err)
	}
	if blobs() == 0 {
		t.Fatal("blobs deleted although a manifest could not be read")
	}
}

func TestOpenBlobRefusesPaths(t *testing.T) {
	s := newStore(t)
	for _, name := range []string{"../images", "", strings.Repeat("A", 64), "x/../../etc/passwd"} {
		if _, err := s.OpenBlob(name); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("OpenBlob(%q): %v", name, err)
		}
	}
	if _, err := s.OpenBlob(strings.Repeat("a", 64)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing blob: %v", err)
	}
}

func TestManifestErrors(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.Manifest("Bad_Name"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	_, _, err := s.Manifest("debian12")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "racklift image import debian12 FILE") {
		t.Fatalf("missing: %v", err)
	}
}

func TestFits(t *testing.T) {
	m := &Manifest{Name: "debian12", Size: 2 << 30}
	if err := m.Fits(2 << 30); err != nil {
		t.Fatal(err)
	}
	err := m.Fits(1 << 30)
	if err == nil || err.Error() != "image debian12 needs 2.0 GiB, the OS disk is 1.0 GiB: image larger than the disk" || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("fits: %v", err)
	}
	for n, want := range map[int64]string{512: "512 B", 64 << 20: "64 MiB", 1536 << 20: "1.5 GiB", 3 << 40: "3.0 TiB"} {
		if got := FormatBytes(n); got != want {
			t.Fatalf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func validManifest() *Manifest {
	h := strings.Repeat("ab", 32)
	return &Manifest{
		Format: FormatVersion, Name: "debian12", Size: 1 << 20, BlockSize: BlockSize, SHA256: h,
		MappedBytes: 8192,
		Chunks: []Chunk{
			{Offset: 0, Length: 4096, SHA256: h, Blob: h, BlobSize: 100, Codec: CodecZstd},
			{Offset: 8192, Length: 4096, SHA256: h, Blob: h, BlobSize: 100, Codec: CodecZstd},
		},
		Table: "gpt", Partitions: []Partition{{Number: 3, Start: 1 << 19, Size: 1 << 19, Type: GPTTypeLinuxData}},
		GrowPartition: 3,
	}
}

func TestValidate(t *testing.T) {
	if err := validManifest().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Manifest){
		"format":          func(m *Manifest) { m.Format = 2 },
		"name":            func(m *Manifest) { m.Name = "../x" },
		"size":            func(m *Manifest) { m.Size = 1000 },
		"sha":             func(m *Manifest) { m.SHA256 = "x" },
		"overlap":         func(m *Manifest) { m.Chunks[1].Offset = 2048 },
		"out of order":    func(m *Manifest) { m.Chunks[0], m.Chunks[1] = m.Chunks[1], m.Chunks[0] },
		"too long":        func(m *Manifest) { m.Chunks[1].Length = MaxChunk + 1 },
		"past the end":    func(m *Manifest) { m.Chunks[1].Offset = m.Size - 2048 },
		"blob name":       func(m *Manifest) { m.Chunks[0].Blob = "../../etc/passwd" },
		"codec":           func(m *Manifest) { m.Chunks[0].Codec = "gzip" },
		"blob size":       func(m *Manifest) { m.Chunks[0].BlobSize = 0 },
		"mapped":          func(m *Manifest) { m.MappedBytes = 1 },
		"grow partition":  func(m *Manifest) { m.GrowPartition = 4 },
		"zero chunk size": func(m *Manifest) { m.Chunks[0].Length = 0 },
	}
	for name, f := range cases {
		m := validManifest()
		f(m)
		if err := m.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseManifestRefusesGarbage(t *testing.T) {
	for _, b := range []string{"", "{", `{"format": 1}`, `[]`} {
		if _, err := ParseManifest([]byte(b)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", b, err)
		}
	}
}

// An image of a size that is not a multiple of BlockSize ends with a
// shorter block.
func TestImportPartialLastBlock(t *testing.T) {
	t.Parallel()
	raw := makeTestImage(t, testImageOpts{size: 16<<20 + 1536})
	s := newStore(t)
	m, err := s.Import(context.Background(), "odd", writeTemp(t, "odd.raw", raw), nil)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, s, m, raw)
	last := m.Chunks[len(m.Chunks)-1]
	if last.Offset+last.Length != m.Size || last.Length%BlockSize != 1536 {
		t.Fatalf("last chunk %+v of %d", last, m.Size)
	}
}

func BenchmarkImport(b *testing.B) {
	raw := makeTestImage(b, testImageOpts{size: 64 << 20})
	// Fill the root partition's holes with data too: a worst case.
	copy(raw[16<<20:], testData(42, 40<<20))
	path := writeTemp(b, "bench.raw", raw)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		s := newStore(b)
		b.StartTimer()
		if _, err := s.Import(context.Background(), "bench", path, nil); err != nil {
			b.Fatal(err)
		}
		_ = i
	}
}
