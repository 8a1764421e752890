// Package agentbuild builds racklift's deploy agent directory (default
// out/agent; `make agent`, hack/agent/build.sh) from Debian packages
// fetched through this machine's apt configuration and unpacked with
// dpkg-deb -x (nothing is installed; the host's /boot is never read):
//
//	vmlinuz          the kernel of linux-image-amd64 (Debian-signed)
//	initrd-base.img  zstd-compressed newc cpio: /init (init.sh), busybox
//	                 (busybox-static), the modules of AgentModules that
//	                 the kernel has, with their dependencies, efibootmgr
//	                 with its shared libraries (efibootmgr, libefiboot1,
//	                 libefivar1, libpopt0, libc6)
//	shimx64.efi      shim-signed's shimx64.efi.signed
//	grubx64.efi      grub-efi-amd64-signed's grubnetx64.efi.signed
//	bundle.json      provision/agent/bundle.Info: versions, sizes,
//	                 SHA-256s, modules
//	licenses/        each package's copyright file
//
// racklift serves it through provision/agent/bundle, which appends its
// own binary to the initrd.
package agentbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed" // init.sh, udhcpc.sh
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/racklift/racklift/provision/agent/bundle"
	"github.com/racklift/racklift/provision/agent/initramfs"
)

var (
	//go:embed init.sh
	initScript []byte
	//go:embed udhcpc.sh
	udhcpcScript []byte
)

// KernelPackage is the Debian meta-package whose kernel the agent boots.
const KernelPackage = "linux-image-amd64"

// Packages are the other Debian packages the directory is built from.
var Packages = []string{
	"busybox-static",
	"efibootmgr", "libefiboot1", "libefivar1", "libpopt0", "libc6",
	"shim-signed", "grub-efi-amd64-signed",
}

// AgentModules are the kernel modules the agent loads (those Debian's
// kernel has as modules; built-in ones and ones it lacks are skipped),
// in load order: buses and libraries first, then NICs, disk controllers
// and file systems.
var AgentModules = []string{
	// virtio and checksum drivers ext4/btrfs ask the crypto API for
	"virtio_pci", "crc32c_generic", "crc32c_intel",
	// NICs of common servers
	"virtio_net", "e1000", "e1000e", "igb", "igc", "ixgbe", "i40e", "ice",
	"bnxt_en", "bnx2", "bnx2x", "tg3", "mlx4_en", "mlx5_core", "qede",
	"be2net", "enic", "sfc", "r8169", "vmxnet3",
	// disk controllers
	"virtio_blk", "virtio_scsi", "nvme", "ahci", "ata_piix", "sd_mod",
	"megaraid_sas", "mpt3sas", "mpi3mr", "smartpqi", "hpsa", "aacraid",
	"mptsas", "isci", "vmw_pvscsi",
	// file systems of installed roots and ESPs, and efivarfs
	"ext4", "xfs", "btrfs", "vfat", "nls_cp437", "nls_iso8859_1", "nls_utf8",
	"efivarfs",
}

// Options for Build.
type Options struct {
	// Out is the agent directory to write (replaced as a whole).
	Out string
	// Cache holds downloaded packages between runs.
	Cache string
	// Logf receives progress lines.
	Logf func(format string, args ...any)
}

// Build fetches the packages, builds the directory in a temporary
// sibling of Out and renames it into place, so Out is always whole.
func Build(ctx context.Context, opt Options) (bundle.Info, error) {
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	start := time.Now()
	f := initramfs.Fetcher{Dir: opt.Cache, Logf: logf}
	debs := map[string]string{}
	kdeb, err := f.KernelDeb(ctx, KernelPackage)
	if err != nil {
		return bundle.Info{}, err
	}
	debs["kernel"] = kdeb
	for _, p := range Packages {
		d, err := f.Download(ctx, p)
		if err != nil {
			return bundle.Info{}, err
		}
		debs[p] = d
	}
	key := buildKey(debs)
	if info, err := current(opt.Out, key); err == nil {
		logf("agent: %s is up to date (kernel %s)", opt.Out, info.KernelRelease)
		return info, nil
	}
	if err := os.MkdirAll(filepath.Dir(opt.Out), 0o755); err != nil {
		return bundle.Info{}, err
	}
	work, err := os.MkdirTemp(filepath.Dir(opt.Out), ".agent-build-")
	if err != nil {
		return bundle.Info{}, err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	info := bundle.Info{Format: bundle.FormatVersion, Packages: map[string]string{}, Files: map[string]bundle.File{}}
	var names []string
	for k := range debs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := initramfs.Unpack(ctx, debs[k], root); err != nil {
			return bundle.Info{}, err
		}
		name, ver, err := initramfs.DebVersion(ctx, debs[k])
		if err != nil {
			return bundle.Info{}, err
		}
		info.Packages[name] = ver
	}
	out := filepath.Join(work, "out")
	if err := os.MkdirAll(filepath.Join(out, "licenses"), 0o755); err != nil {
		return bundle.Info{}, err
	}
	for name := range info.Packages {
		if b, err := os.ReadFile(filepath.Join(root, "usr/share/doc", name, "copyright")); err == nil {
			if err := os.WriteFile(filepath.Join(out, "licenses", name+".copyright"), b, 0o644); err != nil {
				return bundle.Info{}, err
			}
		}
	}

	vmlinuz, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return bundle.Info{}, fmt.Errorf("%s: want one boot/vmlinuz-*, got %v", kdeb, vmlinuz)
	}
	info.KernelRelease = strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	copies := map[string]string{
		bundle.FileKernel: vmlinuz[0],
		bundle.FileShim:   filepath.Join(root, "usr/lib/shim/shimx64.efi.signed"),
		bundle.FileGRUB:   filepath.Join(root, "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"),
	}
	for dst, src := range copies {
		b, err := os.ReadFile(src)
		if err != nil {
			return bundle.Info{}, err
		}
		ok, err := bundle.Signed(b)
		if err != nil || !ok {
			return bundle.Info{}, fmt.Errorf("%s is not signed (%v)", src, err)
		}
		info.Signed = append(info.Signed, dst)
		if err := os.WriteFile(filepath.Join(out, dst), b, 0o644); err != nil {
			return bundle.Info{}, err
		}
	}
	sort.Strings(info.Signed)
	grub, _ := os.ReadFile(copies[bundle.FileGRUB])
	if info.GRUBPrefix, err = bundle.GRUBPrefix(grub); err != nil {
		return bundle.Info{}, fmt.Errorf("%s: %w", copies[bundle.FileGRUB], err)
	}

	initrd, mods, err := baseInitrd(root, info.KernelRelease)
	if err != nil {
		return bundle.Info{}, err
	}
	for _, m := range mods.Load {
		info.Modules = append(info.Modules, m.Name)
	}
	info.MissingModules = mods.Missing
	if err := os.WriteFile(filepath.Join(out, bundle.FileBaseInitrd), initrd, 0o644); err != nil {
		return bundle.Info{}, err
	}
	for _, name := range []string{bundle.FileKernel, bundle.FileBaseInitrd, bundle.FileShim, bundle.FileGRUB} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			return bundle.Info{}, err
		}
		s := sha256.Sum256(b)
		info.Files[name] = bundle.File{Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])}
	}
	info.Built = time.Now().UTC().Truncate(time.Second)
	info.BuildKey = key
	ib, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(out, bundle.FileInfo), append(ib, '\n'), 0o644); err != nil {
		return bundle.Info{}, err
	}
	old := opt.Out + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(opt.Out, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return bundle.Info{}, err
	}
	if err := os.Rename(out, opt.Out); err != nil {
		return bundle.Info{}, err
	}
	_ = os.RemoveAll(old)
	logf("agent: built %s in %v: kernel %s, base initrd %d KiB, %d modules (not in this kernel: %s)",
		opt.Out, time.Since(start).Round(time.Millisecond), info.KernelRelease, info.Files[bundle.FileBaseInitrd].Size>>10, len(info.Modules), strings.Join(info.MissingModules, " "))
	return info, nil
}

// baseInitrd packs the base initramfs from the unpacked packages in root.
func baseInitrd(root, release string) ([]byte, initramfs.Modules, error) {
	mods, err := initramfs.ResolveModules(filepath.Join(root, "lib/modules", release), AgentModules, initramfs.ResolveOptions{SkipMissing: true})
	if err != nil {
		return nil, mods, err
	}
	var raw bytes.Buffer
	cw := initramfs.NewWriter(&raw)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "mnt", "etc/racklift", "lib/modules", "lib64"} {
		cw.Dir(d)
	}
	cw.CharDev("dev/console", 0o600, 5, 1)
	cw.CharDev("dev/null", 0o666, 1, 3)
	busybox, err := os.ReadFile(filepath.Join(root, "bin/busybox"))
	if err != nil {
		return nil, mods, fmt.Errorf("busybox-static: %w", err)
	}
	cw.File("bin/busybox", 0o755, busybox)
	cw.Symlink("bin/sh", "busybox")
	cw.File("init", 0o755, initScript)
	cw.File("etc/racklift/udhcpc.script", 0o755, udhcpcScript)
	cw.File("etc/racklift/kernel", 0o644, []byte(release+"\n"))
	var order []string
	for _, m := range mods.Load {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			return nil, mods, err
		}
		name := filepath.Base(m.Path)
		cw.File("lib/modules/"+name, 0o644, data)
		order = append(order, name)
	}
	cw.File("etc/racklift/modules", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	efibootmgr, err := os.ReadFile(filepath.Join(root, "bin/efibootmgr"))
	if err != nil {
		return nil, mods, fmt.Errorf("efibootmgr: %w", err)
	}
	cw.File("usr/sbin/efibootmgr", 0o755, efibootmgr)
	libs, err := initramfs.SharedLibs(root, []string{"bin/efibootmgr"})
	if err != nil {
		return nil, mods, err
	}
	for _, l := range libs {
		b, err := os.ReadFile(l.Src)
		if err != nil {
			return nil, mods, err
		}
		cw.File(l.Name, 0o755, b)
	}
	if err := cw.Close(); err != nil {
		return nil, mods, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return nil, mods, err
	}
	out := enc.EncodeAll(raw.Bytes(), nil)
	return out, mods, enc.Close()
}

// buildVersion changes when Build's output changes for the same inputs.
const buildVersion = "1"

// buildKey identifies a build's inputs.
func buildKey(debs map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "v%s\n", buildVersion)
	var names []string
	for k, v := range debs {
		names = append(names, k+"="+filepath.Base(v))
	}
	sort.Strings(names)
	fmt.Fprintf(h, "%s\n%s\n", strings.Join(names, "\n"), strings.Join(AgentModules, ","))
	h.Write(initScript)
	h.Write(udhcpcScript)
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// current returns the Info of dir when it was built with key and its
// files are intact.
func current(dir, key string) (bundle.Info, error) {
	b, err := os.ReadFile(filepath.Join(dir, bundle.FileInfo))
	if err != nil {
		return bundle.Info{}, err
	}
	var info bundle.Info
	if err := json.Unmarshal(b, &info); err != nil {
		return bundle.Info{}, err
	}
	if info.BuildKey != key || info.Format != bundle.FormatVersion {
		return bundle.Info{}, errors.New("stale")
	}
	for name, f := range info.Files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return bundle.Info{}, err
		}
		s := sha256.Sum256(data)
		if int64(len(data)) != f.Size || hex.EncodeToString(s[:]) != f.SHA256 {
			return bundle.Info{}, errors.New("changed")
		}
	}
	return info, nil
}
