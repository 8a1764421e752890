package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/racklift/racklift/provision/bmc"
)

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
