package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Reader reads an imported image's raw bytes from its blobs, checking the
// SHA-256 of every blob and chunk it decodes; holes read as zeros. It is
// what the deploy agent does over HTTP, done on the store (racklift uses
// it to read the partition table and ESP of what it imported).
type Reader struct {
	m    *Manifest
	open func(blob string) ([]byte, error)

	mu    sync.Mutex
	dec   *zstd.Decoder
	cache map[int][]byte // a few decoded chunks, by index
	order []int
}

const readerCacheChunks = 4

// NewReader reads m's raw image from its blobs in s.
func (s *Store) NewReader(m *Manifest) (*Reader, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*MaxChunk))
	if err != nil {
		return nil, err
	}
	return &Reader{
		m:     m,
		open:  func(b string) ([]byte, error) { return os.ReadFile(s.blobPath(b)) },
		dec:   dec,
		cache: map[int][]byte{},
	}, nil
}

// Close releases the decoder.
func (r *Reader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dec.Close()
}

// Size is the raw image size.
func (r *Reader) Size() int64 { return r.m.Size }

// ReadAt reads the raw image.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if off < 0 {
		return 0, errors.New("image reader: negative offset")
	}
	chunks := r.m.Chunks
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= r.m.Size {
			return n, io.EOF
		}
		rest := p[n:min(int64(len(p)), int64(n)+r.m.Size-at)]
		i := sort.Search(len(chunks), func(i int) bool { return chunks[i].Offset+chunks[i].Length > at })
		if i == len(chunks) || chunks[i].Offset > at {
			hole := len(rest)
			if i < len(chunks) {
				hole = int(min(int64(hole), chunks[i].Offset-at))
			}
			clear(rest[:hole])
			n += hole
			continue
		}
		data, err := r.chunk(i)
		if err != nil {
			return n, err
		}
		n += copy(rest, data[at-chunks[i].Offset:])
	}
	return n, nil
}

func (r *Reader) chunk(i int) ([]byte, error) {
	if d, ok := r.cache[i]; ok {
		return d, nil
	}
	c := r.m.Chunks[i]
	blob, err := r.open(c.Blob)
	if err != nil {
		return nil, fmt.Errorf("image %s chunk %d: %w", r.m.Name, i, err)
	}
	data, err := decodeChunk(r.dec, c, blob)
	if err != nil {
		return nil, fmt.Errorf("image %s chunk %d: %w", r.m.Name, i, err)
	}
	if len(r.order) >= readerCacheChunks {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
	r.cache[i] = data
	r.order = append(r.order, i)
	return data, nil
}

// decodeChunk checks a blob against its chunk and returns the raw bytes.
func decodeChunk(dec *zstd.Decoder, c Chunk, blob []byte) ([]byte, error) {
	if int64(len(blob)) != c.BlobSize {
		return nil, fmt.Errorf("blob %s is %d bytes, the manifest says %d", c.Blob, len(blob), c.BlobSize)
	}
	if sum := sha256.Sum256(blob); hex.EncodeToString(sum[:]) != c.Blob {
		return nil, fmt.Errorf("blob %s: SHA-256 mismatch (damaged)", c.Blob)
	}
	if c.Codec != CodecZstd {
		return nil, fmt.Errorf("blob %s: codec %q", c.Blob, c.Codec)
	}
	data, err := dec.DecodeAll(blob, make([]byte, 0, c.Length))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", c.Blob, err)
	}
	if int64(len(data)) != c.Length {
		return nil, fmt.Errorf("blob %s decodes to %d bytes, the chunk is %d", c.Blob, len(data), c.Length)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != c.SHA256 {
		return nil, fmt.Errorf("blob %s: the decoded chunk's SHA-256 does not match", c.Blob)
	}
	return data, nil
}

// Extract writes the named image as a raw (sparse) file at path, checking
// every blob, every chunk and the whole image's SHA-256; holes are left
// unwritten (they read as zeros). For tests and for booting an image in a
// VM without the agent.
func (s *Store) Extract(ctx context.Context, name, path string) error {
	m, _, err := s.Manifest(name)
	if err != nil {
		return err
	}
	r, err := s.NewReader(m)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(m.Size); err != nil {
		return err
	}
	h := sha256.New()
	var pos int64
	for i, c := range m.Chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := hashZeros(h, c.Offset-pos); err != nil {
			return err
		}
		data, err := r.chunk(i)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(data, c.Offset); err != nil {
			return err
		}
		h.Write(data)
		pos = c.Offset + c.Length
	}
	if err := hashZeros(h, m.Size-pos); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.SHA256 {
		return fmt.Errorf("image %s: the extracted image's SHA-256 is %s, the manifest says %s", name, got, m.SHA256)
	}
	return f.Close()
}

func hashZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := w.Write(zeroBlock[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
