//go:build integration

package dhcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
)

// testNet is a server namespace holding bridge br0 (10.254.<n>.1/24), the
// interface racklift serves, and a client namespace whose one NIC, eth0,
// is plugged into that bridge (see testbed.NewHost): frames go through a
// Linux bridge, which filters unicast for other MACs the way a switch and
// a real NIC do.
type testNet struct {
	srv, cli     *testbed.Netns
	srvIf, cliIf string
	octet        byte
	srvIP        net.IP
}

func (n *testNet) ip(last byte) net.IP { return net.IPv4(10, 254, n.octet, last).To4() }

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	var r [1]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	n := &testNet{srvIf: testbed.Bridge, cliIf: testbed.HostNIC, octet: 1 + r[0]%250}
	n.srvIP = n.ip(1)
	n.srv = testbed.NewNetns(t, "dsrv", n.srvIP.String()+"/24")
	n.cli = testbed.NewHost(t, "dcli", n.srv)
	return n
}

// setClientMAC gives the client interface the MAC a test client poses with.
func (n *testNet) setClientMAC(t *testing.T, mac net.HardwareAddr) {
	t.Helper()
	run(t, "ip", "-n", n.cli.Name, "link", "set", n.cliIf, "address", mac.String())
}

// udhcpc runs busybox udhcpc once in the client netns and returns what its
// script saw: one "event <name>" line per script call followed by the
// environment, and whether a lease ("bound") was obtained.
func (n *testNet) udhcpc(t *testing.T, extra ...string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "events")
	script := filepath.Join(dir, "script.sh")
	body := "#!/bin/sh\n{ echo \"event $1\"; env | sort; } >> " + out + "\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"netns", "exec", n.cli.Name, "busybox", "udhcpc",
		"-i", n.cliIf, "-f", "-q", "-n", "-t", "3", "-T", "1", "-A", "1", "-s", script}, extra...)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	log, _ := cmd.CombinedOutput() // exit 1 when no lease: expected in some tests
	got, _ := os.ReadFile(out)
	t.Logf("udhcpc %s:\n%s", strings.Join(extra, " "), log)
	return string(got), bytes.Contains(got, []byte("event bound"))
}

// envOf returns KEY's value from the last "bound" block of a script log.
func envOf(log, key string) string {
	i := strings.LastIndex(log, "event bound")
	if i < 0 {
		return ""
	}
	for _, line := range strings.Split(log[i:], "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

// dhclient runs ISC dhclient in the client netns until it is bound or the
// timeout passes, then stops it (by PID). It returns the script log.
func (n *testNet) dhclient(t *testing.T, conf string, timeout time.Duration) (string, bool) {
	t.Helper()
	return n.dhclientWithLease(t, conf, "", timeout)
}

// dhclientWithLease is dhclient with a lease file holding leases (dhclient
// then starts in INIT-REBOOT with that address).
func (n *testNet) dhclientWithLease(t *testing.T, conf, leases string, timeout time.Duration) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "leases"), []byte(leases), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "events")
	script := filepath.Join(dir, "script.sh")
	body := "#!/bin/sh\n{ echo \"event $reason\"; env | sort; } >> " + out + "\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "dhclient.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.cli.Name, "dhclient", "-d", "-1", "-v",
		"-cf", cf, "-sf", script, "-lf", filepath.Join(dir, "leases"), "-pf", filepath.Join(dir, "pid"), n.cliIf)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // no-op once it has exited
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	bound, exited := false, false
loop:
	for range int(timeout/(100*time.Millisecond)) + 1 {
		select {
		case <-waited:
			exited = true
			break loop
		case <-deadline:
			break loop
		case <-tick.C:
			if got, _ := os.ReadFile(out); bytes.Contains(got, []byte("event BOUND")) {
				bound = true
				break loop
			}
		}
	}
	if !exited {
		_ = cmd.Process.Kill()
		select {
		case <-waited:
		case <-time.After(5 * time.Second):
			t.Error("dhclient did not exit after kill")
		}
	}
	got, _ := os.ReadFile(out)
	t.Logf("dhclient:\n%s", log.String())
	return string(got), bound
}
