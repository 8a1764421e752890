package bmc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/racklift/racklift/provision/plan"
)

// This file is where a plan node becomes BMC work, for `racklift bmc` and
// the orchestrator alike: its Target (password from the secrets), its BIOS
// Baseline, and the one policy for a baseline that does not converge.

// Secrets resolves BMC passwords by secret name.
type Secrets interface {
	Lookup(name string) (string, bool)
}

// TargetFor is node n's BMC target, with its password from secrets. It
// fails (ErrInvalid) when n has no BMC, the password secret is not set, or
// the target is not usable.
func TargetFor(n *plan.Node, secrets Secrets) (Target, error) {
	b := n.BMC
	if b == nil {
		return Target{}, fmt.Errorf("node %s has no BMC in the plan: %w", n.Name, ErrInvalid)
	}
	d, err := ParseDriver(b.Driver)
	if err != nil {
		return Target{}, err
	}
	t := Target{Node: n.Name, Address: b.Address, Driver: d, User: b.User, TLSVerify: b.TLSVerify}
	if d != DriverAuto {
		// The plan fills in 623/443; with driver auto every protocol uses
		// its own default port and Target.Validate refuses one.
		t.Port = b.Port
	}
	pw, ok := "", false
	if secrets != nil {
		pw, ok = secrets.Lookup(b.PasswordSecret)
	}
	if !ok || pw == "" {
		return t, fmt.Errorf("BMC password secret %q is not set: put it in the secrets file (--secrets) or in %s: %w",
			b.PasswordSecret, plan.EnvName(b.PasswordSecret), ErrInvalid)
	}
	t.Password = pw
	return t, t.Validate()
}

// BaselineFor is node n's BIOS baseline from the plan (its bios: section).
func BaselineFor(n *plan.Node) Baseline {
	return Baseline{
		BootMode:       n.BIOS.BootMode,
		PXENIC:         n.BIOS.PXENIC,
		Virtualization: n.BIOS.Virtualization,
		Attributes:     n.BIOS.Attributes,
	}
}

// Requested reports whether the baseline asks for anything the BMC must
// set beyond the boot mode (which the one-time boot request carries).
func (b Baseline) Requested() bool {
	return b.PXENIC != "" || b.Virtualization != nil || len(b.Attributes) > 0
}

// ErrNotConverged is wrapped by EnsureBaseline when the BMC took the
// baseline but reads back other values.
var ErrNotConverged = errors.New("BIOS does not read back the baseline")

// EnsureBaseline applies b and decides, the same way for the CLI and the
// orchestrator, whether the node may go on: a read-back that differs from
// what was written (or a write that failed) is an error of kind BMC that
// wraps ErrNotConverged and names each attribute; changes that wait for
// the next reset are fine (the power-on that follows is that reset); a BMC
// without BIOS access returns the ErrUnsupported error of ApplyBaseline,
// for the caller to report and go on.
func EnsureBaseline(ctx context.Context, c Controller, node string, b Baseline) (Diff, error) {
	d, err := ApplyBaseline(ctx, c, b)
	if err != nil {
		return d, err
	}
	var bad []string
	for _, e := range d.Entries {
		if e.Status == StatusMismatch || e.Status == StatusFailed {
			bad = append(bad, fmt.Sprintf("%s=%q (want %q)", e.Attribute, e.Got, e.Want))
		}
	}
	if len(bad) > 0 {
		return d, &Error{Node: node, Op: "apply bios baseline", Kind: KindBMC,
			Err: fmt.Errorf("%w: %s", ErrNotConverged, strings.Join(bad, ", "))}
	}
	return d, nil
}
