package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/racklift/racklift/provision/plan"
)

// writePlan writes a plan with n compute nodes whose MACs are benchMAC(0..n-1)
// on the provisioning network 10.253.0.0/16, addresses from 10.253.16.0 on.
func writePlan(path string, n int) error {
	var b strings.Builder
	fmt.Fprintf(&b, `cluster:
  name: bench
  domain: bench.racklift.test
  timezone: UTC
  dns: [%[1]s]
  ntp: [%[1]s]
  ssh_keys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9ja2tleWZvcnRoZWxhYm9ubHlub3RyZWFs bench@racklift
  profile: rocky9
  ha: false
networks:
  - name: prov
    purpose: management
    provisioning: true
    cidr: 10.253.0.0/16
    gateway: %[1]s
    allocate:
      default: 10.253.16.0
defaults:
  disks:
    os: {path: /dev/vda}
nodes:
`, serverIP)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: n%04d, roles: [compute], mac: %q}\n", i, benchMAC(i).String())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// planAddrs loads the plan as racklift does and returns each node's
// provisioning address, in node order.
func planAddrs(path string) ([]string, error) {
	p, ds, err := plan.LoadFile(path, plan.Options{})
	if err != nil {
		return nil, err
	}
	if p == nil {
		var sb strings.Builder
		_ = ds.WriteText(&sb)
		return nil, fmt.Errorf("plan %s: %s", path, sb.String())
	}
	var out []string
	for _, nd := range p.Nodes {
		a, ok := nd.Provisioning()
		if !ok {
			return nil, fmt.Errorf("node %s has no provisioning address", nd.Name)
		}
		out = append(out, a.Addr.String())
	}
	return out, nil
}
