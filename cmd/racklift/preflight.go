package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Linux capability bits racklift needs when it does not run as root.
const (
	capNetBindService = 10 // ports below 1024: DHCP 67, TFTP 69
	capNetRaw         = 13 // SO_BINDTODEVICE for the DHCP socket
)

// checkPrivileges returns an error naming what is missing when racklift
// cannot bind the ports or bind a socket to the interface.
func checkPrivileges(needLowPorts, needBindDevice bool) error {
	if os.Geteuid() == 0 || (!needLowPorts && !needBindDevice) {
		return nil
	}
	eff, err := effectiveCaps()
	if err != nil {
		return fmt.Errorf("cannot read capabilities (%w); run as root", err)
	}
	var missing []string
	if needLowPorts && eff&(1<<capNetBindService) == 0 {
		missing = append(missing, "CAP_NET_BIND_SERVICE")
	}
	if needBindDevice && eff&(1<<capNetRaw) == 0 {
		missing = append(missing, "CAP_NET_RAW")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing privileges %s: run as root, or grant them (setcap cap_net_bind_service,cap_net_raw+ep racklift; in systemd AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_RAW)", strings.Join(missing, " and "))
	}
	return nil
}

// effectiveCaps reads CapEff from /proc/self/status.
func effectiveCaps() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line")
}

// interfaceIPv4 returns the interface and its first IPv4 address, or an
// error a field engineer can act on.
func interfaceIPv4(name string) (*net.Interface, *net.IPNet, error) {
	if name == "" {
		return nil, nil, errors.New("--interface is required: the NIC on the provisioning network (see ip -br addr)")
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %q: %w (see ip -br link)", name, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, nil, fmt.Errorf("interface %q is down: ip link set %s up", name, name)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("interface %q addresses: %w", name, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ifi, &net.IPNet{IP: ipn.IP.To4(), Mask: ipn.Mask}, nil
		}
	}
	return nil, nil, fmt.Errorf("interface %q has no IPv4 address: give it one on the provisioning network, e.g. ip addr add 10.99.0.1/24 dev %s", name, name)
}

// multiFlag collects a repeatable flag such as --media NAME=PATH.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

// Set appends one value; an environment override may hold several,
// separated by commas.
func (m *multiFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*m = append(*m, p)
		}
	}
	return nil
}
