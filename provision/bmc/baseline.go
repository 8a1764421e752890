package bmc

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Baseline is the BIOS state racklift wants on a node, in vendor-neutral
// terms plus optional raw vendor attributes.
type Baseline struct {
	// BootMode is "uefi", "legacy", or "" to leave it alone.
	BootMode string
	// PXENIC names the NIC to PXE boot from, in the vendor's words: on Dell
	// the FQDD ("NIC.Integrated.1-1-1", set as PxeDev1Interface with
	// PxeDev1EnDis=Enabled); on HPE the NicBootN attribute ("NicBoot1", set
	// to NetworkBoot). Other vendors: use Attributes. "" leaves it alone.
	PXENIC string
	// Virtualization turns CPU virtualisation (VT-x / AMD-V) on or off;
	// nil leaves it alone.
	Virtualization *bool
	// Attributes are raw vendor attributes, applied as given. They win over
	// the mapped settings above when both name the same attribute.
	Attributes map[string]string
}

// DiffStatus is the outcome for one attribute.
type DiffStatus string

// Diff statuses.
const (
	// StatusMatch: the attribute already had the wanted value.
	StatusMatch DiffStatus = "match"
	// StatusWouldChange: differs; nothing was written (PlanBaseline).
	StatusWouldChange DiffStatus = "would-change"
	// StatusChanged: written, and read back with the wanted value.
	StatusChanged DiffStatus = "changed"
	// StatusPending: written and accepted, but the BMC still reports the old
	// value: the change is staged (Redfish @Redfish.Settings) and takes
	// effect at the next reset. Run the baseline again after a reboot to
	// confirm.
	StatusPending DiffStatus = "pending-reset"
	// StatusMismatch: written, but read back as a third value.
	StatusMismatch DiffStatus = "mismatch"
	// StatusFailed: the BMC rejected the write (see the returned error).
	StatusFailed DiffStatus = "failed"
	// StatusUnsupported: this BMC has no such attribute, or no BIOS access.
	StatusUnsupported DiffStatus = "unsupported"
)

// DiffEntry is one attribute's want/got.
type DiffEntry struct {
	// Setting is the Baseline field it came from: "BootMode", "PXENIC",
	// "Virtualization" or "Attributes".
	Setting string
	// Attribute is the vendor attribute name ("" if none could be mapped).
	Attribute string
	// Want is the value asked for.
	Want string
	// Before is the value read before any write ("" if absent).
	Before string
	// Got is the value read last (after the write, if there was one).
	Got string
	// Status is the outcome.
	Status DiffStatus
	// Note explains unsupported or unusual outcomes.
	Note string
}

// Diff is the result of comparing (and applying) a Baseline.
type Diff struct {
	// Family is the attribute naming scheme recognised from the BIOS
	// attributes: "dell", "hpe", "lenovo", "supermicro" or "generic".
	Family string
	// Entries are in Baseline field order, then raw attributes by name.
	Entries []DiffEntry
}

// Converged reports whether every entry has its wanted value now.
func (d Diff) Converged() bool {
	for _, e := range d.Entries {
		if e.Status != StatusMatch && e.Status != StatusChanged {
			return false
		}
	}
	return true
}

// NeedsReset reports whether some change waits for the next reset.
func (d Diff) NeedsReset() bool {
	return slices.ContainsFunc(d.Entries, func(e DiffEntry) bool { return e.Status == StatusPending })
}

// Unsupported returns the entries this BMC could not express.
func (d Diff) Unsupported() []DiffEntry {
	var out []DiffEntry
	for _, e := range d.Entries {
		if e.Status == StatusUnsupported {
			out = append(out, e)
		}
	}
	return out
}

// PlanBaseline reads the BIOS attributes and compares them with b without
// writing anything. Entries that differ are StatusWouldChange.
func PlanBaseline(ctx context.Context, c Controller, b Baseline) (Diff, error) {
	d, _, err := planBaseline(ctx, c, b)
	return d, err
}

// ApplyBaseline maps b onto the node's vendor attribute names, writes the
// attributes that differ with one SetBIOS call, reads the attributes back
// and reports want/got for each. Attributes the BIOS does not have are
// StatusUnsupported and are not written (BMCs reject a whole PATCH for one
// unknown attribute). When the BMC offers no BIOS access at all (IPMI), the
// Diff lists every wanted setting as unsupported and the error matches
// ErrUnsupported.
func ApplyBaseline(ctx context.Context, c Controller, b Baseline) (Diff, error) {
	d, before, err := planBaseline(ctx, c, b)
	if err != nil {
		return d, err
	}
	changes := map[string]string{}
	for _, e := range d.Entries {
		if e.Status == StatusWouldChange {
			changes[e.Attribute] = e.Want
		}
	}
	if len(changes) == 0 {
		return d, nil
	}
	if err := c.SetBIOS(ctx, changes); err != nil {
		for i := range d.Entries {
			if d.Entries[i].Status == StatusWouldChange {
				d.Entries[i].Status = StatusFailed
			}
		}
		return d, fmt.Errorf("apply bios baseline: %w", err)
	}
	after, err := c.BIOS(ctx)
	if err != nil {
		return d, fmt.Errorf("read back bios after applying baseline: %w", err)
	}
	for i := range d.Entries {
		e := &d.Entries[i]
		if e.Status != StatusWouldChange {
			continue
		}
		e.Got = after[e.Attribute]
		switch {
		case strings.EqualFold(e.Got, e.Want):
			e.Status = StatusChanged
		case strings.EqualFold(e.Got, before[e.Attribute]):
			e.Status = StatusPending
		default:
			e.Status = StatusMismatch
		}
	}
	return d, nil
}

// planBaseline builds the Diff against the current attributes, which it returns.
func planBaseline(ctx context.Context, c Controller, b Baseline) (Diff, map[string]string, error) {
	if err := b.validate(); err != nil {
		return Diff{}, nil, err
	}
	cur, err := c.BIOS(ctx)
	if err != nil {
		d := Diff{Family: "unknown"}
		for _, w := range b.wanted(nil, "") {
			w.Status, w.Note = StatusUnsupported, "bmc gives no access to BIOS attributes"
			if Kind(err) != KindUnsupported {
				w.Status, w.Note = StatusFailed, "could not read BIOS attributes"
			}
			d.Entries = append(d.Entries, w)
		}
		return d, nil, fmt.Errorf("read bios for baseline: %w", err)
	}
	fam := family(cur)
	d := Diff{Family: fam}
	for _, w := range b.wanted(cur, fam) {
		switch before, ok := cur[w.Attribute]; {
		case w.Status == StatusUnsupported:
		case !ok:
			w.Status, w.Note = StatusUnsupported, "no such BIOS attribute on this node"
		case strings.EqualFold(before, w.Want):
			w.Before, w.Got, w.Status = before, before, StatusMatch
		default:
			w.Before, w.Got, w.Status = before, before, StatusWouldChange
		}
		d.Entries = append(d.Entries, w)
	}
	return d, cur, nil
}

func (b Baseline) validate() error {
	switch strings.ToLower(b.BootMode) {
	case "", "uefi", "legacy":
		return nil
	}
	return fmt.Errorf("baseline boot mode %q (want uefi or legacy): %w", b.BootMode, ErrInvalid)
}

// family recognises the attribute naming scheme from well-known attributes.
func family(attrs map[string]string) string {
	has := func(names ...string) bool {
		return slices.ContainsFunc(names, func(n string) bool { _, ok := attrs[n]; return ok })
	}
	switch {
	case has("SysProfile", "PxeDev1EnDis"):
		return "dell"
	case has("WorkloadProfile", "PowerRegulator"):
		return "hpe"
	case has("BootModes_SystemBootMode"):
		return "lenovo"
	case has("BootModeSelect"):
		return "supermicro"
	}
	return "generic"
}

// onOff spells a boolean the way the current value does (Enabled/Disabled
// or Enable/Disable).
func onOff(cur string, on bool) string {
	short := strings.EqualFold(cur, "enable") || strings.EqualFold(cur, "disable")
	switch {
	case on && short:
		return "Enable"
	case on:
		return "Enabled"
	case short:
		return "Disable"
	}
	return "Disabled"
}

// firstPresent returns the first of names that attrs has, or names[0].
func firstPresent(attrs map[string]string, names ...string) string {
	for _, n := range names {
		if _, ok := attrs[n]; ok {
			return n
		}
	}
	return names[0]
}

// wanted lists the attribute values b asks for on family fam. With attrs
// nil (BIOS unreadable) it lists the settings with empty attribute names.
func (b Baseline) wanted(attrs map[string]string, fam string) []DiffEntry {
	var out []DiffEntry
	add := func(setting, attr, want, note string) {
		e := DiffEntry{Setting: setting, Attribute: attr, Want: want, Note: note}
		if attr == "" && attrs != nil {
			e.Status = StatusUnsupported
		}
		out = append(out, e)
	}
	if mode := strings.ToLower(b.BootMode); mode != "" {
		uefi := mode == "uefi"
		pick := func(u, l string) string {
			if uefi {
				return u
			}
			return l
		}
		switch {
		case attrs == nil:
			add("BootMode", "", mode, "")
		case fam == "dell":
			add("BootMode", "BootMode", pick("Uefi", "Bios"), "")
		case fam == "hpe":
			add("BootMode", "BootMode", pick("Uefi", "LegacyBios"), "")
		case fam == "lenovo":
			add("BootMode", "BootModes_SystemBootMode", pick("UEFIMode", "LegacyMode"), "")
		case fam == "supermicro":
			add("BootMode", "BootModeSelect", pick("UEFI", "LEGACY"), "")
		default:
			add("BootMode", "BootMode", pick("Uefi", "Legacy"), "generic mapping; check the BMC's attribute registry")
		}
	}
	if b.Virtualization != nil {
		on := *b.Virtualization
		var attr string
		switch {
		case attrs == nil:
		case fam == "lenovo":
			attr = firstPresent(attrs, "Processors_IntelVirtualizationTechnology", "Processors_SVMMode")
		case fam == "supermicro":
			attr = firstPresent(attrs, "IntelVirtualizationTechnology", "SVMMode")
		default:
			attr = firstPresent(attrs, "ProcVirtualization", "VirtualizationTechnology", "SVMMode")
		}
		want := onOff(attrs[attr], on)
		if attrs == nil {
			want = fmt.Sprint(on)
		}
		add("Virtualization", attr, want, "")
	}
	if b.PXENIC != "" {
		switch {
		case attrs == nil:
			add("PXENIC", "", b.PXENIC, "")
		case fam == "dell":
			add("PXENIC", "PxeDev1EnDis", "Enabled", "")
			add("PXENIC", "PxeDev1Interface", b.PXENIC, "")
		case fam == "hpe" && strings.HasPrefix(b.PXENIC, "NicBoot"):
			add("PXENIC", b.PXENIC, "NetworkBoot", "")
		default:
			add("PXENIC", "", b.PXENIC, "no known PXE NIC attribute for family "+fam+"; use Attributes")
		}
	}
	// Raw attributes win over mapped entries naming the same attribute.
	names := make([]string, 0, len(b.Attributes))
	for k := range b.Attributes {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		out = slices.DeleteFunc(out, func(e DiffEntry) bool { return e.Attribute == k })
		add("Attributes", k, b.Attributes[k], "")
	}
	return out
}
