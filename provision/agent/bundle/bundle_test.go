package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// fakePE returns a minimal PE32+ image; signed adds a certificate table
// entry pointing at a WIN_CERTIFICATE of type PKCS_SIGNED_DATA.
func fakePE(signed bool) []byte {
	b := make([]byte, 1024)
	b[0], b[1] = 'M', 'Z'
	le := binary.LittleEndian
	le.PutUint32(b[0x3c:], 0x80)
	copy(b[0x80:], "PE\x00\x00")
	opt := 0x80 + 24
	le.PutUint16(b[opt:], 0x20b)
	dirs := opt + 112
	le.PutUint32(b[dirs-4:], 16) // NumberOfRvaAndSizes
	if signed {
		le.PutUint32(b[dirs+32:], 0x300) // certificate table: offset
		le.PutUint32(b[dirs+36:], 0x100) // size
		le.PutUint32(b[0x300:], 0x100)   // dwLength
		le.PutUint16(b[0x304:], 0x0200)  // WIN_CERT_REVISION_2_0
		le.PutUint16(b[0x306:], 2)       // WIN_CERT_TYPE_PKCS_SIGNED_DATA
	}
	return b
}

func TestSigned(t *testing.T) {
	if ok, err := Signed(fakePE(true)); !ok || err != nil {
		t.Errorf("signed: %v %v", ok, err)
	}
	if ok, err := Signed(fakePE(false)); ok || err != nil {
		t.Errorf("unsigned: %v %v", ok, err)
	}
	if _, err := Signed([]byte("not a PE")); err == nil {
		t.Error("garbage accepted")
	}
}

func writeDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	info := Info{Format: FormatVersion, Files: map[string]File{}, GRUBPrefix: "/grub"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(data)
		info.Files[name] = File{Size: int64(len(data)), SHA256: hex.EncodeToString(s[:])}
	}
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(dir, FileInfo), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoad(t *testing.T) {
	base := []byte("070701 pretend base archive (3 bytes off 4)")
	files := map[string][]byte{FileKernel: fakePE(true), FileBaseInitrd: base, FileShim: fakePE(true), FileGRUB: fakePE(true)}
	dir := writeDir(t, files)
	self := filepath.Join(t.TempDir(), "racklift")
	bin := bytes.Repeat([]byte("racklift binary "), 1000)
	if err := os.WriteFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir, self)
	if err != nil {
		t.Fatal(err)
	}
	f, err := b.FS().Open(FileInitrd)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	initrd, _ := io.ReadAll(f)
	f.Close()
	if st.Size() != int64(len(initrd)) || b.Size(FileInitrd) != int64(len(initrd)) {
		t.Errorf("size %d / %d, read %d", st.Size(), b.Size(FileInitrd), len(initrd))
	}
	if _, ok := f.(io.Seeker); !ok {
		t.Error("served files must be seekable (http.ServeContent)")
	}
	// base, zero padding to 4 bytes, then one zstd frame holding a newc
	// archive with bin/racklift.
	if !bytes.HasPrefix(initrd, base) {
		t.Fatal("initrd does not start with the base")
	}
	rest := initrd[len(base):]
	pad := (4 - len(base)%4) % 4
	if !bytes.Equal(rest[:pad], make([]byte, pad)) {
		t.Fatalf("padding %q", rest[:pad])
	}
	dec, _ := zstd.NewReader(nil)
	arch, err := dec.DecodeAll(rest[pad:], nil)
	dec.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(arch, []byte("070701")) || !bytes.Contains(arch, []byte("bin/racklift\x00")) || !bytes.Contains(arch, bin) || !bytes.Contains(arch, []byte("TRAILER!!!")) {
		t.Error("the appended archive does not hold bin/racklift")
	}
	if !bytes.Contains(arch, []byte("000081ed")) { // mode 0100755
		t.Error("bin/racklift is not mode 0755 regular")
	}
	s := sha256.Sum256(bin)
	if b.RackliftSHA256() != hex.EncodeToString(s[:]) {
		t.Error("RackliftSHA256")
	}
	for _, name := range []string{FileKernel, FileShim, FileGRUB} {
		if _, err := fs.ReadFile(b.FS(), name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := b.FS().Open(FileBaseInitrd); err == nil {
		t.Error("the base initrd alone is served")
	}
	if _, err := b.FS().Open("../bundle.json"); err == nil {
		t.Error("path escape")
	}
}

func TestLoadRefuses(t *testing.T) {
	good := map[string][]byte{FileKernel: fakePE(true), FileBaseInitrd: []byte("base"), FileShim: fakePE(true), FileGRUB: fakePE(true)}
	self := filepath.Join(t.TempDir(), "racklift")
	if err := os.WriteFile(self, []byte("bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("missing directory", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "nope"), self); err == nil || !strings.Contains(err.Error(), "make agent") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("changed file", func(t *testing.T) {
		dir := writeDir(t, good)
		if err := os.WriteFile(filepath.Join(dir, FileShim), fakePE(true)[:1000], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, self); err == nil || !strings.Contains(err.Error(), "partial copy") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("unsigned kernel", func(t *testing.T) {
		files := map[string][]byte{}
		for k, v := range good {
			files[k] = v
		}
		files[FileKernel] = fakePE(false)
		if _, err := Load(writeDir(t, files), self); err == nil || !strings.Contains(err.Error(), "Secure Boot would refuse it") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestGRUBPrefix(t *testing.T) {
	obj := func(typ uint32, payload string) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, typ)
		p := []byte(payload)
		for (len(p)+8)%4 != 0 {
			p = append(p, 0)
		}
		binary.LittleEndian.PutUint32(b[4:], uint32(8+len(p)))
		return append(b, p...)
	}
	memdisk := []byte("if [ -e $prefix/x86_64-efi/grub.cfg ]; then\n\tsource $prefix/x86_64-efi/grub.cfg\nelse\n\tsource $prefix/grub.cfg\nfi\n")
	img := append(append(append([]byte("MZ..."), memdisk...), obj(2, "normal (memdisk)/grub.cfg\n\x00")...), obj(3, "/grub\x00")...)
	if p, err := GRUBPrefix(img); err != nil || p != "/grub" {
		t.Errorf("GRUBPrefix = %q, %v", p, err)
	}
	if got := GRUBConfigPaths("/grub"); strings.Join(got, " ") != "/grub/x86_64-efi/grub.cfg /grub/grub.cfg" {
		t.Errorf("paths %v", got)
	}
	if _, err := GRUBPrefix([]byte("MZ nothing")); err == nil {
		t.Error("no config accepted")
	}
}
