package dhcp

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklift/racklift/boot/pxe"
)

// Action is what racklift did with a request.
type Action int

// Actions. Offer, Ack and Nak send a reply; the others send nothing.
const (
	// Ignore sends nothing (not ours, not a PXE client, not in the plan...).
	Ignore Action = iota
	// Offer sends a DHCPOFFER.
	Offer
	// Ack sends a DHCPACK.
	Ack
	// Nak sends a DHCPNAK.
	Nak
	// Release records a DHCPRELEASE (no reply).
	Release
	// Decline records a DHCPDECLINE: the client found its address in use.
	Decline
)

// String returns "ignore", "offer", "ack", "nak", "release" or "decline".
func (a Action) String() string {
	switch a {
	case Ignore:
		return "ignore"
	case Offer:
		return "offer"
	case Ack:
		return "ack"
	case Nak:
		return "nak"
	case Release:
		return "release"
	case Decline:
		return "decline"
	default:
		return fmt.Sprintf("action(%d)", int(a))
	}
}

// EventType is the events.Event Type for a: "dhcp.offer", "dhcp.ignore"...
func (a Action) EventType() string { return "dhcp." + a.String() }

// Decision explains a reply (or its absence). It is returned by the pure
// reply functions and becomes one event.
type Decision struct {
	// Action is what was done.
	Action Action
	// Reason says why, in a few words; always set.
	Reason string
	// Node is the plan node name, empty for MACs not in the plan.
	Node string
	// IP is the address offered, acknowledged, released or declined; nil
	// in proxy mode.
	IP net.IP
	// BootFile is the file (TFTP path or http URL) given, empty if none.
	BootFile string
	// NoBoot says why a leased client got no boot file (authoritative
	// mode), empty otherwise.
	NoBoot string
}

// String is a one-line summary, used as the event detail.
func (d Decision) String() string {
	var b strings.Builder
	b.WriteString(d.Action.String())
	if d.IP != nil {
		b.WriteString(" " + d.IP.String())
	}
	if d.Node != "" {
		b.WriteString(" node=" + d.Node)
	}
	if d.BootFile != "" {
		b.WriteString(" file=" + d.BootFile)
	}
	if d.NoBoot != "" {
		b.WriteString(" no-boot=" + fmt.Sprintf("%q", d.NoBoot))
	}
	b.WriteString(" reason=" + fmt.Sprintf("%q", d.Reason))
	return b.String()
}

func ignore(format string, args ...any) (*dhcpv4.DHCPv4, Decision) {
	return nil, Decision{Action: Ignore, Reason: fmt.Sprintf(format, args...)}
}

// boot is the boot file decision for one client.
type boot struct {
	// File goes into the file header field (and option 67 if requested).
	File string
	// ClassID is option 60 in the reply: "PXEClient" or "HTTPClient".
	ClassID string
	// TFTP is true when File is a TFTP path on siaddr.
	TFTP bool
}

// maxFileLen is the size of the BOOTP file field minus its NUL.
const maxFileLen = 127

// bootFor chooses the boot file for a netbooting client c with MAC mac
// (secure: the node enforces Secure Boot). It returns the reason when there
// is none. Order matters: the first case that matches wins.
func bootFor(c pxe.Client, mac net.HardwareAddr, b BootConfig, secure bool) (boot, string) {
	var bt boot
	switch {
	// A Secure Boot node never gets iPXE (unsigned: its firmware refuses
	// it): x86-64 UEFI gets Debian's signed shim, which loads the signed
	// GRUB from beside itself. Checked first: even a client that claims to
	// be iPXE gets the chain its firmware can verify.
	case secure && c.Firmware == pxe.EFIx64:
		bt = boot{File: mac.String() + "/" + b.ShimFile, ClassID: pxe.ClassPXE, TFTP: true}
	case secure && c.Firmware == pxe.EFIx64HTTP:
		bt = boot{File: b.HTTPBase + "/sb/" + b.ShimFile, ClassID: pxe.ClassHTTP}
	case secure && (c.Firmware == pxe.BIOS || c.IPXE):
		return boot{}, "Secure Boot node asked as " + c.Firmware.String() + ": it gets only the signed UEFI chain"
	// iPXE is already running (stock "iPXE" or our own user class): give it
	// its script by HTTP. Checked first, or iPXE would be handed the iPXE
	// binary again and chainload itself forever.
	case c.IPXE:
		bt = boot{File: b.HTTPBase + "/ipxe/" + mac.String() + "/boot.ipxe", ClassID: pxe.ClassPXE}
		if c.HTTPClient {
			bt.ClassID = pxe.ClassHTTP
		}
	// UEFI HTTP boot (arch 16): an http:// URL to the EFI binary, and the
	// reply must say "HTTPClient" or the firmware ignores it.
	case c.Firmware == pxe.EFIx64HTTP:
		bt = boot{File: b.HTTPBase + "/ipxe-bin/" + b.EFIx64File, ClassID: pxe.ClassHTTP}
	// arm64 UEFI HTTP boot (arch 19), only if we have an arm64 binary.
	case c.Firmware == pxe.EFIarm64HTTP:
		if b.EFIarm64File == "" {
			return boot{}, "no arm64 EFI binary configured"
		}
		bt = boot{File: b.HTTPBase + "/ipxe-bin/" + b.EFIarm64File, ClassID: pxe.ClassHTTP}
	// BIOS PXE ROM: undionly.kpxe by TFTP, prefixed with the MAC so the
	// TFTP server can tell who fetched it.
	case c.Firmware == pxe.BIOS:
		bt = boot{File: mac.String() + "/" + b.BIOSFile, ClassID: pxe.ClassPXE, TFTP: true}
	// x86-64 UEFI PXE (arch 7 or 9): the EFI iPXE by TFTP.
	case c.Firmware == pxe.EFIx64:
		bt = boot{File: mac.String() + "/" + b.EFIx64File, ClassID: pxe.ClassPXE, TFTP: true}
	// arm64 UEFI PXE (arch 11), only if we have an arm64 binary.
	case c.Firmware == pxe.EFIarm64:
		if b.EFIarm64File == "" {
			return boot{}, "no arm64 EFI binary configured"
		}
		bt = boot{File: mac.String() + "/" + b.EFIarm64File, ClassID: pxe.ClassPXE, TFTP: true}
	// Anything else (IA32 UEFI, RISC-V, unknown): nothing to boot.
	default:
		return boot{}, fmt.Sprintf("no boot file for arch %d (%s)", uint16(c.Arch), c.Firmware)
	}
	if len(bt.File) > maxFileLen {
		return boot{}, fmt.Sprintf("boot file name longer than %d bytes", maxFileLen)
	}
	return bt, ""
}

// withBoot returns the modifier that adds PXE boot options to a reply:
// siaddr, sname, file, option 60, option 97 echoed, and options 66/67 if
// the client asked. Option 43 with PXE discovery control 8 ("boot the file
// named here, skip boot server discovery") goes to BIOS clients, and in
// authoritative replies (full) to every TFTP client: EDK2-based UEFI
// firmware (OVMF, most servers) treats an address offer with "PXEClient"
// but no option 43 as a BINL offer and goes looking for a boot server on
// port 4011 instead of booting the file (seen with OVMF: "PXE-E16: No valid
// offer received"). Proxy offers keep pixiecore's rule (no 43 for UEFI,
// whose firmware then asks port 4011, which racklift answers).
func withBoot(req *dhcpv4.DHCPv4, c pxe.Client, bt boot, b BootConfig, full bool) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		d.ServerIPAddr = b.ServerIP.To4()
		d.ServerHostName = b.ServerIP.String()
		d.BootFileName = bt.File
		d.UpdateOption(dhcpv4.OptClassIdentifier(bt.ClassID))
		if c.HasGUID {
			d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, c.GUID))
		}
		if c.Firmware == pxe.BIOS || (full && bt.TFTP) {
			d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation,
				dhcpv4.Options{6: []byte{8}}.ToBytes()))
		}
		if bt.TFTP && req.IsOptionRequested(dhcpv4.OptionTFTPServerName) {
			d.UpdateOption(dhcpv4.OptTFTPServerName(b.ServerIP.String()))
		}
		if req.IsOptionRequested(dhcpv4.OptionBootfileName) {
			d.UpdateOption(dhcpv4.OptBootFileName(bt.File))
		}
	}
}

// newReply builds a reply of type t to req from our server.
func newReply(req *dhcpv4.DHCPv4, t dhcpv4.MessageType, b BootConfig, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	mods = append([]dhcpv4.Modifier{
		dhcpv4.WithMessageType(t),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(b.ServerIP.To4())),
	}, mods...)
	return dhcpv4.NewReplyFromRequest(req, mods...)
}

// proxyReply is the proxyDHCP decision on port 67 (PXE 2.1 §2.2.4): a
// DHCPOFFER without an address to a DISCOVER from a PXE client in the plan,
// and a DHCPACK to a REQUEST addressed to us (option 54). Everything else
// is ignored. It is pure: known/host come from Hosts.
func proxyReply(req *dhcpv4.DHCPv4, c pxe.Client, host Host, known bool, b BootConfig) (*dhcpv4.DHCPv4, Decision) {
	var t dhcpv4.MessageType
	switch mt := req.MessageType(); mt {
	case dhcpv4.MessageTypeDiscover:
		t = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); !sid.Equal(b.ServerIP) {
			return ignore("request for another server (%s)", sid)
		}
		// A request for an address (option 50) was never ours to answer: a
		// proxy offers none. It names our address only when the site's
		// DHCP server shares it (dnsmasq on this very host), and an ACK
		// without that address makes the client decline its lease (OVMF:
		// "Lease confirmed isn't the same as that in the offer").
		if ip := req.RequestedIPAddress(); isSet(ip) {
			return ignore("request for address %s, which a proxy never offers", ip)
		}
		t = dhcpv4.MessageTypeAck
	default:
		return ignore("%s not answered in proxy mode", mt)
	}
	return pxeOnlyReply(req, c, host, known, b, t)
}

// proxyPXEReply is the decision for port 4011 (PXE 2.1 §2.2.5, "boot
// server discovery"): the client, which has an address by now, sends a
// DHCPREQUEST (or DHCPINFORM) and expects a DHCPACK with siaddr, sname,
// file, option 54, 60 and 97, unicast back to it. It is pure.
func proxyPXEReply(req *dhcpv4.DHCPv4, c pxe.Client, host Host, known bool, b BootConfig) (*dhcpv4.DHCPv4, Decision) {
	switch mt := req.MessageType(); mt {
	case dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform:
	default:
		return ignore("%s not answered on the PXE port", mt)
	}
	reply, dec := pxeOnlyReply(req, c, host, known, b, dhcpv4.MessageTypeAck)
	if reply != nil {
		dec.Reason = "PXE client in plan, boot server request (port 4011)"
	}
	return reply, dec
}

// pxeOnlyReply builds a reply of type t that carries boot options and no
// address, after the checks common to proxy and port 4011, in this order:
// not in the plan, installed, not a PXE client, invalid PXE client, no boot
// file for it.
func pxeOnlyReply(req *dhcpv4.DHCPv4, c pxe.Client, host Host, known bool, b BootConfig, t dhcpv4.MessageType) (*dhcpv4.DHCPv4, Decision) {
	switch {
	case !known:
		return ignore("MAC not in plan")
	case host.Installed:
		return nil, Decision{Action: Ignore, Node: host.Node, Reason: "installed: boots from disk"}
	case !c.IsPXE:
		return nil, Decision{Action: Ignore, Node: host.Node, Reason: "not a PXE client"}
	}
	if err := c.Validate(); err != nil {
		return nil, Decision{Action: Ignore, Node: host.Node, Reason: "invalid PXE client: " + err.Error()}
	}
	bt, why := bootFor(c, req.ClientHWAddr, b, host.SecureBoot)
	if why != "" {
		return nil, Decision{Action: Ignore, Node: host.Node, Reason: why}
	}
	reply, err := newReply(req, t, b, withBoot(req, c, bt, b, false))
	if err != nil {
		return nil, Decision{Action: Ignore, Node: host.Node, Reason: "build reply: " + err.Error()}
	}
	a := Offer
	if t == dhcpv4.MessageTypeAck {
		a = Ack
	}
	return reply, Decision{Action: a, Node: host.Node, BootFile: bt.File, Reason: "PXE client in plan"}
}

// hostKind says where an authoritative-mode assignment comes from.
type hostKind int

const (
	kindUnknown hostKind = iota // not in the plan, no dynamic lease
	kindPlan                    // a plan MAC
	kindDynamic                 // a dynamic pool lease for a MAC not in the plan
)

// assignment is the address a client may have in authoritative mode.
type assignment struct {
	Kind hostKind
	Host Host
}

// authReply is the authoritative-mode decision (RFC 2131 §4.3). It is pure:
// the assignment (plan host or dynamic lease) is looked up by the caller.
//
//   - DHCPDISCOVER: offer the assigned address.
//   - DHCPREQUEST: ignore it if option 54 names another server; otherwise
//     ACK if the requested address (option 50, or ciaddr when renewing) is
//     the assigned one. A plan MAC asking for any other address gets a NAK;
//     a MAC not in the plan never does.
//   - DHCPINFORM: ACK with configuration only (no yiaddr, no lease time).
//   - DHCPRELEASE, DHCPDECLINE: recorded, no reply.
//
// PXE clients in the plan that are not installed also get boot options.
func authReply(req *dhcpv4.DHCPv4, c pxe.Client, a assignment, cfg Config) (*dhcpv4.DHCPv4, Decision) {
	mt := req.MessageType()
	if a.Kind == kindUnknown {
		return ignore("MAC not in plan")
	}
	h := a.Host
	dec := Decision{Node: h.Node}
	if !isSet(h.IP) {
		dec.Reason = "no planned address"
		return nil, dec
	}
	ip := h.IP.To4()

	var t dhcpv4.MessageType
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		t, dec.Action, dec.Reason = dhcpv4.MessageTypeOffer, Offer, "lease"
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(cfg.Boot.ServerIP) {
			dec.Reason = fmt.Sprintf("client chose server %s", sid)
			return nil, dec
		}
		want := req.RequestedIPAddress()
		if !isSet(want) {
			want = req.ClientIPAddr
		}
		if !want.Equal(ip) {
			if a.Kind != kindPlan {
				dec.Reason = fmt.Sprintf("requested %s, leased %s", want, ip)
				return nil, dec
			}
			dec.Action, dec.Reason = Nak, fmt.Sprintf("requested %s, planned %s", want, ip)
			reply, err := newReply(req, dhcpv4.MessageTypeNak, cfg.Boot,
				dhcpv4.WithOption(dhcpv4.OptMessage("wrong address")))
			if err != nil {
				return ignore("build reply: %v", err)
			}
			return reply, dec
		}
		t, dec.Action, dec.Reason = dhcpv4.MessageTypeAck, Ack, "lease"
	case dhcpv4.MessageTypeInform:
		t, dec.Action, dec.Reason = dhcpv4.MessageTypeAck, Ack, "inform"
	case dhcpv4.MessageTypeRelease:
		dec.Action, dec.IP, dec.Reason = Release, req.ClientIPAddr, "released by client"
		return nil, dec
	case dhcpv4.MessageTypeDecline:
		dec.Action, dec.IP = Decline, req.RequestedIPAddress()
		dec.Reason = "address in use by another machine"
		return nil, dec
	default:
		dec.Reason = fmt.Sprintf("%s not handled", mt)
		return nil, dec
	}

	var mods []dhcpv4.Modifier
	if mt != dhcpv4.MessageTypeInform {
		dec.IP = ip
		mods = append(mods,
			dhcpv4.WithYourIP(ip),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(cfg.LeaseTime)))
	}
	mods = append(mods, withConfig(h))

	switch {
	case a.Kind == kindDynamic:
		dec.NoBoot = "not in plan"
	case h.Installed:
		dec.NoBoot = "installed: boots from disk"
	case !c.IsPXE:
		dec.NoBoot = "not a PXE client"
	default:
		if err := c.Validate(); err != nil {
			dec.NoBoot = "invalid PXE client: " + err.Error()
			break
		}
		bt, why := bootFor(c, req.ClientHWAddr, cfg.Boot, h.SecureBoot)
		if why != "" {
			dec.NoBoot = why
			break
		}
		dec.BootFile = bt.File
		mods = append(mods, withBoot(req, c, bt, cfg.Boot, true))
	}
	reply, err := newReply(req, t, cfg.Boot, mods...)
	if err != nil {
		return ignore("build reply: %v", err)
	}
	return reply, dec
}

// withConfig adds the host's network configuration: options 1, 3, 6, 12,
// 15 and 26, each only when set.
func withConfig(h Host) dhcpv4.Modifier {
	return func(d *dhcpv4.DHCPv4) {
		if m := mask4(h.Mask); m != nil {
			d.UpdateOption(dhcpv4.OptSubnetMask(m))
		}
		if isSet(h.Gateway) {
			d.UpdateOption(dhcpv4.OptRouter(h.Gateway.To4()))
		}
		var dns []net.IP
		for _, ip := range h.DNS {
			if isSet(ip) {
				dns = append(dns, ip.To4())
			}
		}
		if len(dns) > 0 {
			d.UpdateOption(dhcpv4.OptDNS(dns...))
		}
		name := h.Hostname
		if name == "" {
			name = h.Node
		}
		if name != "" {
			d.UpdateOption(dhcpv4.OptHostName(name))
		}
		if h.Domain != "" {
			d.UpdateOption(dhcpv4.OptDomainName(h.Domain))
		}
		if h.MTU >= 68 && h.MTU <= 65535 {
			d.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU,
				binary.BigEndian.AppendUint16(nil, uint16(h.MTU))))
		}
	}
}

// mask4 returns m as a 4-byte IPv4 mask, or nil.
func mask4(m net.IPMask) net.IPMask {
	switch len(m) {
	case net.IPv4len:
		return m
	case net.IPv6len:
		return m[12:]
	default:
		return nil
	}
}
