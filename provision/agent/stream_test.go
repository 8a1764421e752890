package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/image"
)

const (
	testImageSize = 8 << 20
	testDiskSize  = 16 << 20
)

// testImage is 8 MiB with data in a few places (a boot sector, data just
// past 1 MiB, a run across 5 MiB, the last block) and zeros elsewhere.
func testImage() []byte {
	img := make([]byte, testImageSize)
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(off, n int) {
		for i := off; i < off+n; i++ {
			img[i] = byte(r.IntN(255) + 1)
		}
	}
	fill(0, 4096)
	fill(1<<20, 300<<10)
	fill(5<<20-4096, 3*4096)
	fill(testImageSize-4096, 4096)
	return img
}

// newDisk returns a Device on a file of testDiskSize bytes of 0xAA (what
// an old system left), closed at the end of the test.
func newDisk(t *testing.T) (*Device, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xaa}, testDiskSize), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDevice(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, p
}

func streamOpts() StreamOptions {
	return StreamOptions{DiskSize: testDiskSize, RoundPause: time.Millisecond, FetchRounds: 2}
}

func TestStream(t *testing.T) {
	img := testImage()
	m, blobs := encodeTestImage(t, "test", img, 64<<10)
	if len(m.Chunks) < 6 {
		t.Fatalf("want several chunks, got %d", len(m.Chunks))
	}
	disk, path := newDisk(t)
	src := &fakeBlobs{byBase: map[string]map[string][]byte{"http://a": blobs}}
	var calls int
	var last int64
	opt := streamOpts()
	opt.Verify = true
	opt.Progress = func(w, total int64) {
		calls++
		if w < last || total != m.MappedBytes {
			t.Errorf("progress %d/%d after %d", w, total, last)
		}
		last = w
	}
	res, err := Stream(context.Background(), m, []string{"http://a"}, src, disk, opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != m.SHA256 || res.Written != m.MappedBytes || res.Written+res.Zeroed != m.Size {
		t.Errorf("result %+v (mapped %d, size %d)", res, m.MappedBytes, m.Size)
	}
	if last != m.MappedBytes || calls < len(m.Chunks)/2 {
		t.Errorf("progress: %d calls, last %d", calls, last)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got[:testImageSize], img) {
		t.Fatal("the disk's first Size bytes are not the image (holes must read as zeros)")
	}
	// Past the image: untouched, except the old backup GPT (last MiB).
	if !bytes.Equal(got[testImageSize:testDiskSize-1<<20], bytes.Repeat([]byte{0xaa}, testDiskSize-1<<20-testImageSize)) {
		t.Error("bytes between the image's end and the disk's last MiB changed")
	}
	if !bytes.Equal(got[testDiskSize-1<<20:], make([]byte, 1<<20)) {
		t.Error("the disk's last MiB (an old backup GPT) was not cleared")
	}
}

// Each failure must stop before anything wrong is written: the chunk at
// fault and everything after it are not on the disk, and when the first
// chunk is at fault the disk is untouched.
func TestStreamFailures(t *testing.T) {
	img := testImage()
	for name, tc := range map[string]struct {
		chunk  int // chunk to break
		breakf func(m *image.Manifest, blobs map[string][]byte, c *image.Chunk)
		err    error
		text   string
	}{
		"bad blob": {chunk: 3, err: ErrBlob, text: "SHA-256", breakf: func(_ *image.Manifest, blobs map[string][]byte, c *image.Chunk) {
			b := append([]byte(nil), blobs[c.Blob]...)
			b[len(b)/2] ^= 0xff
			blobs[c.Blob] = b
		}},
		"truncated blob": {chunk: 2, err: ErrBlob, text: "truncated", breakf: func(_ *image.Manifest, blobs map[string][]byte, c *image.Chunk) {
			blobs[c.Blob] = blobs[c.Blob][:c.BlobSize-7]
		}},
		"oversized blob": {chunk: 2, err: ErrBlob, text: "more than the", breakf: func(_ *image.Manifest, blobs map[string][]byte, c *image.Chunk) {
			blobs[c.Blob] = append(append([]byte(nil), blobs[c.Blob]...), 1, 2, 3)
		}},
		"missing blob": {chunk: 4, err: ErrBlob, text: "404", breakf: func(_ *image.Manifest, blobs map[string][]byte, c *image.Chunk) {
			delete(blobs, c.Blob)
		}},
		"bad raw checksum": {chunk: 3, err: ErrCorruptChunk, text: "decompressed SHA-256", breakf: func(_ *image.Manifest, _ map[string][]byte, c *image.Chunk) {
			c.SHA256 = strings.Repeat("0", 64)
		}},
		"blob of another chunk": {chunk: 3, err: ErrCorruptChunk, breakf: func(m *image.Manifest, _ map[string][]byte, c *image.Chunk) {
			o := m.Chunks[1]
			c.Blob, c.BlobSize = o.Blob, o.BlobSize
		}},
		"not zstd": {chunk: 2, err: ErrCorruptChunk, text: "does not decompress", breakf: func(_ *image.Manifest, blobs map[string][]byte, c *image.Chunk) {
			b := []byte("this is not a zstd frame at all")
			s := sha256.Sum256(b)
			c.Blob, c.BlobSize = hex.EncodeToString(s[:]), int64(len(b))
			blobs[c.Blob] = b
		}},
		"first chunk bad": {chunk: 0, err: ErrBlob, breakf: func(_ *image.Manifest, blobs map[string][]byte, c *image.Chunk) {
			delete(blobs, c.Blob)
		}},
		"wrong image checksum": {chunk: -1, err: ErrImageChecksum, text: "partition table was not written", breakf: func(m *image.Manifest, _ map[string][]byte, _ *image.Chunk) {
			m.SHA256 = strings.Repeat("ab", 32)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			m, blobs := encodeTestImage(t, "test", img, 64<<10)
			var c *image.Chunk
			if tc.chunk >= 0 {
				c = &m.Chunks[tc.chunk]
			}
			tc.breakf(m, blobs, c)
			disk, path := newDisk(t)
			src := &fakeBlobs{byBase: map[string]map[string][]byte{"http://a": blobs}}
			_, err := Stream(context.Background(), m, []string{"http://a"}, src, disk, streamOpts())
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v with %q", err, tc.err, tc.text)
			}
			got, _ := os.ReadFile(path)
			old := bytes.Repeat([]byte{0xaa}, testDiskSize)
			if tc.chunk == 0 {
				if !bytes.Equal(got, old) {
					t.Error("the first chunk failed, yet the disk was written")
				}
				return
			}
			// The header chunk (first MiB) is never on the disk after a failure.
			if !bytes.Equal(got[:1<<20], make([]byte, 1<<20)) {
				t.Error("the disk's first MiB must be cleared (no old, no new boot sector) after a failure")
			}
			for i, ch := range m.Chunks {
				if ch.Offset < 1<<20 {
					continue
				}
				onDisk := bytes.Equal(got[ch.Offset:ch.Offset+ch.Length], img[ch.Offset:ch.Offset+ch.Length])
				switch {
				case tc.chunk >= 0 && i < tc.chunk && !onDisk:
					t.Errorf("chunk %d before the bad one is not on the disk", i)
				case tc.chunk >= 0 && i >= tc.chunk && onDisk:
					t.Errorf("chunk %d (at or after the bad one) was written", i)
				}
			}
		})
	}
}

func TestStreamFallsBackToNextURL(t *testing.T) {
	img := testImage()
	m, blobs := encodeTestImage(t, "test", img, 64<<10)
	bad := map[string][]byte{}
	for k, v := range blobs {
		b := append([]byte(nil), v...)
		b[0] ^= 1
		bad[k] = b
	}
	src := &fakeBlobs{byBase: map[string]map[string][]byte{"http://peer": bad, "http://down": nil, "http://racklift": blobs}}
	disk, path := newDisk(t)
	if _, err := Stream(context.Background(), m, []string{"http://peer", "http://down", "http://racklift"}, src, disk, streamOpts()); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got[:testImageSize], img) {
		t.Error("image not written")
	}
	if src.fetches["http://racklift"] != len(m.Chunks) || src.fetches["http://peer"] != len(m.Chunks) {
		t.Errorf("fetches %v", src.fetches)
	}
}

// flakyRead corrupts what is read back, as a failing disk would.
type flakyRead struct{ *Device }

func (f flakyRead) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.Device.ReadAt(b, off)
	if n > 100 {
		b[100] ^= 0x55
	}
	return n, err
}

func TestStreamReadBack(t *testing.T) {
	m, blobs := encodeTestImage(t, "test", testImage(), 0)
	disk, _ := newDisk(t)
	opt := streamOpts()
	opt.Verify = true
	src := &fakeBlobs{byBase: map[string]map[string][]byte{"http://a": blobs}}
	if _, err := Stream(context.Background(), m, []string{"http://a"}, src, flakyRead{disk}, opt); !errors.Is(err, ErrReadBack) {
		t.Errorf("err = %v, want ErrReadBack", err)
	}
}

func TestStreamDiskTooSmall(t *testing.T) {
	m, blobs := encodeTestImage(t, "test", testImage(), 0)
	disk, path := newDisk(t)
	opt := streamOpts()
	opt.DiskSize = testImageSize - 512
	src := &fakeBlobs{byBase: map[string]map[string][]byte{"http://a": blobs}}
	if _, err := Stream(context.Background(), m, []string{"http://a"}, src, disk, opt); err == nil || !strings.Contains(err.Error(), "smaller than the image") {
		t.Errorf("err = %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bytes.Repeat([]byte{0xaa}, testDiskSize)) {
		t.Error("disk written")
	}
}
