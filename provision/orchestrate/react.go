package orchestrate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/racklift/racklift/provision/events"
)

// Run resumes an active run left by a previous process, then watches
// events and stalls until ctx is done. It returns nil on shutdown.
func (o *Orchestrator) Run(ctx context.Context) error {
	o.mu.Lock()
	o.baseCtx = ctx
	o.mu.Unlock()
	defer o.workers.Wait()
	live := o.store.Subscribe(ctx)
	// Reactions to events are not replayed after a crash, so redo the ones
	// that matter for safety: a node that became ready must not accept its
	// old token (the process may have died before rotating it).
	// And an installed node must get the disk as its boot device even if
	// the process died between the installer's report and the BMC call.
	if states, err := o.store.Nodes(ctx); err == nil {
		for _, st := range states {
			if st.Phase == events.PhaseReady {
				if _, err := o.store.RotateToken(ctx, st.Name); err != nil {
					o.log.Error("rotate token", "node", st.Name, "err", err)
				}
			}
			o.redoBootFromDisk(ctx, st)
		}
	} else {
		return fmt.Errorf("read node states: %w", err)
	}
	if run, ok, err := o.store.ActiveRun(ctx); err != nil {
		return fmt.Errorf("resume run: %w", err)
	} else if ok {
		var sel runSelector
		var params runParams
		_ = json.Unmarshal(run.Selector, &sel)
		_ = json.Unmarshal(run.Params, &params)
		o.log.Info("resuming run", "run", run.ID, "nodes", len(sel.Nodes))
		o.startDriver(run.ID, sel.Nodes, params)
	}
	tick := time.NewTicker(o.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			o.mu.Lock()
			if o.run != nil {
				o.run.cancel()
			}
			o.mu.Unlock()
			return nil
		case ev, ok := <-live:
			if !ok {
				return nil
			}
			o.onEvent(ctx, ev)
		case <-tick.C:
			o.checkRun(ctx)
		}
	}
}

// onEvent reacts to phase changes reported by others.
func (o *Orchestrator) onEvent(ctx context.Context, ev events.Event) {
	if ev.Node == "" || ev.Source == events.SourceOrchestrator {
		return
	}
	switch ev.Phase {
	case events.PhaseInstalled:
		// The installer is done: make the disk the boot device, so the
		// reboot never lands in the installer again even if the BIOS
		// boot order has the network first.
		if n, ok := o.plan.NodeByName(ev.Node); ok && n.BMC != nil && o.newBMC != nil {
			o.workers.Add(1)
			go func() {
				defer o.workers.Done()
				o.bootFromDisk(ctx, n)
			}()
		}
	case events.PhaseReady:
		// Replay protection: the node's callback token is rotated once it is ready.
		if _, err := o.store.RotateToken(ctx, ev.Node); err != nil {
			o.log.Error("rotate token", "node", ev.Node, "err", err)
		}
	}
}

// redoBootFromDisk starts bootFromDisk for a node past the installed
// phase whose latest install was not followed by a successful
// "bmc.bootdev-disk" (crash, or a BMC that failed then).
func (o *Orchestrator) redoBootFromDisk(ctx context.Context, st events.NodeState) {
	switch st.Phase {
	case events.PhaseInstalled, events.PhaseRebooting, events.PhaseFirstBoot, events.PhaseReady:
	default:
		return
	}
	n, ok := o.plan.NodeByName(st.Name)
	if !ok || n.BMC == nil || o.newBMC == nil {
		return
	}
	evs, err := o.store.NodeEvents(ctx, st.Name, events.MaxLimit)
	if err != nil {
		o.log.Error("read node events", "node", st.Name, "err", err)
		return
	}
	for i := len(evs) - 1; i >= 0; i-- { // newest first
		switch {
		case evs[i].Type == bootDevDiskEvent:
			return
		case evs[i].Phase == events.PhaseInstalled:
			o.log.Info("boot device not yet set to disk: setting it now", "node", st.Name)
			o.workers.Add(1)
			go func() {
				defer o.workers.Done()
				o.bootFromDisk(ctx, n)
			}()
			return
		}
	}
}
