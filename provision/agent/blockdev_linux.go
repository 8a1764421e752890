package agent

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device is an open disk: a block device (on a node) or a regular file
// (an image file, in tests). It implements Target and ReadWriterAt.
type Device struct {
	f     *os.File
	block bool
}

// OpenDevice opens path for reading and writing. A block device is
// opened O_EXCL: the kernel refuses it while any partition of it is
// mounted or otherwise held, so the agent never writes under a mounted
// file system.
func OpenDevice(path string) (*Device, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	block := st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
	flags := os.O_RDWR | unix.O_CLOEXEC
	if block {
		flags |= unix.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("open %s: it is in use (mounted or held by another device): %w", path, err)
		}
		return nil, err
	}
	return &Device{f: f, block: block}, nil
}

// Close closes the device.
func (d *Device) Close() error { return d.f.Close() }

// Name is the path it was opened with.
func (d *Device) Name() string { return d.f.Name() }

// ReadAt reads at off.
func (d *Device) ReadAt(b []byte, off int64) (int, error) { return d.f.ReadAt(b, off) }

// WriteAt writes at off.
func (d *Device) WriteAt(b []byte, off int64) (int, error) { return d.f.WriteAt(b, off) }

// Sync is fsync(2): for a block device it flushes the page cache and
// the device's write cache.
func (d *Device) Sync() error { return d.f.Sync() }

// Size returns the size in bytes (BLKGETSIZE64 for a block device).
func (d *Device) Size() (int64, error) {
	if !d.block {
		st, err := d.f.Stat()
		if err != nil {
			return 0, err
		}
		return st.Size(), nil
	}
	var n uint64
	if err := ioctlPtr(d.f, unix.BLKGETSIZE64, unsafe.Pointer(&n)); err != nil {
		return 0, fmt.Errorf("BLKGETSIZE64 %s: %w", d.f.Name(), err)
	}
	return int64(n), nil
}

// Zero makes [off, off+n) read as zeros: BLKZEROOUT for a block device
// (offset and length in whole 512-byte sectors), a punched hole (or
// written zeros) for a file.
func (d *Device) Zero(off, n int64) error {
	if n <= 0 {
		return nil
	}
	if d.block {
		if off%512 != 0 || n%512 != 0 {
			return d.writeZeros(off, n)
		}
		rng := [2]uint64{uint64(off), uint64(n)}
		if err := ioctlPtr(d.f, unix.BLKZEROOUT, unsafe.Pointer(&rng)); err != nil {
			return fmt.Errorf("BLKZEROOUT %s bytes %d+%d: %w", d.f.Name(), off, n, err)
		}
		return nil
	}
	err := unix.Fallocate(int(d.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		return nil
	}
	return d.writeZeros(off, n)
}

func (d *Device) writeZeros(off, n int64) error {
	z := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(z)))
		if _, err := d.f.WriteAt(z[:k], off); err != nil {
			return err
		}
		off += k
		n -= k
	}
	return nil
}

// DropCache flushes and drops the device's page cache (BLKFLSBUF), so
// what is read next comes from the device. For a file it only syncs.
func (d *Device) DropCache() error {
	if err := d.f.Sync(); err != nil {
		return err
	}
	if !d.block {
		return nil
	}
	if err := ioctlPtr(d.f, unix.BLKFLSBUF, nil); err != nil {
		return fmt.Errorf("BLKFLSBUF %s: %w", d.f.Name(), err)
	}
	return nil
}

// RereadPartitions asks the kernel to read the partition table again
// (BLKRRPART), retrying while the device is busy (udev-less systems
// rarely hold it, but a just-closed partition may still be released).
// Files have no partition table to re-read.
func (d *Device) RereadPartitions() error {
	if !d.block {
		return nil
	}
	var err error
	for i := 0; i < 10; i++ {
		if err = ioctlPtr(d.f, unix.BLKRRPART, nil); !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("BLKRRPART %s (re-read the partition table): %w", d.f.Name(), err)
	}
	return nil
}

// LogicalBlockSize is BLKSSZGET (512 for files).
func (d *Device) LogicalBlockSize() (int, error) {
	if !d.block {
		return 512, nil
	}
	var n int32
	if err := ioctlPtr(d.f, unix.BLKSSZGET, unsafe.Pointer(&n)); err != nil {
		return 0, fmt.Errorf("BLKSSZGET %s: %w", d.f.Name(), err)
	}
	return int(n), nil
}

func ioctlPtr(f *os.File, req uint, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno error
	if err := rc.Control(func(fd uintptr) {
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); e != 0 {
			errno = e
		}
	}); err != nil {
		return err
	}
	return errno
}
