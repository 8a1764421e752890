package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/bmc"
)

func TestBMCSelection(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	base := []string{"--plan", planPath, "--secrets", secrets}
	cases := []struct {
		name  string
		args  []string
		vars  map[string]string
		code  int
		nodes []string // nodes contacted
		in    string
	}{
		{"names", []string{"status", "lab-02", "lab-01"}, nil, 0, []string{"lab-01", "lab-02"}, "2 ok, 0 failed"},
		{"role", []string{"status", "--role", "controller"}, nil, 0, []string{"lab-01"}, "1 ok, 0 failed"},
		{"roles", []string{"status", "--role", "controller,compute"}, nil, 0, []string{"lab-01", "lab-02", "lab-03"}, "3 ok, 0 failed, 1 skipped"},
		{"all", []string{"status", "--all"}, nil, 0, []string{"lab-01", "lab-02", "lab-03"}, "3 ok, 0 failed, 1 skipped"},
		{"nothing selected", []string{"status"}, nil, 2, nil, "select nodes"},
		{"two ways", []string{"status", "lab-01", "--all"}, nil, 2, nil, "one way only"},
		{"unknown node", []string{"status", "lab-01", "lab-99"}, nil, 2, nil, "no node named lab-99"},
		{"unknown role", []string{"status", "--role", "kitchen"}, nil, 2, nil, `unknown role "kitchen"`},
		{"empty role", []string{"status", "--role", "storage"}, nil, 2, nil, "no node in the plan has role storage"},
		{"RACKLIFT_ALL is ignored", []string{"status"}, map[string]string{"RACKLIFT_ALL": "true"}, 2, nil, "select nodes"},
		{"RACKLIFT_ROLE is ignored", []string{"status", "lab-01"}, map[string]string{"RACKLIFT_ROLE": "compute"}, 0, []string{"lab-01"}, "1 ok"},
		{"no plan", []string{"status", "--all"}, nil, 2, nil, "--plan FILE is required"},
		{"bad parallel", []string{"status", "--all", "--parallel", "0"}, nil, 2, nil, "--parallel 0"},
		{"bad action", []string{"power", "explode", "lab-01"}, nil, 2, nil, `want a power action (on, off, soft, cycle, reset), got "explode"`},
		{"no action", []string{"bootdev"}, nil, 2, nil, "want a boot device"},
		{"unknown subcommand", []string{"frob"}, nil, 2, nil, `unknown subcommand "frob"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeBMCs()
			args := append(append([]string{}, c.args...), base...)
			switch c.name {
			case "unknown subcommand":
				args = c.args
			case "no plan":
				args = append(append([]string{}, c.args...), "--secrets", secrets)
			}
			code, out, errs := bmcRun{fake: f, vars: c.vars}.run(t, args...)
			if code != c.code || !strings.Contains(out+errs, c.in) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, c.code, c.in, out, errs)
			}
			got := slices.Sorted(maps.Keys(f.opens))
			if !slices.Equal(got, c.nodes) {
				t.Errorf("contacted %v, want %v", got, c.nodes)
			}
		})
	}
}

func TestBMCPlanFromEnvAndExample(t *testing.T) {
	planPath, _ := bmcStdFiles(t)
	f := newFakeBMCs()
	// Plan path and password from the environment only.
	vars := map[string]string{"RACKLIFT_PLAN": planPath, "RACKLIFT_SECRET_BMC_LAB": "from-env",
		"RACKLIFT_SECRET_ROOT_HASH": bmcRootHash}
	code, out, errs := bmcRun{fake: f, vars: vars}.run(t, "status", "lab-02")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if pw := f.targets["lab-02"].Password; pw != "from-env" {
		t.Errorf("password %q, want the env secret", pw)
	}
	// The embedded lab example works like other commands' --plan.
	f = newFakeBMCs()
	code, out, errs = bmcRun{fake: f, vars: map[string]string{"RACKLIFT_SECRET_BMC_LAB": "pw", "RACKLIFT_SECRET_ROOT_HASH": bmcRootHash}}.
		run(t, "power", "on", "--all", "--plan", "example:lab")
	if code != 0 || len(f.opens) != 3 {
		t.Fatalf("exit %d opens %v\n%s%s", code, f.opens, out, errs)
	}
	if tg := f.targets["lab-03"]; tg.Address != "127.0.0.3" || tg.Port != 9003 || tg.Driver != bmc.DriverIPMI || tg.User != "admin" {
		t.Errorf("lab-03 target %v", tg)
	}
}

func TestBMCPowerConfirmation(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	base := []string{"--plan", planPath, "--secrets", secrets}
	cases := []struct {
		name    string
		args    []string
		r       bmcRun
		code    int
		actions int
		in      string
	}{
		{"off several, no terminal", []string{"power", "off", "--all"}, bmcRun{}, 2, 0, "Add --yes"},
		{"cycle by role, no terminal", []string{"power", "cycle", "--role", "compute"}, bmcRun{}, 2, 0, "refusing to power cycle 2 nodes"},
		{"reset two names", []string{"power", "reset", "lab-01", "lab-02"}, bmcRun{}, 2, 0, "refusing"},
		{"soft several", []string{"power", "soft", "lab-01", "lab-02"}, bmcRun{}, 2, 0, "refusing"},
		{"off several --yes", []string{"power", "off", "--all", "--yes"}, bmcRun{}, 0, 6, "3 ok, 0 failed, 1 skipped"},
		{"RACKLIFT_YES is ignored", []string{"power", "off", "--all"}, bmcRun{vars: map[string]string{"RACKLIFT_YES": "true"}}, 2, 0, "refusing"},
		{"off one node", []string{"power", "off", "lab-02"}, bmcRun{}, 0, 2, "1 ok, 0 failed"},
		{"off one node with BMC among skipped", []string{"power", "off", "lab-02", "lab-04"}, bmcRun{}, 0, 2, "1 ok, 0 failed, 1 skipped"},
		{"on several", []string{"power", "on", "--all"}, bmcRun{}, 0, 6, "3 ok"},
		{"terminal, right name", []string{"power", "off", "--all"}, bmcRun{ttyIn: true, stdin: "lab\n"}, 0, 6, `Type the cluster name`},
		{"terminal, wrong name", []string{"power", "off", "--all"}, bmcRun{ttyIn: true, stdin: "yes\n"}, 2, 0, "did not match"},
		{"terminal, end of input", []string{"power", "off", "--all"}, bmcRun{ttyIn: true, stdin: ""}, 2, 0, "did not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.r
			r.fake = newFakeBMCs()
			code, out, errs := r.run(t, append(append([]string{}, c.args...), base...)...)
			if code != c.code || !strings.Contains(out+errs, c.in) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, c.code, c.in, out, errs)
			}
			if n := r.fake.countActions(); n != c.actions {
				t.Errorf("%d BMC calls, want %d: %v", n, c.actions, r.fake.actions)
			}
			if c.code == 2 && len(r.fake.opens) != 0 {
				t.Errorf("BMCs contacted although refused: %v", r.fake.opens)
			}
		})
	}
}

func TestBMCSummaryAndExitCodes(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	f := newFakeBMCs()
	f.openErr["lab-02"] = &bmc.Error{Node: "lab-02", Op: "open", Kind: bmc.KindAuth, Err: errors.New("RAKP 2 HMAC is invalid")}
	f.openErr["lab-03"] = &bmc.Error{Node: "lab-03", Op: "open", Kind: bmc.KindUnreachable, Err: errors.New("no answer to an IPMI RMCP request on 127.0.0.3:9003/udp")}
	code, out, errs := bmcRun{fake: f}.run(t, "status", "--all", "--plan", planPath, "--secrets", secrets)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	for _, want := range []string{
		"NODE    BMC                  REACHABLE  CREDENTIALS  POWER  PROVIDER  MODEL/SERIAL    TOOK",
		"lab-01  ipmi 127.0.0.1:9001  yes        yes          off    fake      FK-1/SN-lab-01",
		"lab-02  ipmi 127.0.0.2:9002  yes        no           -      -",
		"lab-03  ipmi 127.0.0.3:9003  no         ?            -      -",
		"lab-04  none                 -          -            -      -",
		"1 ok, 2 failed, 1 skipped (no BMC)",
		"lab-02  auth         open: auth: RAKP 2 HMAC is invalid",
		"lab-03  unreachable  open: unreachable: no answer to an IPMI RMCP request",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	// Non-terminal progress: one line per finished node.
	for _, want := range []string{"] lab-04 skipped: no BMC in the plan", "] lab-02 failed (auth) in", "] lab-01 ok in"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if n := strings.Count(errs, "racklift bmc: ["); n != 4 {
		t.Errorf("%d progress lines, want 4", n)
	}
	for _, n := range []string{"lab-01", "lab-02", "lab-03"} {
		if f.closes[n] != 1 {
			t.Errorf("%s closed %d times", n, f.closes[n])
		}
	}

	// A failure after Open (the BMC said no to the power action).
	f = newFakeBMCs()
	f.callErr["lab-01"] = &bmc.Error{Node: "lab-01", Op: "power on", Kind: bmc.KindBMC, Err: errors.New("node busy")}
	code, out, _ = bmcRun{fake: f}.run(t, "power", "on", "lab-01", "lab-02", "--plan", planPath, "--secrets", secrets)
	if code != 1 || !strings.Contains(out, "1 ok, 1 failed") || !strings.Contains(out, "lab-01  bmc  power on: bmc: node busy") {
		t.Errorf("exit %d\n%s", code, out)
	}
	// Only skipped nodes: nothing failed.
	code, out, _ = bmcRun{fake: newFakeBMCs()}.run(t, "power", "off", "lab-04", "--plan", planPath, "--secrets", secrets)
	if code != 0 || !strings.Contains(out, "0 ok, 0 failed, 1 skipped") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestBMCTerminalProgressBar(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	code, out, errs := bmcRun{fake: newFakeBMCs(), ttyErr: true}.run(t, "status", "--all", "--plan", planPath, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "\r\x1b[K[") || !strings.Contains(errs, "4/4 nodes  3 ok  0 failed") || strings.Contains(errs, "racklift bmc: [") {
		t.Errorf("stderr %q", errs)
	}
	if !strings.HasSuffix(errs, "\r\x1b[K") {
		t.Errorf("bar not cleared at the end: %q", errs)
	}
}

func TestBMCParallelAndStaggerFake(t *testing.T) {
	var nodes []bmcTestNode
	for i := 1; i <= 8; i++ {
		nodes = append(nodes, bmcTestNode{name: fmt.Sprintf("n-%02d", i), addr: fmt.Sprintf("127.0.0.%d", 10+i), port: 623})
	}
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": "pw"})
	f := newFakeBMCs()
	for _, n := range nodes {
		f.delay[n.name] = 60 * time.Millisecond
	}
	const stagger = 30 * time.Millisecond
	code, out, errs := bmcRun{fake: f}.run(t, "power", "on", "--all", "--parallel", "2", "--stagger", stagger.String(), "--json", "--plan", planPath, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	j := decodeBMCJSON(t, out)
	var starts []time.Time
	for _, n := range j.Nodes {
		starts = append(starts, n.Started)
	}
	slices.SortFunc(starts, time.Time.Compare)
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < stagger-time.Millisecond {
			t.Errorf("gap %d = %v < %v", i, gap, stagger)
		}
	}
	if f.peak > 2 {
		t.Errorf("peak in flight %d > 2", f.peak)
	}
}

func TestBMCHelp(t *testing.T) {
	code, out, _ := bmcRun{fake: newFakeBMCs()}.run(t, "help")
	if code != 0 || !strings.Contains(out, "racklift bmc power on|off|soft|cycle|reset") {
		t.Errorf("exit %d\n%s", code, out)
	}
	code, _, errs := bmcRun{fake: newFakeBMCs()}.run(t, "power", "-h")
	if code != 0 || !strings.Contains(errs, "-yes") {
		t.Errorf("exit %d\n%s", code, errs)
	}
	// Through the top-level dispatcher.
	var o, e bytes.Buffer
	code = run(context.Background(), []string{"bmc"}, &env{stdout: &o, stderr: &e, lookupEnv: func(string) (string, bool) { return "", false }})
	if code != 2 || !strings.Contains(e.String(), "racklift bmc status") {
		t.Errorf("exit %d\n%s", code, e.String())
	}
}

func TestBMCEmptyPasswordIsInvalid(t *testing.T) {
	nodes := bmcStdNodes()
	nodes[1].secret = "bmc-empty"
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword, "bmc-empty": ""})
	f := newFakeBMCs()
	code, out, errs := bmcRun{fake: f}.run(t, "status", "lab-01", "lab-02", "--plan", planPath, "--secrets", secrets)
	if code != 1 || !strings.Contains(out, "lab-02  invalid") || !strings.Contains(out, "1 ok, 1 failed") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if _, contacted := f.opens["lab-02"]; contacted || f.opens["lab-01"] != 1 {
		t.Errorf("opens %v", f.opens)
	}
	if !strings.Contains(errs, "lab-02 failed (invalid) (not started): BMC password secret \"bmc-empty\" is not set") {
		t.Errorf("stderr:\n%s", errs)
	}
}
