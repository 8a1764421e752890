package dhcp

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/racklift/racklift/boot/pxe"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

var (
	serverIP     = net.IPv4(10, 254, 0, 1).To4()
	macPlan      = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x01}
	macInstalled = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x02}
	macUnknown   = net.HardwareAddr{0x52, 0x54, 0x00, 0xff, 0xff, 0xff}
	testXID      = dhcpv4.TransactionID{0xde, 0xad, 0xbe, 0xef}
)

func testConfig(mode Mode) Config {
	return Config{
		Mode: mode,
		Boot: BootConfig{ServerIP: serverIP, HTTPBase: "http://10.254.0.1:8080/"},
	}.withDefaults()
}

func testHosts() hostsMap {
	base := Host{
		IP: net.IPv4(10, 254, 0, 11), Mask: net.CIDRMask(24, 32), Gateway: net.IPv4(10, 254, 0, 254),
		DNS: []net.IP{net.IPv4(10, 254, 0, 53), net.IPv4(10, 254, 0, 54)}, Domain: "site.example", MTU: 9000,
	}
	plan, inst := base, base
	plan.Node = "cs-compute-0001"
	inst.Node, inst.IP, inst.Hostname, inst.Installed = "cs-compute-0002", net.IPv4(10, 254, 0, 12), "compute-2", true
	return hostsMap{macPlan.String(): plan, macInstalled.String(): inst}
}

// hostsMap is a fake Hosts.
type hostsMap map[string]Host

func (m hostsMap) HostByMAC(mac net.HardwareAddr) (Host, bool) {
	h, ok := m[mac.String()]
	return h, ok
}

func testGUID() []byte {
	g := make([]byte, 17)
	for i := 1; i < 17; i++ {
		g[i] = byte(0xa0 + i)
	}
	return g
}

// client kinds: the options a real client of that kind sends.
var clientKinds = map[string][]dhcpv4.Modifier{
	"bios-pxe": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, testGUID()),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName, dhcpv4.OptionVendorSpecificInformation),
	},
	"bios-pxe-empty-guid": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{}),
	},
	"bios-pxe-bad-guid": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{1, 2, 3}),
	},
	"efi-x64-arch7": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 3, 16}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, testGUID()),
	},
	"efi-x64-arch9": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00009:UNDI:003016")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_BC)),
	},
	"efi-x64-no-opt93": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
	},
	"pxe-no-arch-at-all": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient")),
	},
	"efi-arm64": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00011:UNDI:003000")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64)),
	},
	"efi-ia32": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00006:UNDI:003000")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_IA32)),
	},
	"http-x64-arch16": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, testGUID()),
	},
	"http-arm64-arch19": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00019:UNDI:003001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_ARM64_HTTP)),
	},
	"ipxe-bios": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1}),
		dhcpv4.WithUserClass("iPXE", false),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionBootfileName),
	},
	"ipxe-efi": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003010")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithUserClass("iPXE", false),
	},
	"plain": {
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("udhcp 1.35.0")),
		dhcpv4.WithOption(dhcpv4.OptHostName("localhost")),
	},
}

func build(t *testing.T, mac net.HardwareAddr, t0 dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	all := append([]dhcpv4.Modifier{
		dhcpv4.WithTransactionID(testXID),
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithBroadcast(true),
		dhcpv4.WithMessageType(t0),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer),
	}, mods...)
	req, err := dhcpv4.New(all...)
	if err != nil {
		t.Fatal(err)
	}
	// The server sees the wire format.
	parsed, err := dhcpv4.FromBytes(req.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

type replyCase struct {
	mode string // "proxy", "proxy4011", "auth"
	mac  net.HardwareAddr
	kind string
	msg  dhcpv4.MessageType
	mods []dhcpv4.Modifier
	want Action
}

func replyCases() map[string]replyCase {
	cases := map[string]replyCase{}
	for kind := range clientKinds {
		want := map[string]Action{"proxy": Offer, "auth": Offer}
		switch kind {
		case "plain", "efi-arm64", "http-arm64-arch19", "bios-pxe-bad-guid", "pxe-no-arch-at-all", "efi-ia32":
			want["proxy"] = Ignore
		}
		for _, mode := range []string{"proxy", "auth"} {
			cases[mode+"/discover/"+kind] = replyCase{mode: mode, mac: macPlan, kind: kind, msg: dhcpv4.MessageTypeDiscover, want: want[mode]}
		}
		cases["proxy4011/request/"+kind] = replyCase{mode: "proxy4011", mac: macPlan, kind: kind, msg: dhcpv4.MessageTypeRequest,
			mods: []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 254, 0, 99)), dhcpv4.WithBroadcast(false)}, want: map[Action]Action{Offer: Ack, Ignore: Ignore}[want["proxy"]]}
	}
	toUs := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(serverIP))
	toOther := dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 254, 0, 2)))
	planned := dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 254, 0, 11)))
	wrong := dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 168, 1, 7)))
	extra := map[string]replyCase{
		"proxy/discover/unknown-mac":      {mode: "proxy", mac: macUnknown, kind: "bios-pxe", msg: dhcpv4.MessageTypeDiscover, want: Ignore},
		"proxy/discover/installed":        {mode: "proxy", mac: macInstalled, kind: "bios-pxe", msg: dhcpv4.MessageTypeDiscover, want: Ignore},
		"proxy/request/to-us":             {mode: "proxy", mac: macPlan, kind: "bios-pxe", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{toUs}, want: Ack},
		"proxy/request/address-to-us":     {mode: "proxy", mac: macPlan, kind: "efi-x64-arch7", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{toUs, planned}, want: Ignore},
		"proxy/request/to-other-server":   {mode: "proxy", mac: macPlan, kind: "bios-pxe", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{toOther, planned}, want: Ignore},
		"proxy/release":                   {mode: "proxy", mac: macPlan, kind: "bios-pxe", msg: dhcpv4.MessageTypeRelease, want: Ignore},
		"proxy4011/discover-ignored":      {mode: "proxy4011", mac: macPlan, kind: "bios-pxe", msg: dhcpv4.MessageTypeDiscover, want: Ignore},
		"proxy4011/request/unknown-mac":   {mode: "proxy4011", mac: macUnknown, kind: "efi-x64-arch7", msg: dhcpv4.MessageTypeRequest, want: Ignore},
		"auth/discover/unknown-mac":       {mode: "auth", mac: macUnknown, kind: "bios-pxe", msg: dhcpv4.MessageTypeDiscover, want: Ignore},
		"auth/discover/installed-pxe":     {mode: "auth", mac: macInstalled, kind: "bios-pxe", msg: dhcpv4.MessageTypeDiscover, want: Offer},
		"auth/request/selecting":          {mode: "auth", mac: macPlan, kind: "bios-pxe", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{toUs, planned}, want: Ack},
		"auth/request/selecting-plain":    {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{toUs, planned}, want: Ack},
		"auth/request/init-reboot":        {mode: "auth", mac: macPlan, kind: "ipxe-efi", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{planned}, want: Ack},
		"auth/request/renewing":           {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 254, 0, 11)), dhcpv4.WithBroadcast(false)}, want: Ack},
		"auth/request/wrong-address":      {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{wrong}, want: Nak},
		"auth/request/no-address":         {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeRequest, want: Nak},
		"auth/request/to-other-server":    {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{toOther, planned}, want: Ignore},
		"auth/request/unknown-mac-wrong":  {mode: "auth", mac: macUnknown, kind: "plain", msg: dhcpv4.MessageTypeRequest, mods: []dhcpv4.Modifier{wrong}, want: Ignore},
		"auth/inform":                     {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeInform, mods: []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 254, 0, 11)), dhcpv4.WithBroadcast(false)}, want: Ack},
		"auth/release":                    {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeRelease, mods: []dhcpv4.Modifier{dhcpv4.WithClientIP(net.IPv4(10, 254, 0, 11))}, want: Release},
		"auth/decline":                    {mode: "auth", mac: macPlan, kind: "plain", msg: dhcpv4.MessageTypeDecline, mods: []dhcpv4.Modifier{planned, toUs}, want: Decline},
		"auth/discover/relayed-bios-pxe":  {mode: "auth", mac: macPlan, kind: "bios-pxe", msg: dhcpv4.MessageTypeDiscover, mods: []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.IPv4(10, 1, 2, 1))}, want: Offer},
		"proxy/discover/relayed-ipxe-efi": {mode: "proxy", mac: macPlan, kind: "ipxe-efi", msg: dhcpv4.MessageTypeDiscover, mods: []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.IPv4(10, 1, 2, 1))}, want: Offer},
	}
	for k, v := range extra {
		cases[k] = v
	}
	return cases
}

func decide(t *testing.T, tc replyCase) (*dhcpv4.DHCPv4, Decision, *dhcpv4.DHCPv4) {
	t.Helper()
	mods := append(append([]dhcpv4.Modifier{}, clientKinds[tc.kind]...), tc.mods...)
	req := build(t, tc.mac, tc.msg, mods...)
	c := pxe.Classify(req)
	host, known := testHosts().HostByMAC(tc.mac)
	switch tc.mode {
	case "proxy":
		r, d := proxyReply(req, c, host, known, testConfig(Proxy).Boot)
		return r, d, req
	case "proxy4011":
		r, d := proxyPXEReply(req, c, host, known, testConfig(Proxy).Boot)
		return r, d, req
	case "auth":
		a := assignment{}
		if known {
			a = assignment{Kind: kindPlan, Host: host}
		}
		r, d := authReply(req, c, a, testConfig(Authoritative))
		return r, d, req
	}
	t.Fatalf("bad mode %q", tc.mode)
	return nil, Decision{}, nil
}

func TestReplyGolden(t *testing.T) {
	for name, tc := range replyCases() {
		t.Run(name, func(t *testing.T) {
			reply, dec, req := decide(t, tc)
			if dec.Action != tc.want {
				t.Errorf("action = %v (%s), want %v", dec.Action, dec.Reason, tc.want)
			}
			if dec.Reason == "" {
				t.Error("empty reason")
			}
			checkInvariants(t, tc, req, reply, dec)

			var b strings.Builder
			b.WriteString("decision: " + dec.String() + "\n")
			if reply == nil {
				b.WriteString("no reply\n")
			} else {
				b.WriteString("destination: " + destination(req, reply).String() + "\n")
				b.WriteString(reply.Summary())
			}
			golden := filepath.Join("testdata", "golden", strings.ReplaceAll(name, "/", "_")+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestReplyGolden -update)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("reply differs from %s (-update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// checkInvariants asserts what must hold for every reply, whatever the golden file says.
func checkInvariants(t *testing.T, tc replyCase, req, reply *dhcpv4.DHCPv4, dec Decision) {
	t.Helper()
	if (reply != nil) != (dec.Action == Offer || dec.Action == Ack || dec.Action == Nak) {
		t.Fatalf("reply %v inconsistent with action %v", reply != nil, dec.Action)
	}
	if reply == nil {
		return
	}
	if reply.TransactionID != req.TransactionID || reply.ClientHWAddr.String() != req.ClientHWAddr.String() {
		t.Error("xid/chaddr not copied")
	}
	if !reply.ServerIdentifier().Equal(serverIP) {
		t.Errorf("option 54 = %v, want %v", reply.ServerIdentifier(), serverIP)
	}
	if tc.mode != "auth" && !reply.YourIPAddr.IsUnspecified() {
		t.Errorf("proxy reply sets yiaddr %v", reply.YourIPAddr)
	}
	if reply.MessageType() == dhcpv4.MessageTypeNak {
		return
	}
	c := pxe.Classify(req)
	if dec.BootFile == "" {
		if reply.BootFileName != "" {
			t.Errorf("file %q without boot decision", reply.BootFileName)
		}
		return
	}
	if reply.BootFileName != dec.BootFile {
		t.Errorf("file = %q, decision says %q", reply.BootFileName, dec.BootFile)
	}
	switch {
	case c.IPXE:
		if want := "http://10.254.0.1:8080/ipxe/" + req.ClientHWAddr.String() + "/boot.ipxe"; reply.BootFileName != want {
			t.Errorf("iPXE file = %q, want %q (loop-break)", reply.BootFileName, want)
		}
	case c.Firmware.IsHTTP():
		if reply.ClassIdentifier() != "HTTPClient" || !strings.HasPrefix(reply.BootFileName, "http://") {
			t.Errorf("HTTP boot reply class %q file %q", reply.ClassIdentifier(), reply.BootFileName)
		}
	default:
		if !strings.HasPrefix(reply.BootFileName, req.ClientHWAddr.String()+"/") {
			t.Errorf("TFTP file %q lacks MAC prefix", reply.BootFileName)
		}
		if !reply.ServerIPAddr.Equal(serverIP) {
			t.Errorf("siaddr = %v", reply.ServerIPAddr)
		}
	}
	has43 := reply.Options.Has(dhcpv4.OptionVendorSpecificInformation)
	// 43 {6:8} goes to BIOS clients, and to every TFTP client in
	// authoritative mode (EDK2 firmware needs it to boot the offered file).
	want43 := c.Firmware == pxe.BIOS || (tc.mode == "auth" && strings.HasSuffix(reply.BootFileName, ".efi") && !strings.HasPrefix(reply.BootFileName, "http"))
	if has43 != want43 {
		t.Errorf("option 43 present=%v for %v", has43, c.Firmware)
	}
	if c.HasGUID && !reply.Options.Has(dhcpv4.OptionClientMachineIdentifier) {
		t.Error("option 97 not echoed")
	}
}

func TestBootForOrder(t *testing.T) {
	b := testConfig(Proxy).Boot
	b.EFIarm64File = "snp-arm64.efi"
	mac := macPlan
	tests := map[string]struct {
		c        pxe.Client
		secure   bool
		wantFile string
		wantWhy  string
	}{
		"ipxe wins over firmware": {c: pxe.Client{IsPXE: true, IPXE: true, HasArch: true, Firmware: pxe.EFIx64HTTP}, wantFile: "http://10.254.0.1:8080/ipxe/52:54:00:00:00:01/boot.ipxe"},
		"bios":                    {c: pxe.Client{Firmware: pxe.BIOS}, wantFile: "52:54:00:00:00:01/undionly.kpxe"},
		"efi x64":                 {c: pxe.Client{Firmware: pxe.EFIx64}, wantFile: "52:54:00:00:00:01/snponly.efi"},
		"efi arm64 with binary":   {c: pxe.Client{Firmware: pxe.EFIarm64}, wantFile: "52:54:00:00:00:01/snp-arm64.efi"},
		"http x64":                {c: pxe.Client{Firmware: pxe.EFIx64HTTP}, wantFile: "http://10.254.0.1:8080/ipxe-bin/snponly.efi"},
		"http arm64":              {c: pxe.Client{Firmware: pxe.EFIarm64HTTP}, wantFile: "http://10.254.0.1:8080/ipxe-bin/snp-arm64.efi"},
		"unknown":                 {c: pxe.Client{Arch: iana.EFI_RISCV64}, wantWhy: "no boot file for arch 27 (unknown)"},
		// Secure Boot nodes: the signed chain, never iPXE.
		"secure efi x64":  {c: pxe.Client{Firmware: pxe.EFIx64}, secure: true, wantFile: "52:54:00:00:00:01/shimx64.efi"},
		"secure http x64": {c: pxe.Client{Firmware: pxe.EFIx64HTTP}, secure: true, wantFile: "http://10.254.0.1:8080/sb/shimx64.efi"},
		"secure but ipxe": {c: pxe.Client{IsPXE: true, IPXE: true, HasArch: true, Firmware: pxe.EFIx64}, secure: true, wantFile: "52:54:00:00:00:01/shimx64.efi"},
		"secure but bios": {c: pxe.Client{Firmware: pxe.BIOS}, secure: true, wantWhy: "Secure Boot node asked as bios: it gets only the signed UEFI chain"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			bt, why := bootFor(tt.c, mac, b, tt.secure)
			if bt.File != tt.wantFile || why != tt.wantWhy {
				t.Errorf("bootFor = %q, %q; want %q, %q", bt.File, why, tt.wantFile, tt.wantWhy)
			}
		})
	}
	long := b
	long.HTTPBase = "http://" + strings.Repeat("x", 120)
	if _, why := bootFor(pxe.Client{IPXE: true}, mac, long, false); why == "" {
		t.Error("overlong file accepted")
	}
}

func TestDestination(t *testing.T) {
	relay := net.IPv4(10, 1, 2, 1)
	ci := net.IPv4(10, 254, 0, 11)
	mk := func(mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		d, err := dhcpv4.New(mods...)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	offer := mk(dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	nak := mk(dhcpv4.WithMessageType(dhcpv4.MessageTypeNak))
	tests := map[string]struct {
		req, reply *dhcpv4.DHCPv4
		want       string
	}{
		"relay":               {mk(dhcpv4.WithGatewayIP(relay), dhcpv4.WithClientIP(ci)), offer, "10.1.2.1:67"},
		"relay nak":           {mk(dhcpv4.WithGatewayIP(relay)), nak, "10.1.2.1:67"},
		"nak broadcast":       {mk(dhcpv4.WithClientIP(ci)), nak, "255.255.255.255:68"},
		"ciaddr unicast":      {mk(dhcpv4.WithClientIP(ci)), offer, "10.254.0.11:68"},
		"ciaddr beats bcast":  {mk(dhcpv4.WithClientIP(ci), dhcpv4.WithBroadcast(true)), offer, "10.254.0.11:68"},
		"broadcast flag":      {mk(dhcpv4.WithBroadcast(true)), offer, "255.255.255.255:68"},
		"no address, no flag": {mk(), offer, "255.255.255.255:68"},
	}
	for name, tt := range tests {
		if got := destination(tt.req, tt.reply).String(); got != tt.want {
			t.Errorf("%s: destination = %s, want %s", name, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := testConfig(Authoritative)
	if err := good.validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := Config{Mode: Proxy, Boot: BootConfig{HTTPBase: "ftp://x", BIOSFile: "../x"},
		Dynamic: &Pool{Start: net.IPv4(10, 0, 0, 9), End: net.IPv4(10, 0, 0, 1)}}.withDefaults()
	err := bad.validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"ServerIP", "HTTPBase", "plain name", "authoritative", "after End", "Mask"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if d := (Config{}).withDefaults(); d.LeaseTime != time.Hour || d.Boot.BIOSFile != "undionly.kpxe" || d.Boot.EFIx64File != "snponly.efi" || d.IgnoreEvery != 30*time.Second {
		t.Errorf("defaults = %+v", d)
	}
}
