//go:build linux

package testbed

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// SiteDHCP is the customer's own DHCP server in a test: dnsmasq handing
// out 10.99.0.150-199 on ns's br0, addresses only (no DNS, no boot
// options, no ping check). Its log is dir/site-dhcp.log, shown when the
// test fails. It stops (by PID) when ctx ends or the test does.
func SiteDHCP(ctx context.Context, t testing.TB, ns *Netns, dir string) {
	t.Helper()
	cmd := ns.Run(ctx, "dnsmasq", "--no-daemon", "--port=0", "--conf-file=/dev/null", "--interface="+Bridge, "--bind-interfaces",
		"--dhcp-range=10.99.0.150,10.99.0.199,255.255.255.0,1h", "--no-ping", "--dhcp-leasefile="+filepath.Join(dir, "site.leases"))
	logPath := filepath.Join(dir, "site-dhcp.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("site DHCP server (dnsmasq): %v", err)
	}
	gone := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(gone) }()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("site DHCP server log:\n%s", bytes.TrimSpace(b))
		}
	})
	// Ready when it listens on port 67 (a bad option or a busy port makes
	// it exit instead).
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := ns.WaitUDPListen(wctx, 67, gone); err != nil {
		t.Fatalf("site DHCP server (dnsmasq): %v; its log:\n%s", err, Tail(logPath, 20))
	}
}
