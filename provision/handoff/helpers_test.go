package handoff

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"net/netip"
	"testing"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// detReader is a deterministic byte stream (SHA-256 in counter mode), so
// test keys and goldens are stable.
type detReader struct {
	seed string
	n    uint64
	buf  []byte
}

func (r *detReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], r.n)
		r.n++
		s := sha256.Sum256(append([]byte(r.seed), c[:]...))
		r.buf = append(r.buf, s[:]...)
	}
	copy(p, r.buf)
	r.buf = r.buf[len(p):]
	return len(p), nil
}

// testKey is a fixed deployment key for goldens.
func testKey(t testing.TB, comment string) DeployKey {
	t.Helper()
	priv, err := newDeployKey(&detReader{seed: "racklift-test-key"}, comment)
	if err != nil {
		t.Fatal(err)
	}
	pub, c, err := parseOpenSSHEd25519(priv)
	if err != nil {
		t.Fatal(err)
	}
	return DeployKey{Public: authorizedKey(pub, c), Private: priv}
}

// loadExample loads an example plan shipped with racklift.
func loadExample(t testing.TB, name string) *plan.Plan {
	t.Helper()
	data, err := fs.ReadFile(plan.Examples(), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return loadPlan(t, name+".yaml", data)
}

func loadPlan(t testing.TB, name string, data []byte) *plan.Plan {
	t.Helper()
	ps, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load(name, data, plan.Options{Profiles: ps})
	if p == nil {
		t.Fatalf("plan %s does not load:\n%v", name, ds.Err())
	}
	return p
}

// allVerified marks every node verified, with facts from factsFor when
// withFacts is set.
func allVerified(p *plan.Plan, withFacts bool) map[string]NodeInput {
	m := map[string]NodeInput{}
	for _, n := range p.Nodes {
		ni := NodeInput{Verified: true}
		if withFacts {
			ni.Facts = factsFor(n)
		}
		m[n.Name] = ni
	}
	return m
}

// factsFor makes the facts a correctly installed node would report: the
// plan's interfaces and addresses, its disks with by-id names, one host key.
func factsFor(n *plan.Node) *nodeapi.Facts {
	f := &nodeapi.Facts{Version: nodeapi.FactsVersion, Hostname: n.Name, FQDN: n.FQDN}
	switch n.Profile {
	case "ubuntu2404":
		f.OS = nodeapi.OS{ID: "ubuntu", VersionID: "24.04", PrettyName: "Ubuntu 24.04.2 LTS"}
	default:
		f.OS = nodeapi.OS{ID: "rocky", VersionID: "9.5", PrettyName: "Rocky Linux 9.5 (Blue Onyx)"}
	}
	seen := map[string]int{}
	add := func(name string) int {
		if i, ok := seen[name]; ok {
			return i
		}
		f.Interfaces = append(f.Interfaces, nodeapi.Interface{Name: name, State: "up", MTU: 1500})
		seen[name] = len(f.Interfaces) - 1
		return seen[name]
	}
	for _, x := range n.NICs {
		add(x.Name)
	}
	for _, b := range n.Bonds {
		add(b.Name)
	}
	for _, a := range n.Addresses {
		i := add(a.Device)
		f.Interfaces[i].Addresses = append(f.Interfaces[i].Addresses, netip.PrefixFrom(a.Addr, a.Network.Prefix.Bits()).String())
	}
	osd := func(i int, d plan.Disk) nodeapi.Disk {
		name := fmt.Sprintf("nvme%dn1", i)
		serial := fmt.Sprintf("S6%s%02d", n.Name[len(n.Name)-2:], i)
		fd := nodeapi.Disk{Name: name, Path: "/dev/" + name, Type: "disk", SizeBytes: 3840755982336, Serial: serial,
			ByID: []string{"nvme-SAMSUNG_MZQL23T8HCLS_" + serial, fmt.Sprintf("nvme-eui.0025388%09d", 1000*n.Index+i)}}
		if d.Path != "" {
			fd.Path, fd.Name = d.Path, d.Path[len("/dev/"):]
		}
		if d.Serial != "" {
			fd.Serial = d.Serial
		}
		if d.ByID != "" {
			fd.ByID = append(fd.ByID, d.ByID)
		}
		return fd
	}
	f.Disks = append(f.Disks, nodeapi.Disk{Name: "sda", Path: "/dev/sda", Type: "disk", SizeBytes: 480103981056, ByID: []string{"md-name-any:os", "ata-OS_DISK_" + n.Name}})
	for i, d := range n.OSDs {
		f.Disks = append(f.Disks, osd(i, d))
	}
	f.SSHHostKeys = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + fmt.Sprintf("%043x", sha256.Sum256([]byte(n.Name)))[:43] + " root@" + n.Name}
	return f
}
