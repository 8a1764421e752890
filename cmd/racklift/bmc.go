package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

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

// bmcDeps is what the bmc commands take from outside, so tests can replace
// the BMCs and the terminal.
type bmcDeps struct {
	// factory makes the function that creates one Controller per node.
	factory func(bmc.Options) func(bmc.Target) bmc.Controller
	// stdin is read for the interactive confirmation.
	stdin io.Reader
	// isTerminal reports whether a reader or writer is a terminal.
	isTerminal func(any) bool
}

// defaultBMCDeps talks to real BMCs through bmclib and uses the process's stdin.
func defaultBMCDeps() bmcDeps {
	return bmcDeps{factory: bmc.BMCLibFactory, stdin: os.Stdin, isTerminal: bmcFileIsTerminal}
}

// bmcFileIsTerminal reports whether v is an *os.File open on a terminal.
func bmcFileIsTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

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
	p, ds, _, secrets, code, ok := c.pf.load(c.planPath, e)
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

// bmcNodeController gives a Controller its plan node and bounds every call
// (Close excepted: sessions are always ended) by the node's deadline,
// which starts at the first call.
type bmcNodeController struct {
	bmc.Controller
	node     *plan.Node
	timeout  time.Duration
	deadline time.Time
}

func (c *bmcNodeController) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return ctx, func() {}
	}
	if c.deadline.IsZero() {
		c.deadline = time.Now().Add(c.timeout)
	}
	return context.WithDeadline(ctx, c.deadline)
}

func (c *bmcNodeController) Open(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.Open(ctx)
}

func (c *bmcNodeController) PowerState(ctx context.Context) (string, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.PowerState(ctx)
}

func (c *bmcNodeController) Power(ctx context.Context, a bmc.PowerAction) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.Power(ctx, a)
}

func (c *bmcNodeController) SetBootDevice(ctx context.Context, d bmc.BootDevice, o bmc.BootOptions) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.SetBootDevice(ctx, d, o)
}

func (c *bmcNodeController) BIOS(ctx context.Context) (map[string]string, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.BIOS(ctx)
}

func (c *bmcNodeController) SetBIOS(ctx context.Context, attrs map[string]string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.SetBIOS(ctx, attrs)
}

func (c *bmcNodeController) Inventory(ctx context.Context) (bmc.Inventory, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.Inventory(ctx)
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
		return &bmcNodeController{Controller: newCtl(t), node: byName[t.Node], timeout: c.timeout}
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

// confirm asks for the cluster name before taking several machines down.
func (c *bmcCmd) confirm(targets []bmc.Target) (int, bool) {
	e := c.e
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Node
	}
	list := strings.Join(names, ", ")
	if len(names) > 10 {
		list = strings.Join(names[:10], ", ") + fmt.Sprintf(", ... (%d more)", len(names)-10)
	}
	if !c.deps.isTerminal(c.deps.stdin) {
		fmt.Fprintf(e.stderr, "racklift bmc: refusing to power %s %d nodes without confirmation (%s).\n"+
			"Add --yes to confirm, or run in a terminal to be asked.\n", c.action, len(names), list)
		return exitUsage, false
	}
	fmt.Fprintf(e.stderr, "This will power %s %d nodes of cluster %q: %s\nType the cluster name to continue: ",
		c.action, len(names), c.p.Cluster.Name, list)
	line, err := bufio.NewReader(c.deps.stdin).ReadString('\n')
	if strings.TrimSpace(line) != c.p.Cluster.Name || (err != nil && line == "") {
		fmt.Fprintf(e.stderr, "\nracklift bmc: confirmation did not match %q; nothing was done\n", c.p.Cluster.Name)
		return exitUsage, false
	}
	return 0, true
}

// op returns the per-node operation of the command.
func (c *bmcCmd) op() (bmcNodeOp, int, bool) {
	readPower := func(ctx context.Context, ctl bmc.Controller, v *bmcValue) {
		st, err := ctl.PowerState(ctx)
		if err != nil {
			v.Power = "?"
			v.Notes = append(v.Notes, "power state unknown: "+bmc.Kind(err).String())
			return
		}
		v.Power = st
	}
	switch c.name {
	case "status":
		return func(ctx context.Context, _ *plan.Node, ctl bmc.Controller) (*bmcValue, error) {
			st, err := ctl.PowerState(ctx)
			if err != nil {
				return nil, err
			}
			v := &bmcValue{Power: st}
			inv, err := ctl.Inventory(ctx)
			if err != nil {
				v.Notes = append(v.Notes, "no inventory: "+bmc.Kind(err).String())
			} else {
				v.Inventory = &inv
			}
			return v, nil
		}, 0, true
	case "power":
		action := bmc.PowerAction(c.action)
		if err := action.Validate(); err != nil {
			return nil, c.usageErr("%v", err), false
		}
		return func(ctx context.Context, _ *plan.Node, ctl bmc.Controller) (*bmcValue, error) {
			if err := ctl.Power(ctx, action); err != nil {
				return nil, err
			}
			v := &bmcValue{}
			readPower(ctx, ctl, v)
			return v, nil
		}, 0, true
	case "bootdev":
		dev := bmc.BootDevice(c.action)
		if err := dev.Validate(); err != nil {
			return nil, c.usageErr("%v", err), false
		}
		return func(ctx context.Context, n *plan.Node, ctl bmc.Controller) (*bmcValue, error) {
			return &bmcValue{}, ctl.SetBootDevice(ctx, dev, c.bootOptions(n))
		}, 0, true
	case "bios":
		switch {
		case c.dryRun:
			return func(ctx context.Context, n *plan.Node, ctl bmc.Controller) (*bmcValue, error) {
				d, err := bmc.PlanBaseline(ctx, ctl, bmc.BaselineFor(n))
				return &bmcValue{Diff: &d}, err
			}, 0, true
		case c.action == "show":
			return func(ctx context.Context, _ *plan.Node, ctl bmc.Controller) (*bmcValue, error) {
				attrs, err := ctl.BIOS(ctx)
				if err != nil {
					return nil, err
				}
				return &bmcValue{BIOS: attrs}, nil
			}, 0, true
		default:
			return func(ctx context.Context, n *plan.Node, ctl bmc.Controller) (*bmcValue, error) {
				d, err := bmc.EnsureBaseline(ctx, ctl, n.Name, bmc.BaselineFor(n))
				v := &bmcValue{Diff: &d}
				if err != nil {
					return v, err
				}
				if d.NeedsReset() {
					v.Notes = append(v.Notes, "changes take effect at the next reset; run 'bmc bios apply' again after it to confirm")
				}
				return v, nil
			}, 0, true
		}
	case "inventory":
		return func(ctx context.Context, _ *plan.Node, ctl bmc.Controller) (*bmcValue, error) {
			inv, err := ctl.Inventory(ctx)
			if err != nil {
				return nil, err
			}
			return &bmcValue{Inventory: &inv}, nil
		}, 0, true
	}
	return nil, c.usageErr("unknown subcommand"), false
}

// bootOptions is what bootdev asks of a node: once unless --persistent,
// UEFI per --efi/--legacy or else the node's plan boot mode.
func (c *bmcCmd) bootOptions(n *plan.Node) bmc.BootOptions {
	efi := n.BIOS.UEFI()
	switch {
	case c.efi:
		efi = true
	case c.legacy:
		efi = false
	}
	return bmc.BootOptions{Persistent: c.persistent, EFI: efi}
}

// redact removes every BMC password in use from s.
func (c *bmcCmd) redact(s string) string {
	for _, pw := range c.secrets {
		if pw != "" {
			s = strings.ReplaceAll(s, pw, "[redacted]")
		}
	}
	return s
}

// reason is a node's failure (or skip) reason on one line, without the
// "bmc NODE: " prefix bmc errors carry and without passwords.
func (c *bmcCmd) reason(r *bmcResult) string {
	if r.skipped != "" {
		return r.skipped
	}
	if r.err == nil {
		return ""
	}
	msg := strings.Join(strings.Fields(r.err.Error()), " ")
	msg = strings.Replace(msg, "bmc "+r.node.Name+": ", "", 1)
	return c.redact(msg)
}

// notes are a node's remarks (close errors included), passwords removed.
func (c *bmcCmd) notes(r *bmcResult) []string {
	var out []string
	if r.value != nil {
		out = append(out, r.value.Notes...)
	}
	if r.closeErr != nil {
		out = append(out, "session close failed: "+strings.Join(strings.Fields(r.closeErr.Error()), " "))
	}
	for i := range out {
		out[i] = c.redact(out[i])
	}
	return out
}

func bmcDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func bmcTook(r *bmcResult) string {
	if r.started.IsZero() {
		return "-"
	}
	return r.duration.Round(10 * time.Millisecond).String()
}

// result is the RESULT column.
func (c *bmcCmd) result(r *bmcResult) string {
	switch r.status() {
	case "failed":
		return "failed (" + r.kind.String() + ")"
	case "skipped":
		return "skipped (" + r.skipped + ")"
	}
	return "ok"
}

func (c *bmcCmd) writeText(w io.Writer, results []*bmcResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cols ...string) { fmt.Fprintln(tw, strings.Join(cols, "\t")) }
	switch {
	case c.name == "status":
		row("NODE", "BMC", "REACHABLE", "CREDENTIALS", "POWER", "PROVIDER", "MODEL/SERIAL", "TOOK")
		for _, r := range results {
			reach, creds := bmcReachability(r)
			power, model := "-", "-"
			if r.value != nil {
				power = bmcDash(r.value.Power)
				if inv := r.value.Inventory; inv != nil && (inv.Model != "" || inv.Serial != "") {
					model = bmcDash(inv.Model) + "/" + bmcDash(inv.Serial)
				}
			}
			row(r.node.Name, r.addr, reach, creds, power, bmcDash(r.provider), model, bmcTook(r))
		}
	case c.name == "power":
		row("NODE", "BMC", "ACTION", "POWER", "PROVIDER", "RESULT", "TOOK")
		for _, r := range results {
			power := "-"
			if r.value != nil {
				power = bmcDash(r.value.Power)
			}
			row(r.node.Name, r.addr, c.action, power, bmcDash(r.provider), c.result(r), bmcTook(r))
		}
	case c.name == "bootdev":
		row("NODE", "BMC", "DEVICE", "MODE", "BOOT", "PROVIDER", "RESULT", "TOOK")
		for _, r := range results {
			o := c.bootOptions(r.node)
			mode, boot := "legacy", "once"
			if o.EFI {
				mode = "uefi"
			}
			if o.Persistent {
				boot = "persistent"
			}
			row(r.node.Name, r.addr, c.action, mode, boot, bmcDash(r.provider), c.result(r), bmcTook(r))
		}
	case c.name == "inventory":
		row("NODE", "VENDOR", "MODEL", "SERIAL", "BMC FW", "BIOS", "MACS", "PROVIDER", "RESULT", "TOOK")
		for _, r := range results {
			inv := bmc.Inventory{}
			if r.value != nil && r.value.Inventory != nil {
				inv = *r.value.Inventory
			}
			row(r.node.Name, bmcDash(inv.Vendor), bmcDash(inv.Model), bmcDash(inv.Serial), bmcDash(inv.BMCFirmware),
				bmcDash(inv.BIOSVersion), bmcDash(strings.Join(inv.MACs, ",")), bmcDash(r.provider), c.result(r), bmcTook(r))
		}
	case c.name == "bios" && c.action == "show" && !c.dryRun:
		row("NODE", "ATTRIBUTE", "VALUE")
		for _, r := range results {
			if r.value == nil {
				continue
			}
			names := make([]string, 0, len(r.value.BIOS))
			for k := range r.value.BIOS {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				row(r.node.Name, k, bmcDash(r.value.BIOS[k]))
			}
		}
	default: // bios diff: show --dry-run, apply [--dry-run]
		row("NODE", "FAMILY", "SETTING", "ATTRIBUTE", "BEFORE", "WANT", "GOT", "STATUS", "NOTE")
		for _, r := range results {
			if r.value == nil || r.value.Diff == nil {
				continue
			}
			d := r.value.Diff
			for _, en := range d.Entries {
				row(r.node.Name, bmcDash(d.Family), en.Setting, bmcDash(en.Attribute), bmcDash(en.Before), bmcDash(en.Want),
					bmcDash(en.Got), string(en.Status), bmcDash(en.Note))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		for _, n := range c.notes(r) {
			if _, err := fmt.Fprintf(w, "note: %s: %s\n", r.node.Name, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// bmcReachability is the status table's REACHABLE and CREDENTIALS columns.
func bmcReachability(r *bmcResult) (reach, creds string) {
	switch {
	case r.skipped != "":
		return "-", "-"
	case r.err == nil:
		return "yes", "yes"
	}
	switch r.kind {
	case bmc.KindUnreachable, bmc.KindTimeout:
		return "no", "?"
	case bmc.KindAuth:
		return "yes", "no"
	case bmc.KindInvalid, bmc.KindCanceled:
		return "?", "?"
	}
	if r.provider != "" { // opened, failed later
		return "yes", "yes"
	}
	return "yes", "?"
}

// writeSummary prints "N ok, M failed" and the failed nodes; it returns M.
func (c *bmcCmd) writeSummary(w io.Writer, results []*bmcResult) int {
	var ok, failed, skipped int
	for _, r := range results {
		switch r.status() {
		case "ok":
			ok++
		case "failed":
			failed++
		default:
			skipped++
		}
	}
	fmt.Fprintf(w, "\n%d ok, %d failed", ok, failed)
	if skipped > 0 {
		fmt.Fprintf(w, ", %d skipped (no BMC)", skipped)
	}
	fmt.Fprintln(w)
	if failed > 0 {
		fmt.Fprintln(w, "failed:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range results {
			if r.status() == "failed" {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.node.Name, r.kind, c.reason(r))
			}
		}
		_ = tw.Flush()
	}
	return failed
}

// JSON output.

type bmcJSON struct {
	Command string         `json:"command"`
	Action  string         `json:"action,omitempty"`
	Cluster string         `json:"cluster"`
	Nodes   []bmcNodeJSON  `json:"nodes"`
	Summary bmcSummaryJSON `json:"summary"`
}

type bmcSummaryJSON struct {
	OK      int `json:"ok"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

type bmcNodeJSON struct {
	Node          string            `json:"node"`
	BMC           string            `json:"bmc"`
	Status        string            `json:"status"` // ok, failed, skipped
	Kind          string            `json:"kind,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	Provider      string            `json:"provider,omitempty"`
	Started       *time.Time        `json:"started,omitempty"`
	DurationMS    float64           `json:"duration_ms"`
	Reachable     *bool             `json:"reachable,omitempty"`
	CredentialsOK *bool             `json:"credentials_ok,omitempty"`
	Power         string            `json:"power,omitempty"`
	Boot          *bmcBootJSON      `json:"boot,omitempty"`
	Inventory     *bmcInventoryJSON `json:"inventory,omitempty"`
	BIOS          map[string]string `json:"bios,omitempty"`
	Diff          *bmcDiffJSON      `json:"diff,omitempty"`
	Notes         []string          `json:"notes,omitempty"`
}

type bmcBootJSON struct {
	Device     string `json:"device"`
	EFI        bool   `json:"efi"`
	Persistent bool   `json:"persistent"`
}

type bmcInventoryJSON struct {
	Vendor      string   `json:"vendor,omitempty"`
	Model       string   `json:"model,omitempty"`
	Serial      string   `json:"serial,omitempty"`
	BMCFirmware string   `json:"bmc_firmware,omitempty"`
	BIOSVersion string   `json:"bios_version,omitempty"`
	MACs        []string `json:"macs,omitempty"`
}

type bmcDiffJSON struct {
	Family     string             `json:"family"`
	Converged  bool               `json:"converged"`
	NeedsReset bool               `json:"needs_reset"`
	Entries    []bmcDiffEntryJSON `json:"entries"`
}

type bmcDiffEntryJSON struct {
	Setting   string `json:"setting"`
	Attribute string `json:"attribute,omitempty"`
	Want      string `json:"want"`
	Before    string `json:"before,omitempty"`
	Got       string `json:"got,omitempty"`
	Status    string `json:"status"`
	Note      string `json:"note,omitempty"`
}

func (c *bmcCmd) writeJSON(w io.Writer, results []*bmcResult) error {
	out := bmcJSON{Command: c.name, Action: c.action, Cluster: c.p.Cluster.Name, Nodes: []bmcNodeJSON{}}
	for _, r := range results {
		j := bmcNodeJSON{
			Node:       r.node.Name,
			BMC:        r.addr,
			Status:     r.status(),
			Reason:     c.reason(r),
			Provider:   c.redact(r.provider),
			DurationMS: float64(r.duration) / float64(time.Millisecond),
			Notes:      c.notes(r),
		}
		switch j.Status {
		case "ok":
			out.Summary.OK++
		case "failed":
			out.Summary.Failed++
			j.Kind = r.kind.String()
		default:
			out.Summary.Skipped++
		}
		if !r.started.IsZero() {
			s := r.started
			j.Started = &s
		}
		if c.name == "status" && r.skipped == "" {
			reach, creds := bmcReachability(r)
			if reach != "?" {
				b := reach == "yes"
				j.Reachable = &b
			}
			if creds != "?" {
				b := creds == "yes"
				j.CredentialsOK = &b
			}
		}
		if c.name == "bootdev" && r.skipped == "" {
			o := c.bootOptions(r.node)
			j.Boot = &bmcBootJSON{Device: c.action, EFI: o.EFI, Persistent: o.Persistent}
		}
		if v := r.value; v != nil {
			j.Power = v.Power
			j.BIOS = v.BIOS
			if inv := v.Inventory; inv != nil {
				j.Inventory = &bmcInventoryJSON{Vendor: inv.Vendor, Model: inv.Model, Serial: inv.Serial,
					BMCFirmware: inv.BMCFirmware, BIOSVersion: inv.BIOSVersion, MACs: inv.MACs}
			}
			if d := v.Diff; d != nil {
				dj := &bmcDiffJSON{Family: d.Family, Converged: d.Converged(), NeedsReset: d.NeedsReset(), Entries: []bmcDiffEntryJSON{}}
				for _, en := range d.Entries {
					dj.Entries = append(dj.Entries, bmcDiffEntryJSON{Setting: en.Setting, Attribute: en.Attribute, Want: en.Want,
						Before: en.Before, Got: en.Got, Status: string(en.Status), Note: en.Note})
				}
				j.Diff = dj
			}
		}
		out.Nodes = append(out.Nodes, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// bmcProgress shows nodes finishing on stderr: a redrawn bar on a terminal,
// otherwise one line per node.
type bmcProgress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	reason  func(*bmcResult) string
	total   int
	done    int
	ok      int
	failed  int
	skipped int
	start   time.Time
	quit    chan struct{}
	wg      sync.WaitGroup
	stopped bool
}

func newBMCProgress(w io.Writer, tty bool, total int, reason func(*bmcResult) string) *bmcProgress {
	p := &bmcProgress{w: w, tty: tty, total: total, reason: reason, start: time.Now(), quit: make(chan struct{})}
	if tty && total > 0 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-p.quit:
					return
				case <-tick.C:
					p.mu.Lock()
					p.draw()
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

const bmcBarWidth = 30

// draw redraws the bar; p.mu is held.
func (p *bmcProgress) draw() {
	if p.stopped {
		return
	}
	filled := 0
	if p.total > 0 {
		filled = p.done * bmcBarWidth / p.total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", bmcBarWidth-filled)
	fmt.Fprintf(p.w, "\r\x1b[K[%s] %d/%d nodes  %d ok  %d failed  %s", bar, p.done, p.total, p.ok, p.failed,
		time.Since(p.start).Round(100*time.Millisecond))
}

// finished records one node's end.
func (p *bmcProgress) finished(r *bmcResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	switch r.status() {
	case "ok":
		p.ok++
	case "failed":
		p.failed++
	default:
		p.skipped++
	}
	if p.tty {
		p.draw()
		return
	}
	in := " (not started)"
	if !r.started.IsZero() {
		in = " in " + bmcTook(r)
	}
	var msg string
	switch r.status() {
	case "ok":
		msg = "ok" + in
	case "failed":
		msg = fmt.Sprintf("failed (%s)%s: %s", r.kind, in, p.reason(r))
	default:
		msg = "skipped: " + p.reason(r)
	}
	fmt.Fprintf(p.w, "racklift bmc: [%d/%d] %s %s\n", p.done, p.total, r.node.Name, msg)
}

// stop ends the ticker and clears the bar.
func (p *bmcProgress) stop() {
	close(p.quit)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.total > 0 && !p.stopped {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	p.stopped = true
}
