//go:build integration

// Integration tests of the bmc commands against real OpenIPMI ipmi_sim BMCs
// on 127.0.0.x, run in-process through run() with the real bmclib
// controllers. Run (as root or not):
//
//	go test -tags integration -run IPMISim -v ./cmd/racklift/
//
// Needs Debian's openipmi (ipmi_sim) and ipmitool packages.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
)

// simPassword is the admin password of every ipmi_sim.
const simPassword = "lab-bmc-pw"

// ipmiSim is one running ipmi_sim (user admin, password simPassword).
type ipmiSim struct {
	dir  string
	addr string
	port int
}

func (s *ipmiSim) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name))
	return strings.TrimSpace(string(b))
}

func needSimTools(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(bin); err != nil {
			testbed.SkipOrFail(t, "%s not installed (apt-get install openipmi ipmitool): %v", bin, err)
		}
	}
}

// simFreePort returns a UDP port on addr that was free a moment ago.
func simFreePort(t *testing.T, addr string) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// startIPMISim starts one ipmi_sim on addr (127.0.0.x) and a free port, and
// stops it by PID in t.Cleanup.
func startIPMISim(t *testing.T, name, addr string) *ipmiSim {
	t.Helper()
	port := simFreePort(t, addr)
	return &ipmiSim{dir: testbed.StartIPMISim(t, name, addr, port, simPassword), addr: addr, port: port}
}

// runReal runs "racklift ARGS..." in-process through run(), with the real
// bmclib controllers and no environment.
func runReal(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, lookupEnv: func(string) (string, bool) { return "", false }}
	start := time.Now()
	code = run(context.Background(), args, e)
	t.Logf("racklift %s: exit %d in %v\n%s%s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond), out.String(), errb.String())
	return code, out.String(), errb.String()
}

func TestIPMISimBMCCommands(t *testing.T) {
	needSimTools(t)
	sims := []*ipmiSim{
		startIPMISim(t, "bmc1", "127.0.0.31"),
		startIPMISim(t, "bmc2", "127.0.0.32"),
		startIPMISim(t, "bmc3", "127.0.0.33"),
	}
	nodes := []bmcTestNode{
		{name: "lab-01", role: "controller, database, messaging, network", addr: sims[0].addr, port: sims[0].port},
		{name: "lab-02", addr: sims[1].addr, port: sims[1].port},
		{name: "lab-03", addr: sims[2].addr, port: sims[2].port, bios: "boot_mode: legacy"},
	}
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": simPassword})
	base := []string{"--plan", planPath, "--secrets", secrets}
	cmd := func(args ...string) []string { return append(append([]string{"bmc"}, args...), base...) }

	code, out, _ := runReal(t, cmd("status", "--all")...)
	for i, n := range nodes {
		want := fmt.Sprintf("%s  ipmi %s:%d  yes        yes          off    ipmitool", n.name, n.addr, n.port)
		if !strings.Contains(out, want) {
			t.Errorf("status of %s: want %q", nodes[i].name, want)
		}
	}
	if code != 0 || !strings.Contains(out, "3 ok, 0 failed") {
		t.Fatalf("status: exit %d", code)
	}

	code, out, _ = runReal(t, cmd("power", "on", "--all")...)
	if code != 0 || !strings.Contains(out, "3 ok, 0 failed") {
		t.Errorf("power on: exit %d", code)
	}
	for i, s := range sims {
		if s.file("power") != "1" {
			t.Errorf("%s: power %q after power on", nodes[i].name, s.file("power"))
		}
	}
	code, out, _ = runReal(t, cmd("status", "--all", "--json")...)
	if j := decodeBMCJSON(t, out); code != 0 || j.Summary.OK != 3 || j.Nodes[1].Power != "on" || j.Nodes[1].Provider != "ipmitool" {
		t.Errorf("status --json after power on: exit %d %+v", code, j)
	}

	code, out, _ = runReal(t, cmd("power", "off", "--all", "--yes")...)
	if code != 0 || !strings.Contains(out, "lab-02  ipmi "+sims[1].addr) || !strings.Contains(out, "3 ok, 0 failed") {
		t.Errorf("power off: exit %d", code)
	}
	for i, s := range sims {
		if s.file("power") != "0" {
			t.Errorf("%s: power %q after power off", nodes[i].name, s.file("power"))
		}
	}

	code, _, _ = runReal(t, cmd("bootdev", "pxe", "--all")...)
	if code != 0 {
		t.Errorf("bootdev pxe: exit %d", code)
	}
	for i, s := range sims {
		if s.file("boot") != "pxe" || !strings.Contains(s.file("calls.log"), "set boot pxe") {
			t.Errorf("%s: boot %q; chassis calls:\n%s", nodes[i].name, s.file("boot"), s.file("calls.log"))
		}
	}

	// Inventory over IPMI: mc info works (firmware 9.08 from bmc.emu).
	code, out, _ = runReal(t, cmd("inventory", "lab-02", "--json")...)
	if j := decodeBMCJSON(t, out); code != 0 || j.Nodes[0].Status != "ok" {
		t.Errorf("inventory: exit %d %+v", code, j)
	}

	// BIOS over IPMI: a clear "unsupported", not a crash.
	code, out, _ = runReal(t, cmd("bios", "apply", "lab-01")...)
	if code != 1 || !strings.Contains(out, "lab-01  unsupported") {
		t.Errorf("bios apply over IPMI: exit %d", code)
	}
}

func TestIPMISimBMCFailureKinds(t *testing.T) {
	needSimTools(t)
	a := startIPMISim(t, "bmcA", "127.0.0.41")
	b := startIPMISim(t, "bmcB", "127.0.0.42")
	w := startIPMISim(t, "bmcW", "127.0.0.43")
	deadAddr := "127.0.0.44"
	deadPort := simFreePort(t, deadAddr) // nothing listens here
	nodes := []bmcTestNode{
		{name: "good-01", role: "controller, database, messaging, network", addr: a.addr, port: a.port},
		{name: "wrong-pw-03", addr: w.addr, port: w.port, secret: "bmc-wrong"},
		{name: "dead-04", addr: deadAddr, port: deadPort},
		{name: "good-02", addr: b.addr, port: b.port},
	}
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": simPassword, "bmc-wrong": "not-the-password"})
	base := []string{"--plan", planPath, "--secrets", secrets}

	before := runtime.NumGoroutine()
	start := time.Now()
	code, out, errs := runReal(t, append([]string{"bmc", "power", "on", "--all", "--json"}, base...)...)
	bmcNoGoroutineLeak(t, before)
	took := time.Since(start)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	j := decodeBMCJSON(t, out)
	want := map[string][2]string{"good-01": {"ok", ""}, "wrong-pw-03": {"failed", "auth"}, "dead-04": {"failed", "unreachable"}, "good-02": {"ok", ""}}
	for _, n := range j.Nodes {
		if w := want[n.Node]; n.Status != w[0] || n.Kind != w[1] {
			t.Errorf("%s: status %q kind %q (%s), want %v", n.Node, n.Status, n.Kind, n.Reason, w)
		}
		if n.Status == "ok" && n.Power != "on" {
			t.Errorf("%s: power %q", n.Node, n.Power)
		}
	}
	if j.Summary.OK != 2 || j.Summary.Failed != 2 {
		t.Errorf("summary %+v", j.Summary)
	}
	if a.file("power") != "1" || b.file("power") != "1" || w.file("power") == "1" {
		t.Errorf("power files: a=%q b=%q wrong-pw=%q", a.file("power"), b.file("power"), w.file("power"))
	}
	if strings.Contains(out+errs, "not-the-password") || strings.Contains(out+errs, simPassword) {
		t.Errorf("a password was printed")
	}
	if took > 20*time.Second {
		t.Errorf("run with an unreachable BMC took %v", took)
	}

	// The text summary names the failed nodes with their kinds.
	code, out, errs = runReal(t, append([]string{"bmc", "status", "--all"}, base...)...)
	for _, s := range []string{
		"2 ok, 2 failed\nfailed:\n",
		"  wrong-pw-03  auth         ",
		"  dead-04      unreachable  ",
		"wrong-pw-03  ipmi " + w.addr,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("status output lacks %q", s)
		}
	}
	if code != 1 || strings.Contains(out+errs, "not-the-password") || strings.Contains(out+errs, simPassword) {
		t.Errorf("status: exit %d", code)
	}
}

func TestIPMISimBMCTenParallelStagger(t *testing.T) {
	needSimTools(t)
	const n, parallel, stagger = 10, 3, 200 * time.Millisecond
	sims := make([]*ipmiSim, n)
	nodes := make([]bmcTestNode, n)
	for i := range sims {
		sims[i] = startIPMISim(t, fmt.Sprintf("bmc%02d", i), fmt.Sprintf("127.0.0.%d", 51+i))
		nodes[i] = bmcTestNode{name: fmt.Sprintf("node-%02d", i+1), addr: sims[i].addr, port: sims[i].port}
	}
	nodes[0].role = "controller, database, messaging, network"
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": simPassword})
	code, out, _ := runReal(t, "bmc", "power", "on", "--all", "--parallel", fmt.Sprint(parallel), "--stagger", stagger.String(),
		"--json", "--plan", planPath, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	j := decodeBMCJSON(t, out)
	if len(j.Nodes) != n || j.Summary.OK != n {
		t.Fatalf("summary %+v", j.Summary)
	}
	type span struct{ start, end time.Time }
	spans := make([]span, 0, n)
	for i, nd := range j.Nodes {
		if nd.Started.IsZero() || nd.Power != "on" || sims[i].file("power") != "1" {
			t.Errorf("%s: started %v power %q sim power %q", nd.Node, nd.Started, nd.Power, sims[i].file("power"))
		}
		d := time.Duration(nd.DurationMS * float64(time.Millisecond))
		spans = append(spans, span{nd.Started, nd.Started.Add(d)})
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	var gaps []time.Duration
	for i := 1; i < n; i++ {
		gap := spans[i].start.Sub(spans[i-1].start)
		gaps = append(gaps, gap.Round(time.Millisecond))
		// JSON times are wall clock with ns precision; allow 1ms for clock slew.
		if gap < stagger-time.Millisecond {
			t.Errorf("start gap %d = %v < --stagger %v", i, gap, stagger)
		}
	}
	peak := 0
	for _, s := range spans {
		c := 0
		for _, o := range spans {
			if !o.start.After(s.start) && o.end.After(s.start) {
				c++
			}
		}
		peak = max(peak, c)
	}
	t.Logf("start gaps %v; peak in flight %d; first start to last end %v", gaps, peak,
		spans[n-1].end.Sub(spans[0].start).Round(time.Millisecond))
	if peak > parallel {
		t.Errorf("peak in flight %d > --parallel %d", peak, parallel)
	}
	if total := spans[n-1].start.Sub(spans[0].start); total < time.Duration(n-1)*stagger-time.Millisecond {
		t.Errorf("starts spread over %v only", total)
	}
	var notRun error
	for _, s := range sims {
		if !strings.Contains(s.file("calls.log"), "set power 1") {
			notRun = errors.Join(notRun, fmt.Errorf("%s: no power on", s.addr))
		}
	}
	if notRun != nil {
		t.Error(notRun)
	}
}
