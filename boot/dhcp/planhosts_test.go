package dhcp

import (
	"io/fs"
	"net"
	"testing"

	"github.com/racklift/racklift/provision/plan"
)

func TestPlanHosts(t *testing.T) {
	data, err := fs.ReadFile(plan.Examples(), "lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load("lab.yaml", data, plan.Options{})
	if p == nil {
		t.Fatal(ds.Err())
	}
	h := PlanHosts{Plan: p}
	mac, _ := net.ParseMAC("52:54:00:99:00:02")
	host, ok := h.HostByMAC(mac)
	if !ok {
		t.Fatal("plan MAC not found")
	}
	if host.Node != "lab-02" || host.IP.String() != "10.99.0.102" || net.IP(host.Mask).String() != "255.255.255.0" ||
		host.Gateway.String() != "10.99.0.1" || len(host.DNS) != 1 || host.DNS[0].String() != "10.99.0.1" ||
		host.Domain != "lab.racklift.test" || host.Hostname != "lab-02" || host.MTU != 1500 || host.Installed {
		t.Fatalf("host %+v", host)
	}
	other, _ := net.ParseMAC("52:54:00:99:00:99")
	if _, ok := h.HostByMAC(other); ok {
		t.Fatal("a MAC not in the plan got a host")
	}
}
