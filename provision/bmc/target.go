package bmc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// Driver selects how a BMC is spoken to.
type Driver string

// Drivers.
const (
	// DriverAuto lets bmclib try every provider it knows (ipmitool, Redfish
	// via gofish, and the vendor APIs: Dell, Supermicro, ASRockRack, OpenBMC,
	// Intel AMT) concurrently and keeps those that connect. Target.Port must be
	// zero with DriverAuto (each protocol uses its default port: 623/udp for
	// IPMI, 443/tcp for Redfish and the vendor APIs). Slow: every provider is
	// probed, and several of them open their own Redfish session.
	DriverAuto Driver = "auto"
	// DriverIPMI uses only bmclib's ipmitool provider (IPMI v2.0 lanplus,
	// cipher suite 3 unless Options.IPMICipherSuite says otherwise).
	DriverIPMI Driver = "ipmi"
	// DriverRedfish uses only bmclib's gofish (generic Redfish) provider.
	DriverRedfish Driver = "redfish"
)

// ParseDriver turns "ipmi", "redfish", "auto" (or "") into a Driver.
func ParseDriver(s string) (Driver, error) {
	switch Driver(s) {
	case DriverIPMI, DriverRedfish, DriverAuto:
		return Driver(s), nil
	case "":
		return DriverAuto, nil
	}
	return "", fmt.Errorf("unknown bmc driver %q (want ipmi, redfish or auto): %w", s, ErrInvalid)
}

// Default ports per protocol.
const (
	DefaultIPMIPort    = 623
	DefaultRedfishPort = 443
)

// Target is one node's BMC and how to reach it.
//
// Target is a plain value; its String, GoString and LogValue methods redact
// Password, so it is safe to log and to put in errors.
type Target struct {
	// Node is the node's name in the plan (used in logs, errors, results).
	Node string
	// Address is the BMC's IP address or host name, without port.
	Address string
	// Port overrides the protocol's default port (623 IPMI, 443 Redfish).
	// Zero means the default. Must be zero with DriverAuto.
	Port int
	// Driver selects the protocol; the zero value means DriverAuto.
	Driver Driver
	// User is the BMC account name.
	User string
	// Password is the BMC account password. Secret: never logged or printed.
	Password string
	// TLSVerify makes Redfish connections verify the BMC's certificate
	// (against CACert, or the system roots when CACert is empty). Off by
	// default because nearly every BMC ships a self-signed certificate.
	TLSVerify bool
	// CACert is an optional PEM bundle to verify the BMC's certificate with.
	// Only used with TLSVerify.
	CACert []byte
}

// driver returns the effective driver (DriverAuto for the zero value).
func (t Target) driver() Driver {
	if t.Driver == "" {
		return DriverAuto
	}
	return t.Driver
}

// port returns the effective port for the target's driver; 0 for auto.
func (t Target) port() int {
	if t.Port != 0 {
		return t.Port
	}
	switch t.driver() {
	case DriverIPMI:
		return DefaultIPMIPort
	case DriverRedfish:
		return DefaultRedfishPort
	}
	return 0
}

// Validate reports every problem with t (joined), each wrapping ErrInvalid.
func (t Target) Validate() error {
	var errs []error
	if t.Address == "" {
		errs = append(errs, fmt.Errorf("bmc address is empty: %w", ErrInvalid))
	}
	if _, err := ParseDriver(string(t.Driver)); err != nil {
		errs = append(errs, err)
	}
	if t.Port < 0 || t.Port > 65535 {
		errs = append(errs, fmt.Errorf("bmc port %d out of range: %w", t.Port, ErrInvalid))
	}
	if t.driver() == DriverAuto && t.Port != 0 {
		errs = append(errs, fmt.Errorf("bmc port %d is ambiguous with driver auto (set driver ipmi or redfish): %w", t.Port, ErrInvalid))
	}
	if t.User == "" {
		errs = append(errs, fmt.Errorf("bmc user is empty: %w", ErrInvalid))
	}
	if len(t.CACert) > 0 && !t.TLSVerify {
		errs = append(errs, fmt.Errorf("bmc CA certificate given but TLS verification is off: %w", ErrInvalid))
	}
	return errors.Join(errs...)
}

// hostPort is "address:port" (or just the address with DriverAuto).
func (t Target) hostPort() string {
	if p := t.port(); p != 0 {
		return net.JoinHostPort(t.Address, strconv.Itoa(p))
	}
	return t.Address
}

const redacted = "[redacted]"

// passwordMark is what String and LogValue show for Password.
func (t Target) passwordMark() string {
	if t.Password == "" {
		return ""
	}
	return redacted
}

// String describes t without its password, e.g.
// "node=n1 bmc=ipmi://admin@10.0.0.5:623 password=[redacted]".
func (t Target) String() string {
	return fmt.Sprintf("node=%s bmc=%s://%s@%s password=%s tls-verify=%t",
		t.Node, t.driver(), t.User, t.hostPort(), t.passwordMark(), t.TLSVerify)
}

// GoString makes %#v redact the password too.
func (t Target) GoString() string {
	return fmt.Sprintf("bmc.Target{Node:%q, Address:%q, Port:%d, Driver:%q, User:%q, Password:%q, TLSVerify:%t, CACert:%d bytes}",
		t.Node, t.Address, t.Port, t.Driver, t.User, t.passwordMark(), t.TLSVerify, len(t.CACert))
}

// LogValue implements slog.LogValuer: a group without the password.
func (t Target) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("node", t.Node),
		slog.String("addr", t.hostPort()),
		slog.String("driver", string(t.driver())),
		slog.String("user", t.User),
		slog.String("password", t.passwordMark()),
	)
}
