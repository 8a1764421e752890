// Package e2e runs racklift end to end on a virtual site: a network
// namespace with a bridge, QEMU VMs (BIOS and UEFI) as bare-metal nodes,
// one OpenIPMI ipmi_sim BMC per VM whose chassis control powers that VM,
// and `racklift serve` with a generated plan. The tests (build tag
// integration, root) run `racklift install --all` and assert that every
// node reaches installed through its real BMC, DHCP, TFTP/HTTP and
// callbacks, and that its second boot goes to the local disk.
//
// E2E_NODES=N (default 2) sets the number of VMs, alternating BIOS and
// UEFI. E2E_NO_RA=1 turns racklift's IPv6 router advertisements off, to
// measure what they save. E2E_PCAP=DIR writes each test's packets on the
// bridge to DIR/TEST.pcap (tcpdump), for reading a firmware's DHCP exchange.
package e2e

import (
	"fmt"
	"strings"
)

// Node is one virtual node of the site.
type Node struct {
	Name    string
	MAC     string
	UEFI    bool
	BMCAddr string // ipmi_sim listens here (in the namespace)
	BMCPort int    // and on this UDP port (0: 623)
	// PXEROM makes a BIOS node boot like a server's own BIOS PXE ROM, not
	// like QEMU's NIC ROM (which is iPXE): see PXEROMScript.
	PXEROM bool
}

// PXEROMKernel is Debian's iPXE as a Linux kernel image, booted with
// QEMU's -kernel.
const PXEROMKernel = "/usr/lib/ipxe/ipxe.lkrn"

// PXEROMScript is PXEROMKernel's command line, which iPXE runs as a
// script. With a user class other than "iPXE", its DHCP requests look like
// a BIOS PXE ROM's (PXEClient, arch 0), so racklift hands it
// MAC/undionly.kpxe by TFTP, and autoboot fetches and runs that file as a
// PXE NBP: the chain a real BIOS server goes through. undionly.kpxe is a
// fresh iPXE with the stock user class, so its own DHCP gets the node's
// HTTP iPXE script.
const PXEROMScript = "set user-class PXE-ROM && autoboot"

// Nodes returns n nodes alternating BIOS and UEFI.
func Nodes(n int) []Node {
	out := make([]Node, n)
	for i := range out {
		out[i] = Node{
			Name:    fmt.Sprintf("e2e-%02d", i+1),
			MAC:     fmt.Sprintf("52:54:00:99:e2:%02x", i+1),
			UEFI:    i%2 == 1,
			BMCAddr: fmt.Sprintf("127.0.0.%d", 11+i),
		}
	}
	return out
}

// Plan returns the site's plan: the provisioning network on the bridge,
// BMCs over IPMI on the namespace's loopback, the testbed profile.
func Plan(nodes []Node) string {
	var b strings.Builder
	b.WriteString(`cluster:
  name: e2e
  domain: e2e.racklift.test
  profile: testbed
  ha: false
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestbedKeyE2eTestbedKeyE2eTest0 e2e@racklift"]
  root_password_secret: root-hash
networks:
  - name: mgmt
    purpose: management
    provisioning: true
    cidr: 10.99.0.0/24
    gateway: 10.99.0.1
    dns: [10.99.0.1]
    allocate: {default: 10.99.0.100}
  - name: bmc
    purpose: bmc
    cidr: 127.0.0.0/8
defaults:
  bmc: {driver: ipmi, user: admin, password_secret: bmc}
  disks: {os: {path: /dev/vda}}
nodes:
`)
	for _, n := range nodes {
		mode := "legacy"
		if n.UEFI {
			mode = "uefi"
		}
		fmt.Fprintf(&b, "  - {name: %s, roles: [compute], mac: %q, bmc: {address: %s, port: 623}, bios: {boot_mode: %s}}\n", n.Name, n.MAC, n.BMCAddr, mode)
	}
	return b.String()
}

// BMCPassword is the admin password of every simulated BMC of the site.
const BMCPassword = "e2e-bmc-password"

// Secrets is the site's secrets file (mode 0600 when written).
const Secrets = `root-hash: "$6$e2esalt0$Wm8Tq3Yk0hS1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6A7B8C9D0E1F2G3H4I5J6K7L"
bmc: ` + BMCPassword + "\n"
