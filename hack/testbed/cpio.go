package testbed

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" (SVR4, no CRC) format the
// Linux kernel unpacks as an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
// each entry is a 110-byte ASCII header ("070701" and 13 eight-digit hex
// fields), the NUL-terminated name padded to 4 bytes, then the data padded
// to 4 bytes; the archive ends with an entry named "TRAILER!!!".
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	err  error
	dirs map[string]bool
}

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{"": true, ".": true}}
}

// File mode type bits as cpio (and stat(2)) encode them.
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioLink = 0o120000
	cpioChr  = 0o020000
)

func (c *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor uint32, data []byte) {
	if c.err != nil {
		return
	}
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" {
		return
	}
	nlink := uint32(1)
	if mode&0o170000 == cpioDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.ino++
	buf := make([]byte, 0, len(hdr)+len(name)+4+len(data)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	buf = append(buf, data...)
	buf = pad4(buf)
	_, c.err = c.w.Write(buf)
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// mkdirAll adds name and its missing parents as directories (0755).
func (c *cpioWriter) mkdirAll(name string) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if c.dirs[name] {
		return
	}
	c.mkdirAll(path.Dir(name))
	c.dirs[name] = true
	c.entry(name, cpioDir|0o755, 0, 0, nil)
}

// file adds a regular file, creating its parent directories.
func (c *cpioWriter) file(name string, perm fs.FileMode, data []byte) {
	c.mkdirAll(path.Dir(name))
	c.entry(name, cpioReg|uint32(perm.Perm()), 0, 0, data)
}

// symlink adds name pointing at target.
func (c *cpioWriter) symlink(name, target string) {
	c.mkdirAll(path.Dir(name))
	c.entry(name, cpioLink|0o777, 0, 0, []byte(target))
}

// charDev adds a character device node.
func (c *cpioWriter) charDev(name string, perm fs.FileMode, major, minor uint32) {
	c.mkdirAll(path.Dir(name))
	c.entry(name, cpioChr|uint32(perm.Perm()), major, minor, nil)
}

// close writes the trailer.
func (c *cpioWriter) close() error {
	c.entry("TRAILER!!!", 0, 0, 0, nil)
	return c.err
}
