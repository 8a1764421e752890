package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// BlockSize is the granularity of the block map: all-zero blocks of this
// size are holes, neither stored nor written.
const BlockSize = 4096

// Input formats (Source.Format).
const (
	FormatRaw   = "raw"
	FormatGzip  = "raw.gz"
	FormatXZ    = "raw.xz"
	FormatZstd  = "raw.zst"
	FormatQcow2 = "qcow2"
)

// Progress reports an import's progress.
type Progress struct {
	// Read is how many bytes of the input file were read, of InputSize.
	Read, InputSize int64
	// Done is how many bytes of the raw image were processed; Size is the
	// raw image size when known before the end (raw, qcow2), else 0.
	Done, Size int64
	// Mapped is how many of the Done bytes are not holes.
	Mapped int64
	// Elapsed is the time since the import started.
	Elapsed time.Duration
	// Final is set on the last report, once everything was read.
	Final bool
}

// Fraction is the part of the input processed so far, 0 to 1.
func (p Progress) Fraction() float64 {
	switch {
	case p.Size > 0:
		return min(1, float64(p.Done)/float64(p.Size))
	case p.InputSize > 0:
		return min(1, float64(p.Read)/float64(p.InputSize))
	}
	return 0
}

// RateMBps is the raw image bytes processed per second, in MB (10^6) per
// second.
func (p Progress) RateMBps() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / 1e6 / p.Elapsed.Seconds()
}

// progressEvery is how often Import reports progress.
const progressEvery = 250 * time.Millisecond

// Import turns the disk image at path (raw, raw.gz, raw.xz, raw.zst or
// qcow2, recognised by its first bytes) into the image name: compressed,
// content-addressed blobs of its non-zero extents plus a manifest. It
// refuses an image without a partition table or without a boot loader
// (no MBR boot code and no EFI loader). The manifest is written last and
// atomically: an image of the same name is replaced only when the new
// import succeeded. progress (may be nil) is called every 250 ms and once
// at the end of reading, from Import's goroutine.
func (s *Store) Import(ctx context.Context, name, path string, progress func(Progress)) (*Manifest, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	unlock, err := s.lock(false)
	if err != nil {
		return nil, err
	}
	m, err := s.importLocked(ctx, name, path, progress)
	unlock()
	if err != nil {
		// Blobs written for nothing: collect them now if no other import
		// runs (one that does will leave them to the next GC).
		if unlockEx, ok := s.tryLockExclusive(); ok {
			_, _ = s.gcLocked()
			unlockEx()
		}
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	return m, nil
}

func (s *Store) importLocked(ctx context.Context, name, path string, progress func(Progress)) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	in, err := openInput(f, st.Size())
	if err != nil {
		return nil, err
	}
	defer in.close()

	start := time.Now()
	ch := &chunker{store: s, workers: s.Workers}
	if ch.workers <= 0 {
		ch.workers = runtime.GOMAXPROCS(0)
	}
	report := func(final bool) {
		if progress != nil {
			progress(Progress{Read: in.read(), InputSize: st.Size(), Done: ch.done, Size: in.size,
				Mapped: ch.mapped, Elapsed: time.Since(start), Final: final})
		}
	}
	if err := ch.run(ctx, in.r, report); err != nil {
		return nil, err
	}
	srcSum, err := in.finish()
	if err != nil {
		return nil, err
	}
	report(true)
	if ch.done == 0 {
		return nil, errors.New("the image is empty")
	}
	if ch.done%512 != 0 {
		return nil, fmt.Errorf("the image is %d bytes, not a multiple of 512: not a disk image", ch.done)
	}

	m := &Manifest{
		Format:      FormatVersion,
		Name:        name,
		Size:        ch.done,
		BlockSize:   BlockSize,
		SHA256:      hex.EncodeToString(ch.whole.Sum(nil)),
		MappedBytes: ch.mapped,
		Chunks:      ch.chunks,
		Source: Source{
			File:   filepath.Base(path),
			Format: in.format,
			SHA256: srcSum,
			Size:   st.Size(),
		},
		Imported: s.now().UTC().Truncate(time.Second),
	}
	if m.Chunks == nil {
		m.Chunks = []Chunk{}
	}
	if err := s.analyse(m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("internal error: the new manifest is invalid: %w", err)
	}
	if err := s.commit(m); err != nil {
		return nil, err
	}
	return m, nil
}

// analyse reads the imported image's partition table and ESP back from
// the blobs just written (which checks them too) and fills the boot fields.
func (s *Store) analyse(m *Manifest) error {
	r, err := s.NewReader(m)
	if err != nil {
		return err
	}
	defer r.Close()
	l, err := readTable(r, m.Size)
	if err != nil {
		return err
	}
	m.Table, m.Partitions, m.GrowPartition = l.table, l.partitions, l.grow
	m.BIOS = l.bootCode
	if l.esp != 0 {
		p := l.partition(l.esp)
		loader, err := findEFILoader(io.NewSectionReader(r, p.Start, p.Size), p.Size)
		if err != nil {
			return fmt.Errorf("EFI system partition %d: %w", p.Number, err)
		}
		m.EFIPartition, m.EFILoader, m.EFIFiles = l.esp, loader.path, loader.files
	}
	if !m.BIOS && m.EFILoader == "" {
		why := "no EFI system partition"
		if l.esp != 0 {
			why = fmt.Sprintf("EFI system partition %d has no \\EFI\\BOOT\\BOOTX64.EFI or \\EFI\\<vendor>\\shimx64.efi", l.esp)
		}
		return fmt.Errorf("the image cannot boot: no boot code in the MBR (BIOS) and %s (UEFI)", why)
	}
	return nil
}

// commit writes the manifest atomically: a new image's directory is made
// in _tmp and renamed into place; an existing image's manifest.json is
// replaced by rename.
func (s *Store) commit(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp, err := os.MkdirTemp(s.tmpDir(), "import-"+m.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, "manifest.json"), b); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, m.Name)
	if err := os.Rename(tmp, dir); err != nil {
		// The image exists: replace its manifest only.
		if err := os.Rename(filepath.Join(tmp, "manifest.json"), s.manifestPath(m.Name)); err != nil {
			return fmt.Errorf("write the manifest: %w", err)
		}
		return syncDir(dir)
	}
	return syncDir(s.dir)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// --- input ---------------------------------------------------------------------

// input is the raw image stream of an input file.
type input struct {
	format string
	r      io.Reader // the raw image
	size   int64     // raw size when known before the end, else 0
	read   func() int64
	// finish returns the SHA-256 of the input file's bytes.
	finish func() (string, error)
	close  func()
}

// countingReader counts and hashes the bytes read through it.
type countingReader struct {
	r  io.Reader
	h  hash.Hash
	mu sync.Mutex
	n  int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.mu.Lock()
	c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// rest reads what is left of the file and returns its SHA-256.
func (c *countingReader) sum() (string, error) {
	if _, err := io.Copy(io.Discard, c); err != nil {
		return "", err
	}
	return hex.EncodeToString(c.h.Sum(nil)), nil
}

// openInput recognises the format by its first bytes.
func openInput(f *os.File, size int64) (*input, error) {
	head := make([]byte, 64<<10)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	format, err := detect(head, f, size)
	if err != nil {
		return nil, err
	}
	cr := &countingReader{r: f, h: sha256.New()}
	in := &input{format: format, read: cr.count, finish: cr.sum, close: func() {}}
	buffered := bufio.NewReaderSize(cr, 1<<20)
	switch format {
	case FormatRaw:
		in.r, in.size = cr, size
	case FormatGzip:
		zr, err := gzip.NewReader(buffered)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		in.r = zr
	case FormatXZ:
		xr, err := xz.NewReader(buffered)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		in.r = xr
	case FormatZstd:
		zr, err := zstd.NewReader(buffered, zstd.WithDecoderMaxMemory(1<<31))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		in.r, in.close = zr, zr.Close
	case FormatQcow2:
		q, err := openQcow2(f, size)
		if err != nil {
			return nil, err
		}
		in.r, in.size, in.close = io.NewSectionReader(q, 0, q.Size()), q.Size(), q.Close
		// The file is read at random; its SHA-256 is one more pass.
		sr := &countingReader{r: io.NewSectionReader(f, 0, size), h: sha256.New()}
		in.read = func() int64 { return 0 }
		in.finish = sr.sum
		if in.size > 0 {
			var pos *sectionPos
			in.r, pos = trackPos(in.r)
			in.read = func() int64 { return int64(float64(pos.get()) / float64(in.size) * float64(size)) }
		}
	}
	if format != FormatRaw && format != FormatQcow2 {
		// A compressed qcow2 cannot be read as a stream.
		br := bufio.NewReaderSize(in.r, 64<<10)
		inner, _ := br.Peek(8)
		if bytes.HasPrefix(inner, []byte(qcow2Magic)) {
			in.close()
			return nil, fmt.Errorf("%s holds a qcow2 image, which cannot be read as a stream: decompress it first: %w", format, ErrUnsupported)
		}
		in.r = br
	}
	return in, nil
}

// sectionPos tracks how far a reader has got (for qcow2 progress).
type sectionPos struct {
	mu sync.Mutex
	n  int64
}

func (p *sectionPos) get() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

type posReader struct {
	r   io.Reader
	pos *sectionPos
}

func (p posReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.pos.mu.Lock()
	p.pos.n += int64(n)
	p.pos.mu.Unlock()
	return n, err
}

func trackPos(r io.Reader) (io.Reader, *sectionPos) {
	pos := &sectionPos{}
	return posReader{r, pos}, pos
}

// detect names the input format from its first bytes; formats racklift
// does not read are refused with what to do instead.
func detect(head []byte, f io.ReaderAt, size int64) (string, error) {
	refuse := func(what, how string) (string, error) {
		return "", fmt.Errorf("%s; %s: %w", what, how, ErrUnsupported)
	}
	switch {
	case len(head) < 512:
		return "", fmt.Errorf("the file is %d bytes: too small for a disk image", len(head))
	case bytes.HasPrefix(head, []byte(qcow2Magic)):
		return FormatQcow2, nil
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return FormatGzip, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return FormatXZ, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return FormatZstd, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return refuse("a bzip2 file", "decompress it (bunzip2) or recompress it with xz or zstd")
	case bytes.HasPrefix(head, []byte("KDMV")):
		return refuse("a VMDK image", "convert it: qemu-img convert -O qcow2 IN OUT.qcow2")
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return refuse("a VHDX image", "convert it: qemu-img convert -O qcow2 IN OUT.qcow2")
	case bytes.HasPrefix(head, []byte("conectix")):
		return refuse("a VHD image", "convert it: qemu-img convert -O qcow2 IN OUT.qcow2")
	case bytes.HasPrefix(head, []byte("QED\x00")):
		return refuse("a QED image", "convert it: qemu-img convert -O qcow2 IN OUT.qcow2")
	case len(head) >= 0x48 && bytes.Equal(head[0x40:0x44], []byte{0x7f, 0x10, 0xda, 0xbe}):
		return refuse("a VirtualBox VDI image", "convert it: qemu-img convert -O qcow2 IN OUT.qcow2")
	case len(head) >= 0x8006 && string(head[0x8001:0x8006]) == "CD001":
		return refuse("an ISO 9660 image (installer or live media), not a disk image", "use it as install media (--media) with a kickstart or autoinstall profile")
	}
	// A fixed VHD has its footer at the end of a raw image.
	if size >= 512 {
		tail := make([]byte, 8)
		if _, err := f.ReadAt(tail, size-512); err == nil && string(tail) == "conectix" {
			return refuse("a VHD image", "convert it: qemu-img convert -O qcow2 IN OUT.qcow2")
		}
	}
	return FormatRaw, nil
}
