//go:build integration

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
)

// TestDemo is `make demo`: the virtual site of TestInstallSite, left
// running with the dashboard forwarded to http://127.0.0.1:8081/ on this
// machine (RACKLIFT_DEMO_LISTEN overrides), and an install of every node
// started. It runs only with RACKLIFT_DEMO=1 and stops (cleaning up every
// VM, BMC and namespace) on Ctrl-C or after RACKLIFT_DEMO_MINUTES
// (default 60). It watches its own children: when racklift serve, an
// ipmi_sim or a VM ends by itself, it prints which one, how it ended and
// the last 20 lines of its log, stops the rest and fails (make demo exits
// non-zero).
func TestDemo(t *testing.T) {
	if os.Getenv("RACKLIFT_DEMO") != "1" {
		t.Skip("the demo runs only with RACKLIFT_DEMO=1 (make demo)")
	}
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl")
	minutes := 60
	if v, err := strconv.Atoi(os.Getenv("RACKLIFT_DEMO_MINUTES")); err == nil && v > 0 {
		minutes = v
	}
	listen := "127.0.0.1:8081"
	if v := os.Getenv("RACKLIFT_DEMO_LISTEN"); v != "" {
		listen = v
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
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("dashboard forward: %v (is something else on %s?)", err, listen)
	}
	defer ln.Close()
	go forward(ctx, ln, st)

	fmt.Printf("\nracklift demo: %d VMs (BIOS and UEFI) with ipmi_sim BMCs, racklift serve (pid %d) in namespace %s\n", n, st.serve.Process.Pid, st.ns.Name)
	fmt.Printf("  dashboard: http://%s/   (Ctrl-C stops everything)\n\n", ln.Addr())
	died := func(d death) {
		fmt.Printf("\nracklift demo: %s exited unexpectedly: %s\n", d.what, exitStatus(d.err))
		fmt.Printf("--- last 20 lines of %s ---\n%s\n---\n", d.log, testbed.Tail(d.log, 20))
		fmt.Println("racklift demo: stopping everything else")
		t.Fatalf("%s exited unexpectedly: %s", d.what, exitStatus(d.err))
	}
	out, err := st.ns.Run(ctx, st.bin, "install", "--all", "--server", "http://127.0.0.1:8081", "--state-dir", st.state, "--stagger", "2s").CombinedOutput()
	if err != nil {
		// The likely reason is a dead child: say that rather than the symptom.
		select {
		case d := <-st.died:
			died(d)
		case <-time.After(2 * time.Second):
		}
		t.Fatalf("racklift install: %v\n%s", err, out)
	}
	fmt.Printf("%s\n", out)
	select {
	case <-ctx.Done():
		fmt.Println("racklift demo: stopping")
	case d := <-st.died:
		died(d)
	}
}

// exitStatus says how a process ended, in the words of `wait`.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error() // "signal: killed", "exit status 3", ...
}

// TestDemoReportsDeadChild runs `make demo`'s test binary (this one) as a
// child, kills its racklift serve by PID as soon as the site is up, and
// checks that the demo notices: it names racklift serve and how it ended,
// shows its log, and exits non-zero.
func TestDemoReportsDeadChild(t *testing.T) {
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestDemo$", "-test.v", "-test.timeout", "5m")
	cmd.Env = append(os.Environ(), "RACKLIFT_DEMO=1", "E2E_NODES=1", "RACKLIFT_DEMO_MINUTES=4", "RACKLIFT_DEMO_LISTEN=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { err := cmd.Wait(); pw.Close(); exited <- err }()

	pidRE := regexp.MustCompile(`racklift serve \(pid (\d+)\) in namespace`)
	var all strings.Builder
	serve, killed := 0, 0
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if m := pidRE.FindStringSubmatch(line); m != nil {
			serve, _ = strconv.Atoi(m[1])
		}
		// Kill it once the install run has started: the demo is then only
		// watching, the case of the report (a dashboard that stops moving).
		if strings.HasPrefix(line, "run ") && strings.Contains(line, "started") && serve != 0 && killed == 0 {
			killed = serve
			// By PID: the demo's own racklift serve, which this test started
			// (through the demo).
			if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
				t.Fatalf("kill racklift serve %d: %v", killed, err)
			}
			t.Logf("killed the demo's racklift serve, pid %d", killed)
		}
	}
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		t.Fatalf("the demo did not exit after its racklift serve was killed; output:\n%s", all.String())
	}
	out := all.String()
	if killed == 0 {
		t.Fatalf("the demo never printed its racklift serve's pid; output:\n%s", out)
	}
	if err == nil {
		t.Errorf("the demo exited 0 after its racklift serve died; output:\n%s", out)
	}
	want := fmt.Sprintf("racklift demo: racklift serve (pid %d) exited unexpectedly: signal: killed", killed)
	if !strings.Contains(out, want) || !strings.Contains(out, "--- last 20 lines of ") || !strings.Contains(out, "serving plan") {
		t.Errorf("the demo's output lacks %q, or serve's log tail; output:\n%s", want, out)
	}
	if i := strings.Index(out, "racklift demo: racklift serve"); i >= 0 {
		t.Logf("the demo said (exit %v):\n%s", err, out[i:min(len(out), i+3000)])
	}
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
