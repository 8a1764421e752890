//go:build integration

package testbed

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	srvIP   = "10.99.0.1"
	srvCIDR = srvIP + "/24"
	srvV6   = "fd00:99::1/64"
	httpURL = "http://" + srvIP + ":8080"
	token   = "tok-3f9a"
)

// hit is one HTTP request the boot server saw, relative to a VM's power on.
type hit struct {
	at     time.Time
	method string
	path   string
	token  string
	body   string
	status int
}

// bootServer is a tiny Go HTTP server in the netns standing in for
// racklift's machine-facing HTTP: boot script, kernel, initrd, config,
// and callbacks (same routes and token rules as boot/httpboot).
type bootServer struct {
	kernel, initrd string
	mu             sync.Mutex
	script         string
	node           string
	hits           []hit
}

func (s *bootServer) setScript(node, script string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.node, s.script, s.hits = node, script, nil
}

func (s *bootServer) record(h hit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits = append(s.hits, h)
}

// hitsSnapshot returns the requests so far.
func (s *bootServer) hitsSnapshot() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.hits...)
}

// firstDone returns when the first successful request for path (a GET
// completed, for a file: the whole file sent) was seen.
func (s *bootServer) firstDone(method, path string) (time.Time, bool) {
	for _, h := range s.hitsSnapshot() {
		if h.method == method && h.path == path && h.status < 300 {
			return h.at, true
		}
	}
	return time.Time{}, false
}

func (s *bootServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w, status: 200}
	h := hit{method: r.Method, path: r.URL.Path, token: r.Header.Get("X-Racklift-Token")}
	defer func() { h.at, h.status = time.Now(), rec.status; s.record(h) }()
	s.mu.Lock()
	node, script := s.node, s.script
	s.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/boot.ipxe":
		_, _ = io.WriteString(rec, script)
	case r.Method == http.MethodGet && r.URL.Path == "/vmlinuz":
		http.ServeFile(rec, r, s.kernel)
	case r.Method == http.MethodGet && r.URL.Path == "/initrd.gz":
		http.ServeFile(rec, r, s.initrd)
	case r.Method == http.MethodGet && r.URL.Path == "/config/"+node:
		fmt.Fprintf(rec, "# racklift test config\nhostname: %s\n", node)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/phone-home/"):
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		h.body = string(b)
		tok := h.token
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		if tok != token {
			http.Error(rec, "forbidden", http.StatusForbidden)
			return
		}
		rec.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(rec, r)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// bed is one netns with the Debian dnsmasq (DHCP + TFTP, optional RA) and
// the Go HTTP boot server on br0.
type bed struct {
	ns      *Netns
	srv     *bootServer
	dnsLog  string
	tftpDir string
}

func newBed(t *testing.T, kernel, initrd string, ra bool) *bed {
	t.Helper()
	addrs := []string{srvCIDR}
	if ra {
		addrs = append(addrs, srvV6)
	}
	ns := NewNetns(t, "tb", addrs...)
	b := &bed{ns: ns, srv: &bootServer{kernel: kernel, initrd: initrd}}

	l, err := ns.Listen("tcp", srvIP+":8080")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: b.srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })

	dir := t.TempDir()
	b.tftpDir = filepath.Join(dir, "tftp")
	if err := os.Mkdir(b.tftpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"snponly.efi", "undionly.kpxe"} {
		if err := copyFile(filepath.Join("/usr/lib/ipxe", f), filepath.Join(b.tftpDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	b.dnsLog = filepath.Join(dir, "dnsmasq.log")
	args := []string{
		"--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
		"--interface=" + Bridge, "--bind-interfaces", "--no-resolv", "--no-hosts",
		"--log-dhcp", "--log-facility=" + b.dnsLog, "--pid-file=",
		"--dhcp-leasefile=" + filepath.Join(dir, "leases"),
		"--dhcp-range=10.99.0.100,10.99.0.199,255.255.255.0,1h",
		"--dhcp-authoritative",
		// No ping before an offer: dnsmasq waits ~3 s for an echo reply
		// per new lease, which would dominate the firmware timings.
		"--no-ping",
		"--enable-tftp", "--tftp-root=" + b.tftpDir,
		// iPXE (option 175) gets the HTTP script; a UEFI firmware PXE
		// client (arch 7 or 9) gets snponly.efi by TFTP; a BIOS one
		// undionly.kpxe.
		"--dhcp-match=set:ipxe,175",
		"--dhcp-match=set:efi64,option:client-arch,7",
		"--dhcp-match=set:efi64,option:client-arch,9",
		"--dhcp-boot=tag:ipxe," + httpURL + "/boot.ipxe",
		"--dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi",
		"--dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe",
	}
	if ra {
		args = append(args, "--enable-ra", "--dhcp-range=fd00:99::,ra-only")
	}
	cmd := ns.Run(context.Background(), "dnsmasq", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select { // dnsmasq fails fast on a bad option or a busy port
	case err := <-done:
		t.Fatalf("dnsmasq exited: %v\n%s", err, out.String())
	case <-time.After(300 * time.Millisecond):
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(b.dnsLog)
			t.Logf("dnsmasq log:\n%s", log)
		}
	})
	return b
}

func (b *bed) payloadArgs(node, mac, mode string) PayloadArgs {
	return PayloadArgs{
		Config:   httpURL + "/config/" + node,
		Callback: httpURL + "/phone-home/" + mac,
		Token:    token,
		Node:     node,
		Mode:     mode,
		MAC:      mac,
	}
}

// timings of one boot, from power on.
type timings struct {
	script, kernel, linux, init, installed, total, cpu time.Duration
}

func (tm timings) String() string {
	return fmt.Sprintf("boot script %.1fs, kernel+initrd fetched %.1fs, Linux banner %.1fs, /init %.1fs, installed %.1fs, power off %.1fs (QEMU CPU %.1fs)",
		tm.script.Seconds(), tm.kernel.Seconds(), tm.linux.Seconds(), tm.init.Seconds(), tm.installed.Seconds(), tm.total.Seconds(), tm.cpu.Seconds())
}

// runInstall boots vm to power off and checks the serial markers and the
// callbacks; it returns the timings.
func (b *bed) runInstall(t *testing.T, vm *VM, node string) timings {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	var tm timings
	var err error
	if tm.linux, err = vm.WaitSerialTime(ctx, "Linux version"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{MarkerInit, MarkerDHCP, MarkerConfig, MarkerPre, MarkerProgress} {
		d, err := vm.WaitSerialTime(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if m == MarkerInit {
			tm.init = d
		}
	}
	if vm.DiskPath != "" {
		if err := vm.WaitSerial(ctx, MarkerDisk); err != nil {
			t.Fatal(err)
		}
	}
	if tm.installed, err = vm.WaitSerialTime(ctx, MarkerInstalled); err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Fatalf("VM did not power off cleanly: %v", err)
	}
	tm.total, _ = vm.Exited()
	tm.cpu = vm.CPUTime()
	if log := vm.SerialLog(); strings.Contains(log, MarkerError) {
		t.Fatalf("payload reported an error:\n%s", log)
	}
	if at, ok := b.srv.firstDone("GET", "/boot.ipxe"); ok {
		tm.script = at.Sub(vm.Started)
	}
	if at, ok := b.srv.firstDone("GET", "/initrd.gz"); ok {
		tm.kernel = at.Sub(vm.Started)
	}
	mac := vm.Opts.MAC
	var phases []string
	for _, h := range b.srv.hitsSnapshot() {
		if h.method != http.MethodPost {
			continue
		}
		if h.token != token || h.status != http.StatusNoContent {
			t.Errorf("callback %s: token %q status %d", h.path, h.token, h.status)
		}
		phases = append(phases, strings.TrimPrefix(h.path, "/phone-home/"+mac+"/"))
		if strings.Contains(h.path, "/progress") && !strings.Contains(h.body, `"percent":50`) {
			t.Errorf("progress callback body %q lacks percent 50", h.body)
		}
	}
	if got, want := strings.Join(phases, ","), "pre,progress,installed"; got != want {
		t.Errorf("callbacks = %q, want %q", got, want)
	}
	if vm.DiskPath != "" {
		head, err := vm.DiskHead(512)
		if err != nil {
			t.Fatal(err)
		}
		if want := DiskMarker(node); !bytes.HasPrefix(head, []byte(want)) {
			t.Errorf("disk starts %q, want %q", bytes.TrimRight(head, "\x00"), want)
		}
	}
	return tm
}

// TestNetns checks the namespace plumbing: br0 and its addresses are
// visible from Do and Run inside and not outside, taps join br0, and
// cleanup kills what Run started.
func TestNetns(t *testing.T) {
	ns := NewNetns(t, "tb", srvCIDR, srvV6)
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(Bridge)
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		if s := strings.Join(got, " "); !strings.Contains(s, srvCIDR) || !strings.Contains(s, srvV6) {
			return fmt.Errorf("br0 addresses %s", s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.AddTap("tap9"); err != nil {
		t.Fatal(err)
	}
	out, err := ns.Run(t.Context(), "ip", "-o", "link", "show", "master", Bridge).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tap9") {
		t.Fatalf("tap9 not on br0: %v %s", err, out)
	}
	if ns.IP(4).String() != srvIP || ns.IP(6).String() != "fd00:99::1" {
		t.Errorf("IP(4)=%v IP(6)=%v", ns.IP(4), ns.IP(6))
	}
	// A socket made inside stays inside: the host cannot reach it.
	l, err := ns.Listen("tcp", srvIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), 300*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("reached %s from the host namespace", l.Addr())
	}
	// Cleanup kills what Run started and deletes the namespace.
	var pid int
	var name string
	t.Run("cleanup", func(t *testing.T) {
		sub := NewNetns(t, "tb")
		name = sub.Name
		c := sub.Run(context.Background(), "sleep", "300")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = c.Wait() }()
		pid = c.Process.Pid
	})
	time.Sleep(200 * time.Millisecond)
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d started in a finished subtest's namespace still runs", pid)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", name)); err == nil {
		t.Errorf("namespace %s still exists", name)
	}
}

// TestPayloadDirect boots the payload with QEMU's -kernel (no PXE): an
// install writes the disk marker and posts pre/progress/installed; a
// second boot of the same disk in check mode finds it, posts
// first-boot/ready and reboots (which ends QEMU with NoReboot). It also
// resets a VM through QMP.
func TestPayloadDirect(t *testing.T) {
	kernel, initrd := BuildPayload(t, "")
	st, err := os.Stat(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 1<<20 || st.Size() > 3<<20 {
		t.Errorf("initramfs is %d bytes, want 1-3 MiB", st.Size())
	}
	b := newBed(t, kernel, initrd, false)
	disk := filepath.Join(t.TempDir(), "node.raw")
	const node, mac = "lab-direct-01", "52:54:00:99:00:11"

	b.srv.setScript(node, "")
	vm := StartVM(t, b.ns, VMOptions{Name: "direct", MAC: mac, DiskPath: disk, DiskMB: 16, NoReboot: true,
		Kernel: kernel, Initrd: initrd, Append: b.payloadArgs(node, mac, "install").String()})
	st0, err := vm.QMP("query-status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st0), `"running"`) {
		t.Errorf("query-status = %s", st0)
	}
	tm := b.runInstall(t, vm, node)
	t.Logf("direct install: %v", tm)

	b.srv.setScript(node, "")
	args := b.payloadArgs(node, mac, "check")
	args.Reboot = true
	vm2 := StartVM(t, b.ns, VMOptions{Name: "direct-check", MAC: mac, DiskPath: disk, NoReboot: true,
		TapName: vm.Opts.TapName, Kernel: kernel, Initrd: initrd, Append: args.String()})
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	for _, m := range []string{MarkerDisk, MarkerFirstBoot, MarkerReady, MarkerDone} {
		if err := vm2.WaitSerial(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := vm2.Wait(ctx); err != nil {
		t.Fatalf("reboot -f with NoReboot should end QEMU cleanly: %v", err)
	}
	var phases []string
	for _, h := range b.srv.hitsSnapshot() {
		if h.method == http.MethodPost {
			phases = append(phases, h.path)
		}
	}
	if got, want := strings.Join(phases, ","), "/phone-home/"+mac+"/first-boot,/phone-home/"+mac+"/ready"; got != want {
		t.Errorf("check callbacks = %q, want %q", got, want)
	}

	// QMP system_reset: the guest boots again (a BMC simulator's "power cycle").
	vm3 := StartVM(t, b.ns, VMOptions{Name: "direct-reset", MAC: mac, TapName: vm.Opts.TapName,
		Kernel: kernel, Initrd: initrd, Append: "console=ttyS0 panic=-1 racklift.mode=none"})
	if err := vm3.WaitSerial(ctx, MarkerInit); err != nil {
		t.Fatal(err)
	}
	if _, err := vm3.QMP("system_reset"); err != nil {
		t.Fatal(err)
	}
	for strings.Count(vm3.SerialLog(), MarkerInit) < 2 {
		if ctx.Err() != nil {
			t.Fatal("no second boot after system_reset")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := vm3.QMP("quit"); err != nil {
		t.Fatal(err)
	}
	if err := vm3.Wait(ctx); err != nil {
		t.Logf("after quit: %v", err)
	}
}

// TestPXEBoot proves the test bed with Debian's peers: dnsmasq (DHCP,
// TFTP, optionally IPv6 RA) and a Go HTTP server in the netns, and QEMU
// PXE clients: BIOS (iPXE ROM -> HTTP script) and UEFI (OVMF PXE -> TFTP
// snponly.efi -> HTTP script), each with and without a router
// advertisement on br0, and a BIOS e1000 NIC. One VM at a time.
func TestPXEBoot(t *testing.T) {
	kernel, initrd := BuildPayload(t, "")
	results := map[string]timings{}
	i := 0
	for _, tc := range []struct {
		name string
		fw   Firmware
		nic  string
		ra   bool
	}{
		{"bios", BIOS, "virtio", false},
		{"bios-ra", BIOS, "virtio", true},
		{"bios-e1000-ra", BIOS, "e1000", true},
		{"uefi", UEFI, "virtio", false},
		{"uefi-ra", UEFI, "virtio", true},
	} {
		i++
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && !tc.ra {
				t.Skip("-short: only the boots with a router advertisement")
			}
			b := newBed(t, kernel, initrd, tc.ra)
			node := "lab-" + tc.name
			mac := fmt.Sprintf("52:54:00:99:01:%02x", i)
			args := b.payloadArgs(node, mac, "install")
			args.MAC = "" // let the payload use BOOTIF from iPXE
			args.Extra = "BOOTIF=01-${net0/mac:hexhyp}"
			b.srv.setScript(node, IPXEScript(httpURL+"/vmlinuz", httpURL+"/initrd.gz", args.String()))
			vm := StartVM(t, b.ns, VMOptions{Name: tc.name, MAC: mac, Firmware: tc.fw, NIC: tc.nic, DiskMB: 16, NoReboot: true})
			tm := b.runInstall(t, vm, node)
			results[tc.name] = tm
			t.Logf("%s: %v", tc.name, tm)
			if os.Getenv("RACKLIFT_TESTBED_TIMELINE") != "" {
				for _, l := range vm.Timeline() {
					t.Logf("  %5.1fs | %.120s", l.At.Seconds(), l.Text)
				}
				for _, h := range b.srv.hitsSnapshot() {
					t.Logf("  %5.1fs %s %s %d", h.at.Sub(vm.Started).Seconds(), h.method, h.path, h.status)
				}
			}
			if tc.fw == UEFI {
				log, _ := os.ReadFile(b.dnsLog)
				if !bytes.Contains(log, []byte("snponly.efi")) {
					t.Errorf("dnsmasq never served snponly.efi:\n%s", log)
				}
			}
		})
	}
	for _, n := range []string{"bios", "bios-ra", "bios-e1000-ra", "uefi", "uefi-ra"} {
		if tm, ok := results[n]; ok {
			t.Logf("%-13s %v", n, tm)
		}
	}
}
