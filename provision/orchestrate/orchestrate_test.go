package orchestrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/provision/verify/verifytest"
)

const testPlan = `cluster: {name: t, profile: p, ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyTestKeyTestKeyTestKey0 t"], ha: false}
networks:
  - {name: mgmt, purpose: management, provisioning: true, cidr: 10.1.0.0/24, allocate: {default: 10.1.0.100}}
defaults:
  disks: {os: {path: /dev/vda}}
  bmc: {driver: ipmi, user: admin, password_secret: bmc}
nodes:
  - {name: n-01, roles: [compute], mac: "52:54:00:00:00:01", bmc: {address: 127.0.0.1, port: 7001}}
  - {name: n-02, roles: [compute], mac: "52:54:00:00:00:02", bmc: {address: 127.0.0.2, port: 7002}}
  - {name: n-03, roles: [compute], mac: "52:54:00:00:00:03", bmc: {address: 127.0.0.3, port: 7003}}
  - {name: n-04, roles: [compute], mac: "52:54:00:00:00:04"}
`

// planAndStore loads testPlan and opens a fresh event store, closed when
// the test ends (closing it earlier is fine).
func planAndStore(t *testing.T) (*plan.Plan, *events.Store) {
	t.Helper()
	p, ds := plan.Load("t.yaml", []byte(testPlan), plan.Options{})
	if p == nil {
		t.Fatal(ds.Err())
	}
	store, err := events.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return p, store
}

// fakeBMCs records what the orchestrator asked of each node's BMC.
type fakeBMCs struct {
	mu     sync.Mutex
	calls  []string
	at     map[string]time.Time // "node call" → time of its latest call
	power  map[string]string
	fail   map[string]error
	opens  int
	closes int
}

type fakeCtl struct {
	f *fakeBMCs
	t bmc.Target
}

func (f *fakeBMCs) factory(t bmc.Target) bmc.Controller { return &fakeCtl{f: f, t: t} }

func (f *fakeBMCs) log(node, call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, node+" "+call)
	if f.at == nil {
		f.at = map[string]time.Time{}
	}
	f.at[node+" "+call] = time.Now()
}

func (f *fakeBMCs) callsOf(node string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if n, rest, _ := strings.Cut(c, " "); n == node {
			out = append(out, rest)
		}
	}
	return strings.Join(out, ",")
}

func (c *fakeCtl) Open(context.Context) error {
	c.f.mu.Lock()
	c.f.opens++
	err := c.f.fail[c.t.Node]
	c.f.mu.Unlock()
	if c.t.Password != "pw" {
		return errors.New("password not passed through")
	}
	return err
}
func (c *fakeCtl) PowerState(context.Context) (string, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if p := c.f.power[c.t.Node]; p != "" {
		return p, nil
	}
	return "off", nil
}
func (c *fakeCtl) Power(_ context.Context, a bmc.PowerAction) error {
	c.f.log(c.t.Node, "power-"+string(a))
	return nil
}
func (c *fakeCtl) SetBootDevice(_ context.Context, d bmc.BootDevice, o bmc.BootOptions) error {
	c.f.log(c.t.Node, fmt.Sprintf("boot-%s-persistent=%v-efi=%v", d, o.Persistent, o.EFI))
	return nil
}
func (c *fakeCtl) BIOS(context.Context) (map[string]string, error)  { return nil, bmc.ErrUnsupported }
func (c *fakeCtl) SetBIOS(context.Context, map[string]string) error { return bmc.ErrUnsupported }
func (c *fakeCtl) Inventory(context.Context) (bmc.Inventory, error) { return bmc.Inventory{}, nil }
func (c *fakeCtl) Provider() string                                 { return "fake" }
func (c *fakeCtl) Close(context.Context) error {
	c.f.mu.Lock()
	c.f.closes++
	c.f.mu.Unlock()
	return nil
}

type secrets struct{}

func (secrets) Lookup(name string) (string, bool) { return "pw", name == "bmc" }

type harness struct {
	o     *Orchestrator
	store *events.Store
	bmcs  *fakeBMCs
	p     *plan.Plan
	stop  func()
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	p, store := planAndStore(t)
	f := &fakeBMCs{power: map[string]string{"n-02": "on"}, fail: map[string]error{}}
	log := slog.New(slog.DiscardHandler)
	o := New(p, store, f.factory, secrets{}, cfg, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	h := &harness{o: o, store: store, bmcs: f, p: p}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return")
			}
			_ = store.Close()
		})
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) waitPhase(t *testing.T, node string, want events.Phase) events.NodeState {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, ok, err := h.store.Node(context.Background(), node)
		if err != nil {
			t.Fatal(err)
		}
		if ok && st.Phase == want {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, _, _ := h.store.Node(context.Background(), node)
	t.Fatalf("%s: phase %q, want %q (last: %s %s)", node, st.Phase, want, st.LastEvent.Type, st.LastEvent.Detail)
	return st
}

// saveFacts stores the facts of node as planned, changed by change.
func (h *harness) saveFacts(t *testing.T, node string, change func(*nodeapi.Facts)) {
	t.Helper()
	n, _ := h.p.NodeByName(node)
	f := verifytest.FactsFor(h.p, n)
	if change != nil {
		change(f)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.SaveFacts(context.Background(), node, b); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) record(t *testing.T, node string, ph events.Phase) {
	t.Helper()
	if _, err := h.store.Record(context.Background(), events.Event{Node: node, Source: events.SourceInstaller, Type: "install.test", Phase: ph, Percent: -1}); err != nil {
		t.Fatal(err)
	}
}

func TestRunPowersNodesOnWithOneTimePXE(t *testing.T) {
	h := newHarness(t, Config{Stagger: 30 * time.Millisecond, Tick: time.Hour})
	ctx := context.Background()
	if _, err := h.o.StartRun(ctx, plan.Selection{All: true}, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n-01", "n-02", "n-03", "n-04"} {
		h.waitPhase(t, n, events.PhasePoweringOn)
	}
	if got := h.bmcs.callsOf("n-01"); got != "boot-pxe-persistent=false-efi=true,power-on" {
		t.Errorf("n-01 (off): %s", got)
	}
	if got := h.bmcs.callsOf("n-02"); got != "boot-pxe-persistent=false-efi=true,power-cycle" {
		t.Errorf("n-02 (already on) must be cycled: %s", got)
	}
	evs, _ := h.store.NodeEvents(ctx, "n-04", 10)
	if len(evs) != 1 || evs[0].Type != "orchestrator.manual-power" {
		t.Errorf("n-04 has no BMC: %+v", evs)
	}
	var kinds []string
	evs, _ = h.store.NodeEvents(ctx, "n-01", 10)
	for _, e := range evs {
		kinds = append(kinds, string(e.Phase))
	}
	if strings.Join(kinds, ",") != "bmc-checked,bios-ok,powering-on" {
		t.Errorf("n-01 phases: %v", kinds)
	}
	h.bmcs.mu.Lock()
	opens, closes := h.bmcs.opens, h.bmcs.closes
	h.bmcs.mu.Unlock()
	if opens != closes {
		t.Errorf("%d BMC sessions opened, %d closed", opens, closes)
	}
	// The power-on slots (recorded with each bmc.power event) are at
	// least the stagger apart, whatever order the nodes got there in.
	var slots []time.Time
	for _, n := range []string{"n-01", "n-02", "n-03"} {
		evs, _ := h.store.NodeEvents(ctx, n, 10)
		for _, e := range evs {
			if e.Type == "bmc.power" {
				at, err := time.Parse(time.RFC3339Nano, e.Attrs["slot"])
				if err != nil {
					t.Fatalf("%s: slot %q: %v", n, e.Attrs["slot"], err)
				}
				slots = append(slots, at)
			}
		}
	}
	slices.SortFunc(slots, time.Time.Compare)
	if len(slots) != 3 {
		t.Fatalf("power-on slots: %v", slots)
	}
	for i := 1; i < len(slots); i++ {
		if gap := slots[i].Sub(slots[i-1]); gap < 30*time.Millisecond {
			t.Errorf("power-ons %s apart, stagger is 30ms: %v", gap, slots)
		}
	}
	// A second run while one is active is refused.
	if _, err := h.o.StartRun(ctx, plan.Selection{Nodes: []string{"n-01"}}, 0, 0); err == nil {
		t.Error("second active run accepted")
	}
}

func TestInstalledNodeBootsLocallyUntilReinstall(t *testing.T) {
	h := newHarness(t, Config{Tick: time.Hour})
	ctx := context.Background()
	if a, _ := h.o.BootAction(ctx, "n-01"); a != nodeapi.BootInstall {
		t.Fatal("planned node must install")
	}
	h.record(t, "n-01", events.PhaseInstalled)
	if a, _ := h.o.BootAction(ctx, "n-01"); a != nodeapi.BootLocal {
		t.Fatal("installed node must boot locally")
	}
	// Its reboot goes through DHCP again: it must still boot locally.
	if _, err := h.store.Record(ctx, events.Event{Node: "n-01", Source: events.SourceDHCP, Type: "dhcp.ack", Phase: events.PhaseDHCP, Percent: -1}); err != nil {
		t.Fatal(err)
	}
	if a, _ := h.o.BootAction(ctx, "n-01"); a != nodeapi.BootLocal {
		t.Fatal("installed node that PXE boots again must still boot locally")
	}
	// Installed: the orchestrator sets the disk as persistent boot device.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.bmcs.callsOf("n-01"), "boot-disk-persistent=true") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(h.bmcs.callsOf("n-01"), "boot-disk-persistent=true") {
		t.Fatalf("boot device not set to disk: %s", h.bmcs.callsOf("n-01"))
	}
	// A run never reinstalls it.
	if _, err := h.o.StartRun(ctx, plan.Selection{Nodes: []string{"n-01"}}, 0, 0); err == nil {
		t.Fatal("run accepted an installed node")
	}
	if err := h.o.Reinstall(ctx, "n-01"); err != nil {
		t.Fatal(err)
	}
	h.waitPhase(t, "n-01", events.PhasePoweringOn)
	if a, _ := h.o.BootAction(ctx, "n-01"); a != nodeapi.BootInstall {
		t.Fatal("reinstalled node must install")
	}
}

func TestStalledNodeRetriedThenFailed(t *testing.T) {
	h := newHarness(t, Config{Tick: 20 * time.Millisecond, MaxRetries: 1,
		Stall: map[events.Phase]time.Duration{events.PhasePoweringOn: 150 * time.Millisecond}})
	ctx := context.Background()
	if _, err := h.o.StartRun(ctx, plan.Selection{Nodes: []string{"n-01"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	st := h.waitPhase(t, "n-01", events.PhaseFailed)
	if !strings.Contains(st.FailedReason, "stalled in powering-on") || !strings.Contains(st.FailedReason, "last event: bmc.power") {
		t.Errorf("reason: %q", st.FailedReason)
	}
	if got := h.bmcs.callsOf("n-01"); strings.Count(got, "boot-pxe") != 2 {
		t.Errorf("want the first attempt and one retry, got %s", got)
	}
	// The run ends (failed) once every node is ready or failed.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok, _ := h.store.ActiveRun(ctx); !ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	runs, _ := h.store.Runs(ctx, 1)
	if len(runs) != 1 || runs[0].State != events.RunFailed {
		t.Fatalf("runs: %+v", runs)
	}
	// Retry a failed node.
	if err := h.o.Retry(ctx, "n-01"); err != nil {
		t.Fatal(err)
	}
	h.waitPhase(t, "n-01", events.PhasePoweringOn)
}

func TestReadyRotatesTokenAndEndsRun(t *testing.T) {
	h := newHarness(t, Config{Tick: 20 * time.Millisecond})
	ctx := context.Background()
	tok, err := h.store.Token(ctx, "n-03")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.o.StartRun(ctx, plan.Selection{Nodes: []string{"n-03"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	h.waitPhase(t, "n-03", events.PhasePoweringOn)
	for _, ph := range []events.Phase{events.PhaseDHCP, events.PhaseInstalling, events.PhaseInstalled, events.PhaseFirstBoot} {
		h.record(t, "n-03", ph)
	}
	// It reports itself exactly as planned, then ready: it is verified.
	h.saveFacts(t, "n-03", nil)
	h.record(t, "n-03", events.PhaseReady)
	if st := h.waitPhase(t, "n-03", events.PhaseVerified); !strings.Contains(st.LastEvent.Detail, "matches the plan") {
		t.Errorf("verified with %q", st.LastEvent.Detail)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok, _ := h.store.NodeForToken(ctx, tok); !ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok, _ := h.store.NodeForToken(ctx, tok); ok {
		t.Fatal("token still valid after ready: callbacks could be replayed")
	}
	for time.Now().Before(deadline) {
		if runs, _ := h.store.Runs(ctx, 1); len(runs) == 1 && runs[0].State == events.RunSucceeded {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("run did not succeed")
}

func TestResumeAfterRestartSkipsBootingNodes(t *testing.T) {
	p, store := planAndStore(t)
	ctx := context.Background()
	// A previous process started a run and n-01 got as far as DHCP.
	if _, err := store.StartRun(ctx, runSelector{Nodes: []string{"n-01", "n-03"}}, runParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Record(ctx, events.Event{Node: "n-01", Source: events.SourceDHCP, Type: "dhcp.ack", Phase: events.PhaseDHCP, Percent: -1}); err != nil {
		t.Fatal(err)
	}
	f := &fakeBMCs{power: map[string]string{}, fail: map[string]error{}}
	o := New(p, store, f.factory, secrets{}, Config{Tick: time.Hour}, nil)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.callsOf("n-03") == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	_ = store.Close()
	if f.callsOf("n-03") == "" {
		t.Fatal("resumed run did not drive n-03")
	}
	if f.callsOf("n-01") != "" {
		t.Fatalf("n-01 was already booting and must not be power-cycled: %s", f.callsOf("n-01"))
	}
}

func TestBMCFailureFailsNodeWithReason(t *testing.T) {
	h := newHarness(t, Config{Tick: time.Hour})
	h.bmcs.mu.Lock()
	h.bmcs.fail["n-01"] = &bmc.Error{Node: "n-01", Op: "open", Kind: bmc.KindAuth, Err: bmc.ErrAuth}
	h.bmcs.mu.Unlock()
	if _, err := h.o.StartRun(context.Background(), plan.Selection{Nodes: []string{"n-01", "n-03"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	st := h.waitPhase(t, "n-01", events.PhaseFailed)
	if !strings.Contains(st.FailedReason, "auth") {
		t.Errorf("reason %q should name the error kind", st.FailedReason)
	}
	h.waitPhase(t, "n-03", events.PhasePoweringOn)
}

// TestRunLeavesBootingNodesAlone: a node that boots by itself before the
// staggered driver reaches it is not powered (and not moved back).
func TestRunLeavesBootingNodesAlone(t *testing.T) {
	h := newHarness(t, Config{Stagger: 300 * time.Millisecond, Parallel: 1, Tick: time.Hour})
	ctx := context.Background()
	if _, err := h.o.StartRun(ctx, plan.Selection{Nodes: []string{"n-01", "n-02", "n-03"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	h.record(t, "n-03", events.PhaseReady) // finished before its turn
	h.waitPhase(t, "n-02", events.PhasePoweringOn)
	time.Sleep(500 * time.Millisecond)
	if got := h.bmcs.callsOf("n-03"); got != "" {
		t.Fatalf("n-03 was powered after it was ready: %s", got)
	}
	// Ready without facts: it cannot be verified (and was not moved back).
	if st := h.waitPhase(t, "n-03", events.PhaseMismatch); !strings.Contains(st.FailedReason, "no facts") {
		t.Fatal(st.Phase, st.FailedReason)
	}
}

// TestVerifyMismatchNamesEachDifference: a ready node whose real state
// differs from its plan ends mismatch, one reason per difference, and the
// run that waited for it ends (failed, not succeeded).
func TestVerifyMismatchNamesEachDifference(t *testing.T) {
	h := newHarness(t, Config{Tick: 20 * time.Millisecond})
	ctx := context.Background()
	if _, err := h.o.StartRun(ctx, plan.Selection{Nodes: []string{"n-04"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	h.waitPhase(t, "n-04", events.PhasePoweringOn)
	h.saveFacts(t, "n-04", func(f *nodeapi.Facts) {
		f.Hostname = "localhost"
		f.Interfaces[0].MTU = 1400
	})
	h.record(t, "n-04", events.PhaseReady)
	st := h.waitPhase(t, "n-04", events.PhaseMismatch)
	for _, want := range []string{"hostname localhost, plan n-04", "MTU 1400, plan 1500"} {
		if !strings.Contains(st.FailedReason, want) {
			t.Errorf("mismatch reason %q lacks %q", st.FailedReason, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if runs, _ := h.store.Runs(ctx, 1); len(runs) == 1 && runs[0].State == events.RunFailed {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("run did not end failed")
}

// TestRestartRotatesReadyTokens: if racklift died between storing a node's
// ready event and rotating its token, the next start rotates it.
func TestRestartRotatesReadyTokens(t *testing.T) {
	p, store := planAndStore(t)
	ctx := context.Background()
	tok, _ := store.Token(ctx, "n-01")
	if _, err := store.Record(ctx, events.Event{Node: "n-01", Source: events.SourceInstaller, Type: "install.ready", Phase: events.PhaseReady, Percent: 100}); err != nil {
		t.Fatal(err)
	}
	o := New(p, store, nil, secrets{}, Config{Tick: time.Hour}, nil)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok, _ := store.NodeForToken(ctx, tok); !ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	defer store.Close()
	if _, ok, _ := store.NodeForToken(ctx, tok); ok {
		t.Fatal("the old token of a ready node is still valid after a restart")
	}
}

// A crash between the installer's report and the BMC call must not leave
// the node without the disk as boot device: the restart redoes it, and
// only where no later success is recorded.
func TestRestartRedoesBootFromDisk(t *testing.T) {
	p, store := planAndStore(t)
	defer store.Close()
	ctx := context.Background()
	rec := func(node string, src events.Source, typ string, ph events.Phase) {
		t.Helper()
		if _, err := store.Record(ctx, events.Event{Node: node, Source: src, Type: typ, Phase: ph, Percent: -1}); err != nil {
			t.Fatal(err)
		}
	}
	// n-01: installed, then the process died before the BMC call.
	rec("n-01", events.SourceInstaller, "install.installed", events.PhaseInstalled)
	// n-02: installed, boot device set, and now in first boot.
	rec("n-02", events.SourceInstaller, "install.installed", events.PhaseInstalled)
	rec("n-02", events.SourceBMC, bootDevDiskEvent, events.PhaseNone)
	rec("n-02", events.SourceInstaller, "install.first-boot", events.PhaseFirstBoot)
	// n-03: set once, then reinstalled, and died again before the call.
	rec("n-03", events.SourceInstaller, "install.installed", events.PhaseInstalled)
	rec("n-03", events.SourceBMC, bootDevDiskEvent, events.PhaseNone)
	rec("n-03", events.SourceOrchestrator, "orchestrator.power-on", events.PhasePoweringOn)
	rec("n-03", events.SourceInstaller, "install.installed", events.PhaseInstalled)
	// n-04 has no BMC.
	rec("n-04", events.SourceInstaller, "install.installed", events.PhaseInstalled)

	f := &fakeBMCs{power: map[string]string{}, fail: map[string]error{}}
	o := New(p, store, f.factory, secrets{}, Config{Tick: time.Hour}, slog.New(slog.DiscardHandler))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- o.Run(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (f.callsOf("n-01") == "" || f.callsOf("n-03") == "") {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // n-02 would have been called by now too
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n-01": "boot-disk-persistent=true-efi=true", "n-02": "", "n-03": "boot-disk-persistent=true-efi=true", "n-04": ""}
	for node, w := range want {
		if got := f.callsOf(node); got != w {
			t.Errorf("%s: BMC calls %q, want %q", node, got, w)
		}
	}
}

func TestPacerSpacesSlots(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	now := t0
	var waited []time.Duration
	p := pacer{
		now: func() time.Time { return now },
		after: func(d time.Duration) <-chan time.Time {
			waited = append(waited, d)
			ch := make(chan time.Time, 1)
			ch <- now.Add(d)
			return ch
		},
	}
	ctx := context.Background()
	gap := 2 * time.Second
	// Three callers at the same instant get t0, t0+2s, t0+4s.
	for i, want := range []time.Duration{0, 2 * time.Second, 4 * time.Second} {
		slot, err := p.wait(ctx, gap)
		if err != nil || !slot.Equal(t0.Add(want)) {
			t.Fatalf("caller %d: slot %v, %v; want t0+%s", i, slot, err, want)
		}
	}
	if len(waited) != 2 || waited[0] != 2*time.Second || waited[1] != 4*time.Second {
		t.Errorf("waits %v, want [2s 4s]", waited)
	}
	// Long after the last slot: no wait.
	now = t0.Add(time.Minute)
	if slot, _ := p.wait(ctx, gap); !slot.Equal(now) || len(waited) != 2 {
		t.Errorf("idle pacer: slot %v, waits %v", slot, waited)
	}
	// A cancelled wait returns the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	p.after = func(time.Duration) <-chan time.Time { return nil }
	if _, err := p.wait(cctx, gap); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}

// The wait for a power-on slot comes before the one-time PXE setting, so
// the boot flag is used at once (IPMI BMCs drop it after 60 s).
func TestPowerSlotWaitIsBeforeOneTimePXE(t *testing.T) {
	h := newHarness(t, Config{Stagger: 200 * time.Millisecond, Tick: time.Hour})
	ctx := context.Background()
	// Three retries at once (no launch stagger): their BMC work is done
	// together, and the pacer makes two of them wait 200 and 400 ms.
	for _, n := range []string{"n-01", "n-02", "n-03"} {
		h.record(t, n, events.PhaseFailed)
	}
	for _, n := range []string{"n-01", "n-02", "n-03"} {
		if err := h.o.Retry(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"n-01", "n-02", "n-03"} {
		h.waitPhase(t, n, events.PhasePoweringOn)
	}
	h.bmcs.mu.Lock()
	defer h.bmcs.mu.Unlock()
	for _, n := range []string{"n-01", "n-02", "n-03"} {
		pxe, ok := h.bmcs.at[n+" boot-pxe-persistent=false-efi=true"]
		var power time.Time
		for call, at := range h.bmcs.at {
			if strings.HasPrefix(call, n+" power-") {
				power = at
			}
		}
		if !ok || power.IsZero() {
			t.Fatalf("%s: calls %v", n, h.bmcs.calls)
		}
		if d := power.Sub(pxe); d < 0 || d > 150*time.Millisecond {
			t.Errorf("%s: power-on %s after the one-time PXE setting; the slot wait must come first", n, d)
		}
	}
}

// A run started through the API just before Run looks for a run to resume
// (serve starts both at once) is the same run: it is driven once, so no
// node is powered twice.
func TestRunStartedBeforeResumeIsDrivenOnce(t *testing.T) {
	p, store := planAndStore(t)
	f := &fakeBMCs{power: map[string]string{}, fail: map[string]error{}}
	o := New(p, store, f.factory, secrets{}, Config{Stagger: time.Millisecond, Tick: time.Hour}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := o.StartRun(ctx, plan.Selection{All: true}, 0, 0); err != nil {
		t.Fatal(err)
	}
	// The run's driver has powered every node before Run gets to look.
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range []string{"n-01", "n-02", "n-03", "n-04"} {
		for {
			st, ok, err := store.Node(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			if ok && st.Phase == events.PhasePoweringOn {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never reached powering-on", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()
	time.Sleep(300 * time.Millisecond) // a second driver would have powered the nodes again by now
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n-01", "n-02", "n-03"} {
		if got := f.callsOf(n); strings.Count(got, "power-") != 1 {
			t.Errorf("%s: BMC calls %q, want one power-on", n, got)
		}
	}
	evs, err := store.NodeEvents(context.Background(), "n-04", 10)
	if err != nil || len(evs) != 1 {
		t.Errorf("n-04 (no BMC): %d events, want one manual-power: %+v, %v", len(evs), evs, err)
	}
}

// TestManualNodeKeepsItsAttemptToken: a node without a BMC may fetch its
// files (and so its token) while the run is still starting; the run's
// power-on note must not take that token away (the crash test saw
// "forbidden" callbacks from it). Putting the node back to planned does.
func TestManualNodeKeepsItsAttemptToken(t *testing.T) {
	h := newHarness(t, Config{Tick: 20 * time.Millisecond})
	ctx := context.Background()
	tok, err := h.store.Token(ctx, "n-04")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.o.StartRun(ctx, plan.Selection{Nodes: []string{"n-04"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	h.waitPhase(t, "n-04", events.PhasePoweringOn)
	if _, ok, _ := h.store.NodeForToken(ctx, tok); !ok {
		t.Fatal("the manual power-on note rotated the token the node already had")
	}
	h.record(t, "n-04", events.PhaseFailed)
	if err := h.o.Retry(ctx, "n-04"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := h.store.NodeForToken(ctx, tok); ok {
		t.Fatal("a retried node still accepts its failed attempt's token")
	}
}
