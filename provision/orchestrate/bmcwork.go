package orchestrate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// target builds the BMC target of a node, resolving its password.
func (o *Orchestrator) target(n *plan.Node) (bmc.Target, error) {
	return bmc.TargetFor(n, o.secrets)
}

// claim marks a node busy; false if BMC work is already in flight for it.
func (o *Orchestrator) claim(node string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.busy[node] {
		return false
	}
	o.busy[node] = true
	return true
}

func (o *Orchestrator) release(node string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.busy, node)
}

// prepare does a node's BMC work: credential check, BIOS baseline,
// one-time PXE, power on (or cycle when already on).
func (o *Orchestrator) prepare(ctx context.Context, name, why string) {
	n, ok := o.plan.NodeByName(name)
	if !ok || !o.claim(name) {
		return
	}
	defer o.release(name)
	if why == "start" {
		if st, ok, err := o.store.Node(ctx, name); err == nil && ok && phaseAfterPowerOn(st.Phase) {
			return // it booted by itself meanwhile
		}
	}
	if n.BMC == nil || o.newBMC == nil {
		// No rotation here: racklift does not know when a hand-powered
		// node boots, and it may already have fetched its files (with
		// this attempt's token) while the run was starting. Its earlier
		// attempts' tokens died when it was put back to planned.
		o.record(ctx, events.Event{Node: name, MAC: n.MAC, Type: "orchestrator.manual-power", Phase: events.PhasePoweringOn,
			Detail: "no BMC: power the node on by hand and let it PXE boot"})
		return
	}
	t, err := o.target(n)
	if err != nil {
		o.record(ctx, events.Event{Node: name, MAC: n.MAC, Type: "orchestrator.failed", Phase: events.PhaseFailed, Detail: err.Error()})
		return
	}
	// The BMC timeout does not count the wait for a power-on slot, at
	// most one stagger per node in flight.
	gap, parallel := o.pacing()
	bctx, cancel := context.WithTimeout(ctx, o.cfg.BMCTimeout+time.Duration(parallel)*gap)
	defer cancel()
	c := o.newBMC(t)
	start := o.now()
	_, err, closeErr := bmc.Do(bctx, c, func(ctx context.Context, c bmc.Controller) (struct{}, error) {
		return struct{}{}, o.drive(ctx, n, c, start, why)
	})
	if closeErr != nil {
		o.log.Warn("bmc session close", "node", name, "err", closeErr)
	}
	if err != nil && ctx.Err() == nil {
		kind := bmc.Kind(err)
		o.recordBMC(ctx, events.Event{Node: name, MAC: n.MAC, Type: "bmc.failed", Phase: events.PhaseFailed,
			Detail: fmt.Sprintf("BMC %s: %s", kind, err), Attrs: map[string]string{"kind": kind.String(), "bmc": n.BMC.Address}})
	}
}

func (o *Orchestrator) drive(ctx context.Context, n *plan.Node, c bmc.Controller, start time.Time, why string) error {
	power, err := c.PowerState(ctx)
	if err != nil {
		return fmt.Errorf("power state: %w", err)
	}
	o.recordBMC(ctx, events.Event{Node: n.Name, MAC: n.MAC, Type: "bmc.checked", Phase: events.PhaseBMCChecked,
		Detail: fmt.Sprintf("credentials OK via %s, power %s", c.Provider(), power),
		Attrs:  map[string]string{"provider": c.Provider(), "power": power, "ms": fmt.Sprint(o.now().Sub(start).Milliseconds())}})
	if b := bmc.BaselineFor(n); b.Requested() {
		diff, err := bmc.EnsureBaseline(ctx, c, n.Name, b)
		switch {
		case bmc.Kind(err) == bmc.KindUnsupported:
			o.recordBMC(ctx, events.Event{Node: n.Name, MAC: n.MAC, Type: "bmc.bios-unsupported", Phase: events.PhaseBIOSOK, Detail: "BIOS settings not supported by this BMC: check them by hand"})
		case err != nil:
			return fmt.Errorf("BIOS baseline: %w", err)
		default:
			o.recordBMC(ctx, events.Event{Node: n.Name, MAC: n.MAC, Type: "bmc.bios", Phase: events.PhaseBIOSOK, Detail: diffSummary(diff)})
		}
	} else {
		o.recordBMC(ctx, events.Event{Node: n.Name, MAC: n.MAC, Type: "bmc.bios", Phase: events.PhaseBIOSOK, Detail: "no BIOS changes requested"})
	}
	// Wait for the power-on slot before the one-time boot device: IPMI
	// BMCs drop a one-time boot flag that is not used within 60 s.
	gap, _ := o.pacing()
	slot, err := o.pacer.wait(ctx, gap)
	if err != nil {
		return fmt.Errorf("waiting for the power-on slot: %w", err)
	}
	if err := c.SetBootDevice(ctx, bmc.BootPXE, bmc.BootOptions{EFI: n.BIOS.UEFI()}); err != nil {
		return fmt.Errorf("one-time PXE: %w", err)
	}
	action := bmc.PowerOn
	if strings.EqualFold(power, "on") {
		action = bmc.PowerCycle
	}
	o.newToken(ctx, n.Name) // a new attempt: a token of an earlier one is worth nothing
	if err := c.Power(ctx, action); err != nil {
		return fmt.Errorf("power %s: %w", action, err)
	}
	o.recordBMC(ctx, events.Event{Node: n.Name, MAC: n.MAC, Type: "bmc.power", Phase: events.PhasePoweringOn,
		Detail: fmt.Sprintf("one-time PXE set, power %s (%s)", action, why),
		Attrs: map[string]string{"action": string(action), "ms": fmt.Sprint(o.now().Sub(start).Milliseconds()),
			"slot": slot.UTC().Format(time.RFC3339Nano)}})
	return nil
}

// newToken gives the node a new callback token for the attempt that is
// about to start (its files are rendered with it when fetched).
func (o *Orchestrator) newToken(ctx context.Context, node string) {
	if _, err := o.store.RotateToken(ctx, node); err != nil {
		o.log.Error("rotate token", "node", node, "err", err)
	}
}

// pacing is the minimum time between two power-ons and how many nodes
// may be in BMC work at once: the active run's, else the configured ones.
func (o *Orchestrator) pacing() (gap time.Duration, parallel int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.run != nil {
		return o.run.stagger, o.run.parallel
	}
	return o.cfg.Stagger, o.cfg.Parallel
}

// pacer hands out power-on slots at least a gap apart, to every worker:
// BMC work takes a different time on each node, so starting it staggered
// does not keep power-ons apart (inrush current, a burst of DHCP).
type pacer struct {
	mu   sync.Mutex
	next time.Time // earliest free slot
	// now and after are time.Now and time.After; tests replace them.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time
}

// wait reserves the next slot (now, or gap after the previous one,
// whichever is later), waits for it and returns it. A cancelled wait
// leaves its slot unused.
func (p *pacer) wait(ctx context.Context, gap time.Duration) (time.Time, error) {
	now, after := time.Now, time.After
	if p.now != nil {
		now, after = p.now, p.after
	}
	p.mu.Lock()
	t := now()
	slot := p.next
	if slot.Before(t) {
		slot = t
	}
	p.next = slot.Add(gap)
	p.mu.Unlock()
	if d := slot.Sub(t); d > 0 {
		select {
		case <-after(d):
		case <-ctx.Done():
			return slot, ctx.Err()
		}
	}
	return slot, nil
}

func diffSummary(d bmc.Diff) string {
	b, err := json.Marshal(d)
	if err != nil || len(b) > 400 {
		return "BIOS baseline applied"
	}
	return "BIOS baseline: " + string(b)
}

// Reinstall marks an installed node for reinstall and power-cycles it into
// the installer. This is the only way an installed node is installed again.
func (o *Orchestrator) Reinstall(ctx context.Context, node string) error {
	if _, ok := o.plan.NodeByName(node); !ok {
		return fmt.Errorf("no node %q", node)
	}
	o.record(ctx, events.Event{Node: node, Type: "orchestrator.reinstall", Phase: events.PhasePlanned, Detail: "reinstall requested by the operator"})
	o.goPrepare(node, "reinstall")
	return nil
}

// Retry power-cycles a failed node into the installer again.
func (o *Orchestrator) Retry(ctx context.Context, node string) error {
	st, ok, err := o.store.Node(ctx, node)
	if err != nil {
		return err
	}
	if !ok || st.Phase != events.PhaseFailed {
		return fmt.Errorf("node %s is not failed (phase %q)", node, st.Phase)
	}
	o.record(ctx, events.Event{Node: node, Type: "orchestrator.retry", Phase: events.PhasePlanned, Detail: "retry requested by the operator"})
	o.goPrepare(node, "retry")
	return nil
}

// Power runs one power action on a node's BMC.
func (o *Orchestrator) Power(ctx context.Context, node, action string) error {
	n, ok := o.plan.NodeByName(node)
	if !ok {
		return fmt.Errorf("no node %q", node)
	}
	a := bmc.PowerAction(action)
	if err := a.Validate(); err != nil {
		return err
	}
	if n.BMC == nil || o.newBMC == nil {
		return fmt.Errorf("node %s has no BMC", node)
	}
	t, err := o.target(n)
	if err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, o.cfg.BMCTimeout)
	defer cancel()
	_, err, _ = bmc.Do(bctx, o.newBMC(t), func(ctx context.Context, c bmc.Controller) (struct{}, error) {
		return struct{}{}, c.Power(ctx, a)
	})
	if err != nil {
		return fmt.Errorf("power %s %s: %w", action, node, err)
	}
	o.recordBMC(ctx, events.Event{Node: node, MAC: n.MAC, Type: "bmc.power", Detail: "power " + action + " by the operator"})
	return nil
}

func (o *Orchestrator) goPrepare(node, why string) {
	o.mu.Lock()
	base := o.baseCtx
	o.mu.Unlock()
	if base == nil {
		base = context.Background()
	}
	o.workers.Add(1)
	go func() {
		defer o.workers.Done()
		o.prepare(base, node, why)
	}()
}

// bootDevDiskEvent records that a node's BMC now boots it from disk.
const bootDevDiskEvent = "bmc.bootdev-disk"

func (o *Orchestrator) bootFromDisk(ctx context.Context, n *plan.Node) {
	t, err := o.target(n)
	if err != nil {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, o.cfg.BMCTimeout)
	defer cancel()
	_, err, _ = bmc.Do(bctx, o.newBMC(t), func(ctx context.Context, c bmc.Controller) (struct{}, error) {
		return struct{}{}, c.SetBootDevice(ctx, bmc.BootDisk, bmc.BootOptions{Persistent: true, EFI: n.BIOS.UEFI()})
	})
	if err != nil {
		o.recordBMC(ctx, events.Event{Node: n.Name, MAC: n.MAC, Type: "bmc.bootdev-disk-failed", Detail: "could not set disk as boot device (the local-boot script still protects it): " + err.Error()})
		return
	}
	o.recordBMC(ctx, events.Event{Node: n.Name, MAC: n.MAC, Type: bootDevDiskEvent, Detail: "boot device set to disk"})
}
