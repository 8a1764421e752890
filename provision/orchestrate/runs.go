package orchestrate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// runSelector is what a run stores so it can resume after a restart.
type runSelector struct {
	Nodes []string `json:"nodes"`
}

type runParams struct {
	Parallel int    `json:"parallel"`
	Stagger  string `json:"stagger"`
}

// StartRun starts installing the selected nodes. Nodes already installed
// are skipped (use Reinstall).
// parallel and stagger override the configured ones when > 0.
func (o *Orchestrator) StartRun(ctx context.Context, sel plan.Selection, parallel int, stagger time.Duration) (events.Run, error) {
	nodes, err := o.plan.Select(sel)
	if err != nil {
		return events.Run{}, err
	}
	if parallel < 0 || stagger < 0 {
		return events.Run{}, fmt.Errorf("parallel %d, stagger %s: cannot be negative", parallel, stagger)
	}
	params := runParams{Parallel: parallel}
	if stagger > 0 {
		params.Stagger = stagger.String()
	}
	var todo []string
	for _, n := range nodes {
		name := n.Name
		st, ok, err := o.store.Node(ctx, name)
		if err != nil {
			return events.Run{}, err
		}
		if ok && st.Phase.Installed() {
			continue
		}
		if ok && st.Phase == events.PhaseFailed {
			// The operator asked for this node again: start it over.
			o.record(ctx, events.Event{Node: name, Type: "orchestrator.retry", Phase: events.PhasePlanned, Detail: "included in a new run"})
		}
		todo = append(todo, name)
	}
	if len(todo) == 0 {
		return events.Run{}, errors.New("every selected node is already installed (use reinstall)")
	}
	run, err := o.store.StartRun(ctx, runSelector{Nodes: todo}, params)
	if err != nil {
		return events.Run{}, err
	}
	o.log.Info("run started", "run", run.ID, "nodes", len(todo))
	o.startDriver(run.ID, todo, params)
	return run, nil
}

// StopRun cancels the active run: no further node is powered on; nodes
// already installing go on by themselves.
func (o *Orchestrator) StopRun(ctx context.Context) error {
	o.mu.Lock()
	r := o.run
	o.run = nil
	o.mu.Unlock()
	if r == nil {
		return errors.New("no active run")
	}
	r.cancel()
	_, err := o.store.EndRun(ctx, r.id, events.RunCancelled)
	o.log.Info("run stopped", "run", r.id)
	return err
}

// startDriver prepares the run's nodes in bounded, staggered parallel,
// skipping nodes that are already past power-on.
func (o *Orchestrator) startDriver(id int64, nodes []string, params runParams) {
	o.mu.Lock()
	base := o.baseCtx
	o.mu.Unlock()
	if base == nil {
		base = context.Background()
	}
	ctx, cancel := context.WithCancel(base)
	parallel, stagger := o.cfg.Parallel, o.cfg.Stagger
	if params.Parallel > 0 {
		parallel = params.Parallel
	}
	if d, err := time.ParseDuration(params.Stagger); err == nil && params.Stagger != "" {
		stagger = d
	}
	o.mu.Lock()
	if o.run != nil && o.run.id == id {
		// Already driven: a run started through the API while Run was
		// still starting up is also the active run Run resumes.
		o.mu.Unlock()
		cancel()
		return
	}
	o.run = &activeRun{id: id, nodes: nodes, stagger: stagger, parallel: parallel, cancel: cancel}
	o.mu.Unlock()
	o.workers.Add(1)
	go func() {
		defer o.workers.Done()
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		var last time.Time
		for _, name := range nodes {
			// A node that already got past power-on by itself (booted by
			// hand, or before a restart) is left alone: powering it would
			// restart an install that is going on, or undo a finished one.
			if st, ok, err := o.store.Node(ctx, name); err == nil && ok && phaseAfterPowerOn(st.Phase) {
				continue
			}
			n, _ := o.plan.NodeByName(name)
			manual := n == nil || n.BMC == nil || o.newBMC == nil
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
			if wait := stagger - time.Since(last); !manual && !last.IsZero() && wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					<-sem
					wg.Wait()
					return
				}
			}
			if !manual {
				last = time.Now()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				o.prepare(ctx, name, "start")
			}()
		}
		wg.Wait()
	}()
}

// phaseAfterPowerOn reports whether a node got past power-on by itself.
func phaseAfterPowerOn(p events.Phase) bool {
	switch p {
	case events.PhaseDHCP, events.PhaseIPXE, events.PhaseKernel, events.PhaseInstalling, events.PhaseFailed:
		return true
	}
	return p.Installed()
}

// checkRun finds stalled nodes of the active run, retries or fails them, and
// ends the run when every node is ready or failed.
func (o *Orchestrator) checkRun(ctx context.Context) {
	o.mu.Lock()
	r := o.run
	o.mu.Unlock()
	if r == nil {
		return
	}
	states, err := o.store.Nodes(ctx)
	if err != nil {
		o.log.Error("check run", "err", err)
		return
	}
	byName := map[string]events.NodeState{}
	for _, s := range states {
		byName[s.Name] = s
	}
	finished, failed := 0, 0
	for _, name := range r.nodes {
		st := byName[name]
		switch st.Phase {
		case events.PhaseReady:
			finished++
			continue
		case events.PhaseFailed:
			finished++
			failed++
			continue
		}
		limit := o.cfg.Stall[st.Phase]
		if limit <= 0 || st.Since.IsZero() || o.now().Sub(st.Since) < limit || o.isBusy(name) {
			continue
		}
		o.stalled(ctx, name, st, limit)
	}
	if finished == len(r.nodes) {
		state := events.RunSucceeded
		if failed > 0 {
			state = events.RunFailed
		}
		o.mu.Lock()
		if o.run == r {
			o.run = nil
		}
		o.mu.Unlock()
		r.cancel()
		if _, err := o.store.EndRun(ctx, r.id, state); err != nil {
			o.log.Error("end run", "run", r.id, "err", err)
		}
		o.log.Info("run ended", "run", r.id, "state", state, "failed", failed)
	}
}

func (o *Orchestrator) isBusy(node string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.busy[node]
}

func (o *Orchestrator) stalled(ctx context.Context, name string, st events.NodeState, limit time.Duration) {
	last := st.LastEvent.Type
	if st.LastEvent.Detail != "" {
		last += ": " + st.LastEvent.Detail
	}
	in := o.now().Sub(st.Since).Round(time.Second)
	if st.Attempts > o.cfg.MaxRetries {
		o.record(ctx, events.Event{Node: name, Type: "orchestrator.failed", Phase: events.PhaseFailed,
			Detail: fmt.Sprintf("stalled in %s for %s after %d attempts; last event: %s", st.Phase, in, st.Attempts, last)})
		return
	}
	o.record(ctx, events.Event{Node: name, Type: "orchestrator.stalled",
		Detail: fmt.Sprintf("no progress in %s for %s (limit %s); last event: %s; retrying (attempt %d of %d)", st.Phase, in, limit, last, st.Attempts+1, o.cfg.MaxRetries+1)})
	o.goPrepare(name, "retry after stall")
}
