package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/racklift/racklift/provision/image"
)

// encodeTestImage is a test-only stand-in for the image importer
// (provision/image, built in parallel): it splits img into the non-zero
// extents of 4 KiB blocks, at most maxChunk bytes each, compresses each
// with zstd and returns the manifest and the blobs by name.
func encodeTestImage(t testing.TB, name string, img []byte, maxChunk int) (*image.Manifest, map[string][]byte) {
	t.Helper()
	const bs = 4096
	if maxChunk <= 0 {
		maxChunk = image.MaxChunk
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	m := &image.Manifest{Format: image.FormatVersion, Name: name, Size: int64(len(img)), BlockSize: bs, Imported: time.Unix(0, 0).UTC()}
	blobs := map[string][]byte{}
	zero := make([]byte, bs)
	flush := func(off, end int) {
		for off < end {
			n := min(end-off, maxChunk)
			raw := img[off : off+n]
			blob := enc.EncodeAll(raw, nil)
			bsum := sha256.Sum256(blob)
			rsum := sha256.Sum256(raw)
			c := image.Chunk{Offset: int64(off), Length: int64(n), SHA256: hex.EncodeToString(rsum[:]), Blob: hex.EncodeToString(bsum[:]), BlobSize: int64(len(blob)), Codec: image.CodecZstd}
			blobs[c.Blob] = blob
			m.Chunks = append(m.Chunks, c)
			m.MappedBytes += int64(n)
			off += n
		}
	}
	start := -1
	for off := 0; off < len(img); off += bs {
		end := min(off+bs, len(img))
		used := !bytes.Equal(img[off:end], zero[:end-off])
		switch {
		case used && start < 0:
			start = off
		case !used && start >= 0:
			flush(start, off)
			start = -1
		}
	}
	if start >= 0 {
		flush(start, len(img))
	}
	sum := sha256.Sum256(img)
	m.SHA256 = hex.EncodeToString(sum[:])
	if err := m.Validate(); err != nil {
		t.Fatalf("test encoder made an invalid manifest: %v", err)
	}
	return m, blobs
}

// fakeBlobs serves blobs per base URL from memory, and counts fetches.
type fakeBlobs struct {
	mu      sync.Mutex
	byBase  map[string]map[string][]byte
	fetches map[string]int
}

func (f *fakeBlobs) FetchBlob(_ context.Context, base, name string, max int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fetches == nil {
		f.fetches = map[string]int{}
	}
	f.fetches[base]++
	b, ok := f.byBase[base][name]
	if !ok {
		return nil, fmt.Errorf("%s: 404 Not Found", base)
	}
	if int64(len(b)) > max {
		b = b[:max]
	}
	return append([]byte(nil), b...), nil
}
