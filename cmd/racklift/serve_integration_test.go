//go:build integration

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
)

// probePlan puts the provisioning network on the test namespace's br0.
const probePlan = `cluster: {name: probe, profile: rocky9, ha: false, ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProbeTestKeyProbeTestKeyProbeTestK0 t"]}
networks:
  - {name: prov, purpose: management, provisioning: true, cidr: 10.99.0.0/24, allocate: {default: 10.99.0.100}}
defaults: {disks: {os: {path: /dev/vda}}}
nodes:
  - {name: node-01, roles: [compute], mac: "52:54:00:99:aa:01"}
`

// TestServeRefusesBesideDHCPServer: on a segment where another machine
// (dnsmasq, in its own namespace) already serves DHCP, `racklift serve
// --dhcp-mode authoritative` exits non-zero naming that server, before it
// serves anything; with --force it starts, and says so loudly.
func TestServeRefusesBesideDHCPServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		testbed.SkipOrFail(t, "dnsmasq not installed (make deps): %v", err)
	}
	bin := buildRacklift(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ns := testbed.NewNetns(t, "probe", "10.99.0.1/24")
	site := testbed.NewNetns(t, "psite", "10.99.0.2/24")
	if err := ns.Connect(site); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	planFile := filepath.Join(work, "plan.yaml")
	if err := os.WriteFile(planFile, []byte(probePlan), 0o644); err != nil {
		t.Fatal(err)
	}
	testbed.SiteDHCP(ctx, t, site, work)

	serve := func(ctx context.Context, extra ...string) *exec.Cmd {
		args := append([]string{"serve", "--plan", planFile, "--interface", "br0", "--state-dir", filepath.Join(work, "state"),
			"--dhcp-mode", "authoritative", "--probe-wait", "3s", "--no-ra", "--admin-listen", "127.0.0.1:8081"}, extra...)
		return ns.Run(ctx, bin, args...)
	}

	t.Run("refuses", func(t *testing.T) {
		// It must give up within the probe wait, not serve until killed.
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		defer rcancel()
		out, err := serve(rctx).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("racklift serve beside dnsmasq: err %v, want a non-zero exit\n%s", err, out)
		}
		for _, want := range []string{"another DHCP server answers on br0", "10.99.0.2", "--dhcp-mode proxy"} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if bytes.Contains(out, []byte("serving")) {
			t.Errorf("it served something before refusing:\n%s", out)
		}
		t.Logf("exit %d:\n%s", ee.ExitCode(), bytes.TrimSpace(out))
	})

	t.Run("force", func(t *testing.T) {
		out := serveUntilHealthy(ctx, t, ns, func(ctx context.Context) *exec.Cmd { return serve(ctx, "--force") }, "racklift serve --force")
		if !strings.Contains(out, "BESIDE ANOTHER DHCP SERVER (--force)") || !strings.Contains(out, "10.99.0.2") {
			t.Errorf("no loud warning naming the other server:\n%s", out)
		}
	})
}

// TestServePrivileges: racklift serve needs root, or CAP_NET_BIND_SERVICE
// and CAP_NET_RAW. As user nobody without them it stops with a message
// naming both; with just those two (ambient, through setpriv) it serves.
func TestServePrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, setpriv)")
	}
	for _, b := range []string{"setpriv", "curl"} {
		if _, err := exec.LookPath(b); err != nil {
			testbed.SkipOrFail(t, "%s not installed (make deps): %v", b, err)
		}
	}
	// Somewhere user nobody can read the binary and plan and write state.
	dir, err := os.MkdirTemp("", "racklift-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "racklift")
	built := buildRacklift(t)
	b, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	planFile := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planFile, []byte(probePlan), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ns := testbed.NewNetns(t, "priv", "10.99.0.1/24")
	asNobody := func(ctx context.Context, caps bool) *exec.Cmd {
		args := []string{"--reuid=65534", "--regid=65534", "--clear-groups"}
		if caps {
			args = append(args, "--inh-caps=+net_bind_service,+net_raw", "--ambient-caps=+net_bind_service,+net_raw")
		}
		args = append(args, "--", bin, "serve", "--plan", planFile, "--interface", testbed.Bridge, "--state-dir", state,
			"--admin-listen", "127.0.0.1:8081")
		return ns.Run(ctx, "setpriv", args...)
	}

	t.Run("no capabilities", func(t *testing.T) {
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		defer rcancel()
		out, err := asNobody(rctx, false).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("serve as nobody: %v, want a non-zero exit\n%s", err, out)
		}
		if !bytes.Contains(out, []byte("missing privileges CAP_NET_BIND_SERVICE and CAP_NET_RAW")) {
			t.Errorf("message does not name the missing capabilities:\n%s", out)
		}
	})

	t.Run("CAP_NET_BIND_SERVICE and CAP_NET_RAW", func(t *testing.T) {
		out := serveUntilHealthy(ctx, t, ns, func(ctx context.Context) *exec.Cmd { return asNobody(ctx, true) },
			"serve as nobody with the two capabilities")
		if !strings.Contains(out, "DHCP: proxy") {
			t.Errorf("not serving proxy DHCP:\n%s", out)
		}
	})
}

// serveUntilHealthy starts the command start builds (a racklift serve in
// ns), waits up to 30 s for its /healthz on the namespace's
// 127.0.0.1:8081, then stops it (by PID, through its context) and returns
// its output. It fails the test if serve exits or never answers.
func serveUntilHealthy(ctx context.Context, t *testing.T, ns *testbed.Netns, start func(context.Context) *exec.Cmd, what string) string {
	t.Helper()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := start(sctx)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
		err := ns.Run(hctx, "curl", "-sf", "--max-time", "3", "http://127.0.0.1:8081/healthz").Run()
		hcancel()
		if err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("%s exited: %v\n%s", what, err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			<-done
			t.Fatalf("%s did not come up:\n%s", what, out.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
	stop()
	<-done
	return out.String()
}
