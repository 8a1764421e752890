package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/racklift/racklift/provision/image"
)

// BlobFetcher fetches one blob by name from one of the image's blob URLs.
type BlobFetcher interface {
	// FetchBlob returns the bytes base serves for blob name, reading at
	// most max bytes (a longer answer is cut at max, so the caller sees
	// it is too long). It does not check the bytes.
	FetchBlob(ctx context.Context, base, name string, max int64) ([]byte, error)
}

// Target is the disk an image is streamed onto.
type Target interface {
	io.ReaderAt
	io.WriterAt
	// Zero makes [off, off+n) read as zeros (BLKZEROOUT on a block
	// device, which the kernel turns into WRITE ZEROES or an unmap where
	// the device supports it, and writes zero pages where not).
	Zero(off, n int64) error
	// Sync flushes what was written to stable storage.
	Sync() error
	// DropCache makes later reads come from the device rather than the
	// page cache (BLKFLSBUF), for reading back what was written.
	DropCache() error
}

// StreamOptions tune Stream. Zero values are the defaults.
type StreamOptions struct {
	// DiskSize is the target's size in bytes (at least the image's).
	DiskSize int64
	// Verify reads every chunk back from the device after the final
	// sync and checks its SHA-256 again.
	Verify bool
	// Progress, when set, is called after each chunk is written with the
	// raw bytes written so far and the total (the manifest's MappedBytes).
	Progress func(written, total int64)
	// Prefetch is how many verified chunks may wait in memory for the
	// writer (default 2; each is at most image.MaxChunk bytes).
	Prefetch int
	// FetchRounds is how many times the list of blob URLs is tried for
	// one blob before giving up (default 3), with a pause between rounds.
	FetchRounds int
	// RoundPause is the pause between rounds (default 2 s).
	RoundPause time.Duration
}

// StreamResult reports what Stream did.
type StreamResult struct {
	// Written is the raw bytes written from chunks; Zeroed the bytes of
	// holes made to read as zeros.
	Written, Zeroed int64
	// SHA256 is the whole image's SHA-256 as written.
	SHA256 string
	// Elapsed is the time from the first fetch to the final sync;
	// VerifyElapsed the time reading back took (0 without Verify).
	Elapsed, VerifyElapsed time.Duration
}

// RateMBps is the write rate (raw MB written per second, 10^6 bytes).
func (r StreamResult) RateMBps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Written) / 1e6 / r.Elapsed.Seconds()
}

// Errors of streaming (wrapped with the chunk and the reason).
var (
	// ErrBlob: no blob URL served a blob with the right size and SHA-256.
	ErrBlob = errors.New("blob not available")
	// ErrCorruptChunk: a blob matched its name but did not decompress to
	// the chunk's bytes: the image store is corrupt (re-import the image).
	ErrCorruptChunk = errors.New("corrupt chunk")
	// ErrImageChecksum: the chunks do not add up to the image's SHA-256.
	ErrImageChecksum = errors.New("image checksum mismatch")
	// ErrReadBack: a chunk read back from the disk differs from what was
	// written (a failing disk or controller).
	ErrReadBack = errors.New("read-back mismatch")
)

// headerHold is the part of the disk written last: it holds the
// partition tables and boot sector, so an install that stops half way
// leaves a disk that boots nothing (the firmware goes on to the network)
// rather than half an image.
const headerHold = 1 << 20

type decoded struct {
	idx int
	raw []byte
	err error
}

// Stream writes manifest m's image onto t. It checks every blob's size
// and SHA-256 and every chunk's raw SHA-256 before writing it, so a bad
// blob, a bad chunk or a short answer stops the stream with nothing wrong
// written; it makes the holes between chunks read as zeros, computes the
// whole image's SHA-256 as it goes and compares it with m.SHA256, and
// syncs. Nothing is written before the first chunk is fetched and checked.
// Then the disk's first and last MiB (the old system's partition tables)
// are cleared, and the chunks in the first MiB are written only after
// every other chunk and the whole-image checksum are right.
//
// m must have passed Validate and t must be at least m.Size bytes.
func Stream(ctx context.Context, m *image.Manifest, urls []string, src BlobFetcher, t Target, opt StreamOptions) (StreamResult, error) {
	if opt.Prefetch <= 0 {
		opt.Prefetch = 2
	}
	if opt.FetchRounds <= 0 {
		opt.FetchRounds = 3
	}
	if opt.RoundPause <= 0 {
		opt.RoundPause = 2 * time.Second
	}
	if opt.DiskSize < m.Size {
		return StreamResult{}, fmt.Errorf("disk of %d bytes is smaller than the image (%d bytes)", opt.DiskSize, m.Size)
	}
	if len(urls) == 0 && len(m.Chunks) > 0 {
		return StreamResult{}, fmt.Errorf("%w: no blob URLs", ErrBlob)
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(4*image.MaxChunk))
	if err != nil {
		return StreamResult{}, err
	}
	defer dec.Close()

	ch := make(chan decoded, opt.Prefetch)
	go func() {
		defer close(ch)
		for i := range m.Chunks {
			raw, err := fetchChunk(ctx, m, i, urls, src, dec, opt)
			select {
			case ch <- decoded{idx: i, raw: raw, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	var res StreamResult
	whole := sha256.New()
	zeros := make([]byte, 1<<20)
	var held []decoded
	var pos int64 // end of what the whole-image hash has covered
	started := false
	begin := func() error {
		// The old system's tables: the primary GPT/MBR at the start and
		// the backup GPT at the disk's end.
		if err := t.Zero(0, min(headerHold, opt.DiskSize)); err != nil {
			return fmt.Errorf("clear the disk's first MiB: %w", err)
		}
		if opt.DiskSize > headerHold {
			tail := max(opt.DiskSize-headerHold, headerHold)
			if err := t.Zero(tail, opt.DiskSize-tail); err != nil {
				return fmt.Errorf("clear the disk's last MiB: %w", err)
			}
		}
		started = true
		return nil
	}
	hole := func(to int64) error {
		if to <= pos {
			return nil
		}
		hashZeros(whole, to-pos, zeros)
		if err := t.Zero(pos, to-pos); err != nil {
			return fmt.Errorf("zero bytes %d-%d: %w", pos, to, err)
		}
		res.Zeroed += to - pos
		pos = to
		return nil
	}
	for d := range ch {
		if d.err != nil {
			return res, d.err
		}
		c := m.Chunks[d.idx]
		if !started {
			if err := begin(); err != nil {
				return res, err
			}
		}
		if err := hole(c.Offset); err != nil {
			return res, err
		}
		whole.Write(d.raw)
		pos = c.Offset + c.Length
		if c.Offset < headerHold {
			held = append(held, d)
			continue
		}
		if _, err := t.WriteAt(d.raw, c.Offset); err != nil {
			return res, fmt.Errorf("write chunk %d at byte %d: %w", d.idx, c.Offset, err)
		}
		res.Written += c.Length
		if opt.Progress != nil {
			opt.Progress(res.Written, m.MappedBytes)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if !started {
		if err := begin(); err != nil { // an image without chunks: all zeros
			return res, err
		}
	}
	if err := hole(m.Size); err != nil {
		return res, err
	}
	res.SHA256 = hex.EncodeToString(whole.Sum(nil))
	if res.SHA256 != m.SHA256 {
		return res, fmt.Errorf("%w: the chunks of image %s add up to SHA-256 %s, the manifest says %s (the manifest is inconsistent: re-import the image); the disk's partition table was not written", ErrImageChecksum, m.Name, res.SHA256, m.SHA256)
	}
	// Everything else is on the disk: make it durable before the
	// partition tables that make it bootable.
	if err := t.Sync(); err != nil {
		return res, fmt.Errorf("sync: %w", err)
	}
	for _, d := range held {
		c := m.Chunks[d.idx]
		if _, err := t.WriteAt(d.raw, c.Offset); err != nil {
			return res, fmt.Errorf("write chunk %d at byte %d: %w", d.idx, c.Offset, err)
		}
		res.Written += c.Length
	}
	if err := t.Sync(); err != nil {
		return res, fmt.Errorf("sync: %w", err)
	}
	if opt.Progress != nil {
		opt.Progress(res.Written, m.MappedBytes)
	}
	res.Elapsed = time.Since(start)
	if opt.Verify {
		vstart := time.Now()
		if err := readBack(ctx, m, t); err != nil {
			return res, err
		}
		res.VerifyElapsed = time.Since(vstart)
	}
	return res, nil
}

// fetchChunk fetches chunk i's blob from the first URL that serves the
// right bytes (trying the list FetchRounds times), decompresses it and
// checks the raw bytes.
func fetchChunk(ctx context.Context, m *image.Manifest, i int, urls []string, src BlobFetcher, dec *zstd.Decoder, opt StreamOptions) ([]byte, error) {
	c := m.Chunks[i]
	var reasons []string
	var blob []byte
fetch:
	for round := 0; round < opt.FetchRounds; round++ {
		if round > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(opt.RoundPause):
			}
		}
		for _, base := range urls {
			b, err := src.FetchBlob(ctx, base, c.Blob, c.BlobSize+1)
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case err != nil:
				reasons = append(reasons, err.Error())
			case int64(len(b)) < c.BlobSize:
				reasons = append(reasons, fmt.Sprintf("%s: truncated: %d of %d bytes", base, len(b), c.BlobSize))
			case int64(len(b)) > c.BlobSize:
				reasons = append(reasons, fmt.Sprintf("%s: more than the %d bytes expected", base, c.BlobSize))
			case sha256Hex(b) != c.Blob:
				reasons = append(reasons, fmt.Sprintf("%s: SHA-256 %s", base, sha256Hex(b)))
			default:
				blob = b
				break fetch
			}
		}
	}
	if blob == nil {
		return nil, fmt.Errorf("%w: chunk %d (bytes %d-%d), blob %s: %s", ErrBlob, i, c.Offset, c.Offset+c.Length, c.Blob, summarize(reasons))
	}
	raw, err := dec.DecodeAll(blob, make([]byte, 0, c.Length))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: chunk %d: blob %s does not decompress: %v", ErrCorruptChunk, i, c.Blob, err)
	case int64(len(raw)) != c.Length:
		return nil, fmt.Errorf("%w: chunk %d: blob %s decompresses to %d bytes, the manifest says %d", ErrCorruptChunk, i, c.Blob, len(raw), c.Length)
	case sha256Hex(raw) != c.SHA256:
		return nil, fmt.Errorf("%w: chunk %d: decompressed SHA-256 %s, the manifest says %s", ErrCorruptChunk, i, sha256Hex(raw), c.SHA256)
	}
	return raw, nil
}

// summarize keeps an error list short: each distinct reason once.
func summarize(reasons []string) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reasons {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	if len(out) > 4 {
		out = append(out[:4], fmt.Sprintf("and %d more", len(out)-4))
	}
	return strings.Join(out, "; ")
}

func readBack(ctx context.Context, m *image.Manifest, t Target) error {
	if err := t.DropCache(); err != nil {
		return fmt.Errorf("read back: drop the page cache: %w", err)
	}
	buf := make([]byte, image.MaxChunk)
	for i, c := range m.Chunks {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := buf[:c.Length]
		if _, err := t.ReadAt(b, c.Offset); err != nil {
			return fmt.Errorf("read back chunk %d at byte %d: %w", i, c.Offset, err)
		}
		if got := sha256Hex(b); got != c.SHA256 {
			return fmt.Errorf("%w: chunk %d (bytes %d-%d) reads back with SHA-256 %s, wrote %s", ErrReadBack, i, c.Offset, c.Offset+c.Length, got, c.SHA256)
		}
	}
	return nil
}

// hashZeros feeds n zero bytes to h, from zeros (all zero).
func hashZeros(h hash.Hash, n int64, zeros []byte) {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		h.Write(zeros[:k])
		n -= k
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
