package initramfs

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// readCPIO parses a newc archive into name -> (mode, data) for tests.
func readCPIO(t *testing.T, b []byte) map[string]struct {
	mode uint32
	data string
} {
	t.Helper()
	out := map[string]struct {
		mode uint32
		data string
	}{}
	for off := 0; ; {
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		hex := func(i int) int {
			var v int
			for _, c := range string(b[off+6+8*i : off+6+8*i+8]) {
				v = v*16 + strings.IndexRune("0123456789abcdef", c)
			}
			return v
		}
		mode, size, nameLen := hex(1), hex(6), hex(11)
		name := string(b[off+110 : off+110+nameLen-1])
		off += 110 + nameLen
		off = (off + 3) &^ 3
		data := string(b[off : off+size])
		off += size
		off = (off + 3) &^ 3
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out[name] = struct {
			mode uint32
			data string
		}{uint32(mode), data}
	}
}

func TestCPIONewc(t *testing.T) {
	var buf bytes.Buffer
	cw := NewWriter(&buf)
	cw.File("/etc/a/b.txt", 0o644, []byte("hello"))
	cw.Symlink("bin/sh", "busybox")
	cw.CharDev("dev/console", 0o600, 5, 1)
	cw.File("bin/racklift", 0o755, []byte("1234"))
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b)%4 != 0 {
		t.Errorf("archive length %d is not 4-aligned", len(b))
	}
	got := readCPIO(t, b)
	if e := got["etc/a/b.txt"]; e.data != "hello" || e.mode != 0o100644 {
		t.Errorf("etc/a/b.txt = %o %q", e.mode, e.data)
	}
	if e := got["bin/sh"]; e.data != "busybox" || e.mode != 0o120777 {
		t.Errorf("bin/sh = %o %q", e.mode, e.data)
	}
	if e := got["etc/a"]; e.mode != 0o040755 {
		t.Errorf("etc/a mode %o", e.mode)
	}

	// Cross-check with GNU cpio, the reference reader.
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio to cross-check with (Debian package cpio)")
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -it: %v: %s", err, out)
	}
	if got, want := strings.Fields(string(out)), []string{"etc", "etc/a", "etc/a/b.txt", "bin", "bin/sh", "dev", "dev/console", "bin/racklift"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cpio -it = %q, want %q", got, want)
	}
	dir := t.TempDir()
	cmd = exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil && os.Geteuid() == 0 {
		t.Fatalf("cpio -id: %v: %s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "etc/a/b.txt")); string(got) != "hello" {
		t.Errorf("extracted %q", got)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin/sh")); l != "busybox" {
		t.Errorf("symlink -> %q", l)
	}
}

// writeKO writes a minimal ELF64 relocatable file with a .modinfo section
// holding the given NUL-separated key=value strings.
func writeKO(t *testing.T, path string, modinfo ...string) {
	t.Helper()
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	le := binary.LittleEndian
	var b bytes.Buffer
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF")
	hdr[4], hdr[5], hdr[6] = 2, 1, 1 // 64-bit, little-endian, version
	le.PutUint16(hdr[16:], 1)        // ET_REL
	le.PutUint16(hdr[18:], 62)       // EM_X86_64
	le.PutUint32(hdr[20:], 1)
	infoOff := 64
	strOff := infoOff + len(info)
	shOff := (strOff + len(shstr) + 7) &^ 7
	le.PutUint64(hdr[40:], uint64(shOff))
	le.PutUint16(hdr[52:], 64) // ehsize
	le.PutUint16(hdr[58:], 64) // shentsize
	le.PutUint16(hdr[60:], 3)  // shnum
	le.PutUint16(hdr[62:], 2)  // shstrndx
	b.Write(hdr)
	b.Write(info)
	b.Write(shstr)
	for b.Len() < shOff {
		b.WriteByte(0)
	}
	sh := func(name, typ uint32, off, size int) {
		s := make([]byte, 64)
		le.PutUint32(s[0:], name)
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], uint64(off))
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		b.Write(s)
	}
	sh(0, 0, 0, 0)
	sh(1, 1, infoOff, len(info))  // .modinfo, PROGBITS
	sh(10, 3, strOff, len(shstr)) // .shstrtab, STRTAB
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveModules(t *testing.T) {
	dir := t.TempDir()
	writeKO(t, filepath.Join(dir, "kernel/drivers/net/virtio_net.ko"), "license=GPL", "depends=net_failover,virtio")
	writeKO(t, filepath.Join(dir, "kernel/drivers/net/net_failover.ko"), "depends=failover")
	writeKO(t, filepath.Join(dir, "kernel/net/core/failover.ko"), "depends=")
	writeKO(t, filepath.Join(dir, "kernel/drivers/scsi/sd_mod.ko"), "depends=scsi_mod,crc-t10dif")
	writeKO(t, filepath.Join(dir, "kernel/drivers/scsi/scsi_mod.ko"), "depends=scsi_common")
	writeKO(t, filepath.Join(dir, "kernel/drivers/scsi/scsi_common.ko"))
	writeKO(t, filepath.Join(dir, "kernel/lib/crc-t10dif.ko"))
	writeKO(t, filepath.Join(dir, "kernel/drivers/loop/a.ko"), "depends=b")
	writeKO(t, filepath.Join(dir, "kernel/drivers/loop/b.ko"), "depends=a")
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio.ko\nkernel/fs/nls/nls_cp437.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := ResolveModules(dir, []string{"virtio_net", "sd_mod", "nls_cp437", "failover", "ice"}, ResolveOptions{SkipMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got.Load {
		names = append(names, m.Name)
	}
	want := "failover net_failover virtio_net scsi_common scsi_mod crc_t10dif sd_mod"
	if strings.Join(names, " ") != want {
		t.Errorf("load order %q, want %q", strings.Join(names, " "), want)
	}
	sort.Strings(got.Builtin)
	if strings.Join(got.Builtin, " ") != "nls_cp437 virtio" {
		t.Errorf("builtin %v", got.Builtin)
	}
	if strings.Join(got.Missing, " ") != "ice" {
		t.Errorf("missing %v", got.Missing)
	}

	for name, tc := range map[string]struct {
		want []string
		opt  ResolveOptions
		err  string
	}{
		"missing wanted without SkipMissing": {want: []string{"ice"}, err: "module ice not found"},
		"missing dependency is always fatal": {want: []string{"c"}, opt: ResolveOptions{SkipMissing: true}, err: "c needs module zz not found"},
		"cycle":                              {want: []string{"a"}, err: "cycle"},
	} {
		t.Run(name, func(t *testing.T) {
			writeKO(t, filepath.Join(dir, "kernel/c.ko"), "depends=zz")
			_, err := ResolveModules(dir, tc.want, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestResolveModulesCompressed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "e1000.ko.xz"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveModules(dir, []string{"e1000"}, ResolveOptions{}); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("err = %v", err)
	}
}

// TestSharedLibs compares SharedLibs on this machine's own executables
// with ldd's answer (the dynamic loader itself).
func TestSharedLibs(t *testing.T) {
	bin := ""
	for _, b := range []string{"usr/bin/efibootmgr", "usr/bin/ls", "bin/ls"} {
		if _, err := os.Stat("/" + b); err == nil {
			bin = b
			break
		}
	}
	if bin == "" {
		t.Skip("no dynamic executable to test with")
	}
	if _, err := exec.LookPath("ldd"); err != nil {
		t.Skip("no ldd")
	}
	libs, err := SharedLibs("/", []string{bin})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range libs {
		got[filepath.Base(l.Name)] = true
		if _, err := os.Stat(l.Src); err != nil {
			t.Errorf("%s: %v", l.Src, err)
		}
	}
	out, err := exec.Command("ldd", "/"+bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "linux-vdso") {
			continue
		}
		if !got[filepath.Base(f[0])] {
			t.Errorf("ldd lists %s, SharedLibs does not (%v)", f[0], libs)
		}
	}
	if len(got) == 0 {
		t.Errorf("no libraries for %s", bin)
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/lib/x86_64-linux-gnu"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1.2"), []byte("z"), 0o644))
	must(os.Symlink("libz.so.1.2", filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1")))
	must(os.Symlink("/usr/lib", filepath.Join(root, "lib")))                                           // absolute: inside root
	must(os.Symlink("../../../../etc/passwd", filepath.Join(root, "usr/lib/x86_64-linux-gnu/escape"))) // clamped at root
	p, err := resolveIn(root, "lib/x86_64-linux-gnu/libz.so.1")
	if err != nil || p != filepath.Join(root, "usr/lib/x86_64-linux-gnu/libz.so.1.2") {
		t.Errorf("resolveIn = %q, %v", p, err)
	}
	if p, err := resolveIn(root, "usr/lib/x86_64-linux-gnu/escape"); err == nil {
		t.Errorf("escape resolved to %s", p)
	}
}
