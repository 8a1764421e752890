//go:build linux

package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Bridge is the name of the bridge every Netns holds.
const Bridge = "br0"

// DefaultAddr is br0's address when NewNetns is given none.
const DefaultAddr = "10.99.0.1/24"

// Netns is a network namespace created for one test: a bridge br0 with the
// given addresses, loopback up, and IPv6 duplicate address detection off
// (addresses are usable at once). Everything started through it is killed,
// by PID, and the namespace deleted when the test ends, pass or fail.
type Netns struct {
	// Name is the namespace name ("rl-<prefix>-<random>"), as `ip netns`
	// knows it.
	Name string
	// Addrs are br0's addresses (CIDR).
	Addrs []string

	t    testing.TB
	mu   sync.Mutex
	cmds []*exec.Cmd
}

// NewNetns creates a namespace named "rl-" + prefix + "-" + 6 random hex
// digits holding bridge br0 with addrs (CIDR, IPv4 or IPv6; none means
// DefaultAddr). Use addresses in 10.99.0.0/16 and fd00:99::/64. It skips
// the test when not root.
func NewNetns(t testing.TB, prefix string, addrs ...string) *Netns {
	t.Helper()
	if len(addrs) == 0 {
		addrs = []string{DefaultAddr}
	}
	n := newNamespace(t, prefix)
	n.Addrs = addrs
	steps := [][]string{
		{"-n", n.Name, "link", "add", Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
	}
	for _, a := range addrs {
		steps = append(steps, []string{"-n", n.Name, "addr", "add", a, "dev", Bridge})
	}
	steps = append(steps, []string{"-n", n.Name, "link", "set", Bridge, "up"})
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	return n
}

// HostNIC is the name of the one interface of a NewHost namespace.
const HostNIC = "eth0"

// NewHost creates a namespace named like NewNetns's that holds no bridge
// but one interface, HostNIC, up and without addresses, plugged into lan's
// br0 through a veth pair: a machine on lan's segment whose NIC a DHCP
// client configures (and whose MAC a test may change). Frames reach it
// through a Linux bridge, which, like a switch and a real NIC's filter,
// keeps unicast for other MACs away from lan's own br0.
func NewHost(t testing.TB, prefix string, lan *Netns) *Netns {
	t.Helper()
	n := newNamespace(t, prefix)
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	port := "vh" + hex.EncodeToString(r[:])
	for _, s := range [][]string{
		{"-n", lan.Name, "link", "add", port, "type", "veth", "peer", "name", HostNIC, "netns", n.Name},
		{"-n", lan.Name, "link", "set", port, "master", Bridge},
		{"-n", lan.Name, "link", "set", port, "up"},
		{"-n", n.Name, "link", "set", HostNIC, "up"},
	} {
		if err := ipCmd(s...); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	return n
}

// newNamespace creates namespace "rl-" + prefix + "-" + 6 random hex
// digits with loopback up and IPv6 duplicate address detection off, and
// registers its cleanup. It skips the test when not root.
func newNamespace(t testing.TB, prefix string) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testbed: needs root (network namespaces)")
	}
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	n := &Netns{Name: "rl-" + prefix + "-" + hex.EncodeToString(r[:]), t: t}
	sweepStale(t)
	if err := ipCmd("netns", "add", n.Name); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	register(n.Name)
	t.Cleanup(n.cleanup)
	for _, s := range [][]string{
		{"netns", "exec", n.Name, "sysctl", "-q", "-w",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
		{"-n", n.Name, "link", "set", "lo", "up"},
	} {
		if err := ipCmd(s...); err != nil {
			t.Fatalf("testbed: %v", err)
		}
	}
	return n
}

// Path is the namespace's bind mount, /run/netns/NAME.
func (n *Netns) Path() string { return filepath.Join("/run/netns", n.Name) }

// IP returns the address part of br0's first address of the given family
// (4 or 6), or nil.
func (n *Netns) IP(family int) net.IP {
	for _, a := range n.Addrs {
		ip, _, err := net.ParseCIDR(a)
		if err != nil {
			continue
		}
		if (ip.To4() != nil) == (family == 4) {
			return ip
		}
	}
	return nil
}

// AddTap creates tap device name (at most 15 bytes) enslaved to br0 and up,
// for a QEMU "-netdev tap,ifname=NAME,script=no,downscript=no" running in
// this namespace. It is removed with the namespace.
func (n *Netns) AddTap(name string) error {
	for _, s := range [][]string{
		{"-n", n.Name, "tuntap", "add", "dev", name, "mode", "tap"},
		{"-n", n.Name, "link", "set", name, "master", Bridge},
		{"-n", n.Name, "link", "set", name, "up"},
	} {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	return nil
}

// Connect joins other's br0 to this namespace's br0 with a veth pair, so
// the two namespaces are two hosts on one Ethernet segment (a site's own
// DHCP server beside racklift, each with its own address). The pair is
// removed with either namespace.
func (n *Netns) Connect(other *Netns) error {
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		return err
	}
	a, b := "va"+hex.EncodeToString(r[:]), "vb"+hex.EncodeToString(r[:])
	for _, s := range [][]string{
		{"-n", n.Name, "link", "add", a, "type", "veth", "peer", "name", b, "netns", other.Name},
		{"-n", n.Name, "link", "set", a, "master", Bridge},
		{"-n", other.Name, "link", "set", b, "master", Bridge},
		{"-n", n.Name, "link", "set", a, "up"},
		{"-n", other.Name, "link", "set", b, "up"},
	} {
		if err := ipCmd(s...); err != nil {
			return fmt.Errorf("testbed: connect %s and %s: %w", n.Name, other.Name, err)
		}
	}
	return nil
}

// HasLink reports whether the namespace has a link called name.
func (n *Netns) HasLink(name string) bool {
	return ipCmd("-n", n.Name, "link", "show", "dev", name) == nil
}

// Run returns a command that runs name in the namespace through
// `ip netns exec` (which execs it: the PID is the command's). It is not
// started. It gets its own process group, SIGKILL when the test process
// dies (Pdeathsig) and when ctx ends, and is killed by PID at cleanup if
// still running. Pdeathsig fires when the OS thread that forked the child
// exits, so no thread of the test process may exit while children run:
// Go/Do give their thread back instead of ending it (see Go). Never start
// a command from inside f of Go/Do.
func (n *Netns) Run(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = 5 * time.Second
	n.mu.Lock()
	n.cmds = append(n.cmds, cmd)
	n.mu.Unlock()
	return cmd
}

// Go runs f on an OS thread switched into the namespace and returns a
// channel that receives f's result.
//
// How: a new goroutine calls runtime.LockOSThread, remembers the thread's
// network namespace, switches into this one (unix.Setns on its
// /run/netns file), runs f, switches back, checks that the thread is in
// its old namespace again, and only then calls UnlockOSThread. Only f's
// own goroutine is ever in the namespace; goroutines f starts are not.
// Sockets keep the namespace they were created in, so the pattern is:
// create listeners/sockets inside f (see Listen and ListenPacket) and
// serve them from anywhere.
//
// The thread is handed back rather than left locked until its goroutine
// ends (which makes the runtime terminate it): a child process started
// earlier from that thread gets SIGKILL when the thread ends (Pdeathsig is
// per thread), and a Do from the goroutine that started a child runs on
// that very thread. That killed the demo's racklift serve (issue 14). If
// the switch back fails, the thread is left locked and ends with f's
// goroutine, as before: never reused in the wrong namespace.
func (n *Netns) Go(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- fmt.Errorf("testbed: open this thread's netns: %w", err)
			return // still locked: the runtime ends the thread
		}
		defer unix.Close(home)
		homeIno, err := fdInode(home)
		if err != nil {
			ch <- fmt.Errorf("testbed: stat this thread's netns: %w", err)
			return
		}
		fd, err := unix.Open(n.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- fmt.Errorf("testbed: open %s: %w", n.Path(), err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- fmt.Errorf("testbed: setns %s: %w", n.Name, err)
			return
		}
		res := f()
		if unix.Setns(home, unix.CLONE_NEWNET) == nil {
			if ino, err := threadNetnsInode(); err == nil && ino == homeIno {
				runtime.UnlockOSThread()
			}
		}
		ch <- res
	}()
	return ch
}

// fdInode is the inode of an open namespace file.
func fdInode(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// threadNetnsInode is the inode of the calling thread's network namespace.
func threadNetnsInode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Do is Go and waits for f.
func (n *Netns) Do(f func() error) error { return <-n.Go(f) }

// Listen opens a listener inside the namespace (e.g. "tcp", "10.99.0.1:8080").
// It is closed at cleanup.
func (n *Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	if err == nil {
		n.t.Cleanup(func() { l.Close() })
	}
	return l, err
}

// ListenPacket opens a packet socket inside the namespace. It is closed at
// cleanup.
func (n *Netns) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := n.Do(func() (err error) {
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err == nil {
		n.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// cleanup kills what Run started (by PID and its process group), then any
// other process still inside the namespace (`ip netns pids`, never this
// test process), then deletes the namespace.
func (n *Netns) cleanup() {
	n.mu.Lock()
	cmds := n.cmds
	n.mu.Unlock()
	for _, c := range cmds {
		if c.Process != nil && c.ProcessState == nil {
			_ = killGroup(c.Process)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	killNetnsPids(ctx, n.Name)
	if err := exec.CommandContext(ctx, "ip", "netns", "del", n.Name).Run(); err != nil {
		n.t.Logf("testbed: ip netns del %s: %v", n.Name, err)
		return
	}
	_ = os.Remove(filepath.Join(registryDir, n.Name))
}

func killNetnsPids(ctx context.Context, name string) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", name).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// registryDir records the namespaces this package created, one file per
// namespace holding the creating process's PID, so that a later run can
// delete those a killed test binary (e.g. go test -timeout) left behind,
// and never touch anyone else's.
const registryDir = "/run/racklift-testbed"

func register(name string) {
	if err := os.MkdirAll(registryDir, 0o755); err != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(registryDir, name), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// sweepStale deletes registered namespaces whose creating process is gone.
func sweepStale(t testing.TB) {
	ents, err := os.ReadDir(registryDir)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range ents {
		p := filepath.Join(registryDir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // creator alive (or unknown): not ours to judge
		}
		if _, err := os.Stat(filepath.Join("/run/netns", e.Name())); err == nil {
			killNetnsPids(ctx, e.Name())
			if err := exec.CommandContext(ctx, "ip", "netns", "del", e.Name()).Run(); err != nil {
				continue
			}
			t.Logf("testbed: deleted stale namespace %s (creator %d gone)", e.Name(), pid)
		}
		_ = os.Remove(p)
	}
}

// killGroup SIGKILLs p's process group (p is its leader: Setpgid) and p.
func killGroup(p *os.Process) error {
	if p == nil {
		return nil
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	return p.Kill()
}

func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
