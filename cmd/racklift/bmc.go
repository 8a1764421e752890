package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/plan"
)

const bmcUsage = `Usage:
  racklift bmc status [NODE...|--role R|--all]
      Reachability, credentials, power state, provider and model/serial.
  racklift bmc power on|off|soft|cycle|reset [NODE...|--role R|--all] [--yes]
      Chassis power. off, soft, cycle and reset on more than one node need
      --yes, or typing the cluster name when stdin is a terminal.
  racklift bmc bootdev pxe|disk|bios|cdrom [NODE...|--role R|--all]
          [--once|--persistent] [--efi|--legacy]
      Next boot device; once by default, UEFI or legacy from each node's
      plan bios.boot_mode unless --efi or --legacy says otherwise.
  racklift bmc bios show [--dry-run] [NODE...|--role R|--all]
      Current BIOS attributes, or with --dry-run what 'apply' would change.
  racklift bmc bios apply [--dry-run] [NODE...|--role R|--all]
      Apply each node's plan BIOS baseline, read it back, show the diff.
  racklift bmc inventory [NODE...|--role R|--all]
      Vendor, model, serial, BMC firmware, BIOS version and NIC MACs.

Flags for every bmc command:
  --plan FILE         cluster plan (or example:NAME)   [RACKLIFT_PLAN]
  --secrets FILE      secrets file holding the BMC passwords (mode 0600)
  --parallel N        nodes worked on at once (default 8)
  --stagger DURATION  minimum time between two node starts (e.g. 2s)
  --timeout DURATION  time limit per node (default 3m)
  --json              print results as JSON on stdout
  --role R, --all     select nodes by role, or every node in the plan

Nodes are selected by name, by --role, or by --all; nothing is done without
a selection. --all, --role and --yes are only taken from the command line,
never from RACKLIFT_* variables. Nodes without a BMC are skipped. BMC
passwords come from the secrets file or RACKLIFT_SECRET_<NAME> only.
Exit status: 0 all selected nodes ok (or skipped), 1 some node failed,
2 usage error or confirmation refused.
`

func runBMC(ctx context.Context, args []string, e *env) int {
	return runBMCWith(ctx, args, e, defaultBMCDeps())
}

func runBMCWith(ctx context.Context, args []string, e *env, deps bmcDeps) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, bmcUsage)
		return exitUsage
	}
	switch args[0] {
	case "status", "power", "bootdev", "bios", "inventory":
		c := &bmcCmd{name: args[0], e: e, deps: deps}
		return c.main(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, bmcUsage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "racklift bmc: unknown subcommand %q\n\n%s", args[0], bmcUsage)
		return exitUsage
	}
}

// bmcCmd is one run of a bmc subcommand.
type bmcCmd struct {
	name string // status, power, bootdev, bios, inventory
	e    *env
	deps bmcDeps

	// flags
	pf       planFlags
	planPath string
	role     string
	all      bool
	yes      bool
	asJSON   bool
	parallel int
	stagger  time.Duration
	timeout  time.Duration
	// bootdev
	once, persistent, efi, legacy bool
	// bios
	dryRun bool

	action string // power action, boot device, or bios show/apply
	p      *plan.Plan
	// secrets are the BMC passwords in use, to scrub them from any output.
	secrets []string
}

// bmcDefaultTimeout is --timeout's default.
const bmcDefaultTimeout = 3 * time.Minute

func (c *bmcCmd) usageErr(format string, a ...any) int {
	fmt.Fprintf(c.e.stderr, "racklift bmc %s: %s\n\n%s", c.name, fmt.Sprintf(format, a...), bmcUsage)
	return exitUsage
}

func (c *bmcCmd) main(ctx context.Context, args []string) int {
	e := c.e
	fs := newFlags("bmc "+c.name, e)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, bmcUsage)
		fmt.Fprintf(e.stderr, "\nFlags of 'racklift bmc %s':\n", c.name)
		fs.PrintDefaults()
	}
	c.pf.register(fs)
	fs.StringVar(&c.planPath, "plan", "", "cluster plan `FILE` (or example:NAME)")
	fs.StringVar(&c.role, "role", "", "act on the nodes with this `ROLE` (comma-separated for several)")
	fs.BoolVar(&c.all, "all", false, "act on every node of the plan")
	fs.BoolVar(&c.asJSON, "json", false, "print results as JSON")
	fs.IntVar(&c.parallel, "parallel", bmc.DefaultParallel, "how many nodes to work on at once")
	fs.DurationVar(&c.stagger, "stagger", 0, "minimum time between two node starts")
	fs.DurationVar(&c.timeout, "timeout", bmcDefaultTimeout, "time limit per node")
	switch c.name {
	case "power":
		fs.BoolVar(&c.yes, "yes", false, "do not ask before powering off, cycling or resetting several nodes")
	case "bootdev":
		fs.BoolVar(&c.once, "once", false, "for the next boot only (default)")
		fs.BoolVar(&c.persistent, "persistent", false, "for every boot")
		fs.BoolVar(&c.efi, "efi", false, "UEFI boot (default: the node's plan bios.boot_mode)")
		fs.BoolVar(&c.legacy, "legacy", false, "legacy BIOS boot (default: the node's plan bios.boot_mode)")
	case "bios":
		fs.BoolVar(&c.dryRun, "dry-run", false, "show what the plan's BIOS baseline would change; write nothing")
	}
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	if code, ok := c.checkArgs(&pos); !ok {
		return code
	}
	if c.planPath == "" {
		return c.usageErr("--plan FILE is required (or set RACKLIFT_PLAN)")
	}
	p, ds, _, secrets, code, ok := c.pf.load(ctx, c.planPath, e)
	if !ok {
		return code
	}
	if p == nil {
		_ = ds.WriteText(e.stderr)
		fmt.Fprintf(e.stderr, "racklift bmc: the plan %s has errors; fix them first (racklift plan validate)\n", c.planPath)
		return exitFailed
	}
	c.p = p
	sel := plan.Selection{All: c.all, Nodes: pos}
	if c.role != "" {
		roles, err := plan.ParseRoles(c.role)
		if err != nil {
			return c.usageErr("--role: %v", err)
		}
		sel.Roles = roles
	}
	nodes, err := p.Select(sel)
	if err != nil {
		return c.usageErr("%v", err)
	}
	return c.execute(ctx, nodes, secrets)
}

// checkArgs validates flags and takes the action word off pos.
func (c *bmcCmd) checkArgs(pos *[]string) (int, bool) {
	if c.parallel < 1 {
		return c.usageErr("--parallel %d: want 1 or more", c.parallel), false
	}
	if c.stagger < 0 || c.timeout < 0 {
		return c.usageErr("--stagger and --timeout cannot be negative"), false
	}
	take := func(what string, valid []string) bool {
		if len(*pos) == 0 || !slices.Contains(valid, (*pos)[0]) {
			got := "nothing"
			if len(*pos) > 0 {
				got = fmt.Sprintf("%q", (*pos)[0])
			}
			c.usageErr("want %s (%s), got %s", what, strings.Join(valid, ", "), got)
			return false
		}
		c.action = (*pos)[0]
		*pos = (*pos)[1:]
		return true
	}
	switch c.name {
	case "power":
		if !take("a power action", []string{"on", "off", "soft", "cycle", "reset"}) {
			return exitUsage, false
		}
	case "bootdev":
		if !take("a boot device", []string{"pxe", "disk", "bios", "cdrom"}) {
			return exitUsage, false
		}
		if c.once && c.persistent {
			return c.usageErr("--once and --persistent exclude each other"), false
		}
		if c.efi && c.legacy {
			return c.usageErr("--efi and --legacy exclude each other"), false
		}
	case "bios":
		if !take("show or apply", []string{"show", "apply"}) {
			return exitUsage, false
		}
	}
	return 0, true
}

// bmcValue is what one node's operation found.
type bmcValue struct {
	Power     string
	Inventory *bmc.Inventory
	BIOS      map[string]string
	Diff      *bmc.Diff
	Notes     []string
}

// bmcNodeOp is a bmc command's work on one node.
type bmcNodeOp func(ctx context.Context, n *plan.Node, c bmc.Controller) (*bmcValue, error)

// bmcNodeController gives a Controller its plan node; its calls are
// bounded by the node's --timeout (bmc.WithDeadline).
type bmcNodeController struct {
	bmc.Controller
	node *plan.Node
}

// bmcResult is one selected node's outcome.
type bmcResult struct {
	node     *plan.Node
	addr     string // "ipmi 10.0.0.5:623", "none"
	skipped  string // reason the node was not contacted, "" if it was (or failed before)
	err      error
	kind     bmc.ErrorKind
	provider string
	closeErr error
	started  time.Time
	duration time.Duration
	value    *bmcValue
}

func (r *bmcResult) status() string {
	switch {
	case r.skipped != "":
		return "skipped"
	case r.err != nil:
		return "failed"
	}
	return "ok"
}

// bmcAddr describes a node's BMC for tables.
func bmcAddr(b *plan.BMC) string {
	if b == nil {
		return "none"
	}
	if b.Driver == "" || b.Driver == string(bmc.DriverAuto) {
		return "auto " + b.Address
	}
	return fmt.Sprintf("%s %s:%d", b.Driver, b.Address, b.Port)
}

// destructive reports whether the command takes machines down.
func (c *bmcCmd) destructive() bool {
	return c.name == "power" && c.action != string(bmc.PowerOn)
}

func (c *bmcCmd) execute(ctx context.Context, nodes []*plan.Node, secrets *plan.Secrets) int {
	e := c.e
	op, code, ok := c.op()
	if !ok {
		return code
	}
	results := make([]*bmcResult, len(nodes))
	byName := map[string]*plan.Node{}
	index := map[string]int{}
	var targets []bmc.Target
	for i, n := range nodes {
		r := &bmcResult{node: n, addr: bmcAddr(n.BMC)}
		results[i] = r
		if n.BMC == nil {
			r.skipped = "no BMC in the plan"
			continue
		}
		t, err := bmc.TargetFor(n, secrets)
		if t.Password != "" {
			c.secrets = append(c.secrets, t.Password)
		}
		if err != nil {
			r.err, r.kind = err, bmc.Kind(err)
			continue
		}
		byName[n.Name] = n
		index[n.Name] = i
		targets = append(targets, t)
	}

	if len(targets) > 1 && c.destructive() && !c.yes {
		if code, ok := c.confirm(targets); !ok {
			return code
		}
	}

	prog := newBMCProgress(e.stderr, c.deps.isTerminal(e.stderr), len(nodes), c.reason)
	for _, r := range results {
		if r.skipped != "" || r.err != nil {
			prog.finished(r)
		}
	}
	opts := bmc.Options{Log: e.log}
	if c.timeout > 0 {
		opts.PerCallTimeout = min(c.timeout, bmc.DefaultPerCallTimeout)
	}
	newCtl := c.deps.factory(opts)
	factory := func(t bmc.Target) bmc.Controller {
		return &bmcNodeController{Controller: bmc.WithDeadline(newCtl(t), c.timeout), node: byName[t.Node]}
	}
	fn := func(ctx context.Context, ctl bmc.Controller) (*bmcValue, error) {
		nc, ok := ctl.(*bmcNodeController)
		if !ok || nc.node == nil {
			return nil, &bmc.Error{Op: "run", Kind: bmc.KindInvalid, Err: errors.New("controller without a node")}
		}
		return op(ctx, nc.node, nc)
	}
	fan := bmc.FanOut[*bmcValue]{
		Parallel: c.parallel,
		Stagger:  c.stagger,
		Progress: func(_, _ int, res bmc.Result[*bmcValue]) {
			r := results[index[res.Node]]
			r.err, r.kind, r.provider, r.closeErr = res.Err, res.Kind, res.Provider, res.CloseErr
			r.started, r.duration, r.value = res.Started, res.Duration, res.Value
			prog.finished(r)
		},
	}
	if len(targets) > 0 {
		bmc.Run(ctx, targets, fan, factory, fn)
	}
	prog.stop()

	var err error
	if c.asJSON {
		err = c.writeJSON(e.stdout, results)
	} else {
		err = c.writeText(e.stdout, results)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift bmc: %v\n", err)
		return exitRuntime
	}
	sumTo := e.stdout
	if c.asJSON {
		sumTo = e.stderr
	}
	failed := c.writeSummary(sumTo, results)
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}
