package pxe

import (
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var testMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}

func guid() []byte {
	g := make([]byte, 17)
	for i := 1; i < len(g); i++ {
		g[i] = byte(i)
	}
	return g
}

func discover(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	req, err := dhcpv4.NewDiscovery(testMAC, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestClassify(t *testing.T) {
	undi := dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1})
	g := dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, guid())
	tests := map[string]struct {
		mods    []dhcpv4.Modifier
		want    Client
		wantErr []error
	}{
		"bios pxe rom": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), undi, g,
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00000:UNDI:002001", Firmware: BIOS, Arch: iana.INTEL_X86PC,
				HasArch: true, GUID: guid(), HasGUID: true, UNDI: UNDI{Present: true, Type: 1, Major: 2, Minor: 1}},
		},
		"uefi x64 arch 7": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), undi, g,
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00007:UNDI:003016", Firmware: EFIx64, Arch: iana.EFI_X86_64,
				HasArch: true, GUID: guid(), HasGUID: true, UNDI: UNDI{Present: true, Type: 1, Major: 2, Minor: 1}},
		},
		"uefi x64 arch 9 (EFI BC)": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00009:UNDI:003016")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_BC)),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00009:UNDI:003016", Firmware: EFIx64, Arch: iana.EFI_BC, HasArch: true},
		},
		"uefi arm64": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00011:UNDI:003000")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64)),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00011:UNDI:003000", Firmware: EFIarm64, Arch: iana.EFI_ARM64, HasArch: true},
		},
		"uefi http boot arch 16": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)), g,
			},
			want: Client{IsPXE: true, HTTPClient: true, ClassID: "HTTPClient:Arch:00016:UNDI:003001", Firmware: EFIx64HTTP,
				Arch: iana.EFI_X86_64_HTTP, HasArch: true, GUID: guid(), HasGUID: true},
		},
		"uefi http boot arm64 arch 19": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00019:UNDI:003001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64_HTTP)),
			},
			want: Client{IsPXE: true, HTTPClient: true, ClassID: "HTTPClient:Arch:00019:UNDI:003001", Firmware: EFIarm64HTTP,
				Arch: iana.EFI_ARM64_HTTP, HasArch: true},
		},
		"ipxe bios (user class iPXE raw)": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
				dhcpv4.WithUserClass("iPXE", false), undi, g,
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00000:UNDI:002001", Firmware: BIOS, Arch: iana.INTEL_X86PC, HasArch: true,
				UserClass: "iPXE", IPXE: true, GUID: guid(), HasGUID: true, UNDI: UNDI{Present: true, Type: 1, Major: 2, Minor: 1}},
		},
		"ipxe efi (user class RFC 3004 form)": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
				dhcpv4.WithUserClass("iPXE", true),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00007:UNDI:003010", Firmware: EFIx64, Arch: iana.EFI_X86_64, HasArch: true,
				UserClass: "iPXE", IPXE: true},
		},
		"our own ipxe build": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
				dhcpv4.WithUserClass(UserClassRacklift, false),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00007:UNDI:003010", Firmware: EFIx64, Arch: iana.EFI_X86_64, HasArch: true,
				UserClass: UserClassRacklift, IPXE: true},
		},
		"buggy rom: empty option 97 is accepted": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
				dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{}),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00000:UNDI:002001", Firmware: BIOS, Arch: iana.INTEL_X86PC, HasArch: true,
				GUID: []byte{}, HasGUID: true},
		},
		"bad guid: leading byte not 0": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
				dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{1}, guid()[1:]...)),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00000:UNDI:002001", Firmware: BIOS, Arch: iana.INTEL_X86PC, HasArch: true,
				GUID: append([]byte{1}, guid()[1:]...), HasGUID: true},
			wantErr: []error{ErrBadGUID},
		},
		"bad guid: short": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
				dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{0, 1, 2}),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00000:UNDI:002001", Firmware: BIOS, Arch: iana.INTEL_X86PC, HasArch: true,
				GUID: []byte{0, 1, 2}, HasGUID: true},
			wantErr: []error{ErrBadGUID},
		},
		"missing option 93, arch taken from class id": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00007:UNDI:003016", Firmware: EFIx64, Arch: iana.EFI_X86_64,
				HasArch: true, ArchFromClass: true},
		},
		"missing option 93 and bare class id": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")),
			},
			want:    Client{IsPXE: true, ClassID: "PXEClient"},
			wantErr: []error{ErrNoArch},
		},
		"malformed option 93 (odd length)": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0}),
			},
			want:    Client{IsPXE: true, ClassID: "PXEClient:Arch:00000:UNDI:002001", BadArch: true},
			wantErr: []error{ErrBadArch},
		},
		"unsupported arch: EFI IA32": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00006:UNDI:003016")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_IA32)),
			},
			want:    Client{IsPXE: true, ClassID: "PXEClient:Arch:00006:UNDI:003016", Arch: iana.EFI_IA32, HasArch: true},
			wantErr: []error{ErrUnsupportedArch},
		},
		"malformed option 94": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
				dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1}),
			},
			want: Client{IsPXE: true, ClassID: "PXEClient:Arch:00000:UNDI:002001", Firmware: BIOS, Arch: iana.INTEL_X86PC, HasArch: true,
				UNDI: UNDI{Present: true, Malformed: true}},
			wantErr: []error{ErrBadUNDI},
		},
		"plain dhcp client (linux udhcpc)": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("udhcp 1.35.0")),
			},
			want:    Client{ClassID: "udhcp 1.35.0"},
			wantErr: []error{ErrNotPXE, ErrNoArch},
		},
		"no options at all": {
			want:    Client{},
			wantErr: []error{ErrNotPXE, ErrNoArch},
		},
		"several errors joined": {
			mods: []dhcpv4.Modifier{
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier("MSFT 5.0")),
				dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_IA32)),
				dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{9}),
			},
			want:    Client{ClassID: "MSFT 5.0", Arch: iana.EFI_IA32, HasArch: true, GUID: []byte{9}, HasGUID: true},
			wantErr: []error{ErrNotPXE, ErrUnsupportedArch, ErrBadGUID},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			req := discover(t, tt.mods...)
			// Round-trip through the wire format, as the server sees it.
			parsed, err := dhcpv4.FromBytes(req.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			got := Classify(parsed)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Classify() =\n%+v\nwant\n%+v", got, tt.want)
			}
			err = got.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				if !got.Netboot() {
					t.Error("Netboot() = false, want true")
				}
				return
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("Validate() = %v, want it to wrap %v", err, w)
				}
			}
			if got.Netboot() {
				t.Error("Netboot() = true, want false")
			}
		})
	}
}

func TestClassifyNil(t *testing.T) {
	if got := Classify(nil); !reflect.DeepEqual(got, Client{}) {
		t.Errorf("Classify(nil) = %+v", got)
	}
}

func TestFirmwareForArch(t *testing.T) {
	tests := map[iana.Arch]Firmware{
		iana.INTEL_X86PC:     BIOS,
		iana.EFI_X86_64:      EFIx64,
		iana.EFI_BC:          EFIx64,
		iana.EFI_ARM64:       EFIarm64,
		iana.EFI_X86_64_HTTP: EFIx64HTTP,
		iana.EFI_ARM64_HTTP:  EFIarm64HTTP,
		iana.EFI_IA32:        Unknown,
		iana.EFI_ARM32:       Unknown,
		iana.EFI_RISCV64:     Unknown,
	}
	for a, want := range tests {
		if got := FirmwareForArch(a); got != want {
			t.Errorf("FirmwareForArch(%d) = %v, want %v", a, got, want)
		}
	}
}

func TestFirmwareString(t *testing.T) {
	for f, want := range map[Firmware]string{
		Unknown: "unknown", BIOS: "bios", EFIx64: "efi-x64", EFIarm64: "efi-arm64",
		EFIx64HTTP: "efi-x64-http", EFIarm64HTTP: "efi-arm64-http", Firmware(42): "firmware(42)",
	} {
		if got := f.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(f), got, want)
		}
	}
	if BIOS.IsEFI() || !EFIx64.IsEFI() || !EFIarm64HTTP.IsEFI() {
		t.Error("IsEFI wrong")
	}
	if EFIx64.IsHTTP() || !EFIx64HTTP.IsHTTP() {
		t.Error("IsHTTP wrong")
	}
}
