package nodeapi

import "time"

// CallbackBody is the optional JSON body of racklift's own callbacks
// (rendered %pre/%post/curl lines, the deploy agent, the first boot).
type CallbackBody struct {
	// Percent is the install progress 0-100, when known.
	Percent *int `json:"percent,omitempty"`
	// Detail is a short human-readable message.
	Detail string `json:"detail,omitempty"`
	// Step names the agent's step ("disk", "image", "grow", "seed",
	// "osd-wipe", "bootloader", "reboot"), when it sends one.
	Step string `json:"step,omitempty"`
	// Bytes and Total are the image bytes written so far and in all;
	// RateMBps is the write rate in MB/s (agent PhaseProgress).
	Bytes    int64   `json:"bytes,omitempty"`
	Total    int64   `json:"total,omitempty"`
	RateMBps float64 `json:"rate_mbps,omitempty"`
	// Facts is what the installed node found about itself (PhaseReady).
	Facts *Facts `json:"facts,omitempty"`
}

// MaxFactsBody bounds the body of a ready callback that carries Facts.
const MaxFactsBody = 1 << 20

// Instructions tell the deploy agent what to write where. They are served
// at PathAgentInstructions, only to the node, and hold its token.
type Instructions struct {
	// Node and MAC name the node; the agent checks MAC against its NIC.
	Node string `json:"node"`
	MAC  string `json:"mac"`
	// Token authenticates the agent's callbacks (TokenHeader).
	Token string `json:"token"`
	// Server is racklift's node-facing URL; callbacks go to
	// PhoneHomeURL(Server, MAC, phase).
	Server string `json:"server"`
	// Image is the OS image to write on OSDisk.
	Image ImageRef `json:"image"`
	// OSDisk is the disk the image is written to; the agent refuses to
	// write when no disk, or more than one, matches.
	OSDisk DiskMatch `json:"os_disk"`
	// OSDs are the node's Ceph OSD disks. The agent never writes to them,
	// except that it wipes the signatures of those with Wipe set.
	OSDs []DiskMatch `json:"osds,omitempty"`
	// Seed is the NoCloud seed the agent writes into the installed root
	// file system (/var/lib/cloud/seed/nocloud/).
	Seed Seed `json:"seed"`
	// UEFI is true when the node boots in UEFI mode: the agent then adds a
	// boot entry for the image's EFI loader (efibootmgr).
	UEFI bool `json:"uefi"`
	// Reboot is false only in tests that inspect the disk afterwards.
	Reboot bool `json:"reboot"`
}

// ImageRef names an image and how to fetch it.
type ImageRef struct {
	Name string `json:"name"`
	// ManifestURL is ImageManifestURL(server, Name); ManifestSHA256 the
	// SHA-256 of its bytes, so a manifest served by anyone is checked.
	ManifestURL    string `json:"manifest_url"`
	ManifestSHA256 string `json:"manifest_sha256"`
	// BlobURLs are base URLs that serve PathBlob (racklift first, then
	// peers that hold the blobs); a blob is fetched from the first that
	// answers with the right bytes.
	BlobURLs []string `json:"blob_urls"`
}

// DiskMatch identifies a disk the way the plan does: by path, by-id name
// or serial (exactly one is set), optionally with a size range.
type DiskMatch struct {
	Path   string `json:"path,omitempty"`
	ByID   string `json:"by_id,omitempty"`
	Serial string `json:"serial,omitempty"`
	// MinBytes and MaxBytes, when not zero, bound the disk's size.
	MinBytes int64 `json:"min_bytes,omitempty"`
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Wipe asks the agent to clear the disk's signatures (OSD disks only).
	Wipe bool `json:"wipe,omitempty"`
}

// Seed is a NoCloud seed: user-data (cloud-config), meta-data and
// network-config (version 2).
type Seed struct {
	UserData      string `json:"user_data"`
	MetaData      string `json:"meta_data"`
	NetworkConfig string `json:"network_config"`
}

// Facts are what an installed node reports about itself at first boot
// (PathFactsScript collects them). racklift compares them with the plan.
// Unknown values are left empty; a field the script cannot read is never
// guessed.
type Facts struct {
	// Version is FactsVersion.
	Version int `json:"version"`
	// CollectedAt is the node's clock when the facts were read.
	CollectedAt time.Time `json:"collected_at"`
	Hostname    string    `json:"hostname"`
	FQDN        string    `json:"fqdn"`
	// Interfaces holds every network interface but lo.
	Interfaces []Interface `json:"interfaces"`
	Routes     []Route     `json:"routes"`
	// DNS lists the resolvers the system uses, in order.
	DNS []string `json:"dns"`
	// Disks holds every block device of type disk, with its partitions
	// and holders.
	Disks []Disk `json:"disks"`
	OS    OS     `json:"os"`
	// Kernel is uname -r.
	Kernel string `json:"kernel"`
	// UEFI is true when the system booted through UEFI; SecureBoot is the
	// firmware's SecureBoot variable (nil when not UEFI or unreadable).
	UEFI       bool  `json:"uefi"`
	SecureBoot *bool `json:"secure_boot"`
	// SSHHostKeys are the public host keys ("ssh-ed25519 AAAA..."), for
	// the hand-off's known_hosts.
	SSHHostKeys []string `json:"ssh_host_keys"`
}

// FactsVersion is the Facts format this racklift reads.
const FactsVersion = 1

// Interface is one network interface.
type Interface struct {
	Name string `json:"name"`
	// MAC is the current address; PermMAC the hardware's own (a bond
	// member's MAC is the bond's), empty when the same or unknown.
	MAC     string `json:"mac"`
	PermMAC string `json:"perm_mac,omitempty"`
	// Kind is "" for a physical NIC, else "bond", "vlan", "bridge", ...
	Kind string `json:"kind,omitempty"`
	// State is the operational state ("up", "down", "lowerlayerdown", ...;
	// "unknown" for drivers that report no carrier, as virtual ones do).
	State string `json:"state"`
	MTU   int    `json:"mtu"`
	// Addresses are the IPv4 and global IPv6 addresses in CIDR form.
	Addresses []string `json:"addresses,omitempty"`
	// Master is the bond (or bridge) this interface is enslaved to.
	Master string `json:"master,omitempty"`
	// Bond is set for bonds, VLAN for VLAN interfaces.
	Bond *Bond `json:"bond,omitempty"`
	VLAN *VLAN `json:"vlan,omitempty"`
	// Driver and SpeedMbps come from sysfs (0 when unknown or no link).
	Driver    string `json:"driver,omitempty"`
	SpeedMbps int    `json:"speed_mbps,omitempty"`
}

// Bond is a Linux bond's mode and members.
type Bond struct {
	// Mode is the kernel's name, e.g. "802.3ad", "active-backup".
	Mode    string   `json:"mode"`
	Members []string `json:"members"`
}

// VLAN is an 802.1Q interface.
type VLAN struct {
	ID     int    `json:"id"`
	Parent string `json:"parent"`
}

// Route is one IPv4 route of the main table.
type Route struct {
	// Dst is "default" or a CIDR.
	Dst     string `json:"dst"`
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev"`
}

// Disk is one block device (type disk or part).
type Disk struct {
	// Name is the kernel name (vda, nvme0n1, sda1); Path is /dev/NAME.
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
	// SizeBytes is the size in bytes.
	SizeBytes int64  `json:"size_bytes"`
	Serial    string `json:"serial,omitempty"`
	Model     string `json:"model,omitempty"`
	WWN       string `json:"wwn,omitempty"`
	// Rotational is true for spinning disks.
	Rotational bool `json:"rotational,omitempty"`
	// PTType is the partition table type ("gpt", "dos") and FSType the
	// file system or other signature ("ext4", "LVM2_member", ...), as
	// blkid/lsblk see them; both empty on a blank disk.
	PTType string `json:"pttype,omitempty"`
	FSType string `json:"fstype,omitempty"`
	// Mountpoints lists where the device is mounted.
	Mountpoints []string `json:"mountpoints,omitempty"`
	// ByID lists the device's names under /dev/disk/by-id/ (names only);
	// ByPath its names under /dev/disk/by-path/.
	ByID   []string `json:"by_id,omitempty"`
	ByPath []string `json:"by_path,omitempty"`
	// Partitions holds the partitions of a disk.
	Partitions []Disk `json:"partitions,omitempty"`
	// Holders holds the devices built on this one that are not its
	// partitions (LVM volumes, dm-crypt, md RAID), as lsblk's tree shows
	// them; the root file system of an LVM install is mounted on one.
	Holders []Disk `json:"holders,omitempty"`
}

// OS is /etc/os-release.
type OS struct {
	ID         string `json:"id"`
	VersionID  string `json:"version_id"`
	PrettyName string `json:"pretty_name"`
}
