// Package handoff turns a plan and the verified state of its installed
// nodes into the input files of the tools that build the cloud on them:
// kolla-ansible (kolla/multinode, kolla/globals.yml, per-host
// kolla/config/nova/NODE/nova.conf) and cephadm (ceph/cluster.yaml,
// ceph/bootstrap.sh), plus the site's deployment SSH key with the nodes'
// known_hosts, an /etc/hosts fragment and a README.txt with the next
// commands.
//
// Build is pure (plan + Inputs -> Bundle); Gather reads the Inputs from the
// event store through the small NodeSource interface; a Bundle is written
// as a directory (WriteDir, all or nothing) or a .tar.gz stream
// (WriteTarGz, for the admin API).
//
// The target is kolla-ansible 2025.2 (Flamingo): its inventory groups and
// variable names were read from kolla-ansible's own
// ansible/inventory/multinode, ansible/group_vars/all/*.yml and
// etc/kolla/globals.yml (see KollaRelease). 2025.2 is the newest stable
// release whose files could be read here; its host OS support matrix lists
// Ubuntu 24.04 and Debian 12 (racklift's ubuntu2404 and debian12
// profiles) but Rocky Linux 10, not 9, so Build warns for rocky9 nodes.
//
// Where a node reported verification facts, interface names and OSD
// /dev/disk/by-id names come from them (the plan's names otherwise), and
// the known_hosts lines from its SSH host keys. Missing data (no storage
// address for a Ceph host, no Neutron external interface, ...) is an error
// naming the node and the plan field, never an empty variable.
package handoff
