package agent

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Kernel arguments the agent reads (none of them is a secret: anyone on
// the LAN can read a boot script).
const (
	// ArgServer is racklift's node-facing URL (http://10.99.0.1:8080).
	ArgServer = "racklift.server"
	// ArgMAC is the MAC of the NIC the node booted from; iPXE's BOOTIF
	// (01-aa-bb-cc-dd-ee-ff) is read when it is absent.
	ArgMAC = "racklift.mac"
	// ArgOnError is what the agent does after a failure: "wait" (the
	// default: stay up, showing the reason on the console, until someone
	// power-cycles the node), "reboot" or "poweroff".
	ArgOnError = "racklift.onerror"
	// ArgVerify turns reading the image back after writing it off ("0")
	// or on ("1", the default).
	ArgVerify = "racklift.verify"
)

// KernelArgs returns the agent's kernel arguments for a node booting
// from the NIC with mac (racklift.server=SERVER racklift.mac=MAC): what
// the iPXE script and the GRUB config put after the kernel, besides the
// console.
func KernelArgs(server, mac string) string {
	return ArgServer + "=" + strings.TrimRight(server, "/") + " " + ArgMAC + "=" + mac
}

// On-error actions (ArgOnError).
const (
	OnErrorWait     = "wait"
	OnErrorReboot   = "reboot"
	OnErrorPowerOff = "poweroff"
)

// Cmdline is what the agent takes from the kernel command line.
type Cmdline struct {
	Server  string
	MAC     string // lower-case, colon-separated
	OnError string
	Verify  bool
}

// ErrCmdline is wrapped by every ParseCmdline error.
var ErrCmdline = errors.New("kernel command line")

// splitCmdline splits a kernel command line into arguments the way the
// kernel does (lib/cmdline.c next_arg): whitespace-separated, with
// double quotes grouping spaces (the quotes are removed).
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// ParseCmdline reads the agent's arguments from a kernel command line
// (/proc/cmdline). The last occurrence of an argument wins, as for the
// kernel's own parameters.
func ParseCmdline(s string) (Cmdline, error) {
	c := Cmdline{OnError: OnErrorWait, Verify: true}
	var bootif string
	for _, a := range splitCmdline(s) {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case ArgServer:
			c.Server = v
		case ArgMAC:
			c.MAC = v
		case "BOOTIF":
			bootif = v
		case ArgOnError:
			c.OnError = v
		case ArgVerify:
			c.Verify = v != "0"
		}
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case c.Server == "":
		bad("%s= is missing (racklift's URL, e.g. %s=http://10.99.0.1:8080)", ArgServer, ArgServer)
	default:
		u, err := url.Parse(c.Server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("%s=%q: want http://HOST:PORT", ArgServer, c.Server)
		} else {
			c.Server = strings.TrimRight(c.Server, "/")
		}
	}
	if c.MAC == "" && bootif != "" {
		// iPXE: BOOTIF=01-${netX/mac:hexhyp}; "01" is the ARP hardware
		// type (Ethernet).
		c.MAC = strings.ReplaceAll(strings.TrimPrefix(bootif, "01-"), "-", ":")
	}
	switch hw, err := net.ParseMAC(c.MAC); {
	case c.MAC == "":
		bad("%s= (or BOOTIF=) is missing: the MAC of the NIC the node booted from", ArgMAC)
	case err != nil || len(hw) != 6:
		bad("%s=%q is not an Ethernet MAC", ArgMAC, c.MAC)
	default:
		c.MAC = hw.String()
	}
	switch c.OnError {
	case OnErrorWait, OnErrorReboot, OnErrorPowerOff:
	default:
		bad("%s=%q: want %s, %s or %s", ArgOnError, c.OnError, OnErrorWait, OnErrorReboot, OnErrorPowerOff)
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %w", ErrCmdline, errors.Join(errs...))
	}
	return c, nil
}
