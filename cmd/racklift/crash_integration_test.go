//go:build integration

package main

import (
	"context"
	"encoding/json"

	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/provision/verify/verifytest"
)

// buildRacklift builds the binary once per test binary run.
func buildRacklift(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "racklift")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// crashPlan is a 50-node plan on loopback: the provisioning network is
// 127.0.0.0/8 so each simulated node can use its own planned source address.
func crashPlan(n int) string {
	var b strings.Builder
	b.WriteString(`cluster: {name: crash, profile: rocky9, ha: false, ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICrashTestKeyCrashTestKeyCrashTest0 t"]}
networks:
  - {name: lo, purpose: management, provisioning: true, cidr: 127.0.0.0/8, allocate: {default: 127.0.1.0}}
defaults: {disks: {os: {path: /dev/vda}}}
nodes:
`)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - {name: sim-%02d, roles: [compute], mac: \"52:54:00:aa:00:%02x\"}\n", i, i)
	}
	return b.String()
}

type server struct {
	cmd  *exec.Cmd
	done chan error
	once sync.Once
}

func startServer(t *testing.T, bin, planFile, state, httpAddr, adminAddr string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--plan", planFile, "--interface", "lo", "--dhcp-mode", "off", "--no-tftp", "--no-ra",
		"--http-listen", httpAddr, "--admin-listen", adminAddr, "--state-dir", state, "--server-url", "http://"+httpAddr)
	cmd.Env = append(os.Environ(), "RACKLIFT_LOG_LEVEL=warn")
	logf, err := os.OpenFile(filepath.Join(state, "..", "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + adminAddr + "/healthz"); err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not come up")
	return nil
}

// kill sends SIGKILL (once) and waits for the process to be gone.
func (s *server) kill() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	})
}

// simNode plays one node's install over HTTP from its planned address.
type simNode struct {
	name, mac, ip string
	step          int // next step index
	token         string
	client        *http.Client
	// retriedReady is set when a "ready" callback got no answer (the
	// server was killed), so the next one is a retry.
	retriedReady bool
	// facts is the ready callback's body: the node as planned, so the
	// orchestrator verifies it.
	facts []byte
}

var tokenRE = regexp.MustCompile(`X-Racklift-Token: ([A-Za-z0-9._~-]+)`)

var steps = []string{"ipxe", "ks", "pre", "post", "installed", "reboot-ipxe", "first-boot", "ready"}

// ack is one acknowledged callback.
type ack struct{ node, phase string }

// do performs the node's next step; it returns the acknowledged callback
// phase ("" for fetches), or an error (server down).
func (n *simNode) do(ctx context.Context, base string) (string, error) {
	get := func(path string) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := n.client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b), nil
	}
	switch st := steps[n.step]; st {
	case "ipxe":
		body, err := get("/ipxe/" + n.mac + "/boot.ipxe")
		if err != nil {
			return "", err
		}
		if !strings.Contains(body, "kernel") {
			return "", fmt.Errorf("%s: not an install script: %q", n.name, body)
		}
	case "reboot-ipxe":
		body, err := get("/ipxe/" + n.mac + "/boot.ipxe")
		if err != nil {
			return "", err
		}
		if !strings.Contains(body, "sanboot") && !strings.Contains(body, "exit") || strings.Contains(body, "kernel ") {
			return "", fmt.Errorf("REINSTALL: %s got an install script after it was installed", n.name)
		}
	case "ks":
		body, err := get("/ks/" + n.mac)
		if err != nil {
			return "", err
		}
		m := tokenRE.FindStringSubmatch(body)
		if m == nil {
			return "", fmt.Errorf("%s: no token in ks.cfg", n.name)
		}
		n.token = m[1]
	default:
		body := `{"percent":50}`
		if st == "ready" {
			body = string(n.facts)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/phone-home/"+n.mac+"/"+st, strings.NewReader(body))
		req.Header.Set("X-Racklift-Token", n.token)
		resp, err := n.client.Do(req)
		if err != nil {
			if st == "ready" {
				n.retriedReady = true
			}
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden {
			// Tokens are durable across restarts, so a 403 is a failure,
			// except for a retried "ready": if the server stored it and died
			// before answering, the restarted server has rotated the token
			// (replay protection) and refuses the retry. The final check
			// still requires the node to be recorded ready.
			if st == "ready" && n.retriedReady {
				n.step++
				return "", nil
			}
			return "", fmt.Errorf("%s %s: forbidden", n.name, st)
		}
		if resp.StatusCode != http.StatusNoContent {
			return "", fmt.Errorf("%s %s: %d", n.name, st, resp.StatusCode)
		}
		n.step++
		return st, nil
	}
	n.step++
	return "", nil
}

func TestCrashRecovery(t *testing.T) {
	if os.Geteuid() != 0 && testing.Short() {
		t.Skip("short")
	}
	const nodes = 50
	bin := buildRacklift(t)
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planFile, []byte(crashPlan(nodes)), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	httpAddr, adminAddr := freePort(t), freePort(t)
	srv := startServer(t, bin, planFile, state, httpAddr, adminAddr)
	t.Cleanup(func() { srv.kill() })

	// Start the run through the admin API, as `racklift install --all` does.
	c := (&apiFlags{server: "http://" + adminAddr, stateDir: state}).client()
	var run events.Run
	if err := c.do(context.Background(), http.MethodPost, "/api/v1/runs", map[string]bool{"all": true}, &run); err != nil {
		t.Fatal(err)
	}

	p, ds := plan.Load(planFile, []byte(crashPlan(nodes)), plan.Options{})
	if ds.HasErrors() {
		t.Fatalf("crash plan: %v", ds)
	}
	sims := make([]*simNode, nodes)
	for i := range sims {
		ip := fmt.Sprintf("127.0.1.%d", i+1)
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		sims[i] = &simNode{name: fmt.Sprintf("sim-%02d", i+1), mac: fmt.Sprintf("52:54:00:aa:00:%02x", i+1), ip: ip,
			client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}}
		pn, ok := p.NodeByName(sims[i].name)
		if !ok {
			t.Fatalf("no %s in the crash plan", sims[i].name)
		}
		b, err := json.Marshal(nodeapi.CallbackBody{Facts: verifytest.FactsFor(p, pn)})
		if err != nil {
			t.Fatal(err)
		}
		sims[i].facts = b
	}
	var mu sync.Mutex
	var acked []ack
	rng := rand.New(rand.NewPCG(7, 11))
	base := "http://" + httpAddr
	kills := 0
	deadline := time.Now().Add(3 * time.Minute)
	for round := 0; time.Now().Before(deadline); round++ {
		// Drive every unfinished node concurrently for a while; kill -9 the
		// server at a random point in the first rounds.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		errs := make(chan error, nodes)
		for _, n := range sims {
			if n.step >= len(steps) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n.step < len(steps) && ctx.Err() == nil {
					phase, err := n.do(ctx, base)
					if err != nil {
						if strings.Contains(err.Error(), "REINSTALL") || strings.Contains(err.Error(), "forbidden") {
							errs <- err
						}
						return
					}
					if phase != "" {
						mu.Lock()
						acked = append(acked, ack{n.name, phase})
						mu.Unlock()
					}
				}
			}()
		}
		if kills < 4 {
			// Kill at a random point of the install: after about another 50
			// acknowledged callbacks (of 250), so every kill lands mid-run.
			threshold := (kills+1)*50 + rng.IntN(25)
			allDone := make(chan struct{})
			go func() { wg.Wait(); close(allDone) }()
		wait:
			for {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= threshold {
					break
				}
				select {
				case <-allDone:
					break wait
				case <-time.After(2 * time.Millisecond):
				}
			}
			srv.kill()
			kills++
			cancel()
			<-allDone
			srv = startServer(t, bin, planFile, state, httpAddr, adminAddr)
		} else {
			wg.Wait()
			cancel()
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		done := 0
		for _, n := range sims {
			if n.step >= len(steps) {
				done++
			}
		}
		if done == nodes {
			break
		}
	}
	if kills < 4 {
		t.Fatalf("only %d kills", kills)
	}
	// The run completes once every node is ready and verified.
	var runs []events.Run
	for time.Now().Before(deadline) {
		if err := c.do(context.Background(), http.MethodGet, "/api/v1/runs", nil, &runs); err == nil && len(runs) > 0 && runs[0].State == events.RunSucceeded {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(runs) == 0 || runs[0].State != events.RunSucceeded {
		t.Fatalf("run did not succeed: %+v", runs)
	}
	// A replayed callback after ready is refused (token rotated).
	req, _ := http.NewRequest(http.MethodPost, base+"/phone-home/"+sims[0].mac+"/ready", nil)
	req.Header.Set("X-Racklift-Token", sims[0].token)
	if resp, err := sims[0].client.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay after ready: %v %v", resp, err)
	}
	srv.kill()

	// Every acknowledged callback is in the store.
	store, err := events.Open(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	have := map[ack]bool{}
	for after := int64(0); ; {
		evs, err := store.Since(context.Background(), after, events.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if p, ok := strings.CutPrefix(e.Type, "install."); ok {
				have[ack{e.Node, p}] = true
			}
			after = e.ID
		}
	}
	for _, a := range acked {
		if !have[a] {
			t.Errorf("acknowledged callback lost: %s %s", a.node, a.phase)
		}
	}
	states, _ := store.Nodes(context.Background())
	for _, s := range states {
		if s.Phase != events.PhaseVerified {
			t.Errorf("%s ended in %s, want verified", s.Name, s.Phase)
		}
	}
	t.Logf("%d nodes, %d acknowledged callbacks, %d kill -9 restarts, all present", nodes, len(acked), kills)
}
