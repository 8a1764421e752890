//go:build integration

package dhcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testNet is two network namespaces joined by a veth pair:
// server side srvIf (10.254.<n>.1/24) in srvNS, client side cliIf in cliNS.
type testNet struct {
	srvNS, cliNS string
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
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	sfx := hex.EncodeToString(r[:3])
	n := &testNet{
		srvNS: "rl-t-" + sfx + "-s", cliNS: "rl-t-" + sfx + "-c",
		srvIf: "rls" + sfx, cliIf: "rlc" + sfx,
		octet: 1 + r[3]%250,
	}
	n.srvIP = n.ip(1)
	for _, ns := range []string{n.srvNS, n.cliNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = exec.CommandContext(ctx, "ip", "netns", "del", ns).Run()
		})
		// No DAD, so the link-local address is usable at once (RA tests).
		run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", n.srvIf, "netns", n.srvNS, "type", "veth", "peer", "name", n.cliIf, "netns", n.cliNS)
	run(t, "ip", "-n", n.srvNS, "addr", "add", n.srvIP.String()+"/24", "dev", n.srvIf)
	run(t, "ip", "-n", n.srvNS, "link", "set", n.srvIf, "up")
	run(t, "ip", "-n", n.cliNS, "link", "set", n.cliIf, "up")
	return n
}

// inNS runs fn on an OS thread switched into network namespace ns. Sockets
// fn opens belong to ns and may be used from any goroutine afterwards.
func inNS(t *testing.T, ns string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime discards it when this
			// goroutine exits, so no goroutine runs in the wrong netns.
			errc <- fmt.Errorf("restore netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// setClientMAC gives the client interface the MAC a test client poses with.
func (n *testNet) setClientMAC(t *testing.T, mac net.HardwareAddr) {
	t.Helper()
	run(t, "ip", "-n", n.cliNS, "link", "set", n.cliIf, "address", mac.String())
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
	args := append([]string{"netns", "exec", n.cliNS, "busybox", "udhcpc",
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
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.cliNS, "dhclient", "-d", "-1", "-v",
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
