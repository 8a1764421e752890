package plan

// This file is the plan format as written by the engineer. The struct tags
// are the single source of truth for the YAML keys, the JSON Schema
// (`racklift plan schema`), and the README's field list:
//   yaml:"key"     the key in the plan
//   desc:"..."     what the field means (shown by editors through the schema)
//   enum:"a|b"     the allowed values, when the set is closed

// Spec is a whole cluster plan as written.
type Spec struct {
	Cluster  ClusterSpec `yaml:"cluster" desc:"Cluster-wide settings."`
	Networks []NetSpec   `yaml:"networks" desc:"Every network (plane) the servers use; one is the provisioning (PXE) network."`
	VIPs     []VIPSpec   `yaml:"vips" desc:"Virtual IPs held by Keepalived/Pacemaker for HAProxy (internal and external API endpoints)."`
	Defaults NodeDefault `yaml:"defaults" desc:"Values every node inherits unless it sets its own."`
	Nodes    []NodeSpec  `yaml:"nodes" desc:"The servers."`
	// OpenStack is read by the hand-off (racklift handoff) only.
	OpenStack OpenStackSpec `yaml:"openstack" desc:"What the hand-off to kolla-ansible needs beyond the nodes (racklift handoff)."`
}

// OpenStackSpec is what the kolla-ansible hand-off needs that the nodes do not say.
type OpenStackSpec struct {
	Release                   string `yaml:"release" desc:"OpenStack release kolla-ansible deploys (openstack_release), e.g. 2025.2. Default: the release racklift's hand-off targets."`
	KeepalivedVirtualRouterID int    `yaml:"keepalived_virtual_router_id" desc:"VRRP virtual router id of the VIPs, 1-255; must be unique among the keepalived clusters on the VIP networks. Default 51 (kolla-ansible's)."`
	DockerRegistry            string `yaml:"docker_registry" desc:"Offline container registry (host or host:port) kolla-ansible pulls its images from, e.g. 10.10.0.250:4000."`
	InstanceHA                bool   `yaml:"instance_ha" desc:"Instance HA with Masakari and Pacemaker: compute nodes are fenced through their BMCs and their VMs evacuated."`
	NeutronExternalInterface  string `yaml:"neutron_external_interface" desc:"Interface Neutron plugs into its external bridge (br-ex) on the network nodes (controllers when there are none): a NIC, bond or NAME.VLAN that carries no address, e.g. bond0 for VLAN provider networks."`
}

// ClusterSpec holds cluster-wide settings.
type ClusterSpec struct {
	Name               string   `yaml:"name" desc:"Cluster name: lower-case letters, digits and '-'."`
	Domain             string   `yaml:"domain" desc:"DNS domain of the nodes; a node's FQDN is NAME.DOMAIN."`
	Timezone           string   `yaml:"timezone" desc:"IANA time zone, e.g. UTC or Asia/Shanghai. Default UTC."`
	NTP                []string `yaml:"ntp" desc:"NTP servers (host names or addresses)."`
	DNS                []string `yaml:"dns" desc:"DNS resolvers (IPv4 addresses), used where a network sets none."`
	SSHKeys            []string `yaml:"ssh_keys" desc:"SSH public keys installed for root on every node."`
	RootPasswordSecret string   `yaml:"root_password_secret" desc:"Name of the secret holding the root password crypt hash (openssl passwd -6). The hash itself never goes in the plan."`
	Profile            string   `yaml:"profile" desc:"Default OS profile, e.g. rocky9 or ubuntu2404."`
	CephPoolSize       int      `yaml:"ceph_pool_size" desc:"Ceph replicated pool size. Default 3."`
	HA                 *bool    `yaml:"ha" desc:"Whether this is a highly available cluster (default true). false turns HA rule errors into warnings, for labs."`
}

// NetSpec is one network.
type NetSpec struct {
	Name         string            `yaml:"name" desc:"Network name, referenced by nodes and VIPs."`
	Purpose      string            `yaml:"purpose" desc:"What the network carries; decides which roles need it." enum:"management|bmc|storage|storage-cluster|tenant|external|migration|other"`
	CIDR         string            `yaml:"cidr" desc:"IPv4 network in CIDR form, e.g. 10.20.0.0/24."`
	VLAN         int               `yaml:"vlan" desc:"802.1Q VLAN ID the server tags, 1-4094; 0 or absent = untagged."`
	Gateway      string            `yaml:"gateway" desc:"Default gateway on this network, if any."`
	MTU          int               `yaml:"mtu" desc:"MTU, default 1500. Storage networks want 9000."`
	DNS          []string          `yaml:"dns" desc:"DNS resolvers for this network (default: cluster.dns)."`
	Provisioning bool              `yaml:"provisioning" desc:"true for the one network racklift PXE-boots on (untagged on the PXE NIC)."`
	Default      bool              `yaml:"default_route" desc:"true if nodes take their default route on this network (default: the provisioning network)."`
	Dynamic      *RangeSpec        `yaml:"dynamic_range" desc:"Addresses racklift may lease to machines not in the plan (authoritative DHCP only)."`
	Allocate     map[string]string `yaml:"allocate" desc:"Automatic addresses: role (or 'default') -> the address of index 0; a node with index N gets that address + N."`
}

// RangeSpec is an inclusive address range.
type RangeSpec struct {
	Start string `yaml:"start" desc:"First address."`
	End   string `yaml:"end" desc:"Last address."`
}

// VIPSpec is a virtual IP.
type VIPSpec struct {
	Name    string `yaml:"name" desc:"VIP name, e.g. internal or external."`
	Network string `yaml:"network" desc:"Network the VIP lives on."`
	Address string `yaml:"address" desc:"The VIP address."`
	FQDN    string `yaml:"fqdn" desc:"DNS name of the endpoint, e.g. api.example.com."`
}

// NodeDefault holds what nodes inherit.
type NodeDefault struct {
	BMC              BMCSpec                `yaml:"bmc" desc:"BMC settings shared by all nodes (driver, user, port, password_secret)."`
	NICs             []NICSpec              `yaml:"nics" desc:"Default NIC layout."`
	Bonds            []BondSpec             `yaml:"bonds" desc:"Default bond layout."`
	Networks         map[string]AttachSpec  `yaml:"networks" desc:"Default interface for each network: network name -> {interface}."`
	Disks            DisksSpec              `yaml:"disks" desc:"Default OS disk (and OSD disks for storage nodes)."`
	Profile          string                 `yaml:"profile" desc:"Default OS profile (overrides cluster.profile)."`
	Packages         []string               `yaml:"packages" desc:"Extra packages for every node."`
	KernelArgs       []string               `yaml:"kernel_args" desc:"Extra kernel arguments for the installed system."`
	Sysctl           map[string]string      `yaml:"sysctl" desc:"sysctl settings for the installed system."`
	ReservedMemoryMB int                    `yaml:"reserved_memory_mb" desc:"Memory (MiB) reserved for the host and Ceph OSDs on hyper-converged nodes (nova reserved_host_memory_mb)."`
	BIOS             BIOSSpec               `yaml:"bios" desc:"BIOS baseline racklift applies through the BMC before installing."`
	Roles            map[string]RoleDefault `yaml:"roles" desc:"Per-role defaults: role name -> settings nodes with that role inherit (first matching role wins)."`
}

// RoleDefault holds what nodes of one role inherit, between defaults and the node.
type RoleDefault struct {
	Networks         map[string]AttachSpec `yaml:"networks" desc:"Interface for each network for nodes of this role."`
	Disks            DisksSpec             `yaml:"disks" desc:"Disks for nodes of this role."`
	Profile          string                `yaml:"profile" desc:"OS profile for nodes of this role."`
	Packages         []string              `yaml:"packages" desc:"Packages added for nodes of this role."`
	ReservedMemoryMB int                   `yaml:"reserved_memory_mb" desc:"Reserved memory for nodes of this role."`
	BIOS             *BIOSSpec             `yaml:"bios" desc:"BIOS baseline for nodes of this role (fields not set come from defaults.bios)."`
}

// NodeSpec is one server.
type NodeSpec struct {
	Name             string                `yaml:"name" desc:"Host name (DNS label), e.g. cs-controller-01."`
	Roles            []string              `yaml:"roles" desc:"Roles of the node." enum:"controller|network|compute|storage|ceph-mon|database|messaging|monitoring"`
	MAC              string                `yaml:"mac" desc:"MAC address of the NIC that PXE-boots (on the provisioning network)."`
	Index            *int                  `yaml:"index" desc:"Node number for automatic addresses; default: the digits at the end of the name."`
	BMC              *BMCSpec              `yaml:"bmc" desc:"The node's BMC; fields not set come from defaults.bmc."`
	NICs             []NICSpec             `yaml:"nics" desc:"NICs (replaces defaults.nics)."`
	Bonds            []BondSpec            `yaml:"bonds" desc:"Bonds (replaces defaults.bonds)."`
	Networks         map[string]AttachSpec `yaml:"networks" desc:"Per-network interface and address: network name -> {interface, address}."`
	Disks            *DisksSpec            `yaml:"disks" desc:"OS disk and Ceph OSD disks (fields not set come from defaults)."`
	Profile          string                `yaml:"profile" desc:"OS profile for this node."`
	Packages         []string              `yaml:"packages" desc:"Extra packages (added to the defaults)."`
	KernelArgs       []string              `yaml:"kernel_args" desc:"Extra kernel arguments (added to the defaults)."`
	Sysctl           map[string]string     `yaml:"sysctl" desc:"sysctl settings (override the defaults key by key)."`
	ReservedMemoryMB int                   `yaml:"reserved_memory_mb" desc:"Memory (MiB) reserved for host and OSDs."`
	BIOS             *BIOSSpec             `yaml:"bios" desc:"BIOS baseline for this node (fields not set come from its role and defaults)."`
}

// BMCSpec describes how to reach a BMC.
type BMCSpec struct {
	Address        string `yaml:"address" desc:"BMC IPv4 address or host name."`
	Driver         string `yaml:"driver" desc:"How to talk to the BMC (default auto)." enum:"ipmi|redfish|auto"`
	Port           int    `yaml:"port" desc:"BMC port (default 623 for IPMI, 443 for Redfish)."`
	User           string `yaml:"user" desc:"BMC user name."`
	PasswordSecret string `yaml:"password_secret" desc:"Name of the secret holding the BMC password."`
	TLSVerify      *bool  `yaml:"tls_verify" desc:"Verify the Redfish TLS certificate (default false: most BMCs have self-signed ones)."`
}

// NICSpec is a physical NIC.
type NICSpec struct {
	Name string `yaml:"name" desc:"Interface name on the installed system, e.g. eno1 (at most 15 characters)."`
	MAC  string `yaml:"mac" desc:"MAC address; matched by the installer to name the NIC."`
	MTU  int    `yaml:"mtu" desc:"MTU of the NIC (default: the largest MTU of its networks)."`
}

// BondSpec is a Linux bond.
type BondSpec struct {
	Name    string   `yaml:"name" desc:"Bond name, e.g. bond0."`
	Mode    string   `yaml:"mode" desc:"Bonding mode (default 802.3ad)." enum:"802.3ad|active-backup|balance-rr|balance-xor|balance-tlb|balance-alb|broadcast"`
	Members []string `yaml:"members" desc:"Names of the NICs in the bond (at least 2 for redundancy)."`
	MTU     int      `yaml:"mtu" desc:"MTU of the bond (default: the largest MTU of its networks)."`
}

// AttachSpec puts a node on a network.
type AttachSpec struct {
	Interface string `yaml:"interface" desc:"NIC or bond name; a tagged network becomes INTERFACE.VLAN."`
	Address   string `yaml:"address" desc:"Static IPv4 address; if absent racklift allocates one from the network's allocate: table."`
}

// DisksSpec names the OS disk and OSD disks.
type DisksSpec struct {
	OS   *DiskSpec  `yaml:"os" desc:"The disk the OS is installed on; nothing else is touched."`
	OSDs []DiskSpec `yaml:"osds" desc:"Ceph OSD disks: left untouched by the installer (wiped only if wipe: true)."`
}

// DiskSpec identifies one disk by exactly one of path, by_id or serial.
type DiskSpec struct {
	Path   string `yaml:"path" desc:"Device path, e.g. /dev/sda or /dev/disk/by-path/..."`
	ByID   string `yaml:"by_id" desc:"Name under /dev/disk/by-id/, e.g. wwn-0x5000c500a1b2c3d4."`
	Serial string `yaml:"serial" desc:"Disk serial number."`
	Size   string `yaml:"size" desc:"Optional size the disk must have, e.g. 480G, 1.92T (powers of 1000, as on the disk's label) or 447GiB (powers of 1024, as lsblk shows); a disk matches within 2 %."`
	Wipe   bool   `yaml:"wipe" desc:"Wipe the disk's signatures before install (OSD disks only)."`
}

// BIOSSpec is the BIOS state racklift sets through the BMC before PXE boot.
type BIOSSpec struct {
	BootMode       string            `yaml:"boot_mode" desc:"Firmware boot mode; also how the one-time PXE boot is requested (default uefi)." enum:"uefi|legacy"`
	PXENIC         string            `yaml:"pxe_nic" desc:"The NIC to PXE boot from, in the vendor's words (Dell FQDD such as NIC.Integrated.1-1-1, HPE NicBoot1)."`
	Virtualization *bool             `yaml:"virtualization" desc:"Turn CPU virtualization (VT-x/AMD-V) on or off; absent leaves it alone."`
	SecureBoot     *bool             `yaml:"secure_boot" desc:"true: the node boots with UEFI Secure Boot on, through the signed chain (shim, GRUB) instead of iPXE, and verification requires Secure Boot on. Needs boot_mode uefi. Default false."`
	Attributes     map[string]string `yaml:"attributes" desc:"Raw vendor BIOS attributes to set, name -> value."`
}
