// Package pxe classifies DHCPv4 clients that want to network boot.
//
// It reads, once per packet, the options a PXE or UEFI HTTP boot client
// sends and turns them into a Client value the DHCP handlers decide on:
//
//   - option 60 (RFC 2132 §9.13, PXE spec §2.2): class identifier, either
//     "PXEClient:Arch:xxxxx:UNDI:yyyzzz" (firmware PXE and iPXE) or
//     "HTTPClient:Arch:xxxxx:..." (UEFI HTTP boot, UEFI spec §24.7);
//   - option 77 (RFC 3004): user class; iPXE sends the plain string "iPXE";
//   - option 93 (RFC 4578 §2.1): client system architecture, the IANA
//     "Processor Architecture Types" registry (0 BIOS, 7/9 x86-64 UEFI,
//     11 arm64 UEFI, 16/19 their HTTP boot variants);
//   - option 94 (RFC 4578 §2.2): client network interface identifier,
//     type 1 (UNDI) with a major and minor version;
//   - option 97 (RFC 4578 §2.3): client machine identifier, type 0 followed
//     by a 16-byte GUID. Some ROMs send it empty; that is accepted.
//
// The package does no I/O and keeps no state.
package pxe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Firmware is the kind of boot firmware a client runs, as far as choosing a
// boot file is concerned.
type Firmware int

// Firmware kinds. Unknown is the zero value.
const (
	// Unknown is an architecture racklift has no boot file for (or none was sent).
	Unknown Firmware = iota
	// BIOS is legacy x86 PC firmware (arch 0), booted with undionly.kpxe over TFTP.
	BIOS
	// EFIx64 is x86-64 UEFI (arch 7, and arch 9 "EFI BC" which firmware in
	// the wild sends for x86-64 too), booted with an EFI iPXE over TFTP.
	EFIx64
	// EFIarm64 is arm64 UEFI (arch 11).
	EFIarm64
	// EFIx64HTTP is x86-64 UEFI HTTP boot (arch 16); it wants an http:// URL.
	EFIx64HTTP
	// EFIarm64HTTP is arm64 UEFI HTTP boot (arch 19); it wants an http:// URL.
	EFIarm64HTTP
)

// String returns a short stable name, used in logs and event attributes.
func (f Firmware) String() string {
	switch f {
	case BIOS:
		return "bios"
	case EFIx64:
		return "efi-x64"
	case EFIarm64:
		return "efi-arm64"
	case EFIx64HTTP:
		return "efi-x64-http"
	case EFIarm64HTTP:
		return "efi-arm64-http"
	case Unknown:
		return "unknown"
	default:
		return "firmware(" + strconv.Itoa(int(f)) + ")"
	}
}

// IsEFI reports whether f is a UEFI firmware (TFTP or HTTP boot).
func (f Firmware) IsEFI() bool {
	return f == EFIx64 || f == EFIarm64 || f == EFIx64HTTP || f == EFIarm64HTTP
}

// IsHTTP reports whether f is a UEFI HTTP boot client, which must be given an
// http:// URL and the class identifier "HTTPClient".
func (f Firmware) IsHTTP() bool {
	return f == EFIx64HTTP || f == EFIarm64HTTP
}

// FirmwareForArch maps an RFC 4578 architecture type to a Firmware.
func FirmwareForArch(a iana.Arch) Firmware {
	switch a {
	case iana.INTEL_X86PC:
		return BIOS
	case iana.EFI_X86_64, iana.EFI_BC: // 9 is what many x86-64 UEFI ROMs send (pixiecore, smee)
		return EFIx64
	case iana.EFI_ARM64:
		return EFIarm64
	case iana.EFI_X86_64_HTTP:
		return EFIx64HTTP
	case iana.EFI_ARM64_HTTP:
		return EFIarm64HTTP
	default:
		return Unknown
	}
}

// Class identifier prefixes (option 60).
const (
	ClassPXE  = "PXEClient"
	ClassHTTP = "HTTPClient"
)

// User classes (option 77) that mark a client as iPXE already running, so it
// must get the iPXE script, not the iPXE binary again (the loop-break).
const (
	// UserClassIPXE is what stock iPXE sends.
	UserClassIPXE = "iPXE"
	// UserClassRacklift is the user class of an iPXE built by us
	// (DHCP_EB_USER_CLASS / "set user-class racklift").
	UserClassRacklift = "racklift"
)

// Sentinel errors returned (joined) by Client.Validate.
var (
	ErrNotPXE          = errors.New("not a PXE or HTTP boot client (option 60)")
	ErrNoArch          = errors.New("no client architecture (option 93)")
	ErrBadArch         = errors.New("malformed client architecture (option 93)")
	ErrUnsupportedArch = errors.New("unsupported client architecture")
	ErrBadGUID         = errors.New("malformed client machine identifier (option 97)")
	ErrBadUNDI         = errors.New("malformed client network interface identifier (option 94)")
)

// UNDI is option 94, the client network interface identifier.
type UNDI struct {
	// Present is true when option 94 was sent (even if malformed).
	Present bool
	// Type is 1 for UNDI.
	Type uint8
	// Major and Minor are the UNDI version (2.1 for PXE 2.1 ROMs).
	Major, Minor uint8
	// Malformed is true when option 94 was not 3 bytes long.
	Malformed bool
}

// Client is everything racklift needs to know about a netbooting DHCP
// client. Build it with Classify.
type Client struct {
	// IsPXE is true when option 60 starts with "PXEClient" or "HTTPClient".
	IsPXE bool
	// ClassID is option 60 as sent.
	ClassID string
	// HTTPClient is true when option 60 starts with "HTTPClient".
	HTTPClient bool
	// Firmware is derived from Arch.
	Firmware Firmware
	// Arch is the first architecture of option 93, or, if option 93 is
	// missing, the "Arch:xxxxx" field of option 60 (ArchFromClass is then true).
	Arch iana.Arch
	// HasArch is true when Arch was found in option 93 or option 60.
	HasArch bool
	// ArchFromClass is true when Arch came from option 60, not option 93.
	ArchFromClass bool
	// BadArch is true when option 93 was present but could not be parsed.
	BadArch bool
	// UserClass is option 77 (the first RFC 3004 entry, or the raw string).
	UserClass string
	// IPXE is true when UserClass is "iPXE" or UserClassRacklift.
	IPXE bool
	// GUID is option 97 as sent (nil when absent, empty for buggy ROMs,
	// 17 bytes with a leading 0 when valid).
	GUID []byte
	// HasGUID is true when option 97 was sent (possibly empty).
	HasGUID bool
	// UNDI is option 94.
	UNDI UNDI
}

// Classify reads the PXE-related options of req. It never fails: problems
// are kept in the Client and reported by Validate. A nil req gives the zero
// Client.
func Classify(req *dhcpv4.DHCPv4) Client {
	var c Client
	if req == nil || req.Options == nil {
		return c
	}
	c.ClassID = req.ClassIdentifier()
	switch {
	case strings.HasPrefix(c.ClassID, ClassHTTP):
		c.IsPXE, c.HTTPClient = true, true
	case strings.HasPrefix(c.ClassID, ClassPXE):
		c.IsPXE = true
	}

	if req.Options.Has(dhcpv4.OptionClientSystemArchitectureType) {
		if archs := req.ClientArch(); len(archs) > 0 {
			c.Arch, c.HasArch = archs[0], true
		} else {
			c.BadArch = true
		}
	}
	if !c.HasArch && !c.BadArch && c.IsPXE {
		if a, ok := archFromClass(c.ClassID); ok {
			c.Arch, c.HasArch, c.ArchFromClass = a, true, true
		}
	}
	if c.HasArch {
		c.Firmware = FirmwareForArch(c.Arch)
	}

	if req.Options.Has(dhcpv4.OptionUserClassInformation) {
		if uc := req.UserClass(); len(uc) > 0 {
			c.UserClass = uc[0]
		}
		c.IPXE = c.UserClass == UserClassIPXE || c.UserClass == UserClassRacklift
	}

	if req.Options.Has(dhcpv4.OptionClientMachineIdentifier) {
		c.HasGUID = true
		c.GUID = append([]byte{}, req.GetOneOption(dhcpv4.OptionClientMachineIdentifier)...)
	}

	if req.Options.Has(dhcpv4.OptionClientNetworkInterfaceIdentifier) {
		v := req.GetOneOption(dhcpv4.OptionClientNetworkInterfaceIdentifier)
		c.UNDI.Present = true
		if len(v) == 3 {
			c.UNDI.Type, c.UNDI.Major, c.UNDI.Minor = v[0], v[1], v[2]
		} else {
			c.UNDI.Malformed = true
		}
	}
	return c
}

// archFromClass parses the "Arch:xxxxx" field of a PXEClient/HTTPClient
// class identifier ("PXEClient:Arch:00007:UNDI:003016").
func archFromClass(class string) (iana.Arch, bool) {
	parts := strings.Split(class, ":")
	for i := 0; i+1 < len(parts) && i < 8; i++ {
		if parts[i] != "Arch" {
			continue
		}
		n, err := strconv.ParseUint(parts[i+1], 10, 16)
		if err != nil {
			return 0, false
		}
		return iana.Arch(n), true
	}
	return 0, false
}

// Validate reports, joined into one error, every reason this client cannot
// be network booted by racklift: not a PXE/HTTP client, no or malformed
// architecture, an architecture racklift does not boot, a malformed GUID
// (option 97 must be empty or 17 bytes starting with 0) or option 94.
// Each part wraps one of the Err* sentinels, so callers can use errors.Is.
func (c Client) Validate() error {
	var errs []error
	if !c.IsPXE {
		errs = append(errs, fmt.Errorf("class %q: %w", c.ClassID, ErrNotPXE))
	}
	switch {
	case c.BadArch:
		errs = append(errs, ErrBadArch)
	case !c.HasArch:
		errs = append(errs, ErrNoArch)
	case c.Firmware == Unknown:
		errs = append(errs, fmt.Errorf("arch %d (%s): %w", uint16(c.Arch), c.Arch, ErrUnsupportedArch))
	}
	if c.HasGUID && len(c.GUID) != 0 && (len(c.GUID) != 17 || c.GUID[0] != 0) {
		errs = append(errs, fmt.Errorf("%d bytes: %w", len(c.GUID), ErrBadGUID))
	}
	if c.UNDI.Malformed {
		errs = append(errs, ErrBadUNDI)
	}
	return errors.Join(errs...)
}

// Netboot reports whether the client can be booted: it is a PXE or HTTP boot
// client and Validate finds nothing wrong.
func (c Client) Netboot() bool {
	return c.Validate() == nil
}
