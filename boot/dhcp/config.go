package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/racklift/racklift/provision/events"
)

// Host is what the plan says about one provisioning MAC.
type Host struct {
	// Node is the plan node name.
	Node string
	// IP is the planned provisioning address (authoritative mode).
	IP net.IP
	// Mask is the provisioning subnet mask (option 1).
	Mask net.IPMask
	// Gateway is the default router (option 3), nil for none.
	Gateway net.IP
	// DNS are the name servers (option 6).
	DNS []net.IP
	// Domain is the DNS domain (option 15).
	Domain string
	// Hostname is option 12; empty means Node.
	Hostname string
	// MTU is the interface MTU (option 26); 0 means not sent.
	MTU int
	// Installed is true once the node is installed: it must boot from its
	// disk, so it gets no boot file (and no proxy offer at all).
	Installed bool
	// SecureBoot is true for a node whose firmware enforces Secure Boot:
	// iPXE is unsigned and would be refused, so x86-64 UEFI gets the signed
	// chain (shim, then Debian's signed GRUB) instead.
	SecureBoot bool
}

// Hosts looks up plan hosts by MAC. HostByMAC is called once per request,
// concurrently; it must be fast and must not block on I/O.
type Hosts interface {
	HostByMAC(mac net.HardwareAddr) (Host, bool)
}

// Recorder stores events. Record is called once per decision, with a
// context bounded by Config.RecordTimeout; its error is logged, never
// returned to the client. provision/events' store satisfies it.
type Recorder interface {
	Record(ctx context.Context, ev events.Event) (events.Event, error)
}

// Mode is how the DHCP service behaves on the provisioning LAN.
type Mode int

// Modes.
const (
	// Proxy answers PXE clients in the plan with boot options only, next to
	// the customer's DHCP server. The default.
	Proxy Mode = iota
	// Authoritative leases plan MACs their planned addresses.
	Authoritative
)

// String returns "proxy" or "authoritative".
func (m Mode) String() string {
	switch m {
	case Proxy:
		return "proxy"
	case Authoritative:
		return "authoritative"
	default:
		return fmt.Sprintf("mode(%d)", int(m))
	}
}

// Default boot file names and timings.
const (
	DefaultBIOSFile      = "undionly.kpxe"
	DefaultEFIx64File    = "snponly.efi"
	DefaultShimFile      = "shimx64.efi"
	DefaultLeaseTime     = time.Hour
	DefaultIgnoreEvery   = 30 * time.Second
	DefaultRecordTimeout = 2 * time.Second
	// DefaultMaxIgnoreMACs bounds the MACs remembered for rate-limiting
	// ignore events.
	DefaultMaxIgnoreMACs = 4096
	// DefaultMaxLeases bounds the dynamic lease table.
	DefaultMaxLeases = 1024
	// offerHold is how long a dynamic address stays reserved after an offer.
	offerHold = time.Minute
	// declineHold is how long a declined dynamic address is not offered.
	declineHold = 10 * time.Minute
	// maxPoolSize bounds a dynamic pool's address range.
	maxPoolSize = 1 << 16
)

// BootConfig says where boot files are.
type BootConfig struct {
	// ServerIP is our address on the provisioning LAN: option 54, siaddr
	// (TFTP next-server) and sname. Required.
	ServerIP net.IP
	// HTTPBase is the machine-facing HTTP root, e.g. "http://10.0.0.1:8080".
	// Required.
	HTTPBase string
	// BIOSFile is the iPXE binary for BIOS PXE ROMs; default DefaultBIOSFile.
	BIOSFile string
	// EFIx64File is the iPXE binary for x86-64 UEFI; default DefaultEFIx64File.
	EFIx64File string
	// EFIarm64File is the iPXE binary for arm64 UEFI; empty means arm64
	// clients get no boot file (ignored in proxy mode).
	EFIarm64File string
	// ShimFile is the signed first stage for Secure Boot nodes (x86-64
	// UEFI), served by TFTP (and by HTTP at /sb/ for UEFI HTTP boot);
	// default DefaultShimFile. Shim loads grubx64.efi from beside itself.
	ShimFile string
}

// Pool is an optional range of addresses for machines not in the plan
// (authoritative mode only). They get a lease but never a boot file. The
// range must not overlap any plan address.
type Pool struct {
	// Start and End are the first and last address, inclusive.
	Start, End net.IP
	// Mask, Router, DNS and Domain are sent with every dynamic lease.
	Mask   net.IPMask
	Router net.IP
	DNS    []net.IP
	Domain string
	// MaxLeases bounds the lease table; 0 means DefaultMaxLeases.
	MaxLeases int
}

// Config configures a Responder.
type Config struct {
	// Mode is Proxy (default) or Authoritative.
	Mode Mode
	// Boot says where boot files are.
	Boot BootConfig
	// LeaseTime is option 51 in authoritative mode; 0 means DefaultLeaseTime.
	LeaseTime time.Duration
	// Dynamic, if set, leases unknown MACs an address from this pool in
	// authoritative mode. Nil (the default) gives them nothing.
	Dynamic *Pool
	// IgnoreEvery rate-limits "dhcp.ignore" events to one per MAC per this
	// period; 0 means DefaultIgnoreEvery.
	IgnoreEvery time.Duration
	// MaxIgnoreMACs bounds the MACs remembered for that; 0 means DefaultMaxIgnoreMACs.
	MaxIgnoreMACs int
	// RecordTimeout bounds each Recorder call; 0 means DefaultRecordTimeout.
	RecordTimeout time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Boot.BIOSFile == "" {
		c.Boot.BIOSFile = DefaultBIOSFile
	}
	if c.Boot.EFIx64File == "" {
		c.Boot.EFIx64File = DefaultEFIx64File
	}
	if c.Boot.ShimFile == "" {
		c.Boot.ShimFile = DefaultShimFile
	}
	c.Boot.HTTPBase = strings.TrimRight(c.Boot.HTTPBase, "/")
	if c.LeaseTime <= 0 {
		c.LeaseTime = DefaultLeaseTime
	}
	if c.IgnoreEvery <= 0 {
		c.IgnoreEvery = DefaultIgnoreEvery
	}
	if c.MaxIgnoreMACs <= 0 {
		c.MaxIgnoreMACs = DefaultMaxIgnoreMACs
	}
	if c.RecordTimeout <= 0 {
		c.RecordTimeout = DefaultRecordTimeout
	}
	if c.Dynamic != nil {
		p := *c.Dynamic
		if p.MaxLeases <= 0 {
			p.MaxLeases = DefaultMaxLeases
		}
		c.Dynamic = &p
	}
	return c
}

// validate reports every problem with c (after withDefaults), joined.
func (c Config) validate() error {
	var errs []error
	if c.Mode != Proxy && c.Mode != Authoritative {
		errs = append(errs, fmt.Errorf("unknown mode %d", int(c.Mode)))
	}
	if !isSet(c.Boot.ServerIP) {
		errs = append(errs, errors.New("boot: ServerIP must be an IPv4 address"))
	}
	if !strings.HasPrefix(c.Boot.HTTPBase, "http://") && !strings.HasPrefix(c.Boot.HTTPBase, "https://") {
		errs = append(errs, fmt.Errorf("boot: HTTPBase %q must start with http:// or https://", c.Boot.HTTPBase))
	}
	for _, f := range []string{c.Boot.BIOSFile, c.Boot.EFIx64File, c.Boot.EFIarm64File} {
		if strings.ContainsAny(f, "/\x00") {
			errs = append(errs, fmt.Errorf("boot: file name %q must be a plain name", f))
		}
	}
	if p := c.Dynamic; p != nil {
		if c.Mode != Authoritative {
			errs = append(errs, errors.New("dynamic pool needs authoritative mode"))
		}
		s, e := p.Start.To4(), p.End.To4()
		switch {
		case s == nil || e == nil:
			errs = append(errs, errors.New("dynamic pool: Start and End must be IPv4 addresses"))
		case ip4ToU32(s) > ip4ToU32(e):
			errs = append(errs, fmt.Errorf("dynamic pool: Start %s after End %s", s, e))
		case ip4ToU32(e)-ip4ToU32(s) >= maxPoolSize:
			errs = append(errs, fmt.Errorf("dynamic pool: more than %d addresses", maxPoolSize))
		}
		if p.Mask == nil {
			errs = append(errs, errors.New("dynamic pool: Mask is required"))
		}
	}
	return errors.Join(errs...)
}

func ip4ToU32(ip net.IP) uint32 {
	ip4 := ip.To4()
	if ip4 == nil {
		return 0
	}
	return uint32(ip4[0])<<24 | uint32(ip4[1])<<16 | uint32(ip4[2])<<8 | uint32(ip4[3])
}

func u32ToIP4(v uint32) net.IP {
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}
