//go:build linux

package testbed

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

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
