//go:build integration

package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/racklift/racklift/hack/testbed"
)

// Real peers for the formats: qcow2 files written by QEMU's own qemu-img
// (qemu-utils), FAT file systems made by mkfs.vfat (dosfstools) and filled
// by mtools.

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testbed.SkipOrFail(t, "%s not installed (hack/install-deps.sh)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestQemuImgQcow2(t *testing.T) {
	need(t, "qemu-img")
	raw := makeTestImage(t, testImageOpts{debianESP: true, size: 32 << 20})
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	variants := map[string][]string{
		"v3":            {"-O", "qcow2"},
		"v3-compressed": {"-O", "qcow2", "-c"},
		"v2-compat":     {"-O", "qcow2", "-o", "compat=0.10"},
		"v2-compressed": {"-O", "qcow2", "-c", "-o", "compat=0.10"},
		"cluster-4k":    {"-O", "qcow2", "-c", "-o", "cluster_size=4096"},
		"cluster-2m":    {"-O", "qcow2", "-o", "cluster_size=2M"},
		"zstd":          {"-O", "qcow2", "-c", "-o", "compression_type=zstd"},
	}
	s := newStore(t)
	for name, args := range variants {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name+".qcow2")
			run(t, "qemu-img", append(append([]string{"convert"}, args...), rawPath, out)...)
			m, err := s.Import(context.Background(), name, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Source.Format != FormatQcow2 || m.SHA256 != sha(raw) {
				t.Fatalf("format %s sha %s, want the raw image's %s", m.Source.Format, m.SHA256, sha(raw))
			}
			checkRoundTrip(t, s, m, raw)
		})
	}
	t.Run("backing file refused", func(t *testing.T) {
		base := filepath.Join(dir, "v3.qcow2")
		over := filepath.Join(dir, "overlay.qcow2")
		run(t, "qemu-img", "create", "-f", "qcow2", "-F", "qcow2", "-b", base, over)
		_, err := s.Import(context.Background(), "overlay", over, nil)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "backing file") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("encrypted refused", func(t *testing.T) {
		enc := filepath.Join(dir, "enc.qcow2")
		run(t, "qemu-img", "create", "-f", "qcow2", "--object", "secret,id=s0,data=racklift",
			"-o", "encrypt.format=luks,encrypt.key-secret=s0", enc, "16M")
		_, err := s.Import(context.Background(), "enc", enc, nil)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "encrypted (LUKS)") {
			t.Fatalf("err %v", err)
		}
	})
}

// ESPs made by mkfs.vfat (FAT12, FAT16, FAT32) and mtools, which writes
// long names for lower-case paths.
func TestMkfsVfatESP(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "mmd")
	for _, c := range []struct {
		fat  string
		kib  int
		want string
	}{{"12", 4096, "12"}, {"16", 32768, "16"}, {"32", 65536, "32"}} {
		t.Run("FAT"+c.fat, func(t *testing.T) {
			dir := t.TempDir()
			esp := filepath.Join(dir, "esp.img")
			run(t, "mkfs.vfat", "-F", c.fat, "-C", esp, strconv.Itoa(c.kib))
			loader := filepath.Join(dir, "shimx64.efi")
			if err := os.WriteFile(loader, append([]byte("MZ"), testData(3, 300<<10)...), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("MTOOLS_SKIP_CHECK", "1")
			run(t, "mmd", "-i", esp, "::/EFI", "::/EFI/debian", "::/EFI/BOOT", "::/EFI/rocky")
			run(t, "mcopy", "-i", esp, loader, "::/EFI/debian/shimx64.efi")
			run(t, "mcopy", "-i", esp, loader, "::/EFI/rocky/shimx64.efi")
			run(t, "mcopy", "-i", esp, loader, "::/EFI/BOOT/BOOTX64.EFI")
			run(t, "mcopy", "-i", esp, loader, "::/EFI/BOOT/fbx64.efi")
			data, err := os.ReadFile(esp)
			if err != nil {
				t.Fatal(err)
			}
			f, err := openFAT(bytes.NewReader(data), int64(len(data)))
			if err != nil || strconv.Itoa(f.kind) != c.want {
				t.Fatalf("FAT%d, want FAT%s: %v", f.kind, c.want, err)
			}
			sectors := int64(len(data) / 512)
			img := makeGPT(t, (4096+sectors+2048)*512, []byte{0xeb}, []gptPart{
				{typ: GPTTypeESP, name: "EFI", start: 2048, end: 2048 + sectors - 1, data: data},
				{typ: GPTTypeLinuxData, name: "root", start: 2048 + sectors, end: 2048 + sectors + 1023, data: testData(4, 8192)},
			})
			s := newStore(t)
			m, err := s.Import(context.Background(), "esp", writeTemp(t, "esp.raw", img), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := `\EFI\BOOT\BOOTX64.EFI \EFI\BOOT\fbx64.efi \EFI\debian\shimx64.efi \EFI\rocky\shimx64.efi`
			if m.EFILoader != `\EFI\debian\shimx64.efi` || strings.Join(m.EFIFiles, " ") != want {
				t.Fatalf("loader %q files %q", m.EFILoader, m.EFIFiles)
			}
			// Without Debian's shim, another vendor's comes next.
			run(t, "mdel", "-i", esp, "::/EFI/debian/shimx64.efi")
			data, _ = os.ReadFile(esp)
			copy(img[2048*512:], data)
			m, err = s.Import(context.Background(), "esp", writeTemp(t, "esp2.raw", img), nil)
			if err != nil || m.EFILoader != `\EFI\rocky\shimx64.efi` {
				t.Fatalf("loader %q: %v", m.EFILoader, err)
			}
		})
	}
}
