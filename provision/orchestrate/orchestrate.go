// Package orchestrate drives installs. It is the only part of racklift that
// decides: boot services and BMCs report events, and the orchestrator reads
// each node's recorded state to choose the next step (check the BMC, apply
// the BIOS baseline, set a one-time PXE boot, power on, wait, retry a
// stalled node, set the disk as boot device once installed) and to answer
// the boot server's question "install, or boot from disk?".
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
	"time"

	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

// Store is what the orchestrator needs of the event store.
type Store interface {
	Record(ctx context.Context, ev events.Event) (events.Event, error)
	Node(ctx context.Context, name string) (events.NodeState, bool, error)
	Nodes(ctx context.Context) ([]events.NodeState, error)
	NodeEvents(ctx context.Context, node string, limit int) ([]events.Event, error)
	StartRun(ctx context.Context, selector, params any) (events.Run, error)
	EndRun(ctx context.Context, id int64, state events.RunState) (events.Run, error)
	ActiveRun(ctx context.Context) (events.Run, bool, error)
	RotateToken(ctx context.Context, node string) (string, error)
	Subscribe(ctx context.Context) <-chan events.Event
}

// Secrets resolves BMC passwords.
type Secrets interface {
	Lookup(name string) (string, bool)
}

// Config tunes the orchestrator. Zero values take the defaults below.
type Config struct {
	// Parallel bounds how many nodes are prepared (BMC work) at once. Default 8.
	Parallel int
	// Stagger is the minimum time between two power-ons (a run's own
	// stagger overrides it): BMC work starts that far apart, and the
	// power-on calls themselves are paced that far apart. Default 2 s.
	Stagger time.Duration
	// Stall is how long a node may stay in a phase before it is retried.
	// Missing phases take DefaultStall's value; a zero duration disables.
	Stall map[events.Phase]time.Duration
	// MaxRetries is how many times a stalled node is power-cycled before it
	// is failed. Default 2.
	MaxRetries int
	// Tick is how often stalls are checked. Default 5 s.
	Tick time.Duration
	// BMCTimeout bounds the BMC work of one node. Default 3 min.
	BMCTimeout time.Duration
}

// DefaultStall returns the stall timeouts per phase: generous, because
// real servers spend minutes in POST and memory checks.
func DefaultStall() map[events.Phase]time.Duration {
	return map[events.Phase]time.Duration{
		events.PhasePlanned:    0,
		events.PhaseBMCChecked: 10 * time.Minute,
		events.PhaseBIOSOK:     10 * time.Minute,
		events.PhasePoweringOn: 15 * time.Minute, // POST + PXE ROM until DHCP
		events.PhaseDHCP:       5 * time.Minute,
		events.PhaseIPXE:       10 * time.Minute,
		events.PhaseKernel:     15 * time.Minute,
		events.PhaseInstalling: 90 * time.Minute,
		events.PhaseInstalled:  20 * time.Minute,
		events.PhaseRebooting:  20 * time.Minute,
		events.PhaseFirstBoot:  30 * time.Minute,
	}
}

func (c Config) withDefaults() Config {
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.Stagger == 0 {
		c.Stagger = 2 * time.Second
	}
	st := DefaultStall()
	for p, d := range c.Stall {
		st[p] = d
	}
	c.Stall = st
	if c.MaxRetries == 0 {
		c.MaxRetries = 2
	}
	if c.Tick <= 0 {
		c.Tick = 5 * time.Second
	}
	if c.BMCTimeout <= 0 {
		c.BMCTimeout = 3 * time.Minute
	}
	return c
}

// Orchestrator drives install runs. Create it with New and call Run.
type Orchestrator struct {
	plan    *plan.Plan
	store   Store
	newBMC  func(bmc.Target) bmc.Controller
	secrets Secrets
	log     *slog.Logger
	cfg     Config
	now     func() time.Time

	mu      sync.Mutex
	run     *activeRun
	busy    map[string]bool // nodes with BMC work in flight
	pacer   pacer           // spaces power-on calls
	workers sync.WaitGroup
	baseCtx context.Context // Run's context; work started by API calls lives under it
}

type activeRun struct {
	id       int64
	nodes    []string
	stagger  time.Duration
	parallel int
	cancel   context.CancelFunc
}

// New returns an orchestrator. newBMC makes one BMC controller per node
// operation (bmclib clients are never shared); nil means nodes are powered
// by hand.
func New(p *plan.Plan, store Store, newBMC func(bmc.Target) bmc.Controller, secrets Secrets, cfg Config, log *slog.Logger) *Orchestrator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Orchestrator{plan: p, store: store, newBMC: newBMC, secrets: secrets, log: log, cfg: cfg.withDefaults(),
		now: time.Now, busy: map[string]bool{}}
}

// runSelector is what a run stores so it can resume after a restart.
type runSelector struct {
	Nodes []string `json:"nodes"`
}

type runParams struct {
	Parallel int    `json:"parallel"`
	Stagger  string `json:"stagger"`
}

// Select resolves a selection to plan node names, in plan order.
func (o *Orchestrator) Select(sel webui.Selection) ([]string, error) {
	var out []string
	switch {
	case sel.All:
		for _, n := range o.plan.Nodes {
			out = append(out, n.Name)
		}
	case sel.Role != "":
		for _, n := range o.plan.NodesWith(plan.Role(sel.Role)) {
			out = append(out, n.Name)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("no node has role %q", sel.Role)
		}
	case len(sel.Nodes) > 0:
		for _, name := range sel.Nodes {
			if _, ok := o.plan.NodeByName(name); !ok {
				return nil, fmt.Errorf("no node %q in the plan", name)
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	default:
		return nil, errors.New("select nodes: all, a role, or node names")
	}
	return out, nil
}

// StartRun starts installing the selected nodes. Nodes already installed
// are skipped (use Reinstall).
func (o *Orchestrator) StartRun(ctx context.Context, sel webui.Selection) (events.Run, error) {
	names, err := o.Select(sel)
	if err != nil {
		return events.Run{}, err
	}
	params := runParams{Parallel: sel.Parallel, Stagger: sel.Stagger}
	if sel.Stagger != "" {
		if _, err := time.ParseDuration(sel.Stagger); err != nil {
			return events.Run{}, fmt.Errorf("stagger %q: %w", sel.Stagger, err)
		}
	}
	var todo []string
	for _, name := range names {
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

// record stores an event the orchestrator decided on.
func (o *Orchestrator) record(ctx context.Context, ev events.Event) {
	o.recordFrom(ctx, events.SourceOrchestrator, ev)
}

// recordBMC stores what a BMC answered.
func (o *Orchestrator) recordBMC(ctx context.Context, ev events.Event) {
	o.recordFrom(ctx, events.SourceBMC, ev)
}

func (o *Orchestrator) recordFrom(ctx context.Context, src events.Source, ev events.Event) {
	ev.Source = src
	if ev.Percent == 0 {
		ev.Percent = -1
	}
	if _, err := o.store.Record(ctx, ev); err != nil {
		o.log.Error("record", "node", ev.Node, "type", ev.Type, "err", err)
	}
}

// target builds the BMC target of a node, resolving its password.
func (o *Orchestrator) target(n *plan.Node) (bmc.Target, error) {
	drv, err := bmc.ParseDriver(n.BMC.Driver)
	if err != nil {
		return bmc.Target{}, err
	}
	t := bmc.Target{Node: n.Name, Address: n.BMC.Address, Driver: drv, User: n.BMC.User, TLSVerify: n.BMC.TLSVerify}
	if drv != bmc.DriverAuto {
		t.Port = n.BMC.Port
	}
	pw, ok := o.secrets.Lookup(n.BMC.PasswordSecret)
	if !ok {
		return bmc.Target{}, fmt.Errorf("secret %q (BMC password) is not set: pass --secrets or set %s", n.BMC.PasswordSecret, plan.EnvName(n.BMC.PasswordSecret))
	}
	t.Password = pw
	return t, nil
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
		o.newToken(ctx, name)
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
	if b := baseline(n); b != nil {
		diff, err := bmc.ApplyBaseline(ctx, c, *b)
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

// baseline returns the BMC baseline of a node, or nil when it asks for nothing
// beyond the default boot mode.
func baseline(n *plan.Node) *bmc.Baseline {
	b := n.BIOS
	if b.PXENIC == "" && b.Virtualization == nil && len(b.Attributes) == 0 {
		return nil
	}
	return &bmc.Baseline{BootMode: b.BootMode, PXENIC: b.PXENIC, Virtualization: b.Virtualization, Attributes: b.Attributes}
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
