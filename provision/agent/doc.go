// Package agent is racklift's deploy agent: the program a node runs
// (`racklift agent`, PID 1 once /init execs it) when it boots racklift's
// deploy environment to install an image profile. It writes the node's OS image onto the planned OS disk and
// nothing else, configures the installed system's first boot, and
// reboots into it.
//
// # Deploy environment
//
// A Debian kernel (linux-image-amd64: Debian-signed, so the same kernel
// boots under Secure Boot through shim and GRUB) and an initramfs made of
// two concatenated cpio archives: the base (busybox, kernel modules for
// common server NICs, disk controllers and file systems, efibootmgr and
// its libraries, /init), built once by `make agent` (hack/agent), and the
// racklift binary itself, appended by the server when it serves the
// initrd (provision/agent/bundle), so the agent is always the server's
// version. This initramfs was chosen over booting the USB live image over
// HTTP: it is ~20 MiB instead of a few hundred, needs no root image
// fetched after the kernel, and boots in seconds on real hardware.
//
// /init mounts proc, sys and dev, loads the modules, brings up the NIC
// with the MAC of racklift.mac= (or iPXE's BOOTIF=) with udhcpc, and
// execs `racklift agent`. The kernel arguments carry no secret:
//
//	racklift.server=http://10.99.0.1:8080 racklift.mac=52:54:00:99:00:01
//	[racklift.onerror=wait|reboot|poweroff] [racklift.verify=0|1] console=...
//
// # Steps
//
// Each step is bounded in time (Timeouts). Nothing is written to any disk
// before the instructions, the disks, the manifest and the image's first
// chunk have all been checked; every failure posts the error phase with
// one line a field engineer can act on (naming the step, the disks seen,
// the checksum that differs).
//
//  1. Instructions: GET nodeapi.AgentInstructionsURL(server, mac),
//     retried with backoff (the server gives them only to the address
//     the node booted from, and may not have seen it yet). They must be
//     for this MAC and hold a token, which authenticates every callback.
//  2. pre callback. The NIC with the MAC must exist; a plan that says
//     UEFI on a node booted in BIOS mode is refused.
//  3. Disks: ScanDisks reads sysfs and computes the /dev/disk/by-id
//     names udev would give (below); PlanDisks matches the OS disk and
//     the OSD disks (by path, by-id name or serial, within the size
//     bounds), waiting up to Timeouts.Disks for slow controllers, and
//     refuses when no disk or more than one matches (listing every disk
//     seen: name, serial, size, by-id names), when an OSD disk is the OS
//     disk, when two OSD entries are one disk, or when an OSD disk marked
//     Wipe is missing or read-only. An OSD disk is opened for writing
//     only when it is marked Wipe.
//  4. Manifest: fetched, its SHA-256 checked against the instructions',
//     Validate'd, and checked to fit the disk (size, 512-byte sectors, an
//     EFI loader for UEFI nodes).
//  5. Image (Stream): the OS disk is opened O_EXCL. Chunks are fetched
//     in order from Image.BlobURLs (the first URL that answers with the
//     right size and SHA-256; the list is tried three times), decompressed
//     (zstd) and checked against the raw SHA-256 before they are written;
//     the holes between chunks are zeroed with BLKZEROOUT, which the
//     kernel turns into WRITE ZEROES or an unmap where the device can;
//     the whole image's SHA-256 is computed as it goes. The disk's first
//     and last MiB (the old system's partition tables) are cleared when
//     the first good chunk is in hand, and the chunks in the first MiB
//     are written last, after the whole-image checksum matched and the
//     rest is synced: an install that stops half way leaves a disk that
//     boots nothing, rather than half an image. Then fsync, and (unless
//     racklift.verify=0) every chunk is read back after BLKFLSBUF and
//     checked again: it costs about 15% of the write time under QEMU TCG
//     and less on hardware, and catches a failing disk before the node
//     reboots into it.
//  6. Grow (GrowTable): the GPT's backup header and entries are moved
//     to the disk's end, manifest.GrowPartition is extended to the last
//     usable sector, the protective MBR is resized, both tables are read
//     back, and the kernel re-reads the table (BLKRRPART). MBR images
//     get their last primary partition grown. The root file system
//     itself is grown at first boot by cloud-init (its growpart finds
//     nothing left to do, its resizefs grows ext4/xfs online): that
//     works for every file system the images use and needs no e2fsprogs
//     or xfsprogs in the agent.
//  7. Seed: the root partition is mounted and the NoCloud seed
//     (Instructions.Seed) written to /var/lib/cloud/seed/nocloud/
//     {user-data,meta-data,network-config}, mode 0600, resolved inside
//     the mount (os.Root) so an image's symlink cannot redirect it.
//  8. OSD wipe (Wipe): for each OSD disk marked Wipe, the first and last
//     MiB of each partition and of the disk are cleared: every signature
//     wipefs -a would remove (GPT at both ends, MBR, file systems, LVM,
//     BlueStore, MD RAID, swap) and more; the data between is not erased.
//  9. Boot entry (UEFI nodes): efivarfs is mounted, older entries with
//     the same label removed, `efibootmgr -c` adds manifest.EFILoader on
//     manifest.EFIPartition and it is put first in BootOrder;
//     `efibootmgr -v` is printed on the console. BIOS nodes boot the
//     image's own MBR boot code.
//  10. installed callback, sync, reboot (power off when
//     Instructions.Reboot is false). If racklift does not acknowledge
//     installed, the node does not reboot (it would PXE-boot into a
//     reinstall): it reports the error and waits.
//
// Progress callbacks (phase progress, step, bytes, total, MB/s) go out
// every ProgressInterval (5 s) while the image is written, and at each
// step, without blocking the writer.
//
// # /dev/disk/by-id names without udev
//
// There is no udev in the initramfs, so ByIDNames derives the names of
// Debian 12's systemd 252 60-persistent-storage.rules from sysfs:
//
//   - virtio-blk: virtio-SERIAL (the disk's serial attribute).
//   - NVMe: nvme-MODEL_SERIAL (the controller's model and serial, trailing
//     blanks removed, every space and other character udev does not keep
//     written '_') and nvme-WWID (the namespace's wwid: nvme-eui.…,
//     nvme-nvme.…, nvme-uuid.…).
//   - ATA disks (SCSI vendor "ATA": libata, or SATA disks behind a SAS
//     HBA): ata-MODEL_SERIAL as udev's ata_id makes it (runs of blanks as
//     one '_'), with the 40-character model and the serial from the SAT
//     "T10 vendor identification" designator of VPD page 0x83 ("ATA" +
//     model + serial, which is what ATA IDENTIFY says); wwn-0xWWN from the
//     page's NAA designator.
//   - Other SCSI disks (RAID volumes, SAS, virtio-scsi): scsi-ID as
//     scsi_id makes it, from the best VPD page 0x83 logical-unit
//     designator (NAA 6, NAA 5, other NAA, EUI-64, T10 vendor ID,
//     vendor specific; binary before ASCII), the designator type's hex
//     digit first ("3" + NAA hex, "0" + vendor + model + id), else
//     "S" + vendor + model + the page 0x80 serial; wwn-0xNAA for NAA.
//
// Serials are compared case-insensitively. A path selector must be
// /dev/NAME or /dev/disk/by-id/NAME; by-path names are not computed.
package agent
