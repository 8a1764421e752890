package plan

import (
	"fmt"
	"strings"
)

// Thresholds from the field reports (see the README's "HA rules").
const (
	largeSiteComputes = 100 // from here on the large-site split is advised
	largeControllers  = 5
	largeDatabase     = 5
	largeMessaging    = 3
)

// checkHA applies the HA rules. In a plan with cluster.ha: false the rule
// errors are reported as warnings.
func checkHA(r *reporter, p *Plan) {
	if len(p.Nodes) == 0 {
		return
	}
	ha := p.Cluster.HA
	bad := func(rule, hint, format string, args ...any) {
		if ha {
			r.errorf(rule, "nodes", hint, format, args...)
		} else {
			r.warnf(rule, "nodes", hint+" (reported as a warning because cluster.ha is false)", format, args...)
		}
	}
	count := func(ro Role) int { return len(p.NodesWith(ro)) }
	ctl, db, mq, netn := count(RoleController), count(RoleDatabase), count(RoleMessaging), count(RoleNetwork)
	mon, osd, comp := count(RoleCephMon), count(RoleStorage), count(RoleCompute)

	switch {
	case ctl == 0 && comp > 0:
		bad("ha-controllers", "give 3 nodes the controller role", "no controller: compute nodes need the OpenStack control plane")
	case ctl == 1:
		bad("ha-controllers", "use at least 3 controllers for active/active HA", "1 controller is a single point of failure")
	case ctl == 2:
		r.warnf("ha-controllers", "nodes", "add a third controller for active/active HA", "2 controllers can only run active/passive: HAProxy/Keepalived fail over but Galera and RabbitMQ lose quorum when one is down")
	}

	// Galera and RabbitMQ run on the controllers unless dedicated nodes exist.
	dbNodes, dbWhere := db, "database"
	if db == 0 {
		dbNodes, dbWhere = ctl, "controller (Galera runs on the controllers)"
	}
	if dbNodes > 0 {
		switch {
		case dbNodes < 3:
			bad("ha-galera", "use 3 or 5 "+dbWhere+" nodes", "MariaDB Galera needs at least 3 nodes for quorum; the plan has %d %s node(s)", dbNodes, dbWhere)
		case dbNodes%2 == 0:
			bad("ha-galera", fmt.Sprintf("use %d or %d nodes (or add a Galera arbitrator)", dbNodes-1, dbNodes+1), "MariaDB Galera with %d %s nodes is even: a network split into halves stops both", dbNodes, dbWhere)
		}
	}
	mqNodes, mqWhere := mq, "messaging"
	if mq == 0 {
		mqNodes, mqWhere = ctl, "controller (RabbitMQ runs on the controllers)"
	}
	if mqNodes > 0 && mqNodes < 3 {
		bad("ha-rabbitmq", "use 3 "+mqWhere+" nodes with quorum queues", "RabbitMQ needs a cluster of at least 3 for quorum queues; the plan has %d %s node(s)", mqNodes, mqWhere)
	}
	if netn == 1 {
		bad("ha-network", "give a second node the network role (or remove it so the agents run on the controllers)", "1 network node: Neutron L3 HA (VRRP) and redundant DHCP agents need at least 2")
	} else if netn == 0 && ctl > 0 && ctl < 2 && comp > 0 {
		bad("ha-network", "add network nodes or controllers", "Neutron agents run on the controllers and need at least 2 of them")
	}

	if osd > 0 {
		monNodes, monWhere := mon, "ceph-mon"
		if mon == 0 {
			monNodes, monWhere = ctl, "controller (no ceph-mon role: monitors go on the controllers)"
		}
		switch {
		case monNodes < 3:
			bad("ha-ceph-mon", "give 3 (or 5) nodes the ceph-mon role", "Ceph monitors need at least 3 for quorum; the plan has %d %s node(s)", monNodes, monWhere)
		case monNodes%2 == 0:
			bad("ha-ceph-mon", fmt.Sprintf("use %d or %d monitors", monNodes-1, monNodes+1), "Ceph monitors should be odd; the plan has %d %s nodes", monNodes, monWhere)
		}
		if osd < p.Cluster.CephPoolSize {
			bad("ha-osd-hosts", fmt.Sprintf("add storage nodes until there are at least %d, or lower cluster.ceph_pool_size", p.Cluster.CephPoolSize), "%d OSD host(s) is fewer than the pool size %d: Ceph cannot place every replica on its own host", osd, p.Cluster.CephPoolSize)
		} else if osd == p.Cluster.CephPoolSize {
			r.warnf("ha-osd-hosts", "nodes", "add one more storage node so data re-replicates after a host failure", "%d OSD hosts equals the pool size: after a host failure Ceph runs degraded until it is back", osd)
		}
	} else if mon > 0 {
		r.warnf("ha-ceph-mon", "nodes", "add storage nodes or drop the ceph-mon role", "ceph-mon nodes but no storage (OSD) nodes")
	}

	if comp >= largeSiteComputes {
		var advice []string
		if ctl < largeControllers {
			advice = append(advice, fmt.Sprintf("%d controllers (have %d)", largeControllers, ctl))
		}
		if db < largeDatabase {
			advice = append(advice, fmt.Sprintf("%d dedicated database nodes (have %d)", largeDatabase, db))
		}
		if mq < largeMessaging {
			advice = append(advice, fmt.Sprintf("%d dedicated messaging nodes (have %d)", largeMessaging, mq))
		}
		if count(RoleMonitoring) < 1 {
			advice = append(advice, "1 monitoring node (have 0)")
		}
		combined := 0
		for _, n := range p.Nodes {
			if n.Has(RoleDatabase) && n.Has(RoleMessaging) {
				combined++
			}
		}
		if combined > 0 {
			advice = append(advice, fmt.Sprintf("separate database and messaging (%d nodes run both: with 3 combined nodes the cloud survives one failure and the two fight for memory)", combined))
		}
		if len(advice) > 0 {
			r.warnf("large-site", "nodes", "the field-proven split for large sites is 5 controllers, 5 MariaDB, 3 RabbitMQ, 1 monitoring", "%d compute nodes: recommended %s", comp, strings.Join(advice, "; "))
		}
	}
}

// HACheck is one line of the HA summary shown by `plan show`.
type HACheck struct {
	Name   string
	Count  int
	Status string // "ok", "warning" or "error" ("warning" for rule failures when cluster.ha is false)
	Note   string
}

// HAChecks summarises the HA-relevant counts of a valid plan.
func (p *Plan) HAChecks() []HACheck {
	count := func(ro Role) int { return len(p.NodesWith(ro)) }
	var out []HACheck
	add := func(name string, n int, ok bool, warn bool, note string) {
		st := "ok"
		switch {
		case !ok && p.Cluster.HA:
			st = "error"
		case !ok:
			st = "warning"
		case warn:
			st = "warning"
		}
		out = append(out, HACheck{Name: name, Count: n, Status: st, Note: note})
	}
	ctl := count(RoleController)
	add("controllers (HAProxy + VIP)", ctl, ctl >= 2 || ctl == 0, ctl == 2, "active/active needs >= 3")
	db := count(RoleDatabase)
	if db == 0 {
		add("Galera (on controllers)", ctl, ctl == 0 || ctl >= 3 && ctl%2 == 1, false, "odd, >= 3")
	} else {
		add("Galera (database nodes)", db, db >= 3 && db%2 == 1, false, "odd, >= 3")
	}
	mq := count(RoleMessaging)
	if mq == 0 {
		add("RabbitMQ (on controllers)", ctl, ctl == 0 || ctl >= 3, false, ">= 3, quorum queues")
	} else {
		add("RabbitMQ (messaging nodes)", mq, mq >= 3, false, ">= 3, quorum queues")
	}
	if nn := count(RoleNetwork); nn > 0 {
		add("Neutron network nodes", nn, nn >= 2, false, ">= 2 for L3 HA")
	}
	if osd := count(RoleStorage); osd > 0 {
		mon := count(RoleCephMon)
		if mon == 0 {
			mon = ctl
		}
		add("Ceph monitors", mon, mon >= 3 && mon%2 == 1, false, "odd, >= 3")
		add("Ceph OSD hosts", osd, osd >= p.Cluster.CephPoolSize, osd == p.Cluster.CephPoolSize, fmt.Sprintf(">= pool size %d", p.Cluster.CephPoolSize))
	}
	fenced := 0
	comp := p.NodesWith(RoleCompute)
	for _, n := range comp {
		if n.BMC != nil {
			fenced++
		}
	}
	if len(comp) > 0 {
		add("compute nodes with a fencing BMC", fenced, true, fenced < len(comp), fmt.Sprintf("%d of %d", fenced, len(comp)))
	}
	return out
}
