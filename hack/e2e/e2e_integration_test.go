//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/webui"
)

func need(t *testing.T, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end tests need root (network namespaces, QEMU taps)")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			testbed.SkipOrFail(t, "%s not installed (make deps): %v", b, err)
		}
	}
}

func buildRacklift(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "racklift")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/racklift")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build racklift: %v\n%s", err, out)
	}
	return bin
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// bmc is one node's ipmi_sim and the VM its chassis control powers.
type bmc struct {
	node Node
	dir  string

	mu      sync.Mutex
	vm      *testbed.VM
	vms     []*testbed.VM // every power-on, in order
	powerOn []time.Time
	killed  map[*testbed.VM]bool // VMs this BMC stopped itself
}

// powerOns is how many times the BMC powered its VM on.
func (b *bmc) powerOns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.powerOn)
}

func (b *bmc) current() *testbed.VM {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vm
}

// death is a process of the site that ended by itself (not stopped by
// the test): what it was, how it ended, and its log.
type death struct {
	what string
	err  error
	log  string // log file path
}

// reporter collects deaths; it never blocks (the first ones are kept).
type reporter chan death

func (r reporter) report(d death) {
	select {
	case r <- d:
	default:
	}
}

// startBMC starts ipmi_sim for the node inside the namespace and waits
// (bounded) until it answers ipmitool. If it exits while ctx is live, that
// is reported to died.
func startBMC(ctx context.Context, t *testing.T, ns *testbed.Netns, n Node, died reporter) *bmc {
	t.Helper()
	dir := t.TempDir()
	b := &bmc{node: n, dir: dir, killed: map[*testbed.VM]bool{}}
	port := n.BMCPort
	if port == 0 {
		port = 623
	}
	args, err := testbed.IPMISimConfig(dir, n.Name, n.BMCAddr, port, BMCPassword)
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "ipmi_sim.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Run(ctx, "ipmi_sim", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("ipmi_sim: %v", err)
	}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		logf.Close()
		exited <- err
		if ctx.Err() == nil {
			died.report(death{what: fmt.Sprintf("ipmi_sim of %s (pid %d)", n.Name, cmd.Process.Pid), err: err, log: logPath})
		}
	}()
	// Wait until it answers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := ns.Run(ctx, "ipmitool", "-I", "lanplus", "-C", "3", "-H", n.BMCAddr, "-p", strconv.Itoa(port), "-U", "admin", "-P", BMCPassword, "-N", "1", "-R", "1", "chassis", "power", "status").CombinedOutput()
		if err == nil && strings.Contains(string(out), "Chassis Power") {
			return b
		}
		select {
		case err := <-exited:
			t.Fatalf("ipmi_sim for %s exited (%v) before it answered ipmitool; its log:\n%s", n.Name, err, testbed.Tail(logPath, 20))
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipmi_sim for %s did not answer ipmitool on %s:%d within 20 s (last: %v %s); its log:\n%s",
				n.Name, n.BMCAddr, port, err, bytes.TrimSpace(out), testbed.Tail(logPath, 20))
		}
	}
}

// reconcile turns the BMC's chassis state into VM power: a power-on
// request (power 1 with a new generation) starts the VM (restarting it if
// it runs), power 0 stops it, and a VM that powered itself off is reported
// off to the BMC.
// A VM that exits with an error the BMC did not cause (QEMU crashed or
// was killed) is reported to died; a guest power off (exit 0) is normal.
func (b *bmc) reconcile(ctx context.Context, t *testing.T, ns *testbed.Netns, opts testbed.VMOptions, died reporter) {
	lastGen := "0"
	reported := map[*testbed.VM]bool{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		power, gen := readTrim(filepath.Join(b.dir, "power")), readTrim(filepath.Join(b.dir, "gen"))
		vm := b.current()
		running := vm != nil
		if running {
			if _, exited := vm.Exited(); exited {
				running = false
				b.mu.Lock()
				ours := b.killed[vm]
				b.mu.Unlock()
				if err := vm.Wait(ctx); err != nil && !ours && !reported[vm] && ctx.Err() == nil {
					reported[vm] = true
					died.report(death{what: fmt.Sprintf("QEMU VM %s (pid %d)", b.node.Name, vm.PID()), err: err, log: vm.SerialPath})
				}
				if gen == lastGen {
					_ = os.WriteFile(filepath.Join(b.dir, "power"), []byte("0\n"), 0o644)
					power = "0"
				}
			}
		}
		switch {
		case power == "1" && gen != "" && gen != lastGen:
			if running {
				b.kill(vm)
			}
			lastGen = gen
			nv := testbed.StartVM(t, ns, opts)
			b.mu.Lock()
			b.vm = nv
			b.vms = append(b.vms, nv)
			b.powerOn = append(b.powerOn, time.Now())
			b.mu.Unlock()
		case power == "0" && running:
			b.kill(vm)
		}
	}
}

// kill stops a VM on the BMC's behalf (power off or reset), which is not a
// death to report.
func (b *bmc) kill(vm *testbed.VM) {
	b.mu.Lock()
	b.killed[vm] = true
	b.mu.Unlock()
	vm.Kill()
}

// capture records every packet on br0 to file with tcpdump, for
// debugging a firmware's DHCP exchange (E2E_PCAP=dir). It is stopped with
// the namespace.
func capture(ctx context.Context, t *testing.T, ns *testbed.Netns, file string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := ns.Run(ctx, "tcpdump", "-i", testbed.Bridge, "-U", "-s", "0", "-w", file)
	if err := cmd.Start(); err != nil {
		t.Fatalf("E2E_PCAP: tcpdump: %v", err)
	}
	// tcpdump attaches within milliseconds; a missed first packet only
	// makes the capture less complete, it does not change the test.
	time.Sleep(500 * time.Millisecond)
	t.Logf("capturing br0 to %s", file)
}

// api calls racklift's admin API inside the namespace (with curl: Go's
// HTTP transport dials on goroutines that would not be in the namespace).
func api(ns *testbed.Netns, path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b, err := ns.Run(ctx, "curl", "-sf", "--max-time", "10", "http://127.0.0.1:8081"+path).Output()
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return json.Unmarshal(b, out)
}

func nodeCount() int {
	if v, err := strconv.Atoi(os.Getenv("E2E_NODES")); err == nil && v > 0 && v <= 16 {
		return v
	}
	return 2
}

// site is a running virtual site: namespace, BMCs powering VMs, racklift serve.
type site struct {
	ns       *testbed.Netns
	bin      string
	nodes    []Node
	bmcs     []*bmc
	plan     string // plan file
	secrets  string // secrets file
	profiles string // --profiles-dir
	// serve is racklift serve's process; serveLog its log file; state its
	// --state-dir (the CLI reads the admin token there).
	serve    *exec.Cmd
	serveLog string
	state    string
	// died receives the site's processes that end by themselves while
	// the site's context is live (racklift serve, an ipmi_sim, a VM).
	died reporter
}

// startSite builds racklift and the payload, then starts the namespace,
// one ipmi_sim per node (whose chassis control powers its VM) and
// racklift serve (authoritative DHCP on br0, dashboard on the namespace's
// 127.0.0.1:8081). Everything stops when the test ends.
func startSite(ctx context.Context, t *testing.T, n int) *site {
	return startSiteMode(ctx, t, n, "authoritative")
}

// startSiteMode is startSite with a DHCP set-up: "authoritative", or
// "proxy" where a dnsmasq plays the site's own DHCP server (addresses
// only, no boot options) on another host of the segment, as on a customer
// LAN, and racklift only answers PXE, or "proxy-same-host" where that
// dnsmasq runs on racklift's host and address (a lab laptop serving both).
func startSiteMode(ctx context.Context, t *testing.T, n int, mode string) *site {
	t.Helper()
	return startSiteNodes(ctx, t, Nodes(n), mode)
}

// startSiteNodes is startSiteMode with the nodes given.
func startSiteNodes(ctx context.Context, t *testing.T, nodes []Node, mode string) *site {
	t.Helper()
	bin := buildRacklift(t)
	cache, err := testbed.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	kernel, initrd := testbed.BuildPayload(t, cache)
	work := t.TempDir()
	media := filepath.Join(work, "media")
	if err := os.Mkdir(media, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, kernel, filepath.Join(media, "vmlinuz"))
	copyFile(t, initrd, filepath.Join(media, "initrd.gz"))
	planFile, secretsFile := filepath.Join(work, "plan.yaml"), filepath.Join(work, "secrets.yaml")
	if err := os.WriteFile(planFile, []byte(Plan(nodes)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretsFile, []byte(Secrets), 0o600); err != nil {
		t.Fatal(err)
	}
	profiles, err := filepath.Abs("testdata/profiles")
	if err != nil {
		t.Fatal(err)
	}

	ns := testbed.NewNetns(t, "e2e", "10.99.0.1/24", "fd00:99::1/64")
	if dir := os.Getenv("E2E_PCAP"); dir != "" {
		capture(ctx, t, ns, filepath.Join(dir, t.Name()+".pcap"))
	}
	died := make(reporter, 8)
	bmcs := make([]*bmc, len(nodes))
	for i, n := range nodes {
		bmcs[i] = startBMC(ctx, t, ns, n, died)
		fw := testbed.BIOS
		if n.UEFI {
			fw = testbed.UEFI
		}
		opts := testbed.VMOptions{Name: n.Name, MAC: n.MAC, Firmware: fw,
			DiskPath: filepath.Join(work, n.Name+".img"), DiskMB: 16, VarsPath: filepath.Join(work, n.Name+"-vars.fd"),
			MemMB: 512, TapName: "tap" + n.MAC[len(n.MAC)-2:]}
		if n.PXEROM {
			opts.Kernel, opts.Append = PXEROMKernel, PXEROMScript
		}
		go bmcs[i].reconcile(ctx, t, ns, opts, died)
	}

	serveArgs := []string{"serve", "--plan", planFile, "--secrets", secretsFile, "--interface", "br0",
		"--state-dir", filepath.Join(work, "state"), "--dhcp-mode", strings.TrimSuffix(mode, "-same-host"), "--probe-wait", "3s",
		"--profiles-dir", profiles, "--media", "testbed=" + media, "--admin-listen", "127.0.0.1:8081"}
	if os.Getenv("E2E_NO_RA") == "1" {
		serveArgs = append(serveArgs, "--no-ra")
	}
	if mode != "authoritative" {
		siteNS := ns
		if mode == "proxy" {
			// The site's DHCP server is another machine on the segment,
			// with its own address.
			siteNS = testbed.NewNetns(t, "site", "10.99.0.2/24")
			if err := ns.Connect(siteNS); err != nil {
				t.Fatal(err)
			}
		}
		testbed.SiteDHCP(ctx, t, siteNS, work)
	}
	serve, serveLogPath := startServe(ctx, t, ns, bin, serveArgs, filepath.Join(work, "serve.log"), bmcs, died)
	return &site{ns: ns, bin: bin, nodes: nodes, bmcs: bmcs, plan: planFile, secrets: secretsFile, profiles: profiles,
		serve: serve, serveLog: serveLogPath, state: filepath.Join(work, "state"), died: died}
}

// TestInstallSite is the whole flow: racklift install --all takes every
// node from planned to installed through its real BMC (ipmi_sim), DHCP,
// TFTP (UEFI) and HTTP, and the second PXE boot of each node boots locally.
func TestInstallSite(t *testing.T) { installSite(t, "authoritative", nodeCount()) }

// TestInstallSiteProxy is the same beside the site's own DHCP server, a
// dnsmasq on another host of the segment (its own namespace, 10.99.0.2):
// addresses come from it, racklift (proxy mode) only answers PXE. The BIOS
// node's iPXE ROM and the UEFI node's OVMF PXE client (which asks racklift
// on port 4011 for its boot file) both install and boot locally.
func TestInstallSiteProxy(t *testing.T) {
	need(t, "dnsmasq")
	installSite(t, "proxy", nodeCount())
}

// TestInstallSiteProxySameHost: the site's DHCP server runs on racklift's
// own host and address. Its clients' DHCPREQUESTs then name racklift's
// address too; racklift must leave them alone (an address-less ACK made
// OVMF decline its lease and start over, for ever).
func TestInstallSiteProxySameHost(t *testing.T) {
	need(t, "dnsmasq")
	installSite(t, "proxy-same-host", nodeCount())
}

func installSite(t *testing.T, mode string, n int) {
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := startSiteMode(ctx, t, n, mode)
	ns, bin, nodes, bmcs := st.ns, st.bin, st.nodes, st.bmcs

	start := time.Now()
	out, err := ns.Run(ctx, bin, "install", "--all", "--server", "http://127.0.0.1:8081", "--state-dir", st.state, "--stagger", "1s").CombinedOutput()
	if err != nil {
		t.Fatalf("racklift install: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))

	// Wait until every node is installed and has booted locally once.
	var got []webui.NodeJSON
	localBoot := map[string]bool{}
	lastLog := time.Now()
	for {
		if err := api(ns, "/api/v1/nodes", &got); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, n := range got {
			if n.Phase == "failed" {
				t.Fatalf("%s failed: %s", n.Name, n.Failed)
			}
			if !localBoot[n.Name] {
				var d webui.NodeJSON
				if err := api(ns, "/api/v1/nodes/"+n.Name+"?limit=500", &d); err == nil {
					for _, e := range d.Events {
						if e.Type == "http.local-boot" {
							localBoot[n.Name] = true
						}
					}
				}
			}
			if localBoot[n.Name] {
				done++
			}
		}
		if done == len(nodes) {
			break
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			var st []string
			for _, n := range got {
				last := ""
				if n.LastEvent != nil {
					last = n.LastEvent.Type
				}
				st = append(st, fmt.Sprintf("%s=%s(%s)", n.Name, n.Phase, last))
			}
			t.Logf("%s: %s", time.Since(start).Round(time.Second), strings.Join(st, " "))
		}
		if ctx.Err() != nil {
			t.Fatalf("timed out; nodes: %+v", got)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("%d nodes installed and booted locally in %s", len(nodes), time.Since(start).Round(time.Second))

	for i, n := range nodes {
		var d webui.NodeJSON
		if err := api(ns, "/api/v1/nodes/"+n.Name+"?limit=500", &d); err != nil {
			t.Fatal(err)
		}
		// The recorded per-phase times are present, BMC and BIOS included.
		for _, ph := range []string{"bmc-checked", "bios-ok", "powering-on", "dhcp", "ipxe", "kernel", "installing", "installed"} {
			if _, ok := d.Durations[ph]; !ok {
				t.Errorf("%s: no time recorded for phase %s (have %v)", n.Name, ph, d.Durations)
			}
		}
		// What happened, in order, from the node's point of view.
		var seen []string
		at := map[string]time.Time{}
		for _, e := range d.Events {
			if _, ok := at[e.Type]; !ok {
				at[e.Type] = e.At
				seen = append(seen, e.Type)
			}
		}
		want := []string{"bmc.checked", "bmc.power", "dhcp.offer", "http.ipxe-script", "http.kernel", "http.config", "install.pre", "install.installed", "http.local-boot"}
		if n.UEFI {
			want = append(want, "tftp.done")
		}
		for _, w := range want {
			if _, ok := at[w]; !ok {
				t.Errorf("%s: no %s event; saw %v", n.Name, w, seen)
			}
		}
		// The installer stand-in wrote its marker on this node's own disk.
		if vm := bmcs[i].current(); vm != nil {
			head, err := vm.DiskHead(64)
			if err != nil || !bytes.HasPrefix(head, []byte(testbed.DiskMarker(n.Name))) {
				t.Errorf("%s: disk marker %q, %v", n.Name, head, err)
			}
		}
		// The orchestrator set the disk as boot device once installed.
		if calls := readTrim(filepath.Join(bmcs[i].dir, "calls.log")); !strings.Contains(calls, "set boot") {
			t.Errorf("%s: BMC never asked to set the boot device: %s", n.Name, calls)
		}
		fw := "BIOS"
		if n.UEFI {
			fw = "UEFI"
		}
		t.Logf("%s (%s): power-on→DHCP %s, →iPXE script %s, →kernel %s, →installed %s",
			n.Name, fw, at["dhcp.offer"].Sub(at["bmc.power"]).Round(100*time.Millisecond),
			at["http.ipxe-script"].Sub(at["bmc.power"]).Round(100*time.Millisecond),
			at["http.kernel"].Sub(at["bmc.power"]).Round(100*time.Millisecond),
			at["install.installed"].Sub(at["bmc.power"]).Round(100*time.Millisecond))
	}

	// status shows every node installed (or further) and exits 0.
	out, err = ns.Run(ctx, bin, "status", "--server", "http://127.0.0.1:8081", "--state-dir", st.state).CombinedOutput()
	if err != nil {
		t.Fatalf("racklift status: %v\n%s", err, out)
	}
	t.Logf("racklift status:\n%s", out)
	st.assertNoSecrets(ctx, t)
}

// TestBMCPowerOnBoots: the engineer's own command, `racklift bmc bootdev
// pxe` + `racklift bmc power on`, goes through ipmi_sim to the chassis
// control, which starts the VM, and the VM PXE-boots through racklift serve
// into the installer (no install run is started).
func TestBMCPowerOnBoots(t *testing.T) {
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st := startSite(ctx, t, 1)
	n := st.nodes[0]
	for _, args := range [][]string{
		{"bmc", "status", n.Name},
		{"bmc", "bootdev", "pxe", n.Name},
		{"bmc", "power", "on", n.Name},
	} {
		args = append(args, "--plan", st.plan, "--secrets", st.secrets, "--profiles-dir", st.profiles)
		out, err := st.ns.Run(ctx, st.bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("racklift %v: %v\n%s", args, err, out)
		}
		t.Logf("racklift %s:\n%s", strings.Join(args[:3], " "), bytes.TrimSpace(out))
	}
	if calls := readTrim(filepath.Join(st.bmcs[0].dir, "calls.log")); !strings.Contains(calls, "set boot pxe") || !strings.Contains(calls, "set power 1") {
		t.Fatalf("chassis control calls: %s", calls)
	}
	for {
		var d webui.NodeJSON
		if err := api(st.ns, "/api/v1/nodes/"+n.Name+"?limit=200", &d); err != nil {
			t.Fatal(err)
		}
		if d.Phase == "installed" || d.Phase == "first-boot" {
			var types []string
			for _, e := range d.Events {
				types = append(types, e.Type)
			}
			joined := strings.Join(types, " ")
			for _, w := range []string{"dhcp.ack", "http.ipxe-script", "http.kernel", "install.installed"} {
				if !strings.Contains(joined, w) {
					t.Errorf("no %s event: %s", w, joined)
				}
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("node did not install after bmc power on: phase %s", d.Phase)
		}
		time.Sleep(2 * time.Second)
	}
}

// TestBIOSPXEROMChain: a BIOS node whose firmware PXE client is not iPXE
// (see PXEROMScript) is handed undionly.kpxe by TFTP; undionly.kpxe runs as
// a PXE NBP on the firmware's PXE stack, asks DHCP again as iPXE, gets the
// node's HTTP script and installs. The events show each link in order.
func TestBIOSPXEROMChain(t *testing.T) {
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl")
	if _, err := os.Stat(PXEROMKernel); err != nil {
		testbed.SkipOrFail(t, "%s missing (Debian package ipxe): %v", PXEROMKernel, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	nodes := Nodes(1)
	nodes[0].PXEROM = true
	st := startSiteNodes(ctx, t, nodes, "authoritative")
	n := st.nodes[0]
	if out, err := st.ns.Run(ctx, st.bin, "install", "--all", "--server", "http://127.0.0.1:8081", "--state-dir", st.state).CombinedOutput(); err != nil {
		t.Fatalf("racklift install: %v\n%s", err, out)
	}
	var d webui.NodeJSON
	for {
		if err := api(st.ns, "/api/v1/nodes/"+n.Name+"?limit=500", &d); err != nil {
			t.Fatal(err)
		}
		if d.Phase == "failed" {
			t.Fatalf("%s failed: %s", n.Name, d.Failed)
		}
		if d.Phase == "installed" || d.Phase == "first-boot" {
			break
		}
		if ctx.Err() != nil {
			if vm := st.bmcs[0].current(); vm != nil {
				t.Logf("serial:\n%s", vm.SerialLog())
			}
			t.Fatalf("%s did not install: phase %s", n.Name, d.Phase)
		}
		time.Sleep(2 * time.Second)
	}

	// The chain, in event order: the ROM's DHCP gets undionly.kpxe, TFTP
	// sends it whole, undionly's own DHCP (as iPXE) gets the HTTP script,
	// and the script boots the installer.
	undionly := n.MAC + "/undionly.kpxe"
	steps := []struct {
		what  string
		match func(e events.Event) bool
	}{
		{"PXE ROM DHCP offer of " + undionly, func(e events.Event) bool {
			return e.Type == "dhcp.offer" && e.Attrs["file"] == undionly && e.Attrs["firmware"] == "bios" && e.Attrs["user_class"] == "PXE-ROM"
		}},
		{"TFTP transfer of undionly.kpxe", func(e events.Event) bool {
			return e.Type == "tftp.done" && strings.HasSuffix(e.Attrs["file"], "undionly.kpxe") && e.Attrs["bytes"] != "0"
		}},
		{"undionly.kpxe's DHCP (user class iPXE) given the HTTP script", func(e events.Event) bool {
			return (e.Type == "dhcp.offer" || e.Type == "dhcp.ack") && e.Attrs["user_class"] == "iPXE" && strings.HasSuffix(e.Attrs["file"], "/boot.ipxe")
		}},
		{"iPXE script fetched", func(e events.Event) bool { return e.Type == "http.ipxe-script" }},
		{"installer kernel fetched", func(e events.Event) bool { return e.Type == "http.kernel" }},
		{"installed", func(e events.Event) bool { return e.Type == "install.installed" }},
	}
	evs := slices.Clone(d.Events)
	// The API lists the newest first.
	if len(evs) > 1 && evs[0].At.After(evs[len(evs)-1].At) {
		for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
			evs[i], evs[j] = evs[j], evs[i]
		}
	}
	i := 0
	for _, s := range steps {
		for i < len(evs) && !s.match(evs[i]) {
			i++
		}
		if i == len(evs) {
			var seen []string
			for _, e := range evs {
				seen = append(seen, fmt.Sprintf("%s%v", e.Type, e.Attrs))
			}
			t.Fatalf("no %s (in order) among the events:\n%s", s.what, strings.Join(seen, "\n"))
		}
		t.Logf("%s: %s", evs[i].At.Format("15:04:05.000"), s.what)
		i++
	}
}

// TestUnplannedMachineShown: a VM whose MAC is one digit off a plan node's
// PXE-boots on the customer LAN (proxy mode). racklift gives it nothing,
// and the admin API and `racklift status` list it with that node as the
// probable typo.
func TestUnplannedMachineShown(t *testing.T) {
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl", "dnsmasq")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st := startSiteMode(ctx, t, 1, "proxy")
	n := st.nodes[0]
	stray := "52:54:00:99:e2:f1" // e2e-01 is 52:54:00:99:e2:01
	vm := testbed.StartVM(t, st.ns, testbed.VMOptions{Name: "stray", MAC: stray, MemMB: 256, TapName: "tapstray"})
	defer vm.Kill()
	for {
		var list []webui.UnplannedJSON
		if err := api(st.ns, "/api/v1/unplanned", &list); err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			u := list[0]
			if len(list) != 1 || u.MAC != stray || u.Hint == nil || u.Hint.Node != n.Name || u.Hint.Kind != "digit" || u.Firmware == "" {
				t.Fatalf("unplanned machines: %+v (hint %+v)", list, u.Hint)
			}
			t.Logf("listed: %s (%s), hint %+v", u.MAC, u.Firmware, *u.Hint)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the stray VM never showed up; serial:\n%s", vm.SerialLog())
		}
		time.Sleep(time.Second)
	}
	out, err := st.ns.Run(ctx, st.bin, "status", "--server", "http://127.0.0.1:8081", "--state-dir", st.state).CombinedOutput()
	if err != nil {
		t.Fatalf("racklift status: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(stray)) || !bytes.Contains(out, []byte("probably "+n.Name+": one digit differs")) {
		t.Errorf("racklift status does not list the stray machine:\n%s", out)
	}
	// It got nothing from racklift: no node moved, nothing was served.
	var d webui.NodeJSON
	if err := api(st.ns, "/api/v1/nodes/"+n.Name, &d); err != nil {
		t.Fatal(err)
	}
	if d.Phase != "planned" {
		t.Errorf("%s moved to %s because of a stray machine", n.Name, d.Phase)
	}
}

// startServe starts racklift serve in ns with args, its output in logPath,
// and waits (bounded) until its admin API answers /healthz on the
// namespace's 127.0.0.1:8081. If it exits while ctx is live, that is
// reported to died; if the test fails, its log's tail and the BMCs' calls
// are logged.
func startServe(ctx context.Context, t *testing.T, ns *testbed.Netns, bin string, serveArgs []string, serveLogPath string, bmcs []*bmc, died reporter) (*exec.Cmd, string) {
	t.Helper()
	serveLog, err := os.Create(serveLogPath)
	if err != nil {
		t.Fatal(err)
	}
	serve := ns.Run(ctx, bin, serveArgs...)
	serve.Stdout, serve.Stderr = serveLog, serveLog
	if err := serve.Start(); err != nil {
		serveLog.Close()
		t.Fatal(err)
	}
	serveExited := make(chan error, 1)
	go func() {
		err := serve.Wait()
		serveLog.Close()
		serveExited <- err
		if ctx.Err() == nil {
			died.report(death{what: fmt.Sprintf("racklift serve (pid %d)", serve.Process.Pid), err: err, log: serveLogPath})
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve.log tail:\n%s", testbed.Tail(serveLogPath, 60))
			for _, b := range bmcs {
				t.Logf("%s BMC calls: %s", b.node.Name, readTrim(filepath.Join(b.dir, "calls.log")))
			}
		}
	})
	var health map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := api(ns, "/healthz", &health)
		if err == nil {
			break
		}
		select {
		case exitErr := <-serveExited:
			t.Fatalf("racklift serve exited (%v) before /healthz answered; serve.log:\n%s", exitErr, testbed.Tail(serveLogPath, 20))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("racklift serve did not answer /healthz on 127.0.0.1:8081 within 30 s (last: %v); serve.log:\n%s", err, testbed.Tail(serveLogPath, 20))
		}
	}
	return serve, serveLogPath
}
