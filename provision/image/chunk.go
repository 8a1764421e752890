package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

// chunker cuts a raw image stream into chunks: all-zero BlockSize blocks
// are holes; runs of other blocks become chunks of at most MaxChunk bytes,
// each hashed, compressed into one zstd frame, hashed again and stored as
// a blob (unless a blob of that name exists). The whole image's SHA-256 is
// computed on the way (holes included, as zeros).
type chunker struct {
	store   *Store
	workers int

	// Set by run, read by the progress callback on run's goroutine.
	done, mapped int64
	whole        hash.Hash
	chunks       []Chunk
}

// segment is how much of the stream is read at a time.
const segment = 1 << 20

type chunkJob struct {
	index  int
	offset int64
	data   *[]byte
}

type chunkResult struct {
	index int
	chunk Chunk
}

func (c *chunker) run(ctx context.Context, r io.Reader, report func(final bool)) error {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(c.workers), zstd.WithZeroFrames(true))
	if err != nil {
		return err
	}
	defer enc.Close()
	c.whole = sha256.New()
	pool := sync.Pool{New: func() any { b := make([]byte, 0, MaxChunk); return &b }}
	jobs := make(chan chunkJob, c.workers)
	results := make(chan chunkResult, c.workers)
	g, gctx := errgroup.WithContext(ctx)
	for range c.workers {
		g.Go(func() error {
			var out []byte
			for j := range jobs {
				ch, err := c.store.storeChunk(enc, j.offset, *j.data, &out)
				*j.data = (*j.data)[:0]
				pool.Put(j.data)
				if err != nil {
					return err
				}
				select {
				case results <- chunkResult{j.index, ch}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	collected := make(chan []Chunk, 1)
	go func() {
		var all []Chunk
		for res := range results {
			for len(all) <= res.index {
				all = append(all, Chunk{})
			}
			all[res.index] = res.chunk
		}
		collected <- all
	}()

	readErr := c.read(gctx, r, &pool, jobs, report)
	close(jobs)
	err = g.Wait()
	close(results)
	all := <-collected
	if readErr != nil {
		return readErr
	}
	if err != nil {
		return err
	}
	c.chunks = all
	return syncDir(c.store.blobDir())
}

// read runs on run's goroutine: it reads segments, finds the non-zero
// runs and hands them to the workers.
func (c *chunker) read(ctx context.Context, r io.Reader, pool *sync.Pool, jobs chan<- chunkJob, report func(bool)) error {
	buf := make([]byte, segment)
	var run *[]byte
	var runStart int64
	index := 0
	flush := func() error {
		if run == nil || len(*run) == 0 {
			return nil
		}
		c.mapped += int64(len(*run))
		select {
		case jobs <- chunkJob{index, runStart, run}:
		case <-ctx.Done():
			return ctx.Err()
		}
		index++
		run = nil
		return nil
	}
	last := time.Now()
	first := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := fill(r, buf)
		if n > 0 {
			seg := buf[:n]
			if first {
				first = false
				// Fail fast on what is no disk image; the full check reads the
				// stored image at the end.
				if _, terr := readTable(bytes.NewReader(seg), -1); terr != nil && !errors.Is(terr, io.EOF) {
					return terr
				}
			}
			c.whole.Write(seg)
			for off := 0; off < n; off += BlockSize {
				blk := seg[off:min(off+BlockSize, n)]
				at := c.done + int64(off)
				if allZero(blk) {
					if err := flush(); err != nil {
						return err
					}
					continue
				}
				if run == nil {
					p, _ := pool.Get().(*[]byte)
					run, runStart = p, at
				}
				*run = append(*run, blk...)
				if len(*run) >= MaxChunk {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			c.done += int64(n)
			if time.Since(last) >= progressEvery {
				last = time.Now()
				report(false)
			}
		}
		if errors.Is(err, io.EOF) {
			return flush()
		}
		if err != nil {
			return fmt.Errorf("read the image at byte %d: %w", c.done, err)
		}
	}
}

// fill reads until buf is full or the stream ends. Unlike io.ReadFull it
// returns io.EOF (with n > 0 or not) only for a clean end: a decompressor's
// io.ErrUnexpectedEOF (a truncated file) stays an error.
func fill(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			if empty++; empty > 100 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}

// storeChunk hashes and compresses one chunk and writes its blob if it is
// new. out is the worker's compression buffer.
func (s *Store) storeChunk(enc *zstd.Encoder, offset int64, data []byte, out *[]byte) (Chunk, error) {
	raw := sha256.Sum256(data)
	*out = enc.EncodeAll(data, (*out)[:0])
	blob := *out
	bsum := sha256.Sum256(blob)
	ch := Chunk{
		Offset:   offset,
		Length:   int64(len(data)),
		SHA256:   hex.EncodeToString(raw[:]),
		Blob:     hex.EncodeToString(bsum[:]),
		BlobSize: int64(len(blob)),
		Codec:    CodecZstd,
	}
	return ch, s.writeBlob(ch.Blob, blob)
}

// writeBlob stores a blob once: an existing blob of the right size is
// kept (its name is its SHA-256); a new one is written to _tmp, synced and
// renamed into place.
func (s *Store) writeBlob(sum string, b []byte) error {
	path := s.blobPath(sum)
	if st, err := os.Stat(path); err == nil && st.Size() == int64(len(b)) {
		return nil
	}
	f, err := os.CreateTemp(s.tmpDir(), "blob-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write blob %s: %w", filepath.Base(path), err)
	}
	return nil
}
