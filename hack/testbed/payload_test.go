//go:build linux

package testbed

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCPIONewc(t *testing.T) {
	var buf bytes.Buffer
	cw := newCPIOWriter(&buf)
	cw.file("etc/a/b.txt", 0o644, []byte("hello"))
	cw.symlink("bin/sh", "busybox")
	cw.charDev("dev/console", 0o600, 5, 1)
	if err := cw.close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if len(b)%4 != 0 {
		t.Errorf("archive length %d is not 4-aligned", len(b))
	}
	if !bytes.HasPrefix(b, []byte("070701")) || !bytes.Contains(b, []byte("TRAILER!!!\x00")) {
		t.Fatalf("not a newc archive: %q", b[:min(len(b), 120)])
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		SkipOrFail(t, "no cpio to cross-check with")
	}
	cmd := exec.Command("cpio", "-it", "--quiet")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -it: %v: %s", err, out)
	}
	if got, want := strings.Fields(string(out)), []string{"etc", "etc/a", "etc/a/b.txt", "bin", "bin/sh", "dev", "dev/console"}; strings.Join(got, " ") != strings.Join(want, " ") {
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

func TestPayloadArgs(t *testing.T) {
	a := PayloadArgs{Config: "http://10.99.0.1:8080/ks/52:54:00:99:00:01?x=1", Callback: "http://10.99.0.1:8080/phone-home/52:54:00:99:00:01",
		Token: "t0k", Node: "lab-01", Reboot: true}
	want := "console=ttyS0,115200 panic=-1 racklift.config=http://10.99.0.1:8080/ks/52:54:00:99:00:01?x=1 " +
		"racklift.callback=http://10.99.0.1:8080/phone-home/52:54:00:99:00:01 racklift.token=t0k racklift.node=lab-01 racklift.mode=install racklift.reboot=1"
	if got := a.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	s := IPXEScript("http://h/vmlinuz", "http://h/initrd.gz", "x=1")
	if !strings.Contains(s, "kernel http://h/vmlinuz initrd=initrd.gz x=1\ninitrd http://h/initrd.gz\nboot\n") {
		t.Errorf("script:\n%s", s)
	}
}

// TestInitScriptsParse checks the shell scripts' syntax with busybox sh -n.
func TestInitScriptsParse(t *testing.T) {
	if _, err := os.Stat(BusyboxPath); err != nil {
		SkipOrFail(t, "no busybox")
	}
	for _, f := range []string{"init.sh", "udhcpc.sh"} {
		if out, err := exec.Command(BusyboxPath, "sh", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s", f, err, out)
		}
	}
}
