package bmc

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultParallel is FanOut.Parallel's default.
const DefaultParallel = 8

// FanOut configures Run.
type FanOut[T any] struct {
	// Parallel bounds how many nodes are worked on at once. Zero or less
	// means DefaultParallel.
	Parallel int
	// Stagger is the minimum time between two successive node starts, to
	// spread power-on inrush and the DHCP/PXE storm that follows. Zero
	// starts nodes as fast as Parallel allows.
	Stagger time.Duration
	// Progress, if set, is called once per node as it finishes (or is
	// skipped because ctx ended), with the number of finished nodes so far.
	// Calls are serialised; keep them short, they hold up other reports.
	Progress func(done, total int, r Result[T])
}

// Result is one node's outcome in a Run.
type Result[T any] struct {
	// Node is Target.Node.
	Node string
	// Provider is the bmclib provider that served the node ("" if Open failed).
	Provider string
	// Value is what the operation returned (zero on error).
	Value T
	// Err is the node's error: from Open or from the operation. Nil on success.
	Err error
	// Kind is Kind(Err).
	Kind ErrorKind
	// CloseErr is the error from closing the session, if any. It does not
	// make the node fail, but a BMC that could not end a session may run
	// out of session slots.
	CloseErr error
	// Started is when the node was started; zero if it never was (ctx ended first).
	Started time.Time
	// Duration is how long the node took, Close included.
	Duration time.Duration
}

// Op is an operation run against an open Controller.
type Op[T any] func(ctx context.Context, c Controller) (T, error)

// Do opens c, runs fn, and closes c whatever happens (on a fresh bounded
// context if ctx is done, as Controller.Close promises). A panic in fn is
// turned into an error after c is closed. closeErr is Close's error.
func Do[T any](ctx context.Context, c Controller, fn Op[T]) (v T, err, closeErr error) {
	defer func() {
		if p := recover(); p != nil {
			var zero T
			v, err = zero, &Error{Op: "run", Kind: KindBMC, Err: fmt.Errorf("panic in bmc operation: %v", p)}
		}
		closeErr = c.Close(ctx)
	}()
	if err := c.Open(ctx); err != nil {
		var zero T
		return zero, err, nil
	}
	v, err = fn(ctx, c)
	return v, err, nil
}

// Run runs fn on every target's Controller (made by newController, one per
// node, never shared) with at most opts.Parallel nodes in flight and at
// least opts.Stagger between successive starts. It returns one Result per
// target, in input order, after every started node has finished and closed
// its session. When ctx ends, nodes not yet started get a Result with
// KindCanceled (or KindTimeout for a deadline) and are not contacted;
// running nodes see the cancelled ctx.
func Run[T any](ctx context.Context, targets []Target, opts FanOut[T], newController func(Target) Controller, fn Op[T]) []Result[T] {
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	total := len(targets)
	results := make([]Result[T], total)

	var mu sync.Mutex
	done := 0
	report := func(i int, r Result[T]) {
		mu.Lock()
		defer mu.Unlock()
		results[i] = r
		done++
		if opts.Progress != nil {
			opts.Progress(done, total, r)
		}
	}

	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	var last time.Time
	next := 0
dispatch:
	for ; next < total; next++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break dispatch
		}
		if wait := time.Until(last.Add(opts.Stagger)); next > 0 && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil { // select picks at random when both are ready
			<-sem
			break
		}
		last = time.Now()
		wg.Add(1)
		go func(i int, t Target, started time.Time) {
			defer wg.Done()
			defer func() { <-sem }()
			r := Result[T]{Node: t.Node, Started: started}
			c := newController(t)
			r.Value, r.Err, r.CloseErr = Do(ctx, c, fn)
			if e, ok := r.Err.(*Error); ok && e.Node == "" {
				e.Node = t.Node
			}
			r.Provider = c.Provider()
			r.Kind = Kind(r.Err)
			r.Duration = time.Since(started)
			report(i, r)
		}(next, targets[next], last)
	}
	for ; next < total; next++ {
		t := targets[next]
		err := wrap(ctx, t.Node, "start", "", ctx.Err())
		report(next, Result[T]{Node: t.Node, Err: err, Kind: Kind(err)})
	}
	wg.Wait()
	return results
}
