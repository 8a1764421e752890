package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Topology: two network namespaces joined by one veth pair. Servers run in
// the server namespace on serverIf (serverIP), load generators in the
// client namespace on clientIf (clientIP). Nothing touches the host's own
// interfaces.
const (
	serverIf = "rl-bn-s0"
	clientIf = "rl-bn-c0"
	serverIP = "10.253.0.1"
	clientIP = "10.253.0.2"
	prefix   = 16
)

// topo is one pair of namespaces, named after this process's PID so
// concurrent runs and other engineers' namespaces never clash.
type topo struct {
	srv, cli string
	// lastClientCPU is the CPU time of the last clientRun (the load
	// generator competes with the server for the same 2 cores).
	lastClientCPU time.Duration
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func newTopo() (*topo, error) {
	id := strconv.Itoa(os.Getpid())
	t := &topo{srv: "rl-bn-s-" + id, cli: "rl-bn-c-" + id}
	steps := [][]string{
		{"netns", "add", t.srv},
		{"netns", "add", t.cli},
		{"link", "add", serverIf, "netns", t.srv, "type", "veth", "peer", "name", clientIf, "netns", t.cli},
		{"-n", t.srv, "addr", "add", fmt.Sprintf("%s/%d", serverIP, prefix), "dev", serverIf},
		{"-n", t.cli, "addr", "add", fmt.Sprintf("%s/%d", clientIP, prefix), "dev", clientIf},
		{"-n", t.srv, "link", "set", "lo", "up"},
		{"-n", t.cli, "link", "set", "lo", "up"},
		{"-n", t.srv, "link", "set", serverIf, "up"},
		{"-n", t.cli, "link", "set", clientIf, "up"},
	}
	for _, s := range steps {
		if err := run("ip", s...); err != nil {
			t.close()
			return nil, err
		}
	}
	// Clients need many ephemeral ports and a receive buffer that holds a
	// burst; these sysctls are per namespace.
	_ = run("ip", "netns", "exec", t.cli, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65000")
	return t, nil
}

// close deletes both namespaces (the veth pair goes with them).
func (t *topo) close() {
	_ = run("ip", "netns", "del", t.srv)
	_ = run("ip", "netns", "del", t.cli)
}

// addClientAddrs puts addrs on the client veth (the simulated nodes' leases).
func (t *topo) addClientAddrs(addrs []string) error {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "addr add %s/%d dev %s\n", a, prefix, clientIf)
	}
	f, err := os.CreateTemp("", "rl-bn-addrs")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(b.String()); err != nil {
		return err
	}
	_ = f.Close()
	return run("ip", "-n", t.cli, "-batch", f.Name())
}

// proc is one server process this program started, in its own process
// group, so it and only its children can be stopped.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs argv in namespace ns with output to logPath.
func start(name, ns, logPath string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"netns", "exec", ns}, argv...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = lf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the server's PID: `ip netns exec` execs the command in place.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// waitLog waits until the log matches re, the process exits or timeout.
func (p *proc) waitLog(re string, timeout time.Duration) error {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v; log %s: %s", p.name, p.err, p.log, tail(p.log))
		default:
		}
		if b, err := os.ReadFile(p.log); err == nil && rx.Match(b) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s; log %s: %s", p.name, timeout, p.log, tail(p.log))
}

// stop sends SIGTERM to the process group this program created, then
// SIGKILL after 5 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return string(b)
}

// procStats is what /proc says about a server process.
type procStats struct {
	cpu   time.Duration // utime+stime
	hwmKB int64         // VmHWM
}

func readProc(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return st, errors.New("bad stat")
	}
	f := strings.Fields(s[i+2:])
	// fields after ")" start at field 3 (state); utime is 14, stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stm, _ := strconv.ParseInt(f[12], 10, 64)
	st.cpu = time.Duration(ut+stm) * time.Second / 100 // USER_HZ is 100 on Linux
	sf, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer sf.Close()
	sc := bufio.NewScanner(sf)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			st.hwmKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return st, nil
}

// groupCPU is the CPU time used so far by every live process in process
// group pgid (the server and any workers or forked children), including
// children they have already reaped.
func groupCPU(pgid int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) < 15 {
			continue
		}
		// f[0] is field 3 (state): pgrp is field 5, utime..cstime 14..17.
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / 100
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// clientRun runs this program's subcommand in the client namespace and
// returns its stdout (JSON), bounded by timeout.
func (t *topo) clientRun(timeout time.Duration, args ...string) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", t.cli, self}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if cmd.ProcessState != nil {
		t.lastClientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return out, fmt.Errorf("client %s: %v: %s", args[0], err, stderr.String())
	}
	return out, nil
}

// writeFile writes size bytes of non-zero, incompressible-ish data.
func writeFile(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range buf {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		buf[i] = byte(x)
	}
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			_ = f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}

func versionOf(argv ...string) string {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "?"
	}
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func dpkgVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "?"
	}
	return string(out)
}
