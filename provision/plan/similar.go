package plan

import "net"

// MACHint relates a MAC that is not in the plan to a plan MAC it probably
// is: a typo, or another port of the same card. The field engineer then
// fixes mac: in the plan, or the cabling.
type MACHint struct {
	// Node is the plan node whose MAC (or NIC MAC) is close.
	Node string `json:"node"`
	// NodeMAC is that MAC, as the plan has it.
	NodeMAC string `json:"node_mac"`
	// Kind is "digit" (one hex digit differs), "swap" (two neighbouring hex
	// digits swapped) or "port" (same first five bytes, last byte Distance
	// apart: usually another port of the same network card).
	Kind string `json:"kind"`
	// Distance is the last-byte difference for "port", else 0.
	Distance int `json:"distance,omitempty"`
}

// maxPortDistance bounds "port" hints: cards number their ports' MACs
// consecutively, four ports at most.
const maxPortDistance = 3

// SimilarMAC returns the plan MAC most like mac, if one is like it at all:
// the nearest "port" first, then a one-digit difference, then swapped
// neighbouring digits (ties go to the node first in plan order). mac may be in
// any form net.ParseMAC accepts; a MAC that is in the plan has no hint.
func (p *Plan) SimilarMAC(mac string) (MACHint, bool) {
	m, err := net.ParseMAC(mac)
	if err != nil || len(m) != 6 {
		return MACHint{}, false
	}
	if _, ok := p.byMAC[m.String()]; ok {
		return MACHint{}, false
	}
	rank := map[string]int{"port": 0, "digit": 1, "swap": 2}
	var (
		best  MACHint
		found bool
	)
	for _, cand := range p.planMACs() {
		pm, err := net.ParseMAC(cand.mac)
		if err != nil || len(pm) != 6 {
			continue
		}
		kind, dist := relate(m, pm)
		if kind == "" {
			continue
		}
		h := MACHint{Node: cand.node, NodeMAC: cand.mac, Kind: kind, Distance: dist}
		if !found || rank[h.Kind] < rank[best.Kind] || (h.Kind == best.Kind && h.Distance < best.Distance) {
			best, found = h, true
		}
	}
	return best, found
}

type planMAC struct{ node, mac string }

// planMACs lists every PXE and NIC MAC of the plan, in plan order.
func (p *Plan) planMACs() []planMAC {
	var out []planMAC
	for _, n := range p.Nodes {
		out = append(out, planMAC{n.Name, n.MAC})
		for _, nic := range n.NICs {
			if nic.MAC != "" && nic.MAC != n.MAC {
				out = append(out, planMAC{n.Name, nic.MAC})
			}
		}
	}
	return out
}

// relate says how two different 6-byte MACs are alike: "port" with the
// last-byte distance (checked first: a cabled second port is a more common
// mistake than a typo that happens to give a neighbouring number),
// "digit", "swap", or "".
func relate(a, b net.HardwareAddr) (string, int) {
	if string(a[:5]) == string(b[:5]) {
		d := int(a[5]) - int(b[5])
		if d < 0 {
			d = -d
		}
		if d >= 1 && d <= maxPortDistance {
			return "port", d
		}
	}
	var diff []int // indexes of differing hex digits, 0..11
	for i := range 12 {
		if nibble(a, i) != nibble(b, i) {
			diff = append(diff, i)
		}
	}
	switch {
	case len(diff) == 1:
		return "digit", 0
	case len(diff) == 2 && diff[1] == diff[0]+1 &&
		nibble(a, diff[0]) == nibble(b, diff[1]) && nibble(a, diff[1]) == nibble(b, diff[0]):
		return "swap", 0
	}
	return "", 0
}

// nibble is hex digit i (0 = most significant) of m.
func nibble(m net.HardwareAddr, i int) byte {
	b := m[i/2]
	if i%2 == 0 {
		return b >> 4
	}
	return b & 0x0f
}
