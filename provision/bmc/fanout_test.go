package bmc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeController is a hand-written Controller for fan-out tests. It records
// Open/Close calls in a shared ledger.
type fakeController struct {
	t       Target
	ledger  *ledger
	openErr error
	opened  bool
}

type ledger struct {
	mu     sync.Mutex
	opens  map[string]int
	closes map[string]int
}

func (l *ledger) nodesOpened() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.opens)
}

func newLedger() *ledger { return &ledger{opens: map[string]int{}, closes: map[string]int{}} }

func (l *ledger) add(m map[string]int, node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m[node]++
}

func (f *fakeController) Open(ctx context.Context) error {
	f.ledger.add(f.ledger.opens, f.t.Node)
	if f.openErr != nil {
		return f.openErr
	}
	if err := ctx.Err(); err != nil {
		return wrap(ctx, f.t.Node, "open", "", err)
	}
	f.opened = true
	return nil
}
func (f *fakeController) PowerState(context.Context) (string, error)                   { return "on", nil }
func (f *fakeController) Power(context.Context, PowerAction) error                     { return nil }
func (f *fakeController) SetBootDevice(context.Context, BootDevice, BootOptions) error { return nil }
func (f *fakeController) BIOS(context.Context) (map[string]string, error) {
	return nil, &Error{Kind: KindUnsupported, Err: errors.New("fake")}
}
func (f *fakeController) SetBIOS(context.Context, map[string]string) error { return nil }
func (f *fakeController) Inventory(context.Context) (Inventory, error)     { return Inventory{}, nil }
func (f *fakeController) Provider() string {
	if f.opened {
		return "fake"
	}
	return ""
}
func (f *fakeController) Close(context.Context) error {
	f.ledger.add(f.ledger.closes, f.t.Node)
	return nil
}

func targets(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{Node: fmt.Sprintf("n%02d", i), Address: "127.0.0.1", User: "u", Password: "p"}
	}
	return ts
}

// waitGoroutines waits (bounded) for the goroutine count to fall to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutine leak: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunParallelOrderAndClose(t *testing.T) {
	base := runtime.NumGoroutine()
	led := newLedger()
	ts := targets(20)
	var inflight, peak atomic.Int32
	const parallel = 4
	var progressCalls atomic.Int32
	results := Run(t.Context(), ts, FanOut[string]{
		Parallel: parallel,
		Progress: func(done, total int, r Result[string]) {
			if total != 20 || done < 1 || done > 20 {
				t.Errorf("progress %d/%d", done, total)
			}
			progressCalls.Add(1)
		},
	}, func(tg Target) Controller {
		c := &fakeController{t: tg, ledger: led}
		if tg.Node == "n03" {
			c.openErr = &Error{Node: tg.Node, Op: "open", Kind: KindAuth, Err: errors.New("bad password")}
		}
		return c
	}, func(ctx context.Context, c Controller) (string, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond) // work, not synchronisation
		st, err := c.PowerState(ctx)
		return c.Provider() + ":" + st, err
	})
	if len(results) != len(ts) {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range results {
		if r.Node != ts[i].Node {
			t.Errorf("result %d is %s, want %s (input order)", i, r.Node, ts[i].Node)
		}
		if r.Node == "n03" {
			if r.Kind != KindAuth || !errors.Is(r.Err, ErrAuth) || r.Provider != "" {
				t.Errorf("n03: %+v", r)
			}
			continue
		}
		if r.Err != nil || r.Value != "fake:on" || r.Kind != KindNone || r.Provider != "fake" || r.Started.IsZero() {
			t.Errorf("%s: %+v", r.Node, r)
		}
	}
	if p := peak.Load(); p > parallel {
		t.Errorf("peak in flight %d > Parallel %d", p, parallel)
	} else if p < 2 {
		t.Errorf("peak in flight %d: no parallelism at all", p)
	}
	if progressCalls.Load() != 20 {
		t.Errorf("progress called %d times", progressCalls.Load())
	}
	for _, tg := range ts {
		if led.opens[tg.Node] != 1 || led.closes[tg.Node] != 1 {
			t.Errorf("%s: opens %d closes %d, want 1/1", tg.Node, led.opens[tg.Node], led.closes[tg.Node])
		}
	}
	waitGoroutines(t, base)
}

func TestRunStagger(t *testing.T) {
	led := newLedger()
	const stagger = 30 * time.Millisecond
	results := Run(t.Context(), targets(6), FanOut[struct{}]{Parallel: 6, Stagger: stagger},
		func(tg Target) Controller { return &fakeController{t: tg, ledger: led} },
		func(context.Context, Controller) (struct{}, error) { return struct{}{}, nil })
	starts := make([]time.Time, 0, len(results))
	for _, r := range results {
		starts = append(starts, r.Started)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < stagger {
			t.Errorf("start %d came %v after the previous one, want >= %v", i, gap, stagger)
		}
	}
	if total := starts[len(starts)-1].Sub(starts[0]); total > 5*stagger+500*time.Millisecond {
		t.Errorf("stagger too slow: %v", total)
	}
}

func TestRunCancel(t *testing.T) {
	base := runtime.NumGoroutine()
	led := newLedger()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ts := targets(10)
	results := Run(ctx, ts, FanOut[int]{
		Parallel: 2,
		Progress: func(done, total int, r Result[int]) {
			if done == 2 {
				cancel()
			}
		},
	}, func(tg Target) Controller { return &fakeController{t: tg, ledger: led} },
		func(ctx context.Context, c Controller) (int, error) {
			// the first two nodes finish at once; later ones wait for cancellation
			if led.nodesOpened() <= 2 {
				return 1, nil
			}
			select {
			case <-ctx.Done():
				return 0, wrap(ctx, "", "op", "", ctx.Err())
			case <-time.After(5 * time.Second):
				return 0, errors.New("not cancelled")
			}
		})
	var ok, canceled, notStarted int
	for i, r := range results {
		if r.Node != ts[i].Node {
			t.Errorf("order: %d is %s", i, r.Node)
		}
		switch {
		case r.Err == nil:
			ok++
		case r.Kind == KindCanceled && errors.Is(r.Err, ErrCanceled):
			canceled++
			if r.Started.IsZero() {
				notStarted++
				if led.opens[r.Node] != 0 {
					t.Errorf("%s not started but opened", r.Node)
				}
			}
		default:
			t.Errorf("%s: unexpected %v (%v)", r.Node, r.Err, r.Kind)
		}
	}
	if ok < 2 || notStarted == 0 || ok+canceled != len(ts) {
		t.Errorf("ok %d canceled %d notStarted %d", ok, canceled, notStarted)
	}
	for node, n := range led.opens {
		if led.closes[node] != n {
			t.Errorf("%s opened %d closed %d", node, n, led.closes[node])
		}
	}
	waitGoroutines(t, base)
}

func TestDoClosesOnPanicAndError(t *testing.T) {
	led := newLedger()
	c := &fakeController{t: Target{Node: "p"}, ledger: led}
	_, err, _ := Do(t.Context(), c, func(context.Context, Controller) (int, error) { panic("boom") })
	if err == nil || led.closes["p"] != 1 {
		t.Fatalf("panic: err %v closes %d", err, led.closes["p"])
	}
	c2 := &fakeController{t: Target{Node: "e"}, ledger: led, openErr: &Error{Kind: KindUnreachable, Err: errors.New("x")}}
	_, err, _ = Do(t.Context(), c2, func(context.Context, Controller) (int, error) {
		t.Fatal("op ran after failed open")
		return 0, nil
	})
	if Kind(err) != KindUnreachable || led.closes["e"] != 1 {
		t.Fatalf("open error: %v closes %d", err, led.closes["e"])
	}
}

func TestRunEmptyAndPreCancelled(t *testing.T) {
	if r := Run(t.Context(), nil, FanOut[int]{}, nil, nil); len(r) != 0 {
		t.Fatalf("empty: %v", r)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	led := newLedger()
	rs := Run(ctx, targets(3), FanOut[int]{}, func(tg Target) Controller { return &fakeController{t: tg, ledger: led} },
		func(context.Context, Controller) (int, error) { return 1, nil })
	for _, r := range rs {
		if r.Kind != KindCanceled || !r.Started.IsZero() {
			t.Errorf("%s: %+v", r.Node, r)
		}
	}
	if len(led.opens) != 0 {
		t.Errorf("opened after cancel: %v", led.opens)
	}
}
