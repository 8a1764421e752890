package initramfs

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Writer writes a cpio archive in the "newc" (SVR4, no CRC) format the
// Linux kernel unpacks as an initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst): each entry
// is a 110-byte ASCII header ("070701" and 13 eight-digit hex fields), the
// NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes;
// the archive ends with an entry named "TRAILER!!!".
//
// Names are cleaned and made relative ("/bin/sh" and "bin/sh" are the
// same); missing parent directories are added (0755). Every entry is owned
// by root with mtime 0, so the same input gives the same bytes. The first
// write error is kept and returned by Close; later calls do nothing.
type Writer struct {
	w    io.Writer
	ino  uint32
	err  error
	dirs map[string]bool
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, ino: 1, dirs: map[string]bool{"": true, ".": true}}
}

// File mode type bits as cpio (and stat(2)) encode them.
const (
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
)

func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (c *Writer) entry(name string, mode uint32, rdevMajor, rdevMinor uint32, data []byte) {
	if c.err != nil {
		return
	}
	if name == "" {
		return
	}
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	if uint64(len(data)) > 0xffffffff {
		c.err = fmt.Errorf("cpio: %s: %d bytes is more than newc can hold", name, len(data))
		return
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	buf := make([]byte, 0, len(hdr)+len(name)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf, len(buf))
	if _, c.err = c.w.Write(buf); c.err != nil {
		return
	}
	if len(data) > 0 {
		if _, c.err = c.w.Write(data); c.err != nil {
			return
		}
		if p := (4 - len(data)%4) % 4; p > 0 {
			_, c.err = c.w.Write(make([]byte, p))
		}
	}
}

func pad4(b []byte, n int) []byte {
	for n%4 != 0 {
		b = append(b, 0)
		n++
	}
	return b
}

// Dir adds name and its missing parents as directories (0755).
func (c *Writer) Dir(name string) {
	name = cleanName(name)
	if c.dirs[name] {
		return
	}
	c.Dir(path.Dir(name))
	c.dirs[name] = true
	c.entry(name, modeDir|0o755, 0, 0, nil)
}

// File adds a regular file with permissions perm.
func (c *Writer) File(name string, perm fs.FileMode, data []byte) {
	name = cleanName(name)
	c.Dir(path.Dir(name))
	c.entry(name, modeReg|uint32(perm.Perm()), 0, 0, data)
}

// Symlink adds name pointing at target.
func (c *Writer) Symlink(name, target string) {
	name = cleanName(name)
	c.Dir(path.Dir(name))
	c.entry(name, modeLink|0o777, 0, 0, []byte(target))
}

// CharDev adds a character device node.
func (c *Writer) CharDev(name string, perm fs.FileMode, major, minor uint32) {
	name = cleanName(name)
	c.Dir(path.Dir(name))
	c.entry(name, modeChr|uint32(perm.Perm()), major, minor, nil)
}

// Close writes the trailer and returns the first error. It does not close
// the underlying writer.
func (c *Writer) Close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return c.err
}
