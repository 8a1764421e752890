package initramfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Fetcher downloads Debian packages into a cache directory with the
// machine's own apt configuration (`apt-get download`: its sources, proxy
// and keys; nothing is hard-coded). A package is downloaded once per
// version: the file apt-get writes (NAME_VERSION_ARCH.deb, ':' written as
// "%3a") is reused while apt's candidate version stays the same.
type Fetcher struct {
	// Dir is the cache directory (created if missing).
	Dir string
	// Logf receives one line per download; nil discards.
	Logf func(format string, args ...any)
}

func (f Fetcher) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}

// candidate returns the version and architecture apt would install.
func candidate(ctx context.Context, pkg string) (version, arch string, err error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg).Output()
	if err != nil {
		return "", "", fmt.Errorf("apt-cache show %s: %w", pkg, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" && version != "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			version = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Architecture: "); ok {
			arch = strings.TrimSpace(v)
		}
	}
	if version == "" || arch == "" {
		return "", "", fmt.Errorf("apt-cache show %s: no candidate version (run apt-get update?)", pkg)
	}
	return version, arch, nil
}

// debFileName is the name apt-get download gives a package's file.
func debFileName(pkg, version, arch string) string {
	return pkg + "_" + strings.ReplaceAll(version, ":", "%3a") + "_" + arch + ".deb"
}

// Download returns the path of pkg's .deb in Dir for the version apt
// would install, downloading it if it is not cached. When apt cannot
// resolve the package (offline, no package lists), the newest cached
// file of pkg is used, if any.
func (f Fetcher) Download(ctx context.Context, pkg string) (string, error) {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return "", err
	}
	version, arch, err := candidate(ctx, pkg)
	if err != nil {
		cached, _ := filepath.Glob(filepath.Join(f.Dir, pkg+"_*.deb"))
		sort.Strings(cached)
		if len(cached) > 0 {
			f.logf("initramfs: %v; using the cached %s", err, filepath.Base(cached[len(cached)-1]))
			return cached[len(cached)-1], nil
		}
		return "", fmt.Errorf("%w, and nothing cached in %s", err, f.Dir)
	}
	want := filepath.Join(f.Dir, debFileName(pkg, version, arch))
	if fileExists(want) {
		return want, nil
	}
	f.logf("initramfs: apt-get download %s=%s into %s", pkg, version, f.Dir)
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg+"="+version)
	cmd.Dir = f.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s=%s: %w: %s", pkg, version, err, bytes.TrimSpace(out))
	}
	if !fileExists(want) {
		return "", fmt.Errorf("apt-get download %s=%s left no %s in %s", pkg, version, filepath.Base(want), f.Dir)
	}
	return want, nil
}

// KernelDeb returns the .deb of the kernel the meta-package meta (e.g.
// "linux-image-amd64") currently depends on, e.g.
// linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb, downloading it if
// needed. Offline, the newest cached linux-image-*.deb is used.
func (f Fetcher) KernelDeb(ctx context.Context, meta string) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", meta).Output()
	pkg := ""
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: "); ok && strings.HasPrefix(v, "linux-image-") {
				pkg = v
				break
			}
		}
	}
	if pkg == "" {
		cached, _ := filepath.Glob(filepath.Join(f.Dir, "linux-image-*.deb"))
		sort.Strings(cached)
		if len(cached) > 0 {
			return cached[len(cached)-1], nil
		}
		return "", fmt.Errorf("cannot resolve %s with apt-cache (%v) and nothing cached in %s", meta, err, f.Dir)
	}
	return f.Download(ctx, pkg)
}

// Unpack extracts a .deb's files into dir with `dpkg-deb -x`.
func Unpack(ctx context.Context, deb, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, bytes.TrimSpace(out))
	}
	return nil
}

// DebVersion returns a .deb's package name and version (`dpkg-deb -f`).
func DebVersion(ctx context.Context, deb string) (name, version string, err error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", deb, "Package", "Version").Output()
	if err != nil {
		return "", "", fmt.Errorf("dpkg-deb -f %s: %w", deb, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Package: "); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			version = strings.TrimSpace(v)
		}
	}
	if name == "" || version == "" {
		return "", "", fmt.Errorf("dpkg-deb -f %s: no Package/Version", deb)
	}
	return name, version, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Size() > 0
}
