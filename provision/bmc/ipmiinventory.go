package bmc

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
)

// bmclib v2.3.0's ipmitool provider has no inventory, so for IPMI BMCs the
// adapter asks ipmitool itself, the way that provider runs it (lanplus, the
// password in IPMITOOL_PASSWORD, never on the command line):
//
//	mc info                         -> BMC firmware revision, manufacturer
//	fru print 0                     -> product manufacturer, name, serial (optional)
//	mc getsysinfo system_fw_version -> BIOS version (optional, IPMI 2.0)
//
// IPMI has no standard way to list the host's NIC MACs, so MACs stay empty.

// runIpmitool runs one ipmitool command against the target.
func (c *bmclibController) runIpmitool(ctx context.Context, args ...string) (string, error) {
	path := c.opts.IpmitoolPath
	if path == "" {
		p, err := exec.LookPath("ipmitool")
		if err != nil {
			return "", fmt.Errorf("ipmitool binary not found: %w", ErrUnsupported)
		}
		path = p
	}
	host, port, err := net.SplitHostPort(c.ipmiAddr())
	if err != nil {
		return "", err
	}
	base := []string{"-I", "lanplus", "-C", c.opts.IPMICipherSuite, "-H", host, "-p", port,
		"-U", c.t.User, "-E", "-N", "5"}
	cmd := exec.CommandContext(ctx, path, append(base, args...)...)
	cmd.Env = []string{"IPMITOOL_PASSWORD=" + c.t.Password}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("ipmitool %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// colonFields parses ipmitool's "Key : Value" lines (first occurrence wins).
func colonFields(out string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, seen := m[k]; !seen && k != "" {
			m[k] = v
		}
	}
	return m
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

// ipmiInventory collects what IPMI reports.
func (c *bmclibController) ipmiInventory(ctx context.Context) (Inventory, error) {
	mc, err := c.runIpmitool(ctx, "mc", "info")
	if err != nil {
		return Inventory{}, err
	}
	info := colonFields(mc)
	inv := Inventory{BMCFirmware: info["Firmware Revision"], Vendor: info["Manufacturer Name"]}
	// The FRU is optional (ipmi_sim has none): "Device not present".
	if fru, err := c.runIpmitool(ctx, "fru", "print", "0"); err == nil {
		f := colonFields(fru)
		if v := firstOf(f, "Product Manufacturer", "Board Mfg"); v != "" {
			inv.Vendor = v
		}
		inv.Model = firstOf(f, "Product Name", "Board Product")
		inv.Serial = firstOf(f, "Product Serial", "Chassis Serial", "Board Serial")
	} else if ctx.Err() != nil {
		return inv, ctx.Err()
	}
	// ipmitool exits 0 even when the BMC rejects getsysinfo, so check the text.
	if sys, err := c.runIpmitool(ctx, "mc", "getsysinfo", "system_fw_version"); err == nil {
		if v := strings.TrimSpace(sys); !strings.Contains(v, "\n") && !strings.Contains(strings.ToLower(v), "fail") &&
			!strings.Contains(strings.ToLower(v), "invalid") {
			inv.BIOSVersion = v
		}
	} else if ctx.Err() != nil {
		return inv, ctx.Err()
	}
	return inv, nil
}

// ipmiAddr is the target's IPMI host:port.
func (c *bmclibController) ipmiAddr() string {
	port := DefaultIPMIPort
	if c.t.driver() == DriverIPMI {
		port = c.t.port()
	}
	return net.JoinHostPort(c.t.Address, strconv.Itoa(port))
}

// canIPMI reports whether the open client has the ipmitool provider.
func (c *bmclibController) canIPMI() bool {
	return c.t.driver() == DriverIPMI || strings.Contains(c.opened, "ipmitool")
}
