package bmc

import (
	"context"
	"fmt"
)

// PowerAction is a chassis power command.
type PowerAction string

// Power actions, modelled on `ipmitool chassis power`.
const (
	// PowerOn powers the chassis up; no error if it is already on.
	PowerOn PowerAction = "on"
	// PowerOff is a hard power-off; no error if it is already off.
	PowerOff PowerAction = "off"
	// PowerSoft asks the OS to shut down (ACPI).
	PowerSoft PowerAction = "soft"
	// PowerCycle is a hard off followed by on. Not idempotent: never retried
	// after the command may have reached the BMC.
	PowerCycle PowerAction = "cycle"
	// PowerReset is a warm reset. Not idempotent, like PowerCycle.
	PowerReset PowerAction = "reset"
)

// Validate reports an unknown action (wrapping ErrInvalid).
func (a PowerAction) Validate() error {
	switch a {
	case PowerOn, PowerOff, PowerSoft, PowerCycle, PowerReset:
		return nil
	}
	return fmt.Errorf("unknown power action %q: %w", string(a), ErrInvalid)
}

// idempotent reports whether repeating a lets the machine end up the same.
func (a PowerAction) idempotent() bool {
	return a == PowerOn || a == PowerOff || a == PowerSoft
}

// BootDevice is a next-boot device.
type BootDevice string

// Boot devices.
const (
	BootPXE   BootDevice = "pxe"
	BootDisk  BootDevice = "disk"
	BootBIOS  BootDevice = "bios"
	BootCDROM BootDevice = "cdrom"
)

// Validate reports an unknown device (wrapping ErrInvalid).
func (d BootDevice) Validate() error {
	switch d {
	case BootPXE, BootDisk, BootBIOS, BootCDROM:
		return nil
	}
	return fmt.Errorf("unknown boot device %q: %w", string(d), ErrInvalid)
}

// BootOptions qualify SetBootDevice.
type BootOptions struct {
	// Persistent keeps the device for every boot, not just the next one.
	Persistent bool
	// EFI asks for a UEFI boot (Redfish BootSourceOverrideMode=UEFI, IPMI
	// "efiboot"). Some BMCs ignore it (OpenIPMI's ipmi_sim does).
	EFI bool
}

// Inventory is what a BMC reports about its machine. Fields the BMC does not
// report are empty.
type Inventory struct {
	Vendor      string
	Model       string
	Serial      string
	BMCFirmware string
	BIOSVersion string
	// MACs are the NIC ports' MAC addresses, lower case, in the order the
	// BMC lists them, without duplicates.
	MACs []string
}

// Controller drives one node's BMC.
//
// Call Open first and Close last; Close must always be called (even after a
// failed Open or a cancelled context) and is safe to call more than once. A
// Controller is not safe for concurrent use: give each goroutine its own.
// Errors are *Error values (see Kind).
type Controller interface {
	// Open connects and authenticates (for Redfish: creates a session).
	Open(ctx context.Context) error
	// PowerState returns "on", "off" or the BMC's own word, lower case.
	PowerState(ctx context.Context) (string, error)
	// Power runs a chassis power action.
	Power(ctx context.Context, action PowerAction) error
	// SetBootDevice sets the next (or every, with Persistent) boot device.
	SetBootDevice(ctx context.Context, dev BootDevice, opts BootOptions) error
	// BIOS returns the current BIOS attributes (vendor names and values).
	BIOS(ctx context.Context) (map[string]string, error)
	// SetBIOS stages BIOS attribute changes. On Redfish BMCs they take
	// effect at the next reset; BIOS reads the current values until then.
	SetBIOS(ctx context.Context, attrs map[string]string) error
	// Inventory reports vendor, model, serial, firmware versions and MACs.
	Inventory(ctx context.Context) (Inventory, error)
	// Provider names the bmclib provider(s) in use ("ipmitool", "gofish",
	// ...), or "" before a successful Open.
	Provider() string
	// Close ends the session. It uses a fresh bounded context when ctx is
	// already done, so a session is closed even after a timeout.
	Close(ctx context.Context) error
}
