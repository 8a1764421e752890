package image

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A read-only qcow2 (version 2 and 3) reader: the active L1/L2 tables,
// standard, zero and unallocated clusters, and compressed clusters (zlib,
// or zstd when the image says so). Anything that would need more
// (backing files, encryption, external data files, extended L2 entries)
// is refused with an error naming the feature.

const qcow2Magic = "QFI\xfb"

// ErrUnsupported is wrapped by errors for input racklift cannot import.
var ErrUnsupported = errors.New("unsupported image")

type qcow2 struct {
	f           io.ReaderAt
	fileSize    int64
	size        int64 // virtual disk size
	version     uint32
	clusterBits uint
	clusterSize int64
	l1          []uint64
	zstd        bool

	mu      sync.Mutex
	l2      map[int][]uint64 // a few L2 tables, by L1 index
	l2order []int
	cbuf    []byte // compressed cluster input
	dec     *zstd.Decoder
}

const (
	qcowOffsetMask   = 0x00fffffffffffe00
	qcowCopied       = 1 << 63
	qcowCompressed   = 1 << 62
	qcowZeroFlag     = 1
	qcowL2CacheTable = 8
)

func unsupported(format string, a ...any) error {
	return fmt.Errorf("qcow2: %s: %w", fmt.Sprintf(format, a...), ErrUnsupported)
}

func damaged(format string, a ...any) error {
	return fmt.Errorf("qcow2: %s: the file is damaged or truncated", fmt.Sprintf(format, a...))
}

// openQcow2 reads the header and L1 table of a qcow2 file of fileSize bytes.
func openQcow2(f io.ReaderAt, fileSize int64) (*qcow2, error) {
	h := make([]byte, 112)
	if n, err := f.ReadAt(h, 0); n < 72 {
		return nil, damaged("header: %v", err)
	}
	be := binary.BigEndian
	if string(h[:4]) != qcow2Magic {
		return nil, errors.New("qcow2: bad magic")
	}
	q := &qcow2{f: f, fileSize: fileSize, version: be.Uint32(h[4:]), l2: map[int][]uint64{}}
	if q.version != 2 && q.version != 3 {
		return nil, unsupported("version %d (racklift reads versions 2 and 3)", q.version)
	}
	if off, n := be.Uint64(h[8:]), be.Uint32(h[16:]); off != 0 {
		name := make([]byte, min(n, 1023))
		_, _ = f.ReadAt(name, int64(off))
		return nil, unsupported("it has a backing file %q; make a self-contained copy first (qemu-img convert -O qcow2 IN OUT)", name)
	}
	q.clusterBits = uint(be.Uint32(h[20:]))
	if q.clusterBits < 9 || q.clusterBits > 21 {
		return nil, damaged("cluster bits %d", q.clusterBits)
	}
	q.clusterSize = 1 << q.clusterBits
	q.size = int64(be.Uint64(h[24:]))
	if q.size <= 0 || q.size > 1<<50 {
		return nil, damaged("virtual size %d", q.size)
	}
	switch m := be.Uint32(h[32:]); m {
	case 0:
	case 1:
		return nil, unsupported("it is encrypted (AES); decrypt it first (qemu-img convert)")
	case 2:
		return nil, unsupported("it is encrypted (LUKS); decrypt it first (qemu-img convert)")
	default:
		return nil, unsupported("encryption method %d", m)
	}
	l1Size := int64(be.Uint32(h[36:]))
	l1Off := int64(be.Uint64(h[40:]))
	if q.version == 3 {
		hlen := be.Uint32(h[100:])
		if hlen < 104 {
			return nil, damaged("header length %d", hlen)
		}
		incompat := be.Uint64(h[72:])
		names := []string{"dirty", "corrupt", "external data file", "compression type", "extended L2 entries (subclusters)"}
		for bit := range 64 {
			if incompat&(1<<bit) == 0 {
				continue
			}
			switch bit {
			case 0: // dirty: refcounts may be stale, which reading does not use
			case 1:
				return nil, unsupported("it is marked corrupt; repair it first (qemu-img check -r all)")
			case 3:
				if hlen < 105 {
					return nil, damaged("compression type bit set, header length %d", hlen)
				}
				switch h[104] {
				case 0:
				case 1:
					q.zstd = true
				default:
					return nil, unsupported("compression type %d", h[104])
				}
			case 2, 4:
				return nil, unsupported("it uses %s; convert it first (qemu-img convert -O qcow2 IN OUT)", names[bit])
			default:
				return nil, unsupported("incompatible feature bit %d", bit)
			}
		}
	}
	perL1 := q.clusterSize / 8 * q.clusterSize // bytes one L2 table maps
	need := (q.size + perL1 - 1) / perL1
	switch {
	case l1Size < need:
		return nil, damaged("L1 table of %d entries for %d bytes (needs %d)", l1Size, q.size, need)
	case l1Off <= 0 || l1Off%q.clusterSize != 0 || l1Off+need*8 > fileSize:
		return nil, damaged("L1 table at %d", l1Off)
	}
	raw := make([]byte, need*8)
	if _, err := f.ReadAt(raw, l1Off); err != nil {
		return nil, damaged("read the L1 table: %v", err)
	}
	q.l1 = make([]uint64, need)
	for i := range q.l1 {
		e := be.Uint64(raw[8*i:])
		if e&^(qcowOffsetMask|qcowCopied) != 0 {
			return nil, damaged("L1 entry %d has reserved bits set (%#x)", i, e)
		}
		q.l1[i] = e & qcowOffsetMask
		if o := int64(q.l1[i]); o != 0 && (o%q.clusterSize != 0 || o+q.clusterSize > fileSize) {
			return nil, damaged("L1 entry %d points to %d (file size %d)", i, o, fileSize)
		}
	}
	return q, nil
}

// Size is the virtual disk size.
func (q *qcow2) Size() int64 { return q.size }

// l2Table returns L2 table i (nil: unallocated), caching a few.
func (q *qcow2) l2Table(i int) ([]uint64, error) {
	if q.l1[i] == 0 {
		return nil, nil
	}
	if t, ok := q.l2[i]; ok {
		return t, nil
	}
	raw := make([]byte, q.clusterSize)
	if _, err := q.f.ReadAt(raw, int64(q.l1[i])); err != nil {
		return nil, damaged("read the L2 table at %d: %v", q.l1[i], err)
	}
	t := make([]uint64, q.clusterSize/8)
	for k := range t {
		t[k] = binary.BigEndian.Uint64(raw[8*k:])
	}
	if len(q.l2order) >= qcowL2CacheTable {
		delete(q.l2, q.l2order[0])
		q.l2order = q.l2order[1:]
	}
	q.l2[i] = t
	q.l2order = append(q.l2order, i)
	return t, nil
}

// ReadAt reads the virtual disk.
func (q *qcow2) ReadAt(p []byte, off int64) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if off < 0 {
		return 0, errors.New("qcow2: negative offset")
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= q.size {
			return n, io.EOF
		}
		in := at & (q.clusterSize - 1)
		want := min(int64(len(p)-n), q.clusterSize-in, q.size-at)
		dst := p[n : n+int(want)]
		if err := q.readCluster(dst, at-in, in); err != nil {
			return n, err
		}
		n += int(want)
	}
	return n, nil
}

// readCluster fills dst from the cluster at virtual offset vc, starting
// at byte in of it.
func (q *qcow2) readCluster(dst []byte, vc, in int64) error {
	perL2 := q.clusterSize / 8
	ci := vc >> q.clusterBits
	t, err := q.l2Table(int(ci / perL2))
	if err != nil {
		return err
	}
	if t == nil {
		clear(dst)
		return nil
	}
	e := t[ci%perL2]
	if e&qcowCompressed != 0 {
		return q.readCompressed(dst, e, in)
	}
	if e&^(qcowOffsetMask|qcowCopied|qcowZeroFlag) != 0 || (q.version == 2 && e&qcowZeroFlag != 0) {
		return damaged("L2 entry for virtual offset %d has reserved bits set (%#x)", vc, e)
	}
	host := int64(e & qcowOffsetMask)
	if e&qcowZeroFlag != 0 || host == 0 {
		clear(dst)
		return nil
	}
	if host%q.clusterSize != 0 {
		return damaged("cluster at %d is not aligned", host)
	}
	if host+in+int64(len(dst)) > q.fileSize {
		return damaged("cluster at %d is past the end of the file (%d bytes)", host, q.fileSize)
	}
	if _, err := q.f.ReadAt(dst, host+in); err != nil {
		return damaged("read the cluster at %d: %v", host, err)
	}
	return nil
}

func (q *qcow2) readCompressed(dst []byte, e uint64, in int64) error {
	x := 62 - (q.clusterBits - 8)
	host := int64(e & (1<<x - 1))
	sectors := int64((e>>x)&(1<<(q.clusterBits-8)-1)) + 1
	clen := min(sectors*512-host&511, q.fileSize-host)
	if host <= 0 || clen <= 0 {
		return damaged("compressed cluster at %d is past the end of the file (%d bytes)", host, q.fileSize)
	}
	if int64(cap(q.cbuf)) < clen {
		q.cbuf = make([]byte, clen)
	}
	buf := q.cbuf[:clen]
	if _, err := q.f.ReadAt(buf, host); err != nil && !errors.Is(err, io.EOF) {
		return damaged("read the compressed cluster at %d: %v", host, err)
	}
	out := make([]byte, q.clusterSize)
	var r io.Reader
	if q.zstd {
		if q.dec == nil {
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
			if err != nil {
				return err
			}
			q.dec = d
		}
		if err := q.dec.Reset(bytes.NewReader(buf)); err != nil {
			return damaged("zstd cluster at %d: %v", host, err)
		}
		r = q.dec
	} else {
		r = flate.NewReader(bytes.NewReader(buf))
	}
	if _, err := io.ReadFull(r, out); err != nil {
		return damaged("compressed cluster at %d: %v", host, err)
	}
	copy(dst, out[in:])
	return nil
}

// Close releases the zstd decoder, if one was made.
func (q *qcow2) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dec != nil {
		q.dec.Close()
		q.dec = nil
	}
}
