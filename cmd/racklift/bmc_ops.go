package main

import (
	"context"

	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/plan"
)

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
