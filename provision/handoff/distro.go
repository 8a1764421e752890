package handoff

import (
	"fmt"
	"strings"

	"github.com/racklift/racklift/provision/plan"
)

// osDistro is what kolla-ansible makes of a node OS.
type osDistro struct {
	// kolla is the kolla_base_distro value.
	kolla string
	// name is the OS for people.
	name string
	// supported is whether kolla-ansible 2025.2's support matrix lists the
	// OS as a host OS (CentOS Stream 10, Debian Bookworm 12, Rocky Linux 10,
	// Ubuntu Noble 24.04).
	supported bool
}

// profileDistros maps racklift's OS profiles to kolla's base distro.
var profileDistros = map[string]osDistro{
	"rocky9":     {kolla: "rocky", name: "Rocky Linux 9"},
	"ubuntu2404": {kolla: "ubuntu", name: "Ubuntu 24.04", supported: true},
	"debian12":   {kolla: "debian", name: "Debian 12", supported: true},
}

// factsDistro maps an os-release ID and VERSION_ID to kolla's base distro.
func factsDistro(id, version string) (osDistro, bool) {
	major, _, _ := strings.Cut(version, ".")
	switch id {
	case "rocky":
		return osDistro{kolla: "rocky", name: "Rocky Linux " + version, supported: major == "10"}, true
	case "centos":
		return osDistro{kolla: "centos", name: "CentOS Stream " + version, supported: major == "10"}, true
	case "ubuntu":
		return osDistro{kolla: "ubuntu", name: "Ubuntu " + version, supported: version == "24.04"}, true
	case "debian":
		return osDistro{kolla: "debian", name: "Debian " + version, supported: major == "12"}, true
	}
	return osDistro{}, false
}

// distro sets every host's kolla base distro and returns the one for
// globals.yml: the controllers' (which must agree, since the control plane
// clusters MariaDB and RabbitMQ across them).
func (b *builder) distro() string {
	unsupported := map[string][]string{}
	for _, h := range b.hosts {
		d, ok := profileDistros[h.n.Profile]
		if f := h.in.Facts; f != nil && f.OS.ID != "" {
			fd, fok := factsDistro(f.OS.ID, f.OS.VersionID)
			switch {
			case !fok:
				b.errorf("node %s runs %q, which kolla-ansible has no base distro for", h.n.Name, f.OS.PrettyName)
				continue
			case ok && fd.kolla != d.kolla:
				b.warnf("node %s runs %s, not profile %s's OS: using kolla_base_distro %s", h.n.Name, fd.name, h.n.Profile, fd.kolla)
			}
			d, ok = fd, true
		}
		if !ok {
			b.errorf("node %s: profile %q has no kolla_base_distro known to racklift (known: rocky9, ubuntu2404, debian12) and the node has no verification facts saying its OS (%s)", h.n.Name, h.n.Profile, h.path("profile"))
			continue
		}
		h.distro = d.kolla
		if !d.supported {
			unsupported[d.name] = append(unsupported[d.name], h.n.Name)
		}
	}
	for _, os := range sortedKeys(unsupported) {
		b.warnf("kolla-ansible %s does not list %s as a host OS (its support matrix: CentOS Stream 10, Debian 12, Rocky Linux 10, Ubuntu 24.04): %s", KollaRelease, os, shortList(unsupported[os], 8))
	}
	global := ""
	for _, h := range b.hosts {
		if !h.n.Has(plan.RoleController) || h.distro == "" {
			continue
		}
		if global == "" {
			global = h.distro
		} else if h.distro != global {
			b.errorf("controllers run different OSes (%s and %s on %s): kolla-ansible's control plane needs one kolla_base_distro; give every controller the same profile", global, h.distro, h.n.Name)
		}
	}
	if global == "" {
		for _, h := range b.hosts {
			if h.distro != "" {
				global = h.distro
				break
			}
		}
	}
	return global
}

// shortList joins up to max items and says how many more there are.
func shortList(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}
