//go:build integration

package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/racklift/racklift/hack/testbed"
)

// TestGrowGPTSgdisk grows tables that gdisk's sgdisk made (the image
// builders' tool) and has sgdisk verify the result.
func TestGrowGPTSgdisk(t *testing.T) {
	if _, err := exec.LookPath("sgdisk"); err != nil {
		testbed.SkipOrFail(t, "no sgdisk (Debian package gdisk)")
	}
	sg := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("sgdisk", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("sgdisk %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		name             string
		imgMB, diskMB    int64
		grow, lastNumber int
	}{
		{"bigger disk", 64, 1024, 3, 3},
		{"same size", 64, 64, 3, 3},
		{"odd size", 64, 333, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.raw")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, tc.imgMB<<20); err != nil {
				t.Fatal(err)
			}
			sg("-n", "1:2048:+1M", "-t", "1:ef02", "-c", "1:bios",
				"-n", "2:0:+16M", "-t", "2:ef00", "-c", "2:esp",
				"-n", "3:0:0", "-t", "3:8300", "-c", "3:root", img)
			before := sg("-i", "3", img)
			if err := os.Truncate(img, tc.diskMB<<20); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			res, err := GrowTable(f, tc.diskMB<<20, tc.grow)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			out := sg("-v", img)
			if !strings.Contains(out, "No problems found") {
				t.Errorf("sgdisk -v:\n%s", out)
			}
			info := sg("-i", "3", img)
			m := regexp.MustCompile(`Last sector: (\d+)`).FindStringSubmatch(info)
			if m == nil {
				t.Fatalf("sgdisk -i 3:\n%s", info)
			}
			last, _ := strconv.ParseUint(m[1], 10, 64)
			if want := uint64(tc.diskMB<<20)/512 - 34; last != want || res.NewLastLBA != want {
				t.Errorf("partition 3 ends at %d (we said %d), want the last usable sector %d", last, res.NewLastLBA, want)
			}
			// The partition's identity (type, unique GUID, start) is unchanged.
			uniq := regexp.MustCompile(`(?m)^(Partition unique GUID|First sector|Partition GUID code).*$`)
			if a, b := uniq.FindAllString(before, -1), uniq.FindAllString(info, -1); strings.Join(a, "\n") != strings.Join(b, "\n") {
				t.Errorf("partition identity changed:\n%s\n--\n%s", a, b)
			}
			// sgdisk reads the backup table on its own too.
			bk := sg("-b", filepath.Join(t.TempDir(), "backup.gpt"), img)
			if !strings.Contains(bk, "operation has completed successfully") {
				t.Errorf("sgdisk -b: %s", bk)
			}
		})
	}
}
