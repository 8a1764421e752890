package plan

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

func loadExampleT(t *testing.T, name string) *Plan {
	t.Helper()
	data, err := fs.ReadFile(Examples(), name)
	if err != nil {
		t.Fatal(err)
	}
	p, ds := Load(name, data, Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if p == nil {
		t.Fatal(dump(ds))
	}
	return p
}

func TestLinks(t *testing.T) {
	p := loadExampleT(t, "hyperconverged.yaml")
	n, _ := p.NodeByName("hci-controller-01")
	var got []string
	for _, l := range n.Links() {
		got = append(got, fmt.Sprintf("%s %s mac=%s mtu=%d bond=%s mode=%s members=%v parent=%s vlan=%d",
			l.Name, l.Kind, l.MAC, l.MTU, l.Bond, l.Mode, l.Members, l.Parent, l.VLAN))
	}
	want := []string{
		"eno1 nic mac=b8:ca:3a:10:00:01 mtu=1500 bond= mode= members=[] parent= vlan=0",
		"ens1f0 nic mac= mtu=9000 bond=bond0 mode= members=[] parent= vlan=0",
		"ens1f1 nic mac= mtu=9000 bond=bond0 mode= members=[] parent= vlan=0",
		"bond0 bond mac= mtu=9000 bond= mode=802.3ad members=[ens1f0 ens1f1] parent= vlan=0",
		"bond0.30 vlan mac= mtu=9000 bond= mode= members=[] parent=bond0 vlan=30",
		"bond0.40 vlan mac= mtu=9000 bond= mode= members=[] parent=bond0 vlan=40",
		"bond0.50 vlan mac= mtu=1500 bond= mode= members=[] parent=bond0 vlan=50",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("links:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if l, ok := n.Link("bond0.30"); !ok || l.Parent != "bond0" {
		t.Errorf("Link(bond0.30) = %+v, %v", l, ok)
	}
	if _, ok := n.Link("eth9"); ok {
		t.Error("Link(eth9) found")
	}

	// A bond without mtu: gets the largest MTU of its VLANs, and its
	// members follow; a NIC with no network gets the default.
	text := strings.Replace(basePlan, "  nics: [{name: eno1}, {name: eno2}, {name: eno3}]", "  nics: [{name: eno1}, {name: eno2}, {name: eno3}, {name: eno4}]", 1)
	bp, ds := Load("b.yaml", []byte(text), Options{Profiles: testProfiles(t), Secrets: testSecrets(t)})
	if bp == nil {
		t.Fatal(dump(ds))
	}
	c, _ := bp.NodeByName("ctl-01")
	for name, mtu := range map[string]int{"eno1": 1500, "eno2": 9000, "eno3": 9000, "eno4": 1500, "bond0": 9000, "bond0.20": 9000} {
		if l, ok := c.Link(name); !ok || l.MTU != mtu {
			t.Errorf("%s: %+v, want MTU %d", name, l, mtu)
		}
	}
}
