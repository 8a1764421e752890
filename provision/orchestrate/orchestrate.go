// Package orchestrate drives installs. It is the only part of racklift that
// decides: boot services and BMCs report events, and the orchestrator reads
// each node's recorded state to choose the next step (check the BMC, apply
// the BIOS baseline, set a one-time PXE boot, power on, wait, retry a
// stalled node, set the disk as boot device once installed) and to answer
// the boot server's question "install, or boot from disk?".
package orchestrate

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// NodeReader is what the boot policy (Access) reads of the event store:
// each node's state and its events.
type NodeReader interface {
	Node(ctx context.Context, name string) (events.NodeState, bool, error)
	NodeEvents(ctx context.Context, node string, limit int) ([]events.Event, error)
}

// RunStore keeps install runs, so a run resumes after a restart.
type RunStore interface {
	StartRun(ctx context.Context, selector, params any) (events.Run, error)
	EndRun(ctx context.Context, id int64, state events.RunState) (events.Run, error)
	ActiveRun(ctx context.Context) (events.Run, bool, error)
}

// Store is what the orchestrator needs of the event store: the boot
// policy's reads, every node's state for the stall checks, runs, the
// record of its decisions, a new token per attempt, and the live events it
// reacts to, and the facts it verifies ready nodes with.
type Store interface {
	NodeReader
	RunStore
	FactsReader
	events.Recorder
	Nodes(ctx context.Context) ([]events.NodeState, error)
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
	*Access // the boot server's questions: BootAction, Admit
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
	return &Orchestrator{Access: NewAccess(p, store), plan: p, store: store, newBMC: newBMC, secrets: secrets, log: log, cfg: cfg.withDefaults(),
		now: time.Now, busy: map[string]bool{}}
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
	if ev.Phase == events.PhasePlanned && ev.Node != "" {
		// The node starts over (retry, reinstall, a new run): a token of
		// its earlier attempt is worth nothing from now on.
		o.newToken(ctx, ev.Node)
	}
	if ev.Percent == 0 {
		ev.Percent = -1
	}
	if _, err := o.store.Record(ctx, ev); err != nil {
		o.log.Error("record", "node", ev.Node, "type", ev.Type, "err", err)
	}
}
