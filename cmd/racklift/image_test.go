package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mbrDisk writes a small raw disk image: MBR boot code, one Linux
// partition with some data, holes.
func mbrDisk(t *testing.T) string {
	t.Helper()
	img := make([]byte, 8<<20)
	copy(img, []byte{0xfa, 0x31, 0xc0, 0x8e, 0xd8}) // cli; xor ax,ax; mov ds,ax
	e := img[446:]
	e[0], e[4] = 0x80, 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(len(img)/512-2048))
	img[510], img[511] = 0x55, 0xaa
	for i := 2 << 20; i < 3<<20; i++ {
		img[i] = byte(i*7 + i>>9)
	}
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageCommands(t *testing.T) {
	state := t.TempDir()
	disk := mbrDisk(t)
	sd := []string{"--state-dir", state}
	args := func(a ...string) []string { return append(a, sd...) }

	code, out, errs := runCmd(t, nil, args("image", "import", "lab-os", disk)...)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"imported lab-os from disk.raw (raw, 8 MiB)", "size      8 MiB (8388608 bytes)",
		"1 MiB in 2 chunks (13% of the disk), stored as 2 blobs", "MBR, 1 partition; the agent grows partition 1", "BIOS: yes; UEFI: no"} {
		if !strings.Contains(out, want) {
			t.Fatalf("import output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(errs, "importing") {
		t.Fatalf("progress written to a non-terminal:\n%s", errs)
	}

	// The state dir from the environment.
	code, out, _ = runCmd(t, map[string]string{"RACKLIFT_STATE_DIR": state}, "image", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "lab-os") || !strings.Contains(out, "bios") {
		t.Fatalf("list: %d\n%s", code, out)
	}

	code, out, _ = runCmd(t, nil, args("image", "show", "lab-os")...)
	if code != 0 || !strings.Contains(out, "Linux file system (0x83)") || !strings.Contains(out, "image lab-os, imported") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	code, js, _ := runCmd(t, nil, args("image", "show", "lab-os", "--json")...)
	var m struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
	}
	if code != 0 || json.Unmarshal([]byte(js), &m) != nil || m.Name != "lab-os" {
		t.Fatalf("show --json: %d\n%s", code, js)
	}
	stored, err := os.ReadFile(filepath.Join(state, "images", "lab-os", "manifest.json"))
	if err != nil || js != string(stored) {
		t.Fatalf("--json is not the stored manifest: %v", err)
	}
	sum := sha256.Sum256(stored)
	if !strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Fatal("show does not print the manifest's SHA-256")
	}

	cases := []struct {
		name string
		args []string
		code int
		in   string
	}{
		{"no subcommand", []string{"image"}, 2, "Usage:"},
		{"unknown subcommand", []string{"image", "frob"}, 2, "unknown subcommand"},
		{"import without file", args("image", "import", "x"), 2, "want NAME FILE"},
		{"bad name", args("image", "import", "Bad_Name", disk), 1, "want 1-63 lower-case letters"},
		{"missing file", args("image", "import", "x", "/nonexistent/disk.raw"), 3, "no such file"},
		{"not a disk", args("image", "import", "x", writeFile(t, "notes.txt", strings.Repeat("hello\n", 200), 0o644)), 1, "no partition table"},
		{"show missing", args("image", "show", "nope"), 1, `image "nope": image not imported (racklift image import nope FILE)`},
		{"rm missing", args("image", "rm", "nope"), 1, "not imported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCmd(t, nil, c.args...)
			if code != c.code || !strings.Contains(out+errs, c.in) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, c.code, c.in, out, errs)
			}
		})
	}

	code, out, _ = runCmd(t, nil, args("image", "rm", "lab-os")...)
	if code != 0 || !strings.Contains(out, "removed image lab-os; freed 2 blobs") {
		t.Fatalf("rm: %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, nil, args("image", "list")...)
	if code != 0 || !strings.Contains(out, "no images in") {
		t.Fatalf("list after rm: %d\n%s", code, out)
	}
}
