package handoff

import (
	"slices"

	"github.com/racklift/racklift/provision/plan"
)

// RoleMapping is what one plan role becomes in the hand-off.
type RoleMapping struct {
	Role plan.Role
	// Kolla lists the kolla-ansible inventory groups the node is put in.
	Kolla []string
	// Ceph lists the cephadm host labels the node gets.
	Ceph []string
}

// RoleMappings is the one table of the hand-off's role knowledge (also in
// the README). Implicit roles come from plan's own definitions so the HA
// checks and the hand-off agree: without network nodes the controllers are
// the Neutron hosts (plan.NeutronHosts, kolla group network); without
// ceph-mon nodes the controllers run the monitors (plan.CephMonHosts).
// mariadb and rabbitmq list the database / messaging nodes when the plan
// has them, and are [mariadb:children] control otherwise (the skeleton's
// default). The VIPs are held by the controllers, so loadbalancer is
// [loadbalancer:children] control (the skeleton says network).
var RoleMappings = []RoleMapping{
	{Role: plan.RoleController, Kolla: []string{"control"}},
	{Role: plan.RoleDatabase, Kolla: []string{"mariadb"}},
	{Role: plan.RoleMessaging, Kolla: []string{"rabbitmq"}},
	{Role: plan.RoleNetwork, Kolla: []string{"network"}},
	{Role: plan.RoleCompute, Kolla: []string{"compute"}},
	{Role: plan.RoleStorage, Kolla: []string{"storage"}, Ceph: []string{"osd"}},
	{Role: plan.RoleCephMon, Ceph: []string{"mon", "mgr", "_admin"}},
	{Role: plan.RoleMonitoring, Kolla: []string{"monitoring"}},
}

// roleOverrides are the skeleton groups whose children follow the plan
// rather than the 2025.2 default.
var roleOverrides = map[string][]string{
	"loadbalancer": {"control"},
}

// kollaGroups returns the kolla host groups of node n in plan p, in the
// order of RoleMappings.
func kollaGroups(p *plan.Plan, n *plan.Node) []string {
	var out []string
	add := func(g string) {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	for _, m := range RoleMappings {
		if n.Has(m.Role) {
			for _, g := range m.Kolla {
				add(g)
			}
		}
	}
	if slices.Contains(p.NeutronHosts(), n) {
		add("network")
	}
	return out
}

// cephLabels returns the cephadm labels of node n in plan p.
func cephLabels(p *plan.Plan, n *plan.Node) []string {
	var out []string
	mon := slices.Contains(p.CephMonHosts(), n)
	for _, m := range RoleMappings {
		if n.Has(m.Role) || m.Role == plan.RoleCephMon && mon {
			for _, l := range m.Ceph {
				if !slices.Contains(out, l) {
					out = append(out, l)
				}
			}
		}
	}
	if len(p.NodesWith(plan.RoleStorage)) == 0 {
		return nil
	}
	slices.Sort(out)
	return out
}
