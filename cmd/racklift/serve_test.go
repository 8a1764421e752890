package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "--plan is required"},
		{[]string{"serve", "--plan", "example:lab"}, "--interface is required"},
		{[]string{"serve", "--plan", "example:lab", "--interface", "lo", "--dhcp-mode", "loud"}, `--dhcp-mode "loud"`},
		{[]string{"serve", "--plan", "example:lab", "--interface", "lo", "--media", "Rocky 9=/x.iso"}, "--media"},
	}
	for _, c := range cases {
		code, _, errs := runCmd(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, want %q in %q", c.args, code, c.want, errs)
		}
	}
}

func TestServeRefusesInvalidPlanAndMissingInterface(t *testing.T) {
	broken := writeFile(t, "b.yaml", "cluster: {name: x}\n", 0o644)
	code, _, errs := runCmd(t, nil, "serve", "--plan", broken, "--interface", "lo", "--state-dir", t.TempDir())
	if code != exitFailed || !strings.Contains(errs, "fix them first") {
		t.Fatalf("invalid plan: exit %d %s", code, errs)
	}
	lab := examplePlan(t, "lab")
	secrets := writeFile(t, "s.yaml", labSecrets, 0o600)
	code, _, errs = runCmd(t, nil, "serve", "--plan", lab, "--secrets", secrets, "--interface", "rl-no-such-if0", "--state-dir", t.TempDir())
	if code != exitRuntime || !strings.Contains(errs, `interface "rl-no-such-if0"`) {
		t.Fatalf("missing interface: exit %d %s", code, errs)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestServeSafeMode(t *testing.T) {
	addr := freePort(t)
	state := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	var out, errb syncBuffer
	e := &env{stdout: &out, stderr: &errb, lookupEnv: func(string) (string, bool) { return "", false }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--safe-mode", "--admin-listen", addr, "--state-dir", state}, e)
	}()
	var body []byte
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var h struct {
		OK       bool
		SafeMode bool `json:"safe_mode"`
		Nodes    int
	}
	if err := json.Unmarshal(body, &h); err != nil || !h.OK || !h.SafeMode || h.Nodes != 0 {
		t.Fatalf("healthz %q: %v", body, err)
	}
	// A second racklift on the same state directory refuses to start.
	code, _, errs := runCmd(t, nil, "serve", "--safe-mode", "--admin-listen", freePort(t), "--state-dir", state)
	if code == exitOK || !strings.Contains(errs, "state directory in use") || !strings.Contains(errs, fmt.Sprintf("racklift process %d", os.Getpid())) {
		t.Errorf("second serve on %s: exit %d, %s", state, code, errs)
	}
	cancel(fmt.Errorf("%w: SIGTERM", errSignal)) // what signalContext does on SIGTERM
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on cancel")
	}
	if !strings.Contains(out.String(), "SAFE MODE") {
		t.Fatal(out.String())
	}
	// Its last log line says why it stopped.
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "racklift serve stopped") || !strings.Contains(last, "received signal: SIGTERM") {
		t.Errorf("last line %q, want it to say serve stopped on SIGTERM", last)
	}
}

func TestServeLastLineNamesFatalError(t *testing.T) {
	lab := examplePlan(t, "lab")
	secrets := writeFile(t, "s.yaml", labSecrets, 0o600)
	code, _, errs := runCmd(t, nil, "serve", "--plan", lab, "--secrets", secrets, "--interface", "rl-no-such-if0", "--state-dir", t.TempDir())
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	if code != exitRuntime || len(lines) < 2 || !strings.Contains(lines[len(lines)-2], `racklift serve stopped`) ||
		!strings.Contains(lines[len(lines)-2], "fatal error") || !strings.Contains(lines[len(lines)-1], "rl-no-such-if0") {
		t.Errorf("exit %d, output:\n%s", code, errs)
	}
}

func TestSignalContextCause(t *testing.T) {
	ctx, stop := signalContext(context.Background())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
	if c := context.Cause(ctx); !errors.Is(c, errSignal) || !strings.Contains(c.Error(), "SIGTERM") {
		t.Errorf("cause %v, want the signal", c)
	}
}

// Debian 12's signed GRUB ignores proxyDHCP answers, so serve warns when
// a plan with Secure Boot nodes runs in proxy mode (TestImageInstall
// proved it: the node stops at "grub>" after grubx64.efi).
func TestServeWarnsSecureBootInProxyMode(t *testing.T) {
	code, out, _ := runCmd(t, nil, "plan", "example", "lab")
	if code != 0 {
		t.Fatalf("plan example lab: %d", code)
	}
	sb := strings.Replace(out, "defaults:\n", "defaults:\n  bios: {boot_mode: uefi, secure_boot: true}\n", 1)
	lab := writeFile(t, "sb.yaml", sb, 0o644)
	secrets := writeFile(t, "s.yaml", labSecrets, 0o600)
	for _, mode := range []string{"proxy", "authoritative"} {
		_, _, errs := runCmd(t, nil, "serve", "--plan", lab, "--secrets", secrets, "--interface", "rl-no-such-if0",
			"--dhcp-mode", mode, "--agent-dir", t.TempDir(), "--state-dir", t.TempDir())
		warned := strings.Contains(errs, "Secure Boot nodes need --dhcp-mode authoritative")
		if warned != (mode == "proxy") {
			t.Errorf("--dhcp-mode %s: warned %v; stderr:\n%s", mode, warned, errs)
		}
	}
}
