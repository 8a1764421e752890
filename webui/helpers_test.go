package webui_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

// testPlan is a generated site with 3 controllers, 2 network, 3 storage and
// the given number of compute nodes.
func testPlan(t testing.TB, computes int) *plan.Plan {
	t.Helper()
	var buf bytes.Buffer
	if err := plan.WriteSite(&buf, "cs", plan.SiteSize{Controllers: 3, Network: 2, Storage: 3, Compute: computes}); err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load("cs.yaml", buf.Bytes(), plan.Options{})
	if p == nil {
		t.Fatalf("generated plan does not load:\n%v", ds)
	}
	return p
}

// openStore opens a real event store in dir, closed when the test ends.
func openStore(t testing.TB, dir string) *events.Store {
	t.Helper()
	s, err := events.Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// call is one request the fake orchestrator received.
type call struct {
	Op, Node, Arg string
	Sel           plan.Selection
	Parallel      int
	Stagger       time.Duration
}

// fakeControl stands in for the orchestrator: it records each call and,
// like the real one, records an event for it in the store.
type fakeControl struct {
	store *events.Store

	mu     sync.Mutex
	calls  []call
	refuse error // when set, node actions fail with it
}

func (f *fakeControl) add(c call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

// Calls returns a copy of the calls so far.
func (f *fakeControl) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func (f *fakeControl) refused() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refuse
}

func (f *fakeControl) StartRun(ctx context.Context, sel plan.Selection, parallel int, stagger time.Duration) (events.Run, error) {
	f.add(call{Op: "start", Sel: sel, Parallel: parallel, Stagger: stagger})
	return f.store.StartRun(ctx, sel, map[string]any{"parallel": parallel})
}

func (f *fakeControl) StopRun(ctx context.Context) error {
	f.add(call{Op: "stop"})
	run, ok, err := f.store.ActiveRun(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("no active run")
	}
	_, err = f.store.EndRun(ctx, run.ID, events.RunCancelled)
	return err
}

func (f *fakeControl) nodeEvent(ctx context.Context, op, node, arg string, ev events.Event) error {
	f.add(call{Op: op, Node: node, Arg: arg})
	if err := f.refused(); err != nil {
		return err
	}
	ev.Node = node
	_, err := f.store.Record(ctx, ev)
	return err
}

func (f *fakeControl) Reinstall(ctx context.Context, node string) error {
	return f.nodeEvent(ctx, "reinstall", node, "", events.Event{Source: events.SourceOrchestrator, Type: "orchestrator.reinstall",
		Phase: events.PhasePoweringOn, Percent: -1, Detail: "reinstall requested from the dashboard"})
}

func (f *fakeControl) Retry(ctx context.Context, node string) error {
	return f.nodeEvent(ctx, "retry", node, "", events.Event{Source: events.SourceOrchestrator, Type: "orchestrator.retry",
		Phase: events.PhasePoweringOn, Percent: -1, Detail: "retry requested from the dashboard"})
}

func (f *fakeControl) Power(ctx context.Context, node, action string) error {
	return f.nodeEvent(ctx, "power", node, action, events.Event{Source: events.SourceBMC, Type: "bmc.power",
		Percent: -1, Detail: "power " + action + " requested from the dashboard", Attrs: map[string]string{"action": action}})
}

// fakeFiles serves one review file per node, already masked.
type fakeFiles struct{}

func (fakeFiles) FileNames(*plan.Node) []string { return []string{"ks.cfg"} }

func (fakeFiles) ReviewFile(_ context.Context, n *plan.Node, name string) ([]byte, error) {
	if name != "ks.cfg" {
		return nil, fs.ErrNotExist
	}
	return fmt.Appendf(nil, "# kickstart for %s <script>alert(1)</script>\nrootpw --iscrypted ********\nnetwork --hostname=%s\n", n.Name, n.Name), nil
}

// newAPI wires the real API to a store and the fakes.
func newAPI(p *plan.Plan, store *events.Store, ctl webui.Control) *webui.API {
	return &webui.API{
		Plan:      p,
		Store:     store,
		Control:   ctl,
		Files:     fakeFiles{},
		Version:   "test",
		Static:    webui.Static(),
		Started:   time.Now().UTC(),
		Heartbeat: time.Second,
	}
}

// record stores an event or fails the test.
func record(t testing.TB, s *events.Store, ev events.Event) events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.Record(ctx, ev)
	if err != nil {
		t.Fatalf("record %+v: %v", ev, err)
	}
	return out
}
