package main

import (
	"context"
	"log/slog"
	"maps"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/orchestrate"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

// planSecrets is the secrets file as the orchestrator reads it.
type planSecrets struct{ s *plan.Secrets }

func (p planSecrets) Lookup(name string) (string, bool) { return p.s.Lookup(name) }

// TestRoleSelectionSameEverywhere: --role a,b selects the same nodes in
// racklift bmc, racklift install (through the admin API into the real
// orchestrator) and the API itself (issue 20: they used to disagree).
func TestRoleSelectionSameEverywhere(t *testing.T) {
	nodes := []bmcTestNode{
		{name: "lab-01", role: "controller", addr: "127.0.0.1", port: 9001},
		{name: "lab-02", role: "compute", addr: "127.0.0.2", port: 9002},
		{name: "lab-03", role: "monitoring", addr: "127.0.0.3", port: 9003},
		{name: "lab-04", role: "compute", addr: "127.0.0.4", port: 9004},
	}
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword})
	const roles = "compute,controller"
	want := []string{"lab-01", "lab-02", "lab-04"}

	// racklift bmc status --role compute,controller
	code, out, errs := bmcRun{fake: newFakeBMCs()}.run(t, "status", "--role", roles, "--plan", planPath, "--secrets", secrets, "--json")
	if code != 0 {
		t.Fatalf("bmc status: exit %d\n%s%s", code, out, errs)
	}
	var got []string
	for _, n := range decodeBMCJSON(t, out).Nodes {
		got = append(got, n.Node)
	}
	if code != 0 || !slices.Equal(got, want) {
		t.Errorf("bmc --role %s: exit %d, nodes %v, want %v", roles, code, got, want)
	}

	// racklift install --role compute,controller, into the orchestrator.
	p, _, err := loadPlanPath(context.Background(), planPath, plan.Options{})
	if err != nil || p == nil {
		t.Fatalf("plan: %v", err)
	}
	store, err := events.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	orch := orchestrate.New(p, store, nil, nil, orchestrate.Config{Tick: time.Hour}, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer((&webui.API{Plan: p, Store: store, Control: orch, Token: "tok-role-test-1234567890"}).Handler())
	defer srv.Close()
	vars := map[string]string{"RACKLIFT_SERVER": srv.URL, "RACKLIFT_TOKEN": "tok-role-test-1234567890"}
	code, out, errs = runCmd(t, vars, "install", "--role", roles)
	m := regexp.MustCompile(`node\(s\): (.*)`).FindStringSubmatch(out)
	if code != 0 || m == nil || !slices.Equal(strings.Fields(m[1]), want) {
		t.Errorf("install --role %s: exit %d, %q %s, want %v", roles, code, out, errs, want)
	}
	// The plan's own resolution, which the API uses.
	sel, _, _, err := webui.Selection{Role: roles}.Plan()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := p.Select(sel)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, n := range ns {
		got = append(got, n.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Plan.Select: %v, want %v", got, want)
	}
	// A role no node has is refused the same way by both commands.
	_, _, berr := bmcRun{fake: newFakeBMCs()}.run(t, "status", "--role", "network", "--plan", planPath, "--secrets", secrets)
	_, _, ierr := runCmd(t, vars, "install", "--role", "network")
	for _, e := range []string{berr, ierr} {
		if !strings.Contains(e, "no node in the plan has role network") {
			t.Errorf("unknown role: %q", e)
		}
	}
}

// TestBIOSMismatchSameOutcome: a BMC that takes the BIOS baseline but never
// applies it fails the node in racklift bmc bios apply and in the
// orchestrator's install alike, with the same reason (issue 20: the CLI
// failed it and the orchestrator went on).
func TestBIOSMismatchSameOutcome(t *testing.T) {
	nodes := []bmcTestNode{{name: "lab-01", addr: "127.0.0.1", port: 9001, bios: "virtualization: true"}}
	planPath, secretsPath := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword})
	dell := map[string]string{"SysProfile": "PerfOptimized", "BootMode": "Uefi", "ProcVirtualization": "Disabled"}
	const reason = "does not read back the baseline: ProcVirtualization=\"DisabledByPolicy\" (want \"Enabled\")"
	stuck := map[string]string{"ProcVirtualization": "DisabledByPolicy"}

	f := newFakeBMCs()
	f.bios["lab-01"], f.stuck["lab-01"] = maps.Clone(dell), stuck
	code, out, _ := bmcRun{fake: f}.run(t, "bios", "apply", "lab-01", "--plan", planPath, "--secrets", secretsPath)
	if code != exitFailed || !strings.Contains(out, reason) {
		t.Errorf("bmc bios apply: exit %d, want 1 with %q:\n%s", code, reason, out)
	}

	p, _, err := loadPlanPath(context.Background(), planPath, plan.Options{})
	if err != nil || p == nil {
		t.Fatalf("plan: %v", err)
	}
	sec, err := plan.LoadSecrets(secretsPath, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	store, err := events.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	f2 := newFakeBMCs()
	f2.bios["lab-01"], f2.stuck["lab-01"] = maps.Clone(dell), stuck
	orch := orchestrate.New(p, store, f2.factory(bmc.Options{}), planSecrets{sec}, orchestrate.Config{Tick: time.Hour, Stagger: time.Millisecond},
		slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- orch.Run(ctx) }()
	if _, err := orch.StartRun(ctx, plan.Selection{Nodes: []string{"lab-01"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	var st events.NodeState
	for ctx.Err() == nil {
		st, _, _ = store.Node(ctx, "lab-01")
		if st.Phase == events.PhaseFailed || st.Phase == events.PhasePoweringOn {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st.Phase != events.PhaseFailed || !strings.Contains(st.FailedReason, reason) {
		t.Errorf("orchestrator: %s %q, want failed with %q", st.Phase, st.FailedReason, reason)
	}
	if slices.Contains(f2.actions, "lab-01 power on") {
		t.Errorf("the orchestrator powered the node on with a BIOS that differs from its plan: %v", f2.actions)
	}
	cancel()
	<-done
}
