//go:build integration

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestDemo is `make demo`: the virtual site of TestInstallSite, left
// running with the dashboard forwarded to http://127.0.0.1:8081/ on this
// machine, and an install of every node started. It runs only with
// RACKLIFT_DEMO=1 and stops (cleaning up every VM, BMC and namespace) on
// Ctrl-C or after RACKLIFT_DEMO_MINUTES (default 60).
func TestDemo(t *testing.T) {
	if os.Getenv("RACKLIFT_DEMO") != "1" {
		t.Skip("the demo runs only with RACKLIFT_DEMO=1 (make demo)")
	}
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl")
	minutes := 60
	if v, err := strconv.Atoi(os.Getenv("RACKLIFT_DEMO_MINUTES")); err == nil && v > 0 {
		minutes = v
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, time.Duration(minutes)*time.Minute)
	defer cancel2()
	n := nodeCount()
	if os.Getenv("E2E_NODES") == "" {
		n = 3
	}
	st := startSite(ctx, t, n)

	// Forward the host's 127.0.0.1:8081 to the dashboard in the namespace.
	ln, err := net.Listen("tcp", "127.0.0.1:8081")
	if err != nil {
		t.Fatalf("dashboard forward: %v (is something else on 127.0.0.1:8081?)", err)
	}
	defer ln.Close()
	go forward(ctx, ln, st)

	fmt.Printf("\nracklift demo: %d VMs (BIOS and UEFI) with ipmi_sim BMCs, racklift serve in namespace %s\n", n, st.ns.Name)
	fmt.Printf("  dashboard: http://127.0.0.1:8081/   (Ctrl-C stops everything)\n\n")
	time.Sleep(3 * time.Second)
	out, err := st.ns.Run(ctx, st.bin, "install", "--all", "--server", "http://127.0.0.1:8081", "--stagger", "2s").CombinedOutput()
	if err != nil {
		t.Fatalf("racklift install: %v\n%s", err, out)
	}
	fmt.Printf("%s\n", out)
	<-ctx.Done()
	fmt.Println("racklift demo: stopping")
}

// forward copies connections from ln to 127.0.0.1:8081 inside the
// namespace (the socket is created in the namespace, then used from here).
func forward(ctx context.Context, ln net.Listener, st *site) {
	for ctx.Err() == nil {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var up net.Conn
			if err := st.ns.Do(func() error {
				var err error
				up, err = net.DialTimeout("tcp", "127.0.0.1:8081", 5*time.Second)
				return err
			}); err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			select {
			case <-done:
			case <-ctx.Done():
			}
		}()
	}
}
