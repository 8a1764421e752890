// Package dhcp is racklift's DHCPv4 service for the provisioning network.
//
// It has two layers, kept apart so the decisions can be table-tested:
//
//   - Server owns the socket: a read loop over an ipv4.PacketConn that
//     learns the receiving interface (IP_PKTINFO), bounded concurrency, and
//     one function (destination) that chooses where a reply goes, following
//     RFC 2131 §4.1:
//
//     "If the 'giaddr' field in a DHCP message from a client is non-zero,
//     the server sends any return messages to the 'DHCP server' port on the
//     BOOTP relay agent whose address appears in 'giaddr'. If the 'giaddr'
//     field is zero and the 'ciaddr' field is nonzero, then the server
//     unicasts DHCPOFFER and DHCPACK messages to the address in 'ciaddr'.
//     If 'giaddr' is zero and 'ciaddr' is zero, and the broadcast bit is
//     set, then the server broadcasts DHCPOFFER and DHCPACK messages to
//     0xffffffff. [...] In all cases, when 'giaddr' is zero, the server
//     broadcasts any DHCPNAK messages to 0xffffffff."
//
//     racklift also broadcasts when neither ciaddr nor the broadcast bit is
//     set: unicasting to yiaddr would need an ARP entry we cannot inject from
//     a datagram socket, and every client accepts the broadcast.
//
//   - Responder decides. For each request it classifies the client once
//     (package boot/pxe), looks the MAC up in Hosts, and calls a pure reply
//     function that returns the reply and a Decision (offer, ack, nak,
//     ignore, with a reason). Every decision is reported through Recorder.
//
// Two modes:
//
//   - Proxy (the default, for customer LANs that already run DHCP) is a
//     proxyDHCP server as in the PXE 2.1 specification §2.2.4: it answers
//     only PXE/iPXE/HTTP-boot clients whose MAC is in the plan, never hands
//     out an address (yiaddr stays 0), and gives option 54, option 60
//     "PXEClient" (or "HTTPClient"), option 97 echoed, option 43 with PXE
//     discovery control 8 ("boot the file name, skip discovery") for BIOS
//     clients only (some UEFI firmware ignores proxy offers carrying it, as
//     pixiecore found), siaddr, sname and file. ProxyPXE answers the
//     follow-up DHCPREQUEST a PXE client sends to port 4011 with a unicast
//     DHCPACK.
//   - Authoritative leases each plan MAC its planned address and nothing to
//     anyone else (unless a Dynamic pool is configured). Boot options are
//     added for PXE clients exactly as in proxy mode.
//
// The boot file chosen for a PXE client (see bootFor) is, in this order:
// iPXE (user class "iPXE") gets its script by HTTP,
// <HTTPBase>/ipxe/<mac>/boot.ipxe (the loop-break); UEFI HTTP boot gets
// <HTTPBase>/ipxe-bin/<file> with class "HTTPClient"; BIOS and UEFI PXE get
// "<mac>/<file>" by TFTP so the TFTP log knows the MAC.
//
// RouterAdvertiser sends IPv6 router advertisements with router lifetime 0
// and no prefixes, so iPXE does not wait ~13 s for IPv6 autoconfiguration.
// Probe looks for other DHCP servers before authoritative mode starts.
package dhcp
