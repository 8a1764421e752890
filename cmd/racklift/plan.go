package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/plan"
)

const planUsage = `Usage:
  racklift plan validate FILE [--secrets FILE] [--profiles-dir DIR] [--json] [--strict]
      Check the plan; print every problem as file:line:col. Exit 0 if usable,
      1 if not (or if --strict and there are warnings), 2 on usage errors.
  racklift plan show FILE [--secrets FILE] [--profiles-dir DIR]
      Print a summary: networks and VLANs, VIPs, nodes by role, HA checks.
  racklift plan render FILE -o DIR --server-url URL [--secrets FILE] [--profiles-dir DIR]
      Write every node's install files (DIR/<node>/boot.ipxe, ks.cfg or
      user-data/meta-data/vendor-data; image nodes: instructions and
      network-config; Secure Boot nodes: grub.cfg) and DIR/index.txt for review. URL is
      racklift's address on the provisioning network, e.g. http://10.99.0.1:8080.
  racklift plan schema
      Print the JSON Schema of the plan format (for editor completion).
  racklift plan example [NAME]
      Print an example plan (lab, image-lab, hyperconverged, large-site) to start
      from: image-lab deploys the Debian 12 image with bonds, a VLAN and OSDs.
`

func runPlan(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, planUsage)
		return exitUsage
	}
	switch args[0] {
	case "validate":
		return planValidate(ctx, args[1:], e)
	case "show":
		return planShow(ctx, args[1:], e)
	case "render":
		return planRender(ctx, args[1:], e)
	case "schema":
		b, err := plan.Schema()
		if err != nil {
			fmt.Fprintf(e.stderr, "racklift: schema: %v\n", err)
			return exitRuntime
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return exitOK
	case "example":
		return planExample(args[1:], e)
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, planUsage)
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "racklift plan: unknown subcommand %q\n\n%s", args[0], planUsage)
		return exitUsage
	}
}

// planFlags are the flags every command that loads a plan takes.
type planFlags struct {
	secrets     string
	profilesDir string
	// images, when set, lets the loader check that every image node's
	// image is imported and fits its OS disk.
	images *image.Store
}

func (pf *planFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&pf.secrets, "secrets", "", "secrets file (YAML name: value, mode 0600)")
	fs.StringVar(&pf.profilesDir, "profiles-dir", "", "directory of extra OS profiles (*.yaml), overriding built-ins by name")
}

// load reads profiles, secrets and the plan. It prints problems reading
// files and returns ok=false with an exit code for them; plan diagnostics
// are returned for the caller to print.
func (pf *planFlags) load(ctx context.Context, path string, e *env) (*plan.Plan, plan.Diagnostics, *profiles.Set, *plan.Secrets, int, bool) {
	var extra fs.FS
	if pf.profilesDir != "" {
		extra = os.DirFS(pf.profilesDir)
	}
	profs, err := profiles.Load(profiles.Builtin(), extra)
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		return nil, nil, nil, nil, exitRuntime, false
	}
	var secrets *plan.Secrets
	if pf.secrets != "" {
		secrets, err = plan.LoadSecrets(pf.secrets, e.lookupEnv)
		if err != nil {
			fmt.Fprintf(e.stderr, "racklift: %v\n", err)
			return nil, nil, nil, nil, exitFailed, false
		}
	} else {
		secrets, _ = plan.LoadSecrets("", e.lookupEnv)
	}
	opts := plan.Options{Profiles: profs, Secrets: secrets}
	if pf.images != nil {
		opts.Images = imageSet{profs: profs, store: pf.images}
	}
	p, ds, err := loadPlanPath(ctx, path, opts)
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift: %v\n", err)
		return nil, nil, nil, nil, exitRuntime, false
	}
	return p, ds, profs, secrets, 0, true
}

// loadPlanPath loads a plan file, or an embedded example when path is
// "example:NAME".
func loadPlanPath(ctx context.Context, path string, opts plan.Options) (*plan.Plan, plan.Diagnostics, error) {
	if name, ok := strings.CutPrefix(path, "example:"); ok {
		data, err := fs.ReadFile(plan.Examples(), name+".yaml")
		if err != nil {
			return nil, nil, fmt.Errorf("example %q: %w", name, err)
		}
		return plan.LoadContext(ctx, path, data, opts)
	}
	return plan.LoadFileContext(ctx, path, opts)
}

func planValidate(ctx context.Context, args []string, e *env) int {
	fs := newFlags("plan validate", e)
	var pf planFlags
	pf.register(fs)
	asJSON := fs.Bool("json", false, "print diagnostics as JSON")
	strict := fs.Bool("strict", false, "fail on warnings too")
	stateDir := fs.String("state-dir", "", "also check that every image node's image is imported in this state dir and fits its OS disk")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprint(e.stderr, "racklift plan validate: want exactly one plan FILE\n\n"+planUsage)
		return exitUsage
	}
	if *stateDir != "" {
		st, err := image.Open(*stateDir)
		if err != nil {
			fmt.Fprintf(e.stderr, "racklift plan validate: images in %s: %v\n", *stateDir, err)
			return exitRuntime
		}
		pf.images = st
	}
	p, ds, _, _, code, ok := pf.load(ctx, pos[0], e)
	if !ok {
		return code
	}
	if *asJSON {
		errs, warns := ds.Count()
		out := struct {
			File        string           `json:"file"`
			Valid       bool             `json:"valid"`
			Errors      int              `json:"errors"`
			Warnings    int              `json:"warnings"`
			Nodes       int              `json:"nodes"`
			Diagnostics plan.Diagnostics `json:"diagnostics"`
		}{pos[0], p != nil && !(*strict && warns > 0), errs, warns, 0, ds}
		if out.Diagnostics == nil {
			out.Diagnostics = plan.Diagnostics{}
		}
		if p != nil {
			out.Nodes = len(p.Nodes)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return exitRuntime
		}
	} else {
		_ = ds.WriteText(e.stderr)
		if p != nil {
			fmt.Fprintf(e.stdout, "%s: plan %q is usable: %d nodes, %d networks\n", pos[0], p.Cluster.Name, len(p.Nodes), len(p.Networks))
		}
	}
	_, warns := ds.Count()
	if p == nil || (*strict && warns > 0) {
		return exitFailed
	}
	return exitOK
}

func planShow(ctx context.Context, args []string, e *env) int {
	fs := newFlags("plan show", e)
	var pf planFlags
	pf.register(fs)
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprint(e.stderr, "racklift plan show: want exactly one plan FILE\n\n"+planUsage)
		return exitUsage
	}
	p, ds, _, _, code, ok := pf.load(ctx, pos[0], e)
	if !ok {
		return code
	}
	if p == nil {
		_ = ds.WriteText(e.stderr)
		return exitFailed
	}
	writeSummary(e.stdout, p, ds)
	return exitOK
}

func planExample(args []string, e *env) int {
	name := "lab"
	if len(args) > 1 {
		fmt.Fprint(e.stderr, planUsage)
		return exitUsage
	}
	if len(args) == 1 {
		name = strings.TrimSuffix(args[0], ".yaml")
	}
	data, err := fs.ReadFile(plan.Examples(), name+".yaml")
	if err != nil {
		names, _ := fs.Glob(plan.Examples(), "*.yaml")
		fmt.Fprintf(e.stderr, "racklift plan example: no example %q (have: %s)\n", name, strings.TrimSuffix(strings.Join(names, ", "), ".yaml"))
		return exitUsage
	}
	_, _ = e.stdout.Write(data)
	return exitOK
}

// writeSummary prints what `plan show` shows. It never prints secret values
// (the plan holds only secret names).
func writeSummary(w io.Writer, p *plan.Plan, ds plan.Diagnostics) {
	c := p.Cluster
	fmt.Fprintf(w, "Cluster %s", c.Name)
	if c.Domain != "" {
		fmt.Fprintf(w, " (%s)", c.Domain)
	}
	ha := "HA"
	if !c.HA {
		ha = "not HA (lab)"
	}
	fmt.Fprintf(w, ": %d nodes, %s, profile %s, timezone %s, Ceph pool size %d\n\n", len(p.Nodes), ha, c.Profile, c.Timezone, c.CephPoolSize)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tPURPOSE\tCIDR\tVLAN\tMTU\tGATEWAY\tNOTE")
	for _, n := range p.Networks {
		vlan, gw, note := "untagged", "-", ""
		if n.VLAN != 0 {
			vlan = fmt.Sprint(n.VLAN)
		}
		if n.Gateway.IsValid() {
			gw = n.Gateway.String()
		}
		var notes []string
		if n.Provisioning {
			notes = append(notes, "PXE")
		}
		if n.DefaultRoute {
			notes = append(notes, "default route")
		}
		if n.DynamicStart.IsValid() {
			notes = append(notes, fmt.Sprintf("dynamic %s-%s", n.DynamicStart, n.DynamicEnd))
		}
		note = strings.Join(notes, ", ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", n.Name, n.Purpose, n.Prefix, vlan, n.MTU, gw, note)
	}
	_ = tw.Flush()

	if len(p.VIPs) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VIP\tNETWORK\tADDRESS\tFQDN")
		for _, v := range p.VIPs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Network.Name, v.Address, v.FQDN)
		}
		_ = tw.Flush()
	}

	fmt.Fprintln(w)
	fmt.Fprint(w, "Nodes by role:")
	for _, r := range plan.AllRoles() {
		if n := len(p.NodesWith(r)); n > 0 {
			fmt.Fprintf(w, "  %s %d", r, n)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLES\tPXE MAC\tPXE ADDRESS\tBMC\tOS DISK\tOSDS\tPROFILE")
	for _, n := range p.Nodes {
		addr := "-"
		if a, ok := n.Provisioning(); ok {
			addr = a.Addr.String()
		}
		bmc := "none"
		if n.BMC != nil {
			bmc = fmt.Sprintf("%s %s:%d", n.BMC.Driver, n.BMC.Address, n.BMC.Port)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", n.Name, n.RoleNames(","), n.MAC, addr, bmc, n.OSDisk, len(n.OSDs), n.Profile)
	}
	_ = tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HA CHECK\tCOUNT\tSTATUS\tRULE")
	for _, h := range p.HAChecks() {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", h.Name, h.Count, h.Status, h.Note)
	}
	_ = tw.Flush()

	if len(ds) > 0 {
		fmt.Fprintln(w)
		sorted := append(plan.Diagnostics(nil), ds...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Severity > sorted[j].Severity })
		_ = sorted.WriteText(w)
	}
}
