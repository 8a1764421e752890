package bmc

import (
	"context"
	"errors"
	"maps"
	"testing"
)

// biosController is a fake Controller with BIOS attributes. With staged set,
// SetBIOS changes take effect only at Power(PowerCycle), like Redfish
// @Redfish.Settings.
type biosController struct {
	fakeController
	attrs   map[string]string
	staged  bool
	pending map[string]string
	sets    []map[string]string
	noBIOS  bool
}

func (b *biosController) BIOS(context.Context) (map[string]string, error) {
	if b.noBIOS {
		return nil, &Error{Op: "get bios", Kind: KindUnsupported, Err: errors.New("no BiosConfigurationGetter implementations found")}
	}
	return maps.Clone(b.attrs), nil
}

func (b *biosController) SetBIOS(_ context.Context, a map[string]string) error {
	b.sets = append(b.sets, maps.Clone(a))
	if b.staged {
		maps.Copy(b.pending, a)
		return nil
	}
	maps.Copy(b.attrs, a)
	return nil
}

func (b *biosController) Power(_ context.Context, a PowerAction) error {
	if a == PowerCycle {
		maps.Copy(b.attrs, b.pending)
		clear(b.pending)
	}
	return nil
}

func dellAttrs() map[string]string {
	return map[string]string{
		"BootMode": "Bios", "ProcVirtualization": "Disabled", "PxeDev1EnDis": "Disabled",
		"PxeDev1Interface": "NIC.Integrated.1-1-1", "SysProfile": "PerfOptimized", "LogicalProc": "Enabled",
	}
}

func entry(t *testing.T, d Diff, attr string) DiffEntry {
	t.Helper()
	for _, e := range d.Entries {
		if e.Attribute == attr {
			return e
		}
	}
	t.Fatalf("no entry for %q in %+v", attr, d.Entries)
	return DiffEntry{}
}

func TestApplyBaselineDellImmediate(t *testing.T) {
	on := true
	c := &biosController{attrs: dellAttrs()}
	b := Baseline{BootMode: "uefi", Virtualization: &on, PXENIC: "NIC.Slot.2-1-1",
		Attributes: map[string]string{"LogicalProc": "Enabled", "NoSuchThing": "1"}}
	d, err := ApplyBaseline(t.Context(), c, b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Family != "dell" {
		t.Errorf("family %q", d.Family)
	}
	want := map[string]DiffStatus{
		"BootMode": StatusChanged, "ProcVirtualization": StatusChanged, "PxeDev1EnDis": StatusChanged,
		"PxeDev1Interface": StatusChanged, "LogicalProc": StatusMatch, "NoSuchThing": StatusUnsupported,
	}
	for attr, st := range want {
		if e := entry(t, d, attr); e.Status != st {
			t.Errorf("%s: %+v, want %s", attr, e, st)
		}
	}
	if e := entry(t, d, "BootMode"); e.Want != "Uefi" || e.Before != "Bios" || e.Got != "Uefi" {
		t.Errorf("BootMode entry %+v", e)
	}
	if len(c.sets) != 1 || len(c.sets[0]) != 4 || c.sets[0]["NoSuchThing"] != "" {
		t.Errorf("SetBIOS calls %v: want one call with the 4 differing known attributes", c.sets)
	}
	if d.Converged() || len(d.Unsupported()) != 1 {
		t.Errorf("converged %v unsupported %v", d.Converged(), d.Unsupported())
	}
}

func TestApplyBaselineStagedThenConverged(t *testing.T) {
	off := false
	c := &biosController{attrs: dellAttrs(), staged: true, pending: map[string]string{}}
	b := Baseline{BootMode: "uefi", Virtualization: &off}
	d, err := ApplyBaseline(t.Context(), c, b)
	if err != nil {
		t.Fatal(err)
	}
	if e := entry(t, d, "BootMode"); e.Status != StatusPending || !d.NeedsReset() {
		t.Errorf("staged write: %+v", e)
	}
	if e := entry(t, d, "ProcVirtualization"); e.Status != StatusMatch {
		t.Errorf("virtualization already off: %+v", e)
	}
	_ = c.Power(t.Context(), PowerCycle)
	d, err = ApplyBaseline(t.Context(), c, b)
	if err != nil || !d.Converged() || len(c.sets) != 1 {
		t.Errorf("after reset: converged %v err %v sets %v", d.Converged(), err, c.sets)
	}
}

func TestApplyBaselineUnsupported(t *testing.T) {
	on := true
	c := &biosController{noBIOS: true}
	d, err := ApplyBaseline(t.Context(), c, Baseline{BootMode: "legacy", Virtualization: &on})
	if !errors.Is(err, ErrUnsupported) || Kind(err) != KindUnsupported {
		t.Fatalf("err %v kind %v", err, Kind(err))
	}
	if len(d.Entries) != 2 || len(d.Unsupported()) != 2 || len(c.sets) != 0 {
		t.Errorf("diff %+v sets %v", d, c.sets)
	}
	if _, err := PlanBaseline(t.Context(), c, Baseline{BootMode: "bogus"}); Kind(err) != KindInvalid {
		t.Errorf("bad boot mode: %v", err)
	}
}

func TestBaselineFamilies(t *testing.T) {
	on := true
	tests := map[string]struct {
		attrs    map[string]string
		family   string
		attr     string
		want     string
		virtAttr string
		virtWant string
	}{
		"hpe":        {map[string]string{"WorkloadProfile": "x", "BootMode": "Uefi", "ProcVirtualization": "Disabled"}, "hpe", "BootMode", "LegacyBios", "ProcVirtualization", "Enabled"},
		"lenovo":     {map[string]string{"BootModes_SystemBootMode": "UEFIMode", "Processors_IntelVirtualizationTechnology": "Disable"}, "lenovo", "BootModes_SystemBootMode", "LegacyMode", "Processors_IntelVirtualizationTechnology", "Enable"},
		"supermicro": {map[string]string{"BootModeSelect": "UEFI", "SVMMode": "Disabled"}, "supermicro", "BootModeSelect", "LEGACY", "SVMMode", "Enabled"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := PlanBaseline(t.Context(), &biosController{attrs: tc.attrs}, Baseline{BootMode: "legacy", Virtualization: &on})
			if err != nil {
				t.Fatal(err)
			}
			if d.Family != tc.family {
				t.Errorf("family %q", d.Family)
			}
			if e := entry(t, d, tc.attr); e.Want != tc.want || e.Status != StatusWouldChange {
				t.Errorf("boot mode %+v", e)
			}
			if e := entry(t, d, tc.virtAttr); e.Want != tc.virtWant || e.Status != StatusWouldChange {
				t.Errorf("virtualization %+v", e)
			}
		})
	}
}

// TestRedfishApplyBaseline runs the baseline through bmclib against the fake
// Redfish service, whose BIOS settings are staged until a reset.
func TestRedfishApplyBaseline(t *testing.T) {
	f, srv := newFakeRedfish(t)
	ctx := t.Context()
	on := true
	b := Baseline{BootMode: "uefi", Virtualization: &on, PXENIC: "NIC.Integrated.1-1-1"}
	opts := redfishOptions(t)
	opts.Log = nil
	d, err, closeErr := Do(ctx, NewBMCLib(f.target(t, srv, "rf-bios", f.pass), opts), func(ctx context.Context, c Controller) (Diff, error) {
		return ApplyBaseline(ctx, c, b)
	})
	if err != nil || closeErr != nil {
		t.Fatalf("apply: %v / %v", err, closeErr)
	}
	for _, e := range d.Entries {
		want := StatusPending
		if e.Attribute == "PxeDev1Interface" {
			want = StatusMatch
		}
		if e.Status != want {
			t.Errorf("%s: %+v, want %s", e.Attribute, e, want)
		}
	}
	f.mu.Lock()
	patch := f.biosPatches[0]
	f.mu.Unlock()
	attrs, _ := patch["Attributes"].(map[string]any)
	if attrs["BootMode"] != "Uefi" || attrs["ProcVirtualization"] != "Enabled" || attrs["PxeDev1EnDis"] != "Enabled" || len(attrs) != 3 {
		t.Errorf("BIOS settings PATCH body %v", patch)
	}
	// A reset applies the staged settings; the baseline then converges.
	d, err, _ = Do(ctx, NewBMCLib(f.target(t, srv, "rf-bios", f.pass), opts), func(ctx context.Context, c Controller) (Diff, error) {
		if err := c.Power(ctx, PowerCycle); err != nil {
			// bmclib refuses "cycle" on a powered-off Redfish system; power on instead.
			if err := c.Power(ctx, PowerOn); err != nil {
				return Diff{}, err
			}
		}
		return ApplyBaseline(ctx, c, b)
	})
	if err != nil || !d.Converged() {
		t.Fatalf("after reset: %v %+v", err, d)
	}
	assertNoSessions(t, f, 2)
}
