package ipxe

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklift/racklift/hack/testbed"
)

// firmwares lists every Firmware value, including the ones without a binary.
var firmwares = []Firmware{FirmwareUnknown, BIOS, EFIx64, EFIARM64}

func TestBootfileEntriesExist(t *testing.T) {
	want := map[Firmware]string{
		BIOS:   "undionly.kpxe",
		EFIx64: "snponly.efi",
	}
	for _, fw := range firmwares {
		t.Run(fw.String(), func(t *testing.T) {
			name, ok := Bootfile(fw)
			if ok != (want[fw] != "") || name != want[fw] {
				t.Fatalf("Bootfile(%v) = %q, %v; want %q, %v", fw, name, ok, want[fw], want[fw] != "")
			}
			if !ok {
				return
			}
			st, err := fs.Stat(FS(), name)
			if err != nil {
				t.Fatalf("Bootfile(%v) = %q not in FS(): %v", fw, name, err)
			}
			if !st.Mode().IsRegular() || st.Size() == 0 {
				t.Fatalf("%s: mode %v size %d; want a non-empty regular file", name, st.Mode(), st.Size())
			}
		})
	}
}

func TestFSHoldsOnlyBinaries(t *testing.T) {
	entries, err := fs.ReadDir(FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := "ipxe.efi snponly.efi undionly.kpxe"
	if strings.Join(got, " ") != want {
		t.Fatalf("FS() root = %v; want %s", got, want)
	}
	for _, n := range []string{"COPYING", "SOURCE.md"} {
		if _, err := fs.Stat(Notices(), n); err != nil {
			t.Errorf("Notices(): %v", err)
		}
	}
}

// sourceSums parses the sha256sum block of bin/SOURCE.md.
func sourceSums(t *testing.T) map[string]string {
	t.Helper()
	b, err := fs.ReadFile(Notices(), "SOURCE.md")
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && len(f[0]) == 64 {
			sums[f[1]] = f[0]
		}
	}
	return sums
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestSourceMDMatchesEmbedded checks that SOURCE.md describes exactly the
// embedded files, so a hand-copied binary cannot slip in. Works offline.
func TestSourceMDMatchesEmbedded(t *testing.T) {
	sums := sourceSums(t)
	entries, err := fs.ReadDir(FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != len(entries) {
		t.Errorf("SOURCE.md lists %d sums, FS() has %d files", len(sums), len(entries))
	}
	for _, e := range entries {
		b, err := fs.ReadFile(FS(), e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if got := sum(b); got != sums[e.Name()] {
			t.Errorf("%s: embedded sha256 %s, SOURCE.md says %q; run hack/update-ipxe.sh", e.Name(), got, sums[e.Name()])
		}
	}
}

// TestMatchesDebianPackage compares the embedded files with the installed
// Debian ipxe package, when there is one.
func TestMatchesDebianPackage(t *testing.T) {
	const dir = "/usr/lib/ipxe"
	if _, err := os.Stat(dir); err != nil {
		testbed.SkipOrFail(t, "Debian package ipxe not installed (%v); cannot compare with it (apt-get install ipxe)", err)
	}
	entries, err := fs.ReadDir(FS(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		want, err := os.ReadFile(filepath.Join(dir, e.Name())) // follows ipxe.efi -> /boot/ipxe.efi
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		got, err := fs.ReadFile(FS(), e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if sum(got) != sum(want) {
			t.Errorf("%s: embedded sha256 %s differs from %s/%s (%s); run hack/update-ipxe.sh",
				e.Name(), sum(got), dir, e.Name(), sum(want))
		}
	}
}

func TestFirmwareString(t *testing.T) {
	seen := map[string]bool{}
	for _, fw := range firmwares {
		s := fw.String()
		if s == "" || seen[s] {
			t.Errorf("%d.String() = %q: empty or duplicate", int(fw), s)
		}
		seen[s] = true
	}
	if got := Firmware(42).String(); got != "firmware(42)" {
		t.Errorf("Firmware(42).String() = %q", got)
	}
}
