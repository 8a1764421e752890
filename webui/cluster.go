package webui

import (
	"net/http"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// ClusterJSON is GET /api/v1/cluster.
type ClusterJSON struct {
	Name        string         `json:"name"`
	Domain      string         `json:"domain"`
	HA          bool           `json:"ha"`
	Version     string         `json:"version"`
	Started     time.Time      `json:"started"`
	ServerTime  time.Time      `json:"server_time"`
	Roles       map[string]int `json:"roles"`
	Networks    []NetworkJSON  `json:"networks"`
	VIPs        []VIPJSON      `json:"vips"`
	HAChecks    []HACheckJSON  `json:"ha_checks"`
	Diagnostics []string       `json:"diagnostics"`
}

// NetworkJSON describes one network.
type NetworkJSON struct {
	Name         string `json:"name"`
	Purpose      string `json:"purpose"`
	CIDR         string `json:"cidr"`
	VLAN         int    `json:"vlan"`
	MTU          int    `json:"mtu"`
	Gateway      string `json:"gateway,omitempty"`
	Provisioning bool   `json:"provisioning"`
}

// VIPJSON describes one VIP.
type VIPJSON struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	FQDN    string `json:"fqdn,omitempty"`
}

// HACheckJSON is one HA check line.
type HACheckJSON struct {
	Name   string `json:"name"`
	Count  int    `json:"count"`
	Status string `json:"status"`
	Rule   string `json:"rule"`
}

// phases is GET /api/v1/phases: the phase table (order, which mean
// installed or final, progress span, label).
func (a *API) phases(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, events.PhaseTable())
}

func (a *API) cluster(w http.ResponseWriter, _ *http.Request) {
	p := a.Plan
	out := ClusterJSON{Name: p.Cluster.Name, Domain: p.Cluster.Domain, HA: p.Cluster.HA, Version: a.Version,
		Started: a.Started, ServerTime: time.Now().UTC(), Roles: map[string]int{}, Networks: []NetworkJSON{}, VIPs: []VIPJSON{}, HAChecks: []HACheckJSON{}, Diagnostics: []string{}}
	for _, r := range plan.AllRoles() {
		if n := len(p.NodesWith(r)); n > 0 {
			out.Roles[string(r)] = n
		}
	}
	for _, n := range p.Networks {
		nj := NetworkJSON{Name: n.Name, Purpose: string(n.Purpose), CIDR: n.Prefix.String(), VLAN: n.VLAN, MTU: n.MTU, Provisioning: n.Provisioning}
		if n.Gateway.IsValid() {
			nj.Gateway = n.Gateway.String()
		}
		out.Networks = append(out.Networks, nj)
	}
	for _, v := range p.VIPs {
		out.VIPs = append(out.VIPs, VIPJSON{Name: v.Name, Network: v.Network.Name, Address: v.Address.String(), FQDN: v.FQDN})
	}
	for _, h := range p.HAChecks() {
		out.HAChecks = append(out.HAChecks, HACheckJSON{Name: h.Name, Count: h.Count, Status: h.Status, Rule: h.Note})
	}
	for _, d := range a.Diags {
		out.Diagnostics = append(out.Diagnostics, d.Severity.String()+": "+d.Path+": "+d.Msg)
	}
	writeJSON(w, http.StatusOK, out)
}
