package plan

import "testing"

func TestSimilarMAC(t *testing.T) {
	src := `cluster: {name: t, profile: p, ha: false, ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyTestKeyTestKeyTestKey0 t"]}
networks:
  - {name: mgmt, purpose: management, provisioning: true, cidr: 10.1.0.0/24, allocate: {default: 10.1.0.100}}
defaults: {disks: {os: {path: /dev/vda}}}
nodes:
  - {name: n-01, roles: [compute], mac: "52:54:00:12:34:10"}
  - name: n-02
    roles: [compute]
    mac: "52:54:00:ab:cd:20"
    nics: [{name: eno1, mac: "52:54:00:ab:cd:20"}, {name: eno2, mac: "52:54:00:99:99:99"}]
`
	p, ds := Load("t.yaml", []byte(src), Options{})
	if p == nil {
		t.Fatal(ds.Err())
	}
	cases := []struct {
		mac  string
		want MACHint
		ok   bool
	}{
		{"52:54:00:12:34:11", MACHint{Node: "n-01", NodeMAC: "52:54:00:12:34:10", Kind: "port", Distance: 1}, true},
		{"52:54:00:12:34:13", MACHint{Node: "n-01", NodeMAC: "52:54:00:12:34:10", Kind: "port", Distance: 3}, true},
		{"52:54:00:12:34:14", MACHint{Node: "n-01", NodeMAC: "52:54:00:12:34:10", Kind: "digit"}, true}, // four apart: a typo, not a port
		{"52:54:00:12:34:21", MACHint{}, false},
		{"52:54:00:12:3f:10", MACHint{Node: "n-01", NodeMAC: "52:54:00:12:34:10", Kind: "digit"}, true},
		{"52:54:00:21:34:10", MACHint{Node: "n-01", NodeMAC: "52:54:00:12:34:10", Kind: "swap"}, true},
		{"52-54-00-AB-DC-20", MACHint{Node: "n-02", NodeMAC: "52:54:00:ab:cd:20", Kind: "swap"}, true},
		{"52:54:00:99:99:9a", MACHint{Node: "n-02", NodeMAC: "52:54:00:99:99:99", Kind: "port", Distance: 1}, true}, // a NIC MAC
		{"52:54:00:12:34:10", MACHint{}, false},                                                                     // in the plan
		{"52:54:00:99:99:99", MACHint{}, false},                                                                     // a NIC MAC in the plan
		{"aa:bb:cc:dd:ee:ff", MACHint{}, false},
		{"not a mac", MACHint{}, false},
	}
	for _, c := range cases {
		got, ok := p.SimilarMAC(c.mac)
		if ok != c.ok || got != c.want {
			t.Errorf("SimilarMAC(%s) = %+v, %v; want %+v, %v", c.mac, got, ok, c.want, c.ok)
		}
	}
}
