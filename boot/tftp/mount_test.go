package tftp

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"
)

func TestMount(t *testing.T) {
	root := fstest.MapFS{"shimx64.efi": {Data: []byte("shim")}, "agent/vmlinuz": {Data: []byte("shadowed")}}
	agent := fstest.MapFS{"vmlinuz": {Data: []byte("kernel")}}
	media := fstest.MapFS{"casper/vmlinuz": {Data: []byte("ubuntu")}}
	m := Mount(root, map[string]fs.FS{"agent": agent, "media/ubuntu": media, "media/none": nil})
	for name, want := range map[string]string{"shimx64.efi": "shim", "agent/vmlinuz": "kernel", "media/ubuntu/casper/vmlinuz": "ubuntu"} {
		b, err := fs.ReadFile(m, name)
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"agent/initrd.img", "agent", "media/none/x", "media/ubuntu", "nothing", "../x"} {
		if _, err := m.Open(name); err == nil {
			t.Errorf("%s opened", name)
		} else if name != "../x" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want not-exist", name, err)
		}
	}
}
