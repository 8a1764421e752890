package main

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/bmc"
)

func TestBMCJSON(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	f := newFakeBMCs()
	f.openErr["lab-03"] = &bmc.Error{Node: "lab-03", Op: "open", Kind: bmc.KindAuth, Err: errors.New("unauthorized name")}
	code, out, errs := bmcRun{fake: f}.run(t, "status", "--all", "--json", "--plan", planPath, "--secrets", secrets)
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	j := decodeBMCJSON(t, out)
	if j.Command != "status" || j.Cluster != "lab" || len(j.Nodes) != 4 || j.Summary.OK != 2 || j.Summary.Failed != 1 || j.Summary.Skipped != 1 {
		t.Fatalf("%+v", j)
	}
	n1, n3, n4 := j.Nodes[0], j.Nodes[2], j.Nodes[3]
	if n1.Status != "ok" || n1.Power != "off" || n1.Provider != "fake" || n1.Inventory == nil || n1.Inventory.Model != "FK-1" ||
		!*n1.Reachable || !*n1.CredentialsOK || n1.Started.IsZero() || n1.BMC != "ipmi 127.0.0.1:9001" {
		t.Errorf("lab-01: %+v", n1)
	}
	if n3.Status != "failed" || n3.Kind != "auth" || !strings.Contains(n3.Reason, "unauthorized name") || !*n3.Reachable || *n3.CredentialsOK {
		t.Errorf("lab-03: %+v", n3)
	}
	if n4.Status != "skipped" || n4.Reason != "no BMC in the plan" || !n4.Started.IsZero() || n4.Reachable != nil {
		t.Errorf("lab-04: %+v", n4)
	}
	if !strings.Contains(errs, "2 ok, 1 failed, 1 skipped") {
		t.Errorf("no summary on stderr: %s", errs)
	}
}

func TestBMCBootdev(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	base := []string{"--plan", planPath, "--secrets", secrets}
	cases := []struct {
		args []string
		want map[string]string
		code int
	}{
		{[]string{"pxe", "--all"}, map[string]string{"lab-01": "pxe efi=true persistent=false", "lab-02": "pxe efi=true persistent=false", "lab-03": "pxe efi=false persistent=false"}, 0},
		{[]string{"disk", "lab-03", "--efi", "--persistent"}, map[string]string{"lab-03": "disk efi=true persistent=true"}, 0},
		{[]string{"pxe", "lab-01", "--legacy", "--once"}, map[string]string{"lab-01": "pxe efi=false persistent=false"}, 0},
		{[]string{"pxe", "lab-01", "--once", "--persistent"}, map[string]string{}, 2},
		{[]string{"pxe", "lab-01", "--efi", "--legacy"}, map[string]string{}, 2},
		{[]string{"floppy", "lab-01"}, map[string]string{}, 2},
	}
	for _, c := range cases {
		f := newFakeBMCs()
		code, out, errs := bmcRun{fake: f}.run(t, append(append([]string{"bootdev"}, c.args...), base...)...)
		if code != c.code || !maps.Equal(f.boot, c.want) {
			t.Errorf("%v: exit %d boot %v, want %d %v\n%s%s", c.args, code, f.boot, c.code, c.want, out, errs)
		}
	}
	f := newFakeBMCs()
	code, out, _ := bmcRun{fake: f}.run(t, append([]string{"bootdev", "pxe", "lab-03", "lab-02"}, base...)...)
	if code != 0 || !strings.Contains(out, "lab-02  ipmi 127.0.0.2:9002  pxe     uefi    once") ||
		!strings.Contains(out, "lab-03  ipmi 127.0.0.3:9003  pxe     legacy  once") {
		t.Errorf("exit %d\n%s", code, out)
	}
	code, out, _ = bmcRun{fake: newFakeBMCs()}.run(t, append([]string{"bootdev", "pxe", "lab-03", "--json"}, base...)...)
	if j := decodeBMCJSON(t, out); code != 0 || j.Nodes[0].Boot == nil || j.Nodes[0].Boot.EFI || j.Nodes[0].Boot.Device != "pxe" {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestBMCBIOS(t *testing.T) {
	nodes := bmcStdNodes()
	nodes[0].bios = "virtualization: true, attributes: {SriovGlobalEnable: Enabled}"
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword})
	base := []string{"--plan", planPath, "--secrets", secrets}
	dell := func() map[string]string {
		return map[string]string{"SysProfile": "PerfOptimized", "BootMode": "Bios", "ProcVirtualization": "Disabled", "SriovGlobalEnable": "Disabled"}
	}

	// show: current attributes; lab-02 speaks IPMI only (unsupported).
	f := newFakeBMCs()
	f.bios["lab-01"] = dell()
	code, out, _ := bmcRun{fake: f}.run(t, append([]string{"bios", "show", "lab-01", "lab-02"}, base...)...)
	if code != 1 || !strings.Contains(out, "lab-01  ProcVirtualization  Disabled") || !strings.Contains(out, "lab-02  unsupported") {
		t.Errorf("show: exit %d\n%s", code, out)
	}

	// show --dry-run: the planned diff, nothing written.
	code, out, _ = bmcRun{fake: f}.run(t, append([]string{"bios", "show", "--dry-run", "lab-01", "--json"}, base...)...)
	j := decodeBMCJSON(t, out)
	if code != 0 || j.Nodes[0].Diff == nil || j.Nodes[0].Diff.Family != "dell" || len(j.Nodes[0].Diff.Entries) != 3 {
		t.Fatalf("dry-run: exit %d\n%s", code, out)
	}
	for _, en := range j.Nodes[0].Diff.Entries {
		if en.Status != string(bmc.StatusWouldChange) {
			t.Errorf("dry-run entry %+v", en)
		}
	}
	if f.bios["lab-01"]["BootMode"] != "Bios" || slices.Contains(f.actions, "lab-01 set bios") {
		t.Errorf("dry run wrote: %v", f.actions)
	}

	// apply: written, read back, diff shown.
	code, out, errs := bmcRun{fake: f}.run(t, append([]string{"bios", "apply", "lab-01"}, base...)...)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"NODE    FAMILY  SETTING         ATTRIBUTE           BEFORE    WANT     GOT      STATUS   NOTE",
		"lab-01  dell    BootMode        BootMode            Bios      Uefi     Uefi     changed  -",
		"lab-01  dell    Virtualization  ProcVirtualization  Disabled  Enabled  Enabled  changed  -",
		"lab-01  dell    Attributes      SriovGlobalEnable   Disabled  Enabled  Enabled  changed  -",
		"1 ok, 0 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if f.bios["lab-01"]["BootMode"] != "Uefi" {
		t.Errorf("not applied: %v", f.bios["lab-01"])
	}
	// Applying again: everything matches.
	code, out, _ = bmcRun{fake: f}.run(t, append([]string{"bios", "apply", "lab-01", "--json"}, base...)...)
	if j := decodeBMCJSON(t, out); code != 0 || !j.Nodes[0].Diff.Converged {
		t.Errorf("second apply: exit %d\n%s", code, out)
	}
	// IPMI-only BMC: unsupported is a failed node with a clear kind.
	code, out, _ = bmcRun{fake: newFakeBMCs()}.run(t, append([]string{"bios", "apply", "lab-02"}, base...)...)
	if code != 1 || !strings.Contains(out, "lab-02  dell") && !strings.Contains(out, "lab-02  unknown  BootMode") || !strings.Contains(out, "lab-02  unsupported") {
		t.Errorf("apply over IPMI: exit %d\n%s", code, out)
	}
}

func TestBMCInventory(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	code, out, _ := bmcRun{fake: newFakeBMCs()}.run(t, "inventory", "lab-01", "--plan", planPath, "--secrets", secrets)
	if code != 0 || !strings.Contains(out, "lab-01  Fake    FK-1   SN-lab-01  1.0     -     52:54:00:00:00:01  fake      ok") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestBMCSecretsNeverPrinted(t *testing.T) {
	nodes := bmcStdNodes()
	nodes[1].secret = "bmc-other"
	nodes = append(nodes, bmcTestNode{name: "lab-05", addr: "bmc5.lab.racklift.test", driver: "auto"})
	const other = "0ther-s3cret-value"
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword, "bmc-other": other})
	leak := func(node, pw string) error {
		// A misbehaving provider that echoes the password.
		return &bmc.Error{Node: node, Op: "open", Kind: bmc.KindAuth, Err: fmt.Errorf("login as admin:%s refused", pw)}
	}
	for _, args := range [][]string{
		{"status", "--all"},
		{"status", "--all", "--json"},
		{"power", "off", "--all", "--yes"},
		{"bios", "apply", "--all", "--json"},
		{"inventory", "--all"},
	} {
		f := newFakeBMCs()
		f.openErr["lab-01"] = leak("lab-01", bmcTestPassword)
		f.openErr["lab-02"] = leak("lab-02", other)
		f.callErr["lab-03"] = fmt.Errorf("bmc said %s", bmcTestPassword)
		r := bmcRun{fake: f}
		code, out, errs := r.run(t, append(args, "--plan", planPath, "--secrets", secrets)...)
		if code != 1 {
			t.Errorf("%v: exit %d", args, code)
		}
		all := out + errs
		if strings.Contains(all, bmcTestPassword) || strings.Contains(all, other) {
			t.Errorf("%v: a password was printed:\n%s", args, all)
		}
		if !strings.Contains(all, "[redacted]") {
			t.Errorf("%v: no redaction marker:\n%s", args, all)
		}
		// The BMC layer does get the passwords.
		if f.targets["lab-01"].Password != bmcTestPassword || f.targets["lab-02"].Password != other {
			t.Errorf("passwords not passed to the targets")
		}
		// Driver auto: no port (Target.Validate's rule), though the plan fills in 623.
		if tg := f.targets["lab-05"]; tg.Driver != bmc.DriverAuto || tg.Port != 0 || tg.Validate() != nil {
			t.Errorf("auto target %#v: %v", tg, tg.Validate())
		}
		if tg := f.targets["lab-02"]; tg.Port != 9002 || tg.Validate() != nil {
			t.Errorf("ipmi target %#v", tg)
		}
	}
}

func TestBMCPerNodeTimeout(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	before := runtime.NumGoroutine()
	defer bmcNoGoroutineLeak(t, before)
	f := newFakeBMCs()
	f.delay["lab-02"] = 10 * time.Second
	start := time.Now()
	code, out, errs := bmcRun{fake: f}.run(t, "power", "on", "lab-01", "lab-02", "--timeout", "200ms", "--plan", planPath, "--secrets", secrets)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	if code != 1 || !strings.Contains(out, "lab-02  timeout") || !strings.Contains(out, "1 ok, 1 failed") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
	if f.closes["lab-02"] != 1 {
		t.Errorf("timed-out node closed %d times", f.closes["lab-02"])
	}
	if o := f.opts[0]; o.PerCallTimeout != 200*time.Millisecond || o.Log == nil {
		t.Errorf("options %+v", o)
	}
}
