// Command bench runs racklift side by side with the tools users would
// otherwise pick (Kea, dnsmasq, tftpd-hpa, nginx) on this machine, in two
// network namespaces it creates and deletes, with the same load generators
// for every server, alternating the servers between runs. It needs root.
// Run it through hack/bench/run.sh (make bench), which installs the peers.
//
// Subcommands dhcp-client, tftp-client, fleet-client and get (load
// generators) and tftp-server, dhcp-server (racklift's TFTP and DHCP code
// in-process, for the storm and for profiling) are what it runs inside the
// namespaces. See RESULTS.md.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		sub := map[string]func([]string) error{
			"dhcp-client": cmdDHCPClient, "tftp-client": cmdTFTPClient, "fleet-client": cmdFleet,
			"get": cmdGet, "tftp-server": cmdTFTPServer, "dhcp-server": cmdDHCPServer,
		}
		if f, ok := sub[os.Args[1]]; ok {
			if err := f(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	if err := benchMain(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// b is the state of one benchmark run.
type b struct {
	runs      int
	fleetRuns int
	work      string
	rl        string // racklift binary
	self      string
	t         *topo
	mu        sync.Mutex
	procs     []*proc
	results   map[string][]map[string]float64 // "test|server" -> one map per run
	profile   string
	errs      []string
}

func benchMain(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	runs := fs.Int("runs", 5, "runs per server and test (>= 5 for the published table)")
	fleetRuns := fs.Int("fleet-runs", 3, "fleet runs")
	only := fs.String("only", "dhcp,tftp,http,fleet", "comma-separated tests")
	out := fs.String("out", "", "also write the results table here (markdown)")
	keep := fs.Bool("keep", false, "keep the work directory (logs) after the run")
	profile := fs.String("profile", "", "write CPU profiles of the in-process racklift TFTP server into this directory")
	_ = fs.Parse(args)
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, ports 67/69)")
	}
	for _, tool := range []string{"ip", "kea-dhcp4", "dnsmasq", "in.tftpd", "nginx", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found: run hack/bench/run.sh (installs the peers)", tool)
		}
	}
	work, err := os.MkdirTemp("", "rl-bn-")
	if err != nil {
		return err
	}
	_ = os.Chmod(work, 0o755) // tftpd-hpa and nginx workers drop to other users
	if !*keep {
		defer os.RemoveAll(work)
	}
	// Kea writes its PID and lock files here instead of /run.
	_ = os.Setenv("KEA_PIDFILE_DIR", work)
	_ = os.Setenv("KEA_LOCKFILE_DIR", work)
	_ = os.Setenv("KEA_LOGGER_DESTINATION", filepath.Join(work, "kea-default.log"))

	bb := &b{runs: *runs, fleetRuns: *fleetRuns, work: work, profile: *profile, results: map[string][]map[string]float64{}}
	bb.self, _ = os.Executable()
	bb.rl = filepath.Join(work, "racklift")
	fmt.Println("bench: building racklift")
	if out, err := exec.Command("go", "build", "-o", bb.rl, "./cmd/racklift").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/racklift (run from the repository root): %v: %s", err, out)
	}
	bb.t, err = newTopo()
	if err != nil {
		return err
	}
	cleanup := sync.OnceFunc(func() {
		bb.mu.Lock()
		ps := slices.Clone(bb.procs)
		bb.mu.Unlock()
		for _, p := range ps {
			p.stop()
		}
		bb.t.close()
	})
	defer cleanup()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted, cleaning up")
		cleanup()
		os.Exit(130)
	}()

	started := time.Now().UTC()
	tests := strings.Split(*only, ",")
	for _, tname := range tests {
		var err error
		switch tname {
		case "dhcp":
			err = bb.benchDHCP()
		case "tftp":
			err = bb.benchTFTP()
		case "http":
			err = bb.benchHTTP()
		case "fleet":
			err = bb.benchFleet()
		case "dhcp-profile":
			err = bb.profileDHCP()
		case "tftp-profile":
			err = bb.profileTFTP()
		default:
			err = fmt.Errorf("unknown test %q", tname)
		}
		if err != nil {
			bb.errs = append(bb.errs, fmt.Sprintf("%s: %v", tname, err))
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", tname, err)
		}
	}
	report := bb.report(started)
	fmt.Println(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	if len(bb.errs) > 0 {
		return fmt.Errorf("%d test(s) failed: %s", len(bb.errs), strings.Join(bb.errs, "; "))
	}
	return nil
}

// serve starts a server in the server namespace and waits for ready.
func (bb *b) serve(name, ready string, argv ...string) (*proc, error) {
	logPath := filepath.Join(bb.work, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	p, err := start(name, bb.t.srv, logPath, argv...)
	if err != nil {
		return nil, err
	}
	bb.mu.Lock()
	bb.procs = append(bb.procs, p)
	bb.mu.Unlock()
	if ready == "" {
		time.Sleep(500 * time.Millisecond)
		ready = "(?s).*"
	}
	if err := p.waitLog(ready, 20*time.Second); err != nil {
		bb.stop(p)
		return nil, err
	}
	return p, nil
}

func (bb *b) stop(p *proc) {
	p.stop()
	bb.mu.Lock()
	bb.procs = slices.DeleteFunc(bb.procs, func(x *proc) bool { return x == p })
	bb.mu.Unlock()
}

func (bb *b) record(key string, m map[string]float64) {
	m["load1"], _ = strconv.ParseFloat(strings.Fields(loadavg())[0], 64)
	bb.results[key] = append(bb.results[key], m)
}

func (bb *b) tmp(name string) string {
	d := filepath.Join(bb.work, fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	_ = os.MkdirAll(d, 0o755)
	return d
}

// rotate returns xs rotated by r, so each run starts with another server.
func rotate[T any](xs []T, r int) []T {
	r %= len(xs)
	return append(slices.Clone(xs[r:]), xs[:r]...)
}

func decode[T any](out []byte, err error) (T, error) {
	var v T
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return v, fmt.Errorf("client output %q: %w", out, err)
	}
	return v, nil
}

// ---------- DHCP ----------

func (bb *b) benchDHCP() error {
	sizes := []int{512, 2048}
	plans := map[int]string{}
	for _, n := range sizes {
		plans[n] = filepath.Join(bb.work, fmt.Sprintf("plan-%d.yaml", n))
		if err := writePlan(plans[n], n); err != nil {
			return err
		}
		if _, err := planAddrs(plans[n]); err != nil {
			return err
		}
	}
	servers := []string{"racklift", "kea", "dnsmasq"}
	for r := range bb.runs {
		for _, n := range sizes {
			for _, s := range rotate(servers, r) {
				p, err := bb.startDHCP(s, plans[n])
				if err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
				cpu0 := groupCPU(p.pid())
				res, err := decode[dhcpLoadResult](bb.t.clientRun(3*time.Minute, "dhcp-client", "-n", strconv.Itoa(n), "-inflight", "64", "-limit", "120s"))
				cpu := (groupCPU(p.pid()) - cpu0).Seconds()
				bb.stop(p)
				if err != nil {
					return fmt.Errorf("%s n=%d: %w", s, n, err)
				}
				fmt.Printf("dhcp run %d %-8s n=%-4d %7.0f DORA/s p50 %6.2f ms p99 %7.2f ms acked %d naks %d never %d retx %d server CPU %.2f s client CPU %.2f s load %s %v\n",
					r+1, s, n, res.PerSec, res.P50ms, res.P99ms, res.Acked, res.NAKs, res.NeverAck, res.Retx, cpu, bb.t.lastClientCPU.Seconds(), loadavg(), res.FirstErrs)
				bb.record(fmt.Sprintf("dhcp%d|%s", n, s), map[string]float64{
					"rate": res.PerSec, "p50": res.P50ms, "p99": res.P99ms, "naks": float64(res.NAKs),
					"never": float64(res.NeverAck), "retx": float64(res.Retx), "cpu": cpu, "ccpu": bb.t.lastClientCPU.Seconds()})
			}
		}
	}
	return nil
}

func (bb *b) startDHCP(s, planPath string) (*proc, error) {
	d := bb.tmp("dhcp-" + s)
	switch s {
	case "racklift":
		return bb.serve("racklift-dhcp", `serving plan`, bb.rl, "serve", "--plan", planPath, "--interface", serverIf,
			"--dhcp-mode", "authoritative", "--no-tftp", "--no-ra", "--probe-wait", "1s",
			"--state-dir", d, "--admin-listen", "127.0.0.1:18081", "--http-listen", serverIP+":8080")
	case "kea":
		conf := fmt.Sprintf(`{"Dhcp4": {
  "interfaces-config": {"interfaces": [%q]},
  "lease-database": {"type": "memfile", "persist": true, "name": %q, "lfc-interval": 0},
  "multi-threading": {"enable-multi-threading": false},
  "valid-lifetime": 3600,
  "subnet4": [{"id": 1, "subnet": "10.253.0.0/16",
    "pools": [{"pool": "10.253.16.1 - 10.253.31.254"}],
    "option-data": [{"name": "routers", "data": %q}, {"name": "domain-name-servers", "data": %q}]}],
  "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}]
}}`, serverIf, filepath.Join(d, "leases4.csv"), serverIP, serverIP)
		cp := filepath.Join(d, "kea-dhcp4.conf")
		if err := os.WriteFile(cp, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		return bb.serve("kea", `DHCP4_STARTED`, "kea-dhcp4", "-c", cp)
	case "dnsmasq":
		return bb.serve("dnsmasq-dhcp", `DHCP, IP range`, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
			"--user=root", "--interface="+serverIf, "--bind-interfaces", "--no-resolv", "--no-hosts", "--no-ping",
			"--dhcp-authoritative", "--dhcp-range=10.253.16.1,10.253.31.254,255.255.0.0,1h", "--dhcp-lease-max=5000",
			"--dhcp-leasefile="+filepath.Join(d, "leases"), "--pid-file=", "--log-facility=-")
	}
	return nil, fmt.Errorf("unknown server %s", s)
}

// profileDHCP runs racklift's DHCP wired in-process (dhcp-server) in
// variants, 2048 clients, to see what limits it: as serve runs it (with a
// CPU profile when -profile is set), without event recording, and with
// warn-level logs. Not part of the published table.
func (bb *b) profileDHCP() error {
	const n = 2048
	planPath := filepath.Join(bb.work, "plan-prof.yaml")
	if err := writePlan(planPath, n); err != nil {
		return err
	}
	variants := [][]string{{}, {"-no-events"}, {"-async-events"}, {"-log-level", "warn"}}
	for r := range bb.runs {
		for _, v := range rotate(variants, r) {
			argv := append([]string{bb.self, "dhcp-server", "-plan", planPath, "-state-dir", bb.tmp("prof-state")}, v...)
			if bb.profile != "" && len(v) == 0 {
				argv = append(argv, "-cpuprofile", filepath.Join(bb.profile, fmt.Sprintf("dhcp-%d.pprof", r+1)))
			}
			p, err := bb.serve("racklift-dhcp-inproc", `bench dhcp-server ready`, argv...)
			if err != nil {
				return err
			}
			cpu0 := groupCPU(p.pid())
			res, err := decode[dhcpLoadResult](bb.t.clientRun(3*time.Minute, "dhcp-client", "-n", strconv.Itoa(n), "-inflight", "64", "-limit", "120s"))
			cpu := (groupCPU(p.pid()) - cpu0).Seconds()
			bb.stop(p)
			if err != nil {
				return err
			}
			fmt.Printf("dhcp-profile run %d %-32q %7.0f DORA/s p50 %6.2f ms p99 %7.2f ms acked %d server CPU %.2f s load %s\n",
				r+1, strings.Join(v, " "), res.PerSec, res.P50ms, res.P99ms, res.Acked, cpu, loadavg())
		}
	}
	return nil
}

// ---------- TFTP ----------

func (bb *b) benchTFTP() error {
	dir := filepath.Join(bb.work, "tftproot")
	if err := writeFile(filepath.Join(dir, "bench-1m.bin"), 1<<20); err != nil {
		return err
	}
	servers := []string{"racklift", "dnsmasq", "tftpd-hpa"}
	for r := range bb.runs {
		for _, s := range rotate(servers, r) {
			var p *proc
			var err error
			switch s {
			case "racklift":
				argv := []string{bb.self, "tftp-server", "-addr", serverIP + ":69", "-dir", dir, "-state-dir", bb.tmp("tftp-state")}
				if bb.profile != "" {
					argv = append(argv, "-cpuprofile", filepath.Join(bb.profile, fmt.Sprintf("tftp-%d.pprof", r+1)))
				}
				p, err = bb.serve("racklift-tftp", `bench tftp-server ready`, argv...)
			case "dnsmasq":
				p, err = bb.serve("dnsmasq-tftp", `TFTP root is`, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
					"--user=root", "--interface="+serverIf, "--bind-interfaces", "--no-resolv", "--no-hosts",
					"--enable-tftp", "--tftp-root="+dir, "--tftp-max=1024", "--pid-file=", "--log-facility=-")
			case "tftpd-hpa":
				p, err = bb.serve("tftpd-hpa", "", "in.tftpd", "--foreground", "--listen", "--address", serverIP+":69",
					"--secure", dir)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
			cpu0 := groupCPU(p.pid())
			res, err := decode[tftpLoadResult](bb.t.clientRun(4*time.Minute, "tftp-client", "-n", "512", "-limit", "180s"))
			cpu := (groupCPU(p.pid()) - cpu0).Seconds()
			bb.stop(p)
			if err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
			fmt.Printf("tftp run %d %-9s completed %d/%d wall %6.2f s p50 %5.2f s server CPU %.2f s client CPU %.2f s load %s %v\n",
				r+1, s, res.Completed, res.Clients, res.WallSec, res.P50s, cpu, bb.t.lastClientCPU.Seconds(), loadavg(), res.FirstErrs)
			bb.record("tftp|"+s, map[string]float64{"wall": res.WallSec, "done": float64(res.Completed), "p50": res.P50s, "cpu": cpu, "ccpu": bb.t.lastClientCPU.Seconds()})
		}
	}
	return nil
}

// profileTFTP compares racklift's TFTP server (with a CPU profile per run
// when -profile is set) with dnsmasq, 512 clients, server and client CPU.
func (bb *b) profileTFTP() error {
	dir := filepath.Join(bb.work, "tftproot")
	if err := writeFile(filepath.Join(dir, "bench-1m.bin"), 1<<20); err != nil {
		return err
	}
	variants := []string{"racklift", "dnsmasq"}
	for r := range bb.runs {
		for _, v := range rotate(variants, r) {
			var p *proc
			var err error
			if v == "dnsmasq" {
				p, err = bb.serve("dnsmasq-tftp", `TFTP root is`, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
					"--user=root", "--interface="+serverIf, "--bind-interfaces", "--no-resolv", "--no-hosts",
					"--enable-tftp", "--tftp-root="+dir, "--tftp-max=1024", "--pid-file=", "--log-facility=-")
			} else {
				argv := []string{bb.self, "tftp-server", "-addr", serverIP + ":69", "-dir", dir, "-state-dir", bb.tmp("tftp-state")}
				if bb.profile != "" {
					argv = append(argv, "-cpuprofile", filepath.Join(bb.profile, fmt.Sprintf("tftp-profile-%d.pprof", r+1)))
				}
				p, err = bb.serve("racklift-tftp", `bench tftp-server ready`, argv...)
			}
			if err != nil {
				return err
			}
			cpu0 := groupCPU(p.pid())
			res, err := decode[tftpLoadResult](bb.t.clientRun(4*time.Minute, "tftp-client", "-n", "512", "-limit", "180s"))
			cpu := (groupCPU(p.pid()) - cpu0).Seconds()
			bb.stop(p)
			if err != nil {
				return err
			}
			fmt.Printf("tftp-profile run %d %-20s completed %d wall %6.2f s server CPU %.2f s client CPU %.2f s load %s\n",
				r+1, v, res.Completed, res.WallSec, cpu, bb.t.lastClientCPU.Seconds(), loadavg())
		}
	}
	return nil
}

// ---------- HTTP ----------

const httpPath = "/media/rocky9/images/pxeboot/vmlinuz"

func (bb *b) benchHTTP() error {
	dir := filepath.Join(bb.work, "media-http")
	if err := writeFile(filepath.Join(dir, "images/pxeboot/vmlinuz"), 64<<20); err != nil {
		return err
	}
	planPath := filepath.Join(bb.work, "plan-http.yaml")
	if err := writePlan(planPath, 1); err != nil {
		return err
	}
	servers := []string{"racklift", "nginx"}
	for r := range bb.runs {
		for _, s := range rotate(servers, r) {
			var p *proc
			var err error
			base := ""
			switch s {
			case "racklift":
				base = "http://" + serverIP + ":8080"
				p, err = bb.serve("racklift-http", `serving plan`, bb.rl, "serve", "--plan", planPath, "--interface", serverIf,
					"--dhcp-mode", "off", "--no-tftp", "--no-ra", "--media", "rocky9="+dir,
					"--state-dir", bb.tmp("http-state"), "--admin-listen", "127.0.0.1:18081", "--http-listen", serverIP+":8080")
				if err == nil {
					// Bind the client's address to node n0000 so every media
					// GET of its kernel is attributed and recorded (event
					// accounting on, as in a real install).
					_, err = bb.t.clientRun(30*time.Second, "get", base+"/ipxe/"+benchMAC(0).String()+"/boot.ipxe")
				}
			case "nginx":
				base = "http://" + serverIP + ":8090"
				d := bb.tmp("nginx")
				conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  default_type application/octet-stream;
  server {
    listen %[2]s:8090;
    location /media/rocky9/ { alias %[3]s/; }
  }
}
`, d, serverIP, dir)
				cp := filepath.Join(d, "nginx.conf")
				if err = os.WriteFile(cp, []byte(conf), 0o644); err == nil {
					p, err = bb.serve("nginx", "", "nginx", "-p", d, "-c", cp, "-e", filepath.Join(d, "error.log"))
				}
			}
			if err == nil {
				// Ready when the file is served (nginx logs nothing at start);
				// this also warms the page cache for both servers alike.
				for range 20 {
					if _, err = bb.t.clientRun(30*time.Second, "get", base+httpPath); err == nil {
						break
					}
					time.Sleep(250 * time.Millisecond)
				}
			}
			if err != nil {
				if p != nil {
					bb.stop(p)
				}
				return fmt.Errorf("%s: %w", s, err)
			}
			for _, conns := range []int{1, 64} {
				cpu0 := groupCPU(p.pid())
				rate, err := bb.wrk(base+httpPath, conns)
				cpu := (groupCPU(p.pid()) - cpu0).Seconds()
				if err != nil {
					bb.stop(p)
					return fmt.Errorf("%s: %w", s, err)
				}
				fmt.Printf("http run %d %-8s c=%-2d %6.2f GB/s server CPU %.2f s load %s\n", r+1, s, conns, rate/1e9, cpu, loadavg())
				bb.record(fmt.Sprintf("http%d|%s", conns, s), map[string]float64{"gbps": rate / 1e9, "cpu": cpu})
			}
			bb.stop(p)
		}
	}
	return nil
}

// wrk runs wrk for 6 s from the client namespace and returns bytes/s.
func (bb *b) wrk(url string, conns int) (float64, error) {
	threads := min(conns, runtime.NumCPU())
	out, err := exec.Command("timeout", "60", "ip", "netns", "exec", bb.t.cli, "wrk",
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", "6s", "--timeout", "30s", url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v: %s", err, out)
	}
	s := string(out)
	if strings.Contains(s, "Non-2xx") {
		return 0, fmt.Errorf("wrk got errors: %s", s)
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Transfer/sec:"); ok {
			return parseSize(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no Transfer/sec in wrk output: %s", s)
}

// parseSize parses wrk's "2.31GB" (binary units).
func parseSize(s string) (float64, error) {
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			s, mult = v, u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f * mult, err
}

// ---------- Fleet ----------

func (bb *b) benchFleet() error {
	const n = 512
	dir := filepath.Join(bb.work, "media-rocky9")
	if err := writeFile(filepath.Join(dir, "images/pxeboot/vmlinuz"), 10<<20); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "images/pxeboot/initrd.img"), 60<<20); err != nil {
		return err
	}
	planPath := filepath.Join(bb.work, "plan-fleet.yaml")
	if err := writePlan(planPath, n); err != nil {
		return err
	}
	addrs, err := planAddrs(planPath)
	if err != nil {
		return err
	}
	if err := bb.t.addClientAddrs(addrs); err != nil {
		return err
	}
	for r := range bb.fleetRuns {
		p, err := bb.serve("racklift-fleet", `serving plan`, bb.rl, "serve", "--plan", planPath, "--interface", serverIf,
			"--dhcp-mode", "authoritative", "--no-ra", "--probe-wait", "1s", "--media", "rocky9="+dir,
			"--state-dir", bb.tmp("fleet-state"), "--admin-listen", "127.0.0.1:18081", "--http-listen", serverIP+":8080")
		if err != nil {
			return err
		}
		before, err := readProc(p.pid())
		if err != nil {
			bb.stop(p)
			return err
		}
		res, err := decode[fleetResult](bb.t.clientRun(6*time.Minute, "fleet-client", "-n", strconv.Itoa(n), "-limit", "300s"))
		after, perr := readProc(p.pid())
		bb.stop(p)
		if err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
		cpu := (after.cpu - before.cpu).Seconds()
		fmt.Printf("fleet run %d: %d/%d nodes done, wall %.1f s, node p50 %.1f s max %.1f s, %.1f GB, server CPU %.1f s, peak RSS %d MiB, load %s\n  steps p50: %v %v\n",
			r+1, res.Done, res.Nodes, res.WallSec, res.P50s, res.MaxS, res.GB, cpu, after.hwmKB/1024, loadavg(), res.StepP50, res.FirstErrs)
		m := map[string]float64{"wall": res.WallSec, "done": float64(res.Done), "p50": res.P50s, "max": res.MaxS,
			"cpu": cpu, "rss": float64(after.hwmKB) / 1024, "gb": res.GB}
		for k, name := range stepNames {
			m[fmt.Sprintf("step%d", k)] = res.StepP50[name]
		}
		bb.record("fleet|racklift", m)
	}
	return nil
}
