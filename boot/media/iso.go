package media

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"
)

// Limits that keep a corrupt or hostile image from exhausting memory or time.
// They are far above anything a real installer image needs.
const (
	// sectorSize is the ISO 9660 logical sector size (ECMA-119 §6.1.2).
	sectorSize = 2048
	// vdStart is the byte offset of the first volume descriptor (sector 16).
	vdStart = 16 * sectorSize
	// maxVolumeDescriptors bounds the descriptor set scan.
	maxVolumeDescriptors = 64
	// maxDirBytes bounds the size of one directory extent (a RHEL DVD's
	// largest directory, Packages/, is about 2 MiB with Rock Ridge).
	maxDirBytes = 16 << 20
	// maxDirEntries bounds the records of one directory.
	maxDirEntries = 1 << 18
	// maxNameBytes bounds a Rock Ridge NM name (Linux allows 255).
	maxNameBytes = 1024
	// maxLinkBytes bounds a Rock Ridge SL target (Linux PATH_MAX).
	maxLinkBytes = 4096
	// maxContinuations bounds the SUSP CE chain of one directory record.
	maxContinuations = 32
	// maxExtents bounds the records of one multi-extent file (64 TiB of
	// 4 GiB extents).
	maxExtents = 1 << 14
	// maxSymlinkHops bounds symbolic links followed in one lookup (as Linux).
	maxSymlinkHops = 40
	// maxDepth bounds directory nesting in one lookup.
	maxDepth = 512
	// maxLookupSteps bounds the path elements one lookup visits, including
	// those that symbolic link targets add.
	maxLookupSteps = 8192
	// defaultCacheEntries bounds the directory cache by the total number of
	// directory entries it holds (roughly 200 bytes each).
	defaultCacheEntries = 1 << 17
)

// ErrNotISO reports that the data has no ISO 9660 volume descriptor set.
var ErrNotISO = errors.New("media: not an ISO 9660 image")

// ErrCorrupt reports an ISO 9660 structure that is inconsistent or out of
// bounds: an extent beyond the end of the image, an oversized directory, a
// directory cycle.
var ErrCorrupt = errors.New("media: corrupt ISO 9660 image")

// namespace is the naming scheme the image is read with.
type namespace int

const (
	nsPlain     namespace = iota // ISO 9660 identifiers, lower-cased
	nsJoliet                     // Joliet UCS-2 names from the SVD tree
	nsRockRidge                  // Rock Ridge NM names in the primary tree
)

// String returns the namespace name, for logs and tests.
func (n namespace) String() string {
	switch n {
	case nsJoliet:
		return "joliet"
	case nsRockRidge:
		return "rockridge"
	default:
		return "iso9660"
	}
}

// ISO is a read-only ISO 9660 file system. It implements fs.FS, fs.StatFS,
// fs.ReadDirFS and fs.ReadLinkFS and is safe for concurrent use. Files it
// opens implement io.Reader, io.ReaderAt and io.Seeker; directories implement
// fs.ReadDirFile.
type ISO struct {
	r         io.ReaderAt
	size      int64
	closer    io.Closer // the file OpenISO opened; nil for NewISO
	blockSize int64     // logical block size from the volume descriptor
	ns        namespace
	suspSkip  int // SUSP LEN_SKP from the root SP entry
	label     string
	root      *node
	cache     *dirCache
	closed    atomic.Bool
}

// node is one file, directory or symbolic link of the image.
type node struct {
	name    string
	mode    fs.FileMode
	size    int64
	modTime time.Time
	// extents holds the file data (in order) or, for a directory, its one
	// directory extent.
	extents []extent
	target  string // symbolic link target
	// bad marks a file whose extents are out of bounds or too many.
	bad bool
	// interleaved marks a file recorded in interleaved mode (unsupported).
	interleaved bool
}

// extent is a byte range of the image.
type extent struct {
	off, n int64
}

// OpenISO opens the ISO 9660 image file at name. Close releases it.
func OpenISO(name string) (*ISO, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("media: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("media: %s: %w", name, ErrNotISO)
	}
	x, err := NewISO(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	x.closer = f
	return x, nil
}

// NewISO reads the ISO 9660 image of the given size from r. The caller keeps
// ownership of r; Close does not close it. Only the volume descriptors and the
// root directory's first record are read here; directories are read on use.
func NewISO(r io.ReaderAt, size int64) (*ISO, error) {
	if size < vdStart+sectorSize {
		return nil, fmt.Errorf("%w: %d bytes is too small", ErrNotISO, size)
	}
	var pvd, svd []byte
	buf := make([]byte, sectorSize)
scan:
	for i := range int64(maxVolumeDescriptors) {
		off := vdStart + i*sectorSize
		if off+sectorSize > size {
			break
		}
		if err := readFull(r, buf, off); err != nil {
			return nil, fmt.Errorf("media: read volume descriptor %d: %w", i, err)
		}
		if string(buf[1:6]) != "CD001" {
			if i == 0 {
				return nil, ErrNotISO
			}
			break // a missing terminator is tolerated
		}
		switch buf[0] {
		case 1: // Primary Volume Descriptor
			if pvd == nil {
				pvd = append([]byte(nil), buf...)
			}
		case 2: // Supplementary: Joliet if the escape sequence says UCS-2
			if svd == nil && isJoliet(buf) {
				svd = append([]byte(nil), buf...)
			}
		case 255: // Volume Descriptor Set Terminator
			break scan
		}
	}
	if pvd == nil {
		return nil, fmt.Errorf("%w: no primary volume descriptor", ErrNotISO)
	}
	x := &ISO{r: r, size: size, cache: newDirCache(defaultCacheEntries)}
	bs := int64(le16(pvd[128:]))
	if bs != 512 && bs != 1024 && bs != 2048 {
		return nil, fmt.Errorf("%w: logical block size %d", ErrCorrupt, bs)
	}
	x.blockSize = bs
	x.label = strings.TrimRight(string(pvd[40:72]), " \x00")

	root, ok := parseRecord(pvd[156:190], bs)
	if !ok || root.flags&flagDir == 0 {
		return nil, fmt.Errorf("%w: bad root directory record", ErrCorrupt)
	}
	if err := x.checkDirExtent(root.extent, root.length); err != nil {
		return nil, fmt.Errorf("root directory: %w", err)
	}
	x.root = &node{
		name:    ".",
		mode:    fs.ModeDir | 0o555,
		size:    root.length,
		modTime: root.recorded,
		extents: []extent{{root.extent, root.length}},
	}

	// Rock Ridge is announced in the root directory's own "." record.
	if dot, ok := x.readRecordAt(root.extent); ok {
		rr := x.parseRR(dot.sua, true)
		if rr.sp && (rr.er || rr.anyRR) {
			x.ns = nsRockRidge
			x.suspSkip = rr.spSkip
			x.applyRRDir(x.root, rr)
			return x, nil
		}
	}
	if svd != nil {
		jr, ok := parseRecord(svd[156:190], bs)
		if ok && jr.flags&flagDir != 0 && x.checkDirExtent(jr.extent, jr.length) == nil {
			x.ns = nsJoliet
			x.root.size = jr.length
			x.root.modTime = jr.recorded
			x.root.extents = []extent{{jr.extent, jr.length}}
		}
	}
	return x, nil
}

// isJoliet reports whether a Supplementary Volume Descriptor carries one of
// the three Joliet escape sequences (UCS-2 levels 1, 2 and 3).
func isJoliet(svd []byte) bool {
	esc := svd[88:91]
	return esc[0] == '%' && esc[1] == '/' && (esc[2] == '@' || esc[2] == 'C' || esc[2] == 'E')
}

// Label returns the volume identifier from the primary volume descriptor.
func (x *ISO) Label() string { return x.label }

// Close marks the file system closed and, for an image opened with OpenISO,
// closes the image file. Files already open fail after Close.
func (x *ISO) Close() error {
	if !x.closed.CompareAndSwap(false, true) {
		return nil
	}
	if x.closer != nil {
		if err := x.closer.Close(); err != nil {
			return fmt.Errorf("media: close image: %w", err)
		}
	}
	return nil
}

// Open opens the named file, following symbolic links within the image.
func (x *ISO) Open(name string) (fs.File, error) {
	n, err := x.resolve(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := fileInfo{name: path.Base(name), n: n}
	if n.mode.IsDir() {
		list, err := x.readDir(n)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{path: name, info: info, nodes: list.nodes}, nil
	}
	r, err := x.dataReader(n)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{path: name, info: info, sr: r}, nil
}

// Stat returns information about the named file, following symbolic links.
func (x *ISO) Stat(name string) (fs.FileInfo, error) {
	n, err := x.resolve(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fileInfo{name: path.Base(name), n: n}, nil
}

// Lstat returns information about the named file without following a final
// symbolic link.
func (x *ISO) Lstat(name string) (fs.FileInfo, error) {
	n, err := x.resolve(name, false)
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return fileInfo{name: path.Base(name), n: n}, nil
}

// ReadLink returns the target of the named symbolic link as recorded in the
// image (Rock Ridge SL), without checking that it resolves.
func (x *ISO) ReadLink(name string) (string, error) {
	n, err := x.resolve(name, false)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fmt.Errorf("%w: not a symbolic link", fs.ErrInvalid)}
	}
	return n.target, nil
}

// ReadDir reads the named directory and returns its entries sorted by name.
func (x *ISO) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := x.resolve(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errNotDir}
	}
	list, err := x.readDir(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries(list.nodes), nil
}

var (
	errNotDir   = fmt.Errorf("%w: not a directory", fs.ErrInvalid)
	errIsDir    = fmt.Errorf("%w: is a directory", fs.ErrInvalid)
	errOutside  = fmt.Errorf("%w: symbolic link points outside the image", fs.ErrNotExist)
	errLinkLoop = fmt.Errorf("%w: too many levels of symbolic links or path elements", fs.ErrInvalid)
)

// resolve walks name from the root. Symbolic links in the middle of the path
// are always followed; a final one only if followLast.
func (x *ISO) resolve(name string, followLast bool) (*node, error) {
	if x.closed.Load() {
		return nil, fs.ErrClosed
	}
	if !fs.ValidPath(name) {
		return nil, fs.ErrInvalid
	}
	var comps []string
	if name != "." {
		comps = strings.Split(name, "/")
	}
	stack := make([]*node, 1, 8)
	stack[0] = x.root
	hops, steps := 0, 0
	for len(comps) > 0 {
		if steps++; steps > maxLookupSteps {
			return nil, errLinkLoop
		}
		c := comps[0]
		comps = comps[1:]
		switch c {
		case "", ".":
			continue
		case "..": // only from symlink targets: ValidPath rejects it in name
			if len(stack) == 1 {
				return nil, errOutside
			}
			stack = stack[:len(stack)-1]
			continue
		}
		dir := stack[len(stack)-1]
		if !dir.mode.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a directory", fs.ErrNotExist, dir.name)
		}
		list, err := x.readDir(dir)
		if err != nil {
			return nil, err
		}
		n := list.byName[c]
		if n == nil {
			return nil, fs.ErrNotExist
		}
		if n.mode&fs.ModeSymlink != 0 && (len(comps) > 0 || followLast) {
			hops++
			if hops > maxSymlinkHops {
				return nil, errLinkLoop
			}
			if strings.HasPrefix(n.target, "/") {
				return nil, errOutside
			}
			comps = append(strings.Split(n.target, "/"), comps...)
			continue
		}
		if n.mode.IsDir() {
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: directories nested deeper than %d", ErrCorrupt, maxDepth)
			}
			for _, a := range stack {
				if a.extents[0].off == n.extents[0].off {
					return nil, fmt.Errorf("%w: directory cycle at %s", ErrCorrupt, n.name)
				}
			}
		}
		stack = append(stack, n)
	}
	return stack[len(stack)-1], nil
}

// dataReader returns a reader over the file's data, checking its extents.
func (x *ISO) dataReader(n *node) (*io.SectionReader, error) {
	switch {
	case n.bad:
		return nil, fmt.Errorf("%w: file extent out of bounds", ErrCorrupt)
	case n.interleaved:
		return nil, fmt.Errorf("interleaved ISO 9660 file: %w", errors.ErrUnsupported)
	case len(n.extents) == 0:
		return io.NewSectionReader(x.r, 0, 0), nil
	case len(n.extents) == 1:
		return io.NewSectionReader(x.r, n.extents[0].off, n.extents[0].n), nil
	}
	return io.NewSectionReader(newMultiExtent(x.r, n.extents), 0, n.size), nil
}

// checkDirExtent validates a directory extent against the image and limits.
func (x *ISO) checkDirExtent(off, n int64) error {
	switch {
	case n <= 0:
		return fmt.Errorf("%w: empty directory extent", ErrCorrupt)
	case n > maxDirBytes:
		return fmt.Errorf("%w: directory of %d bytes", ErrCorrupt, n)
	case off < 0 || off > x.size-n:
		return fmt.Errorf("%w: directory extent beyond end of image", ErrCorrupt)
	}
	return nil
}

// readDir returns the parsed directory n, from the cache if possible.
func (x *ISO) readDir(n *node) (*dirList, error) {
	ext := n.extents[0]
	if l := x.cache.get(ext); l != nil {
		return l, nil
	}
	if err := x.checkDirExtent(ext.off, ext.n); err != nil {
		return nil, err
	}
	data := make([]byte, ext.n)
	if err := readFull(x.r, data, ext.off); err != nil {
		return nil, fmt.Errorf("media: read directory: %w", err)
	}
	l, err := x.parseDir(data)
	if err != nil {
		return nil, err
	}
	x.cache.put(ext, l)
	return l, nil
}

// readFull reads len(p) bytes at off, treating a short read as an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
