// Package testbed is racklift's virtual test bed for end-to-end tests:
// a network namespace with a bridge, QEMU PXE clients on taps, and a tiny
// Debian-kernel payload that plays an installer. It is used from tests
// built with `-tags integration` and needs root, `ip`, QEMU (TCG) and the
// Debian packages listed in hack/install-deps.sh (qemu-system-x86
// ipxe-qemu ipxe ovmf busybox-static iproute2 dnsmasq-base).
//
// # Network namespace
//
// NewNetns(t, "srv", "10.99.0.1/24", "fd00:99::1/64") creates namespace
// rl-srv-<6 hex> with bridge br0 holding those addresses, lo up and IPv6
// DAD off. Use only 10.99.x.y and fd00:99::/64 inside it; the host's
// interfaces are never touched. Run (via `ip netns exec`) starts programs
// inside; Go/Do run Go code inside; Listen/ListenPacket open sockets
// inside. AddTap adds a tap on br0 for QEMU. On cleanup (pass or fail)
// every process started through Run is SIGKILLed by PID and process
// group, then any remaining process of the namespace (`ip netns pids`,
// never the test process itself), then the namespace is deleted. A test
// binary killed before its cleanup (go test -timeout) leaves its namespace
// behind (its QEMU and dnsmasq die with it: Pdeathsig); the namespaces
// are recorded in /run/racklift-testbed/ with their creator's PID, and the
// next NewNetns deletes those whose creator is gone (no one else's).
//
// Go/Do: the function runs on a goroutine that calls runtime.LockOSThread
// and unix.Setns(CLONE_NEWNET) on /run/netns/NAME, then switches the
// thread back to its own namespace, checks it, and unlocks it. The
// thread must not end: children get Pdeathsig, which the kernel sends
// when the thread that forked them exits, and a Do called by the
// goroutine that started a child runs on that same thread (ending it
// killed the demo's racklift serve; TestChildSurvivesDo). Only if the
// switch back fails is the thread left locked, so the runtime ends it
// and it is never reused in the wrong namespace. Goroutines the function
// starts are NOT in the namespace; sockets keep the namespace they were
// created in, so create sockets inside and serve them from anywhere.
//
// # QEMU
//
// StartVM runs qemu-system-x86_64 in the namespace, TCG only (/dev/kvm is
// unusable on the test machines), NIC on a tap in br0, serial console
// (COM1) to a file, a QMP socket for system_reset / quit / query-status:
//
//   - BIOS: "pc" machine, SeaBIOS with its serial console on COM1
//     (fw_cfg etc/sercon-port, so BIOS and iPXE output is in the serial
//     log too), virtio-net-pci,disable-legacy=on with Debian's
//     pxe-virtio.rom (PCI id 1af4:1041: without disable-legacy SeaBIOS
//     silently skips the ROM) or e1000 with pxe-e1000.rom. The ROMs are
//     iPXE (Debian 12: 1.0.0+git-20190125, in /usr/lib/ipxe/qemu).
//   - UEFI: q35, OVMF_CODE_4M.fd read-only + a copy of OVMF_VARS_4M.fd,
//     virtio-net-pci with romfile= empty: OVMF's own PXE client does DHCP
//     with client arch 7 and fetches an EFI NBP (snponly.efi) by TFTP.
//
// A disk (DiskMB or DiskPath) is a raw virtio-blk device, /dev/vda in the
// guest, after the NIC in the boot order (before it with BootDisk, to boot
// an installed system or an OS image without a PXE attempt first). NoReboot (-no-reboot) ends QEMU
// when the guest reboots. Kernel/Initrd/Append boot the payload directly.
// Timeline gives every serial line with the time it appeared.
//
// # Payload
//
// BuildPayload returns a Debian kernel (package linux-image-amd64's
// current linux-image-<release>, fetched once with `apt-get download`
// into hack/.cache/testbed and unpacked with `dpkg-deb -x`; the host's
// /boot is never read) and a ~1.3 MiB gzip'd cpio (newc) initramfs:
// busybox-static, the modules virtio_pci, virtio_net, virtio_blk, e1000
// and their dependencies (read from each module's .modinfo "depends=", as
// depmod does), and /init (init.sh). Fetching, module resolution and cpio
// writing are provision/agent/initramfs's, shared with the deploy agent.
//
// /init mounts proc/sys/dev, loads the modules, runs udhcpc on the NIC,
// and reads these kernel arguments (PayloadArgs renders them):
//
//	racklift.config=URL     node config; fetched, must contain the node name
//	racklift.callback=URL   callback base; POST URL/<phase>
//	racklift.token=TOKEN    sent as header "X-Racklift-Token: TOKEN"; without it,
//	                        the token is read from the fetched config (the
//	                        kickstart's X-Racklift-Token header lines)
//	racklift.node=NAME      node name
//	racklift.mode=install   (default) phases pre (5%), progress (50%), installed;
//	                        writes "racklift-installed NAME\n" in /dev/vda's first sector
//	racklift.mode=check     reads that marker; phases first-boot, ready
//	racklift.reboot=1       end with `reboot -f` instead of `poweroff -f`
//	racklift.mac=MAC        NIC to use (else BOOTIF=01-aa-bb-..., else the first)
//
// Callbacks are `wget --post-data '{"percent":N,"detail":"..."}'` with
// Content-Type application/json and the token header (busybox 1.35 wget
// supports --header), bounded by `timeout` (its -T segfaults), matching
// racklift's POST /phone-home/{mac}/{phase}. A racklift test profile
// produces the same arguments with
//
//	racklift.config={{.ConfigURL}} racklift.callback={{.ServerURL}}/phone-home/{{.MAC}}
//	racklift.node={{.Node}} racklift.mode=install
//
// (no token on the command line: racklift's boot scripts are public).
//
// /init prints "RACKLIFT-TESTBED: <step> ok" lines on the console (init,
// modules, dhcp, config, pre, progress, disk, installed, first-boot,
// ready), "RACKLIFT-TESTBED: error: <why>" (and posts phase error) on
// failure, and "RACKLIFT-TESTBED: done" before powering off.
//
// # Running
//
//	sudo make integration                                  # everything
//	go test -tags integration -run 'TestPXEBoot' -v ./hack/testbed/
//	RACKLIFT_TESTBED_KEEP=/tmp/tb   keeps serial logs and disks
//	RACKLIFT_TESTBED_TIMELINE=1     logs each boot's serial timeline
//	RACKLIFT_TESTBED_CACHE=DIR      overrides hack/.cache/testbed
//
// Under TCG on 2 shared cores boot one VM at a time.
package testbed
