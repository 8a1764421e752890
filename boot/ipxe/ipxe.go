// Package ipxe holds the iPXE binaries racklift serves over TFTP and HTTP,
// embedded into the racklift binary with go:embed, and the table that says
// which binary each kind of firmware gets.
//
// The binaries are copied unmodified from Debian's "ipxe" package by
// hack/update-ipxe.sh; bin/SOURCE.md records the package version, where the
// corresponding source is and the sha256 of each file, and bin/COPYING holds
// the licence texts (iPXE is GPL-2+). Both are available at run time through
// Notices so that a racklift binary can show them.
//
// Debian's package (Architecture: all) contains x86 builds only: there is no
// arm64 EFI binary, so Bootfile(EFIARM64) reports false. Serve one from an
// extra directory if you need it.
//
// This is a leaf package: it imports only the standard library.
package ipxe

import (
	"embed"
	"fmt"
	"io/fs"
)

// binaries holds the iPXE binaries, and nothing else, under bin/.
//
//go:embed bin/undionly.kpxe bin/ipxe.efi bin/snponly.efi
var binaries embed.FS

// notices holds the licence and provenance files under bin/.
//
//go:embed bin/COPYING bin/SOURCE.md
var notices embed.FS

// FS returns the embedded iPXE binaries as a read-only file system with the
// files at its root: "undionly.kpxe", "ipxe.efi" and "snponly.efi". It holds
// only the binaries; see Notices for the licence files.
func FS() fs.FS {
	return sub(binaries)
}

// Notices returns the licence and provenance files for the embedded
// binaries: "COPYING" (Debian's copyright file plus the GPL-2, LGPL-2 and
// LGPL-2.1 texts) and "SOURCE.md" (package version, source location, sha256).
// Whoever distributes racklift distributes iPXE and must pass these on.
func Notices() fs.FS {
	return sub(notices)
}

func sub(f embed.FS) fs.FS {
	s, err := fs.Sub(f, "bin")
	if err != nil {
		// fs.Sub fails only for an invalid directory name; "bin" is valid.
		panic(fmt.Sprintf("ipxe: fs.Sub(bin): %v", err))
	}
	return s
}

// Firmware is the kind of network boot firmware asking for iPXE. The caller
// (boot/pxe) maps DHCP option 93 to it.
type Firmware int

// Firmware kinds. The zero value is FirmwareUnknown, for which Bootfile
// reports false.
const (
	// FirmwareUnknown is an unclassified client.
	FirmwareUnknown Firmware = iota
	// BIOS is x86 legacy BIOS PXE (option 93 arch 0, INTEL_X86PC).
	BIOS
	// EFIx64 is x86-64 UEFI (option 93 arch 7 EFI_X86_64 and arch 9 EFI_BC,
	// which firmware in the wild sends for x86-64 too).
	EFIx64
	// EFIARM64 is arm64 UEFI (option 93 arch 11). Debian's amd64 ipxe
	// package has no binary for it, so Bootfile reports false.
	EFIARM64
)

// String returns a short lower-case name for logs.
func (f Firmware) String() string {
	switch f {
	case BIOS:
		return "bios"
	case EFIx64:
		return "efi-x86_64"
	case EFIARM64:
		return "efi-arm64"
	case FirmwareUnknown:
		return "unknown"
	default:
		return fmt.Sprintf("firmware(%d)", int(f))
	}
}

// Bootfile returns the name, in FS, of the iPXE binary to chainload for the
// given firmware, and false if there is none.
//
//   - BIOS gets undionly.kpxe: it drives the NIC through the PXE ROM's UNDI
//     API, so it works on any NIC the BIOS could PXE boot from, and it keeps
//     the PXE stack loaded (the "k" variant), which is what chainloading
//     from a PXE ROM needs.
//   - EFIx64 gets snponly.efi: it drives the NIC through the firmware's SNP
//     protocol on the handle it booted from, so it works on any NIC the UEFI
//     firmware could PXE boot from, and it is 5x smaller than ipxe.efi (less
//     lock-step TFTP). ipxe.efi, with iPXE's own drivers, stays in FS for
//     operators who ask for it by name.
//   - EFIARM64 and anything else: none (see the package comment).
func Bootfile(fw Firmware) (name string, ok bool) {
	switch fw {
	case BIOS:
		return "undionly.kpxe", true
	case EFIx64:
		return "snponly.efi", true
	case EFIARM64, FirmwareUnknown:
		return "", false
	default:
		return "", false
	}
}
