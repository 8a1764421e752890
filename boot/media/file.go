package media

import (
	"container/list"
	"io"
	"io/fs"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// fileInfo describes a node under the name it was reached by. It is both an
// fs.FileInfo and an fs.DirEntry.
type fileInfo struct {
	name string
	n    *node
}

// Name returns the base name the file was looked up by.
func (fi fileInfo) Name() string { return fi.name }

// Size returns the data length (the link target length for a symlink).
func (fi fileInfo) Size() int64 { return fi.n.size }

// Mode returns the file mode: Rock Ridge PX bits, or 0444 / 0555|ModeDir.
func (fi fileInfo) Mode() fs.FileMode { return fi.n.mode }

// ModTime returns the Rock Ridge TF modify time or the directory record time.
func (fi fileInfo) ModTime() time.Time { return fi.n.modTime }

// IsDir reports whether the file is a directory.
func (fi fileInfo) IsDir() bool { return fi.n.mode.IsDir() }

// Sys returns nil.
func (fi fileInfo) Sys() any { return nil }

// Type returns the type bits of the mode.
func (fi fileInfo) Type() fs.FileMode { return fi.n.mode.Type() }

// Info returns the entry itself; symbolic links are not followed.
func (fi fileInfo) Info() (fs.FileInfo, error) { return fi, nil }

// String formats the entry like fs.FormatFileInfo.
func (fi fileInfo) String() string { return fs.FormatFileInfo(fi) }

// entries converts nodes to directory entries.
func entries(nodes []*node) []fs.DirEntry {
	out := make([]fs.DirEntry, len(nodes))
	for i, n := range nodes {
		out[i] = fileInfo{name: n.name, n: n}
	}
	return out
}

// file is an open regular file. Its methods are safe for concurrent use
// except Read and Seek, which share the offset as with *os.File.
type file struct {
	path   string
	info   fileInfo
	sr     *io.SectionReader
	closed atomic.Bool
}

func (f *file) errClosed(op string) error {
	return &fs.PathError{Op: op, Path: f.path, Err: fs.ErrClosed}
}

// Stat returns the file's information.
func (f *file) Stat() (fs.FileInfo, error) {
	if f.closed.Load() {
		return nil, f.errClosed("stat")
	}
	return f.info, nil
}

// Read reads from the current offset.
func (f *file) Read(p []byte) (int, error) {
	if f.closed.Load() {
		return 0, f.errClosed("read")
	}
	return f.sr.Read(p)
}

// ReadAt reads at off without moving the offset.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.closed.Load() {
		return 0, f.errClosed("read")
	}
	return f.sr.ReadAt(p, off)
}

// Seek sets the offset for the next Read.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	if f.closed.Load() {
		return 0, f.errClosed("seek")
	}
	return f.sr.Seek(offset, whence)
}

// Close closes the file; a second Close reports fs.ErrClosed.
func (f *file) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return f.errClosed("close")
	}
	return nil
}

// dirFile is an open directory. It is not safe for concurrent use.
type dirFile struct {
	path   string
	info   fileInfo
	nodes  []*node // shared with the cache, read-only
	pos    int
	closed bool
}

// Stat returns the directory's information.
func (d *dirFile) Stat() (fs.FileInfo, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "stat", Path: d.path, Err: fs.ErrClosed}
	}
	return d.info, nil
}

// Read fails: d is a directory.
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.path, Err: errIsDir}
}

// ReadDir returns the next n entries (all remaining ones if n <= 0), as
// fs.ReadDirFile specifies.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.path, Err: fs.ErrClosed}
	}
	rest := d.nodes[d.pos:]
	if n <= 0 {
		d.pos = len(d.nodes)
		return entries(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.pos += n
	return entries(rest[:n]), nil
}

// Close closes the directory; a second Close reports fs.ErrClosed.
func (d *dirFile) Close() error {
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.path, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

// multiExtent is an io.ReaderAt over the extents of a multi-extent file,
// concatenated.
type multiExtent struct {
	r     io.ReaderAt
	ext   []extent
	start []int64 // start[i] is the file offset of ext[i]
	size  int64
}

func newMultiExtent(r io.ReaderAt, ext []extent) *multiExtent {
	m := &multiExtent{r: r, ext: ext, start: make([]int64, len(ext))}
	for i, e := range ext {
		m.start[i] = m.size
		m.size += e.n
	}
	return m
}

// ReadAt reads len(p) bytes at file offset off, crossing extents as needed.
func (m *multiExtent) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fs.ErrInvalid
	}
	// First extent that ends after off.
	i := sort.Search(len(m.ext), func(i int) bool { return m.start[i]+m.ext[i].n > off })
	n := 0
	for n < len(p) && i < len(m.ext) {
		rel := off + int64(n) - m.start[i]
		chunk := p[n:min(int64(len(p)), int64(n)+m.ext[i].n-rel)]
		k, err := m.r.ReadAt(chunk, m.ext[i].off+rel)
		n += k
		if k < len(chunk) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		i++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// dirCache is an LRU cache of parsed directories keyed by their extent,
// bounded by the total number of entries held.
type dirCache struct {
	mu    sync.Mutex
	max   int
	total int
	ll    *list.List // of *cacheItem, most recent first
	m     map[extent]*list.Element
}

type cacheItem struct {
	key    extent
	l      *dirList
	weight int
}

func newDirCache(maxEntries int) *dirCache {
	return &dirCache{max: maxEntries, ll: list.New(), m: make(map[extent]*list.Element)}
}

// get returns the cached directory at key, or nil.
func (c *dirCache) get(key extent) *dirList {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(e)
	it, _ := e.Value.(*cacheItem)
	return it.l
}

// put caches l at key and evicts the least recently used directories beyond
// the bound. The newest directory is kept even if it alone exceeds it.
func (c *dirCache) put(key extent, l *dirList) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok { // parsed concurrently by another caller
		c.ll.MoveToFront(e)
		return
	}
	it := &cacheItem{key: key, l: l, weight: len(l.nodes) + 1}
	c.m[key] = c.ll.PushFront(it)
	c.total += it.weight
	for c.total > c.max && c.ll.Len() > 1 {
		old := c.ll.Back()
		oi, _ := old.Value.(*cacheItem)
		c.ll.Remove(old)
		delete(c.m, oi.key)
		c.total -= oi.weight
	}
}
