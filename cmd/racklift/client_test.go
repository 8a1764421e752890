package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

type fakeControl struct {
	mu    sync.Mutex
	store *events.Store
	calls []string
}

func (f *fakeControl) StartRun(ctx context.Context, sel plan.Selection, _ int, _ time.Duration) (events.Run, error) {
	f.mu.Lock()
	f.calls = append(f.calls, "run")
	f.mu.Unlock()
	if len(sel.Nodes) == 1 && sel.Nodes[0] == "busy" {
		return events.Run{}, errors.New("a run is already active")
	}
	return f.store.StartRun(ctx, map[string][]string{"nodes": {"lab-01", "lab-02"}}, map[string]any{"roles": sel.Roles})
}
func (f *fakeControl) StopRun(context.Context) error { return nil }
func (f *fakeControl) Reinstall(_ context.Context, n string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "reinstall "+n)
	return nil
}
func (f *fakeControl) Retry(context.Context, string) error         { return nil }
func (f *fakeControl) Power(context.Context, string, string) error { return nil }

func startAPI(t *testing.T, token string) (*httptest.Server, *events.Store, *fakeControl) {
	t.Helper()
	data, _, _ := loadPlanPath(context.Background(), "example:lab", plan.Options{})
	store, err := events.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	fc := &fakeControl{store: store}
	api := &webui.API{Plan: data, Store: store, Control: fc, Token: token, TokenRequired: token != "", Heartbeat: 50 * time.Millisecond}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv, store, fc
}

func TestInstallStatusReinstall(t *testing.T) {
	srv, store, fc := startAPI(t, "sekrit-admin-token")
	ctx := context.Background()
	for _, ph := range []events.Phase{events.PhasePoweringOn, events.PhaseDHCP, events.PhaseInstalling} {
		if _, err := store.Record(ctx, events.Event{Node: "lab-01", Source: events.SourceInstaller, Type: "t", Phase: ph, Percent: 50}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Record(ctx, events.Event{Node: "lab-02", Source: events.SourceOrchestrator, Type: "orchestrator.failed", Phase: events.PhaseFailed, Percent: -1, Detail: "stalled in dhcp for 5m0s"}); err != nil {
		t.Fatal(err)
	}
	// Without the token: refused.
	if code, _, errs := runCmd(t, nil, "status", "--server", srv.URL, "--state-dir", t.TempDir()); code != exitFailed || !strings.Contains(errs, "admin token required") {
		t.Fatalf("no token: %d %s", code, errs)
	}
	env := map[string]string{"RACKLIFT_TOKEN": "sekrit-admin-token", "RACKLIFT_SERVER": srv.URL}
	code, out, _ := runCmd(t, env, "status")
	if code != exitFailed { // a failed node makes status exit 1
		t.Fatalf("status exit %d", code)
	}
	for _, want := range []string{"lab-01", "installing", "[###########.........]  55%", "FAILED: stalled in dhcp", "3 nodes: failed 1, installing 1, planned 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if code, out, errs := runCmd(t, env, "install", "--all"); code != 0 || !strings.Contains(out, "run 1 started: 2 node(s): lab-01 lab-02") {
		t.Fatalf("install: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCmd(t, env, "install", "busy"); code != exitFailed || !strings.Contains(errs, "already active") {
		t.Fatalf("second run: %d %s", code, errs)
	}
	if code, _, errs := runCmd(t, env, "install"); code != exitUsage || !strings.Contains(errs, "exactly one of") {
		t.Fatalf("no selection: %d %s", code, errs)
	}
	if code, _, errs := runCmd(t, env, "reinstall", "lab-01"); code != exitUsage || !strings.Contains(errs, "--yes") {
		t.Fatalf("reinstall without --yes: %d %s", code, errs)
	}
	if code, _, errs := runCmd(t, env, "reinstall", "lab-01", "--yes"); code != 0 {
		t.Fatalf("reinstall: %d %s", code, errs)
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if strings.Join(fc.calls, ",") != "run,run,reinstall lab-01" {
		t.Fatalf("calls: %v", fc.calls)
	}
}

func TestStatusWatchEndsWhenNodesDone(t *testing.T) {
	srv, store, _ := startAPI(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		time.Sleep(200 * time.Millisecond)
		for _, n := range []string{"lab-01", "lab-02", "lab-03"} {
			_, _ = store.Record(ctx, events.Event{Node: n, Source: events.SourceInstaller, Type: "install.ready", Phase: events.PhaseReady, Percent: 100})
		}
		// Ready is not the end: the watch goes on until each is verified.
		time.Sleep(300 * time.Millisecond)
		for _, n := range []string{"lab-01", "lab-02", "lab-03"} {
			_, _ = store.Record(ctx, events.Event{Node: n, Source: events.SourceOrchestrator, Type: "verify.ok", Phase: events.PhaseVerified, Percent: -1})
		}
	}()
	c := &apiFlags{server: srv.URL}
	var out syncBuffer
	e := &env{stdout: &out, stderr: &out, lookupEnv: func(string) (string, bool) { return "", false }}
	if code := watchStatus(ctx, c.client(), e, nil, true); code != exitOK {
		t.Fatalf("watch exit %d:\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "3 nodes: verified 3") {
		t.Fatal(out.String())
	}
}

func TestStatusListsUnplannedMachines(t *testing.T) {
	srv, store, _ := startAPI(t, "")
	ctx := context.Background()
	env := map[string]string{"RACKLIFT_SERVER": srv.URL}
	if _, out, _ := runCmd(t, env, "status"); strings.Contains(out, "not in the plan") {
		t.Fatalf("status lists unplanned machines before any:\n%s", out)
	}
	p, _, _ := loadPlanPath(context.Background(), "example:lab", plan.Options{})
	n := p.Nodes[0]
	mac := []byte(n.MAC)
	mac[len(mac)-1] ^= 0x01 // its card's other port (last digit 0..9 in the lab plan)
	if _, ok := p.NodeByMAC(string(mac)); ok {
		t.Fatalf("%s is in the lab plan; pick another MAC", mac)
	}
	if _, err := store.Record(ctx, events.Event{MAC: string(mac), Source: events.SourceDHCP, Type: "dhcp.ignore", Percent: -1,
		Attrs: map[string]string{"firmware": "bios", "arch": "0", "reason": "MAC not in plan"}}); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runCmd(t, env, "status")
	for _, want := range []string{"1 machine(s) not in the plan asked for a network boot", string(mac), "bios",
		"probably " + n.Name + ": 1 from its MAC " + n.MAC + " (another port of the same card?)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// Asking about given nodes leaves the list out.
	if _, out, _ := runCmd(t, env, "status", n.Name); strings.Contains(out, "not in the plan") {
		t.Errorf("status %s lists unplanned machines:\n%s", n.Name, out)
	}
}
