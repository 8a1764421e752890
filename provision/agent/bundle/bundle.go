// Package bundle is the server side of racklift's deploy agent: it loads
// the agent directory that `make agent` (hack/agent/build.sh) builds and
// gives racklift what it serves to a node that installs an image:
//
//	vmlinuz      Debian's signed kernel (linux-image-amd64)
//	initrd.img   the base initramfs (busybox, modules, efibootmgr, /init)
//	             with the running racklift binary appended as a second
//	             cpio archive, so the agent is always the server's version
//	shimx64.efi  Debian's signed shim (shim-signed: shimx64.efi.signed)
//	grubx64.efi  Debian's signed netboot GRUB (grub-efi-amd64-signed:
//	             grubnetx64.efi.signed), under the name shim loads
//
// # Secure Boot chain
//
// Firmware loads shimx64.efi (TFTP boot file); shim loads "grubx64.efi"
// from the same TFTP directory as itself; that GRUB (Debian's
// grubnetx64.efi.signed, prefix "/grub" built in, found with strings:
// its embedded config is `normal (memdisk)/grub.cfg`, and the memdisk's
// grub.cfg sources $prefix/x86_64-efi/grub.cfg if it exists, else
// $prefix/grub.cfg) reads, from the TFTP server it booted from
// ($prefix = (tftp,SERVER)/grub):
//
//	/grub/x86_64-efi/grub.cfg   if it exists, else
//	/grub/grub.cfg
//
// It does not look for per-MAC files; the config it reads can chain to a
// per-node one with GRUB's ${net_default_mac} (e.g. configfile
// (http,SERVER:PORT)/grub/${net_default_mac}/grub.cfg). GRUB's `linux`
// verifies the kernel through shim (Debian's kernel is signed by Debian,
// whose key shim carries); the initrd is not verified.
package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/racklift/racklift/provision/agent/initramfs"
)

// Files of an agent directory (Dir) and of the bundle's FS.
const (
	// FileKernel is the kernel, served as is.
	FileKernel = "vmlinuz"
	// FileBaseInitrd is the base initramfs in the directory (zstd cpio).
	FileBaseInitrd = "initrd-base.img"
	// FileInitrd is the served initramfs: base + racklift.
	FileInitrd = "initrd.img"
	// FileShim and FileGRUB are the Secure Boot chain's loaders.
	FileShim = "shimx64.efi"
	FileGRUB = "grubx64.efi"
	// FileInfo is the directory's description (Info, JSON).
	FileInfo = "bundle.json"
)

// FormatVersion is the Info format this racklift reads.
const FormatVersion = 1

// GRUBConfigPaths are the paths on its boot server (TFTP) that the
// signed netboot GRUB with built-in prefix reads its config from, in
// order (see the package doc): for Debian 12's grubnetx64.efi.signed,
// /grub/x86_64-efi/grub.cfg and /grub/grub.cfg.
func GRUBConfigPaths(prefix string) []string {
	return []string{prefix + "/x86_64-efi/grub.cfg", prefix + "/grub.cfg"}
}

// GRUBPrefix reads the built-in prefix of a GRUB EFI image made by
// grub-mkimage: the image's module area holds objects with an 8-byte
// header (type, size; little-endian uint32), type 2 the embedded config
// and type 3 the prefix, a NUL-terminated string. It also checks that
// the embedded config is Debian's netboot one (normal (memdisk)/grub.cfg,
// whose memdisk grub.cfg sources $prefix/x86_64-efi/grub.cfg, else
// $prefix/grub.cfg), so GRUBConfigPaths is right for it.
func GRUBPrefix(data []byte) (string, error) {
	const cfg = "normal (memdisk)/grub.cfg"
	i := bytes.Index(data, []byte(cfg))
	if i < 0 {
		return "", errors.New("no embedded config \"" + cfg + "\": not Debian's netboot GRUB")
	}
	if !bytes.Contains(data, []byte("source $prefix/x86_64-efi/grub.cfg")) || !bytes.Contains(data, []byte("source $prefix/grub.cfg")) {
		return "", errors.New("the memdisk grub.cfg no longer sources $prefix/x86_64-efi/grub.cfg and $prefix/grub.cfg")
	}
	for j := i + len(cfg); j+8 <= len(data) && j < i+len(cfg)+64; j++ {
		if data[j] != 3 || data[j+1] != 0 || data[j+2] != 0 || data[j+3] != 0 {
			continue
		}
		size := int(data[j+4]) | int(data[j+5])<<8 | int(data[j+6])<<16 | int(data[j+7])<<24
		if size < 9 || j+size > len(data) {
			continue
		}
		p := data[j+8 : j+size]
		if k := bytes.IndexByte(p, 0); k > 0 && p[0] == '/' {
			return string(p[:k]), nil
		}
	}
	return "", errors.New("no prefix object after the embedded config")
}

// Info describes an agent directory (FileInfo).
type Info struct {
	Format int `json:"format"`
	// KernelRelease is the kernel's `uname -r` (6.1.0-57-amd64).
	KernelRelease string `json:"kernel_release"`
	// Packages are the Debian packages used, name -> version.
	Packages map[string]string `json:"packages"`
	// Files are the directory's files, name -> size and SHA-256.
	Files map[string]File `json:"files"`
	// Modules are the kernel modules in the initramfs, in load order;
	// MissingModules those wanted that this kernel does not have.
	Modules        []string `json:"modules"`
	MissingModules []string `json:"missing_modules,omitempty"`
	// Signed lists the files that carry an Authenticode signature (the
	// kernel, shim and GRUB must).
	Signed []string `json:"signed"`
	// GRUBPrefix is the signed GRUB's built-in prefix ("/grub"; see
	// GRUBConfigPaths).
	GRUBPrefix string `json:"grub_prefix"`
	// Built is when the directory was built; BuildKey identifies its
	// inputs (package files, scripts, module list), so an unchanged
	// directory is not rebuilt.
	Built    time.Time `json:"built"`
	BuildKey string    `json:"build_key"`
}

// File is one file of the directory.
type File struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Bundle is a loaded agent directory, ready to serve.
type Bundle struct {
	dir     string
	info    Info
	files   map[string][]byte
	modTime time.Time
	// Racklift is the SHA-256 of the appended racklift binary.
	racklift string
}

// Load reads the agent directory dir, checks every file against its
// bundle.json (size, SHA-256, signatures), and builds the served initrd:
// the base initramfs, then a zstd-compressed cpio archive holding the
// racklift binary at self ("" means os.Executable()) as /bin/racklift.
// It is built once here and kept in memory.
func Load(dir, self string) (*Bundle, error) {
	ib, err := os.ReadFile(filepath.Join(dir, FileInfo))
	if err != nil {
		return nil, fmt.Errorf("agent directory %s: %w (build it with `make agent`)", dir, err)
	}
	var info Info
	if err := json.Unmarshal(ib, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, FileInfo), err)
	}
	if info.Format != FormatVersion {
		return nil, fmt.Errorf("%s: format %d, this racklift reads %d (rebuild with `make agent`)", filepath.Join(dir, FileInfo), info.Format, FormatVersion)
	}
	b := &Bundle{dir: dir, info: info, files: map[string][]byte{}}
	for _, name := range []string{FileKernel, FileBaseInitrd, FileShim, FileGRUB} {
		want, ok := info.Files[name]
		if !ok {
			return nil, fmt.Errorf("%s does not list %s", filepath.Join(dir, FileInfo), name)
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("agent directory: %w", err)
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != want.Size || hex.EncodeToString(sum[:]) != want.SHA256 {
			return nil, fmt.Errorf("%s: size %d SHA-256 %x, %s says %d %s (a partial copy? rebuild with `make agent`)", filepath.Join(dir, name), len(data), sum, FileInfo, want.Size, want.SHA256)
		}
		b.files[name] = data
	}
	for _, name := range []string{FileKernel, FileShim, FileGRUB} {
		if ok, err := Signed(b.files[name]); err != nil || !ok {
			return nil, fmt.Errorf("%s is not a signed EFI binary (%v): Secure Boot would refuse it", filepath.Join(dir, name), err)
		}
	}
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the racklift binary: %w", err)
		}
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		return nil, fmt.Errorf("read the racklift binary to append to the agent initrd: %w", err)
	}
	if st, err := os.Stat(self); err == nil {
		b.modTime = st.ModTime()
	}
	initrd, err := AppendBinary(b.files[FileBaseInitrd], bin)
	if err != nil {
		return nil, err
	}
	b.files[FileInitrd] = initrd
	delete(b.files, FileBaseInitrd)
	sum := sha256.Sum256(bin)
	b.racklift = hex.EncodeToString(sum[:])
	return b, nil
}

// AppendBinary returns base followed by a zstd-compressed newc cpio
// archive holding bin as /bin/racklift (mode 0755). The kernel unpacks
// concatenated archives in order; zero padding between them is skipped.
func AppendBinary(base, bin []byte) ([]byte, error) {
	var arch bytes.Buffer
	cw := initramfs.NewWriter(&arch)
	cw.File("bin/racklift", 0o755, bin)
	if err := cw.Close(); err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(base)+4+arch.Len()/2)
	out = append(out, base...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	out = enc.EncodeAll(arch.Bytes(), out)
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// Info returns the directory's description.
func (b *Bundle) Info() Info { return b.info }

// Dir is the agent directory.
func (b *Bundle) Dir() string { return b.dir }

// RackliftSHA256 is the SHA-256 of the racklift binary in the initrd.
func (b *Bundle) RackliftSHA256() string { return b.racklift }

// Size returns the size of a served file (0 if there is none).
func (b *Bundle) Size(name string) int64 { return int64(len(b.files[name])) }

// FS returns the served files (FileKernel, FileInitrd, FileShim,
// FileGRUB) as an fs.FS whose files are io.ReadSeekers, for
// http.ServeContent and TFTP (tsize from Stat).
func (b *Bundle) FS() fs.FS { return memFS{files: b.files, modTime: b.modTime} }

type memFS struct {
	files   map[string][]byte
	modTime time.Time
}

func (m memFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &memDir{m: m}, nil
	}
	data, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{Reader: bytes.NewReader(data), info: memInfo{name: path.Base(name), size: int64(len(data)), mod: m.modTime}}, nil
}

type memFile struct {
	*bytes.Reader
	info memInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

type memDir struct{ m memFS }

func (d *memDir) Stat() (fs.FileInfo, error) {
	return memInfo{name: ".", dir: true, mod: d.m.modTime}, nil
}
func (d *memDir) Read([]byte) (int, error) { return 0, io.EOF }
func (d *memDir) Close() error             { return nil }

type memInfo struct {
	name string
	size int64
	mod  time.Time
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

// Signed reports whether data is a PE/COFF image with an Authenticode
// signature: its optional header's Certificate Table (data directory 4,
// PE/COFF specification "The Attribute Certificate Table") points at a
// WIN_CERTIFICATE of type WIN_CERT_TYPE_PKCS_SIGNED_DATA (2).
func Signed(data []byte) (bool, error) {
	le := func(off, n int) (uint64, error) {
		if off < 0 || off+n > len(data) {
			return 0, errors.New("truncated PE image")
		}
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(data[off+i])
		}
		return v, nil
	}
	if len(data) < 0x40 || data[0] != 'M' || data[1] != 'Z' {
		return false, errors.New("not a PE image (no MZ header)")
	}
	peOff, _ := le(0x3c, 4)
	if sig, err := le(int(peOff), 4); err != nil || sig != 0x00004550 {
		return false, errors.New("not a PE image (no PE signature)")
	}
	opt := int(peOff) + 24
	magic, err := le(opt, 2)
	if err != nil {
		return false, err
	}
	var dirs int
	switch magic {
	case 0x10b: // PE32
		dirs = opt + 96
	case 0x20b: // PE32+
		dirs = opt + 112
	default:
		return false, fmt.Errorf("PE optional header magic %#x", magic)
	}
	n, err := le(dirs-4, 4) // NumberOfRvaAndSizes
	if err != nil || n < 5 {
		return false, err
	}
	certOff, err := le(dirs+4*8, 4)
	if err != nil {
		return false, err
	}
	certSize, err := le(dirs+4*8+4, 4)
	if err != nil || certSize == 0 {
		return false, err
	}
	length, err := le(int(certOff), 4)
	if err != nil {
		return false, err
	}
	typ, err := le(int(certOff)+6, 2)
	if err != nil {
		return false, err
	}
	return length > 8 && length <= certSize && typ == 2, nil
}
