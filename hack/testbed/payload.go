//go:build linux

package testbed

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed" // init.sh and udhcpc.sh
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/agent/initramfs"
)

// The initramfs scripts, packed by BuildPayload.
var (
	//go:embed init.sh
	initScript []byte
	//go:embed udhcpc.sh
	udhcpcScript []byte
)

// KernelPackage is the Debian meta-package whose kernel the payload boots.
const KernelPackage = "linux-image-amd64"

// PayloadModules are the kernel modules the initramfs loads (their
// dependencies are added from the modules' own "depends=" modinfo).
var PayloadModules = []string{"virtio_pci", "virtio_net", "virtio_blk", "e1000"}

// BusyboxPath is the static busybox packed into the initramfs
// (Debian busybox-static).
var BusyboxPath = "/bin/busybox"

// Serial console markers /init prints (one line each, "RACKLIFT-TESTBED: ...").
const (
	MarkerPrefix    = "RACKLIFT-TESTBED: "
	MarkerInit      = MarkerPrefix + "init ok"
	MarkerDHCP      = MarkerPrefix + "dhcp ok"
	MarkerConfig    = MarkerPrefix + "config ok"
	MarkerPre       = MarkerPrefix + "pre ok"
	MarkerProgress  = MarkerPrefix + "progress ok"
	MarkerDisk      = MarkerPrefix + "disk ok"
	MarkerInstalled = MarkerPrefix + "installed ok"
	MarkerFirstBoot = MarkerPrefix + "first-boot ok"
	MarkerReady     = MarkerPrefix + "ready ok"
	MarkerError     = MarkerPrefix + "error"
	MarkerDone      = MarkerPrefix + "done"
)

// DiskMarker returns what an install-mode payload writes at the start of
// /dev/vda for node (NUL-padded to 512 bytes).
func DiskMarker(node string) string { return "racklift-installed " + node + "\n" }

// DefaultCacheDir is where downloaded packages and built payloads are kept
// between runs: $RACKLIFT_TESTBED_CACHE, else hack/.cache/testbed of the
// module containing the working directory (gitignored).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("RACKLIFT_TESTBED_CACHE"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "hack", ".cache", "testbed"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testbed: no go.mod above the working directory; set RACKLIFT_TESTBED_CACHE")
		}
		dir = parent
	}
}

// BuildPayload returns the paths of a Debian kernel and of the test-bed
// initramfs (see the package doc for what its /init does), building them
// in cacheDir ("" means DefaultCacheDir) on first use and reusing them
// afterwards. The kernel package is fetched with `apt-get download` and
// unpacked with `dpkg-deb -x` in the cache; the host's /boot is never read.
// It fails the test if anything is missing.
func BuildPayload(t testing.TB, cacheDir string) (kernel, initrd string) {
	t.Helper()
	k, i, err := buildPayload(context.Background(), cacheDir, t.Logf)
	if err != nil {
		t.Fatalf("testbed payload: %v", err)
	}
	return k, i
}

func buildPayload(ctx context.Context, cacheDir string, logf func(string, ...any)) (kernel, initrd string, err error) {
	if cacheDir == "" {
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return "", "", err
		}
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", err
	}
	unlock, err := lockFile(filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return "", "", err
	}
	defer unlock()

	deb, err := initramfs.Fetcher{Dir: cacheDir, Logf: logf}.KernelDeb(ctx, KernelPackage)
	if err != nil {
		return "", "", err
	}
	busybox, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return "", "", fmt.Errorf("busybox-static: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "v1\n%s\n%s\n", filepath.Base(deb), strings.Join(PayloadModules, ","))
	h.Write(initScript)
	h.Write(udhcpcScript)
	h.Write(busybox)
	key := hex.EncodeToString(h.Sum(nil))[:16]
	ver := strings.TrimSuffix(filepath.Base(deb), ".deb")
	kernel = filepath.Join(cacheDir, "vmlinuz-"+ver)
	initrd = filepath.Join(cacheDir, "initrd-"+key+".gz")
	if fileExists(kernel) && fileExists(initrd) {
		return kernel, initrd, nil
	}

	start := time.Now()
	pruneCache(cacheDir)
	tmp, err := os.MkdirTemp(cacheDir, "unpack-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	if err := initramfs.Unpack(ctx, deb, tmp); err != nil {
		return "", "", err
	}
	vmlinuz, err := filepath.Glob(filepath.Join(tmp, "boot", "vmlinuz-*"))
	if err != nil || len(vmlinuz) != 1 {
		return "", "", fmt.Errorf("%s: want one boot/vmlinuz-*, got %v", deb, vmlinuz)
	}
	release := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	modDir := filepath.Join(tmp, "lib", "modules", release)
	mods, err := initramfs.ResolveModules(modDir, PayloadModules, initramfs.ResolveOptions{})
	if err != nil {
		return "", "", err
	}

	var raw bytes.Buffer
	cw := initramfs.NewWriter(&raw)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "etc", "lib/modules"} {
		cw.Dir(d)
	}
	cw.CharDev("dev/console", 0o600, 5, 1)
	cw.CharDev("dev/null", 0o666, 1, 3)
	cw.File("bin/busybox", 0o755, busybox)
	cw.Symlink("bin/sh", "busybox")
	cw.File("init", 0o755, initScript)
	cw.File("etc/udhcpc.script", 0o755, udhcpcScript)
	var order []string
	for _, m := range mods.Load {
		data, err := os.ReadFile(m.Path)
		if err != nil {
			return "", "", err
		}
		name := filepath.Base(m.Path)
		cw.File("lib/modules/"+name, 0o644, data)
		order = append(order, name)
	}
	cw.File("etc/racklift-modules", 0o644, []byte(strings.Join(order, "\n")+"\n"))
	cw.File("etc/racklift-kernel", 0o644, []byte(release+"\n"))
	if err := cw.Close(); err != nil {
		return "", "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return "", "", err
	}
	if err := zw.Close(); err != nil {
		return "", "", err
	}
	if err := copyFile(vmlinuz[0], kernel); err != nil {
		return "", "", err
	}
	if err := writeAtomic(initrd, gz.Bytes()); err != nil {
		return "", "", err
	}
	logf("testbed: built payload in %v: kernel %s, initramfs %s (%d KiB, modules %s)",
		time.Since(start).Round(time.Millisecond), filepath.Base(kernel), filepath.Base(initrd), gz.Len()>>10, strings.Join(order, " "))
	return kernel, initrd, nil
}

// pruneCache removes unpack directories left by a killed run and
// initramfs images not used for a day (older code versions). Called with
// the cache lock held.
func pruneCache(cacheDir string) {
	old, _ := filepath.Glob(filepath.Join(cacheDir, "unpack-*"))
	imgs, _ := filepath.Glob(filepath.Join(cacheDir, "initrd-*.gz"))
	for _, p := range imgs {
		if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > 24*time.Hour {
			old = append(old, p)
		}
	}
	for _, p := range old {
		_ = os.RemoveAll(p)
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Size() > 0
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeAtomic(dst, b)
}

func writeAtomic(dst string, b []byte) error {
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// PayloadArgs are the test payload's kernel arguments. The lead's racklift
// test profile renders the same names from its kernel-args template, e.g.
//
//	racklift.config={{.ConfigURL}} racklift.callback={{.ServerURL}}/phone-home/{{.MAC}}
//	racklift.token={{.Token}} racklift.node={{.Node}} racklift.mode=install
type PayloadArgs struct {
	// Config is the URL of the node's config (racklift.config=); /init
	// fetches it and checks that it contains Node.
	Config string
	// Callback is the callback base URL (racklift.callback=); /init POSTs
	// JSON {"percent":N,"detail":"..."} to Callback + "/" + phase with header
	// "X-Racklift-Token: Token" (busybox 1.35 wget supports --header).
	Callback string
	// Token is the callback token (racklift.token=).
	Token string
	// Node is the node name (racklift.node=).
	Node string
	// Mode is "install" (default: phases pre, progress 50, installed and
	// the disk marker) or "check" (reads the disk marker, then phases
	// first-boot and ready) (racklift.mode=).
	Mode string
	// Reboot makes /init end with `reboot -f` instead of `poweroff -f`
	// (racklift.reboot=1).
	Reboot bool
	// MAC selects the NIC to configure (racklift.mac=); empty means the
	// first one. iPXE's BOOTIF=01-${netX/mac:hexhyp} works too.
	MAC string
	// Console is the kernel console (default "ttyS0,115200").
	Console string
	// Extra is appended verbatim.
	Extra string
}

// String renders the kernel command line.
func (a PayloadArgs) String() string {
	console := a.Console
	if console == "" {
		console = "ttyS0,115200"
	}
	mode := a.Mode
	if mode == "" {
		mode = "install"
	}
	parts := []string{"console=" + console, "panic=-1"}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("racklift.config", a.Config)
	add("racklift.callback", a.Callback)
	add("racklift.token", a.Token)
	add("racklift.node", a.Node)
	add("racklift.mode", mode)
	if a.Reboot {
		add("racklift.reboot", "1")
	}
	add("racklift.mac", a.MAC)
	if a.Extra != "" {
		parts = append(parts, a.Extra)
	}
	return strings.Join(parts, " ")
}

// IPXEScript returns an iPXE script that boots kernelURL and initrdURL
// with args. "initrd=" names the initrd for EFI kernels' own loader.
func IPXEScript(kernelURL, initrdURL, args string) string {
	base := initrdURL[strings.LastIndex(initrdURL, "/")+1:]
	return "#!ipxe\n" +
		"echo racklift-testbed: iPXE ${ip} on ${mac}\n" +
		"kernel " + kernelURL + " initrd=" + base + " " + args + "\n" +
		"initrd " + initrdURL + "\n" +
		"boot\n"
}
