package handoff

import (
	"bytes"
	"fmt"
)

// readme writes README.txt: what is in the folder and the next commands.
func (b *builder) readme(out *Bundle) []byte {
	var w bytes.Buffer
	p := b.p
	fmt.Fprintf(&w, "racklift hand-off of cluster %q (plan %s)\n", p.Cluster.Name, b.in.PlanFile)
	fmt.Fprintf(&w, "for kolla-ansible %s (%s) and cephadm\n\n", KollaRelease, KollaReleaseName)
	fmt.Fprintf(&w, "Nodes written: %d of %d.\n", len(out.Included), len(p.Nodes))
	if len(out.Skipped) > 0 {
		fmt.Fprintf(&w, "Left out (not verified yet): %s\n", shortList(out.Skipped, 20))
	}
	var unv []string
	for _, h := range b.hosts {
		if h.unverified {
			unv = append(unv, fmt.Sprintf("%s (%s)", h.n.Name, orDefault(h.in.Reason, "not verified")))
		}
	}
	if len(unv) > 0 {
		fmt.Fprintf(&w, "NOT VERIFIED, written because of --allow-unverified (each marked in the files): %s\n", shortList(unv, 20))
	}
	if len(b.warn) > 0 {
		w.WriteString("\nCheck before deploying:\n")
		for _, s := range b.warn {
			fmt.Fprintf(&w, "  - %s\n", s)
		}
	}
	w.WriteString(`
Files
  kolla/multinode      kolla-ansible inventory: every host with its address and
                       interface names, and the release's service groups
  kolla/globals.yml    VIPs, base distro, release, Ceph backends, options
  kolla/config/nova/NODE/nova.conf
                       per-host nova.conf (reserved memory of hyper-converged nodes)
  ceph/cluster.yaml    cephadm specs: hosts with labels, mon, mgr, OSDs per host
  ceph/bootstrap.sh    the cephadm bootstrap command (run on the first monitor)
  ssh/id_ed25519       the site's deployment key (private: keep this folder 0700)
  ssh/id_ed25519.pub   its public key, installed for root on every node at first boot
  ssh/known_hosts      the nodes' SSH host keys as they reported them
  hosts                lines for /etc/hosts of the deployment host

Next, on the deployment host (kolla-ansible ` + KollaRelease + ` installed, this folder copied):
`)
	step := 0
	next := func(format string, args ...any) {
		step++
		fmt.Fprintf(&w, "  %d. %s\n", step, fmt.Sprintf(format, args...))
	}
	next("cat hosts >> /etc/hosts")
	if b.ceph() {
		if mon := b.firstMon(); mon != nil {
			next("Ceph first: copy this folder to %s and run there, as root:\n       bash ceph/bootstrap.sh\n     then create the OpenStack pools and users (ceph osd pool create images|volumes|backups|vms;\n     rbd pool init; ceph auth get-or-create client.glance / client.cinder / client.cinder-backup)\n     and put ceph.conf and those keyrings under kolla/config/ as kolla-ansible's external Ceph\n     guide says for glance, cinder and nova", mon.n.Name)
		}
	}
	next("mkdir -p /etc/kolla && cp kolla/globals.yml /etc/kolla/ && cp -r kolla/config /etc/kolla/")
	next("cp the empty passwords.yml of your kolla-ansible installation (etc/kolla/passwords.yml in\n     its source) to /etc/kolla/, then: kolla-genpwd   (no password is in this folder)")
	next("kolla-ansible install-deps")
	next("kolla-ansible bootstrap-servers -i kolla/multinode")
	next("kolla-ansible prechecks -i kolla/multinode")
	next("kolla-ansible deploy -i kolla/multinode")
	next("kolla-ansible post-deploy -i kolla/multinode")
	w.WriteString("\nAnsible connects as root with ssh/id_ed25519 and checks host keys against\nssh/known_hosts (set in kolla/multinode [all:vars]).\n")
	return w.Bytes()
}
