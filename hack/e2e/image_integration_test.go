//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	agentbuild "github.com/racklift/racklift/hack/agent"
	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

// imageNode is one node of the image site: its plan entry and how its VM
// differs from the plan (capMTU: its bond members' NICs cannot carry more
// than this MTU, as behind a switch port left at 1500).
type imageNode struct {
	plan   *plan.Node
	fw     testbed.Firmware
	capMTU int
	// want is the node's final phase; reason a part of its mismatch.
	want   events.Phase
	reason string
	// keep and wipe are its OSD disks' images.
	keep, wipe string
}

// osdKeepMarker is planted on every node's OSD disk the plan keeps, at
// its start and at 512 MiB: it must be there, byte for byte, after the
// install. It is no signature blkid knows, so the disk still counts as
// blank for Ceph (a real BlueStore label there makes the node a mismatch:
// "OSD disk /dev/vdb has a signature (ceph_bluestore)").
const osdKeepMarker = "RACKLIFT-E2E-OSD-KEEP "

// TestImageInstall installs the image-lab example plan on three QEMU
// nodes with racklift's own deploy agent and the Debian 12 image: img-01
// with SeaBIOS and iPXE, img-02 with OVMF and Secure Boot enforced (shim,
// the signed GRUB, the signed kernel; never iPXE), img-03 with OVMF and
// iPXE. Each node has the PXE NIC plus two NICs the plan bonds (with the
// storage VLAN 30, MTU 9000 on top), an 8 GiB OS disk and two OSD disks
// with a planted signature; the plan wipes one and keeps the other.
// Each node is powered on through its ipmi_sim BMC, boots the agent,
// which writes the image and the NoCloud seed and reboots into Debian;
// cloud-init configures the plan's network and reports ready with the
// node's facts, which racklift compares with the plan.
//
// img-01 and img-02 must end verified (BIOS, Secure Boot); img-03's bond
// members are capped at MTU 1500, so it must end in mismatch saying so.
// Then the OSD disks are read: the kept one's signature is intact, the
// wiped one has none. Finally the hand-off is written from the verified
// nodes, and its deployment key and known_hosts log into img-01 over SSH.
//
// Per-node phase times and the image write rate are logged (and written
// to hack/bench/RESULTS.md with RACKLIFT_WRITE_RESULTS=1).
func TestImageInstall(t *testing.T) {
	need(t, "ipmi_sim", "ipmitool", "qemu-system-x86_64", "curl", "ssh", "ansible", "wipefs", "sgdisk", "mmdebstrap", "apt-get", "dpkg-deb")
	for _, f := range []string{testbed.OVMFSecureCode, testbed.OVMFSecureVars, testbed.OVMFCode} {
		if _, err := os.Stat(f); err != nil {
			testbed.SkipOrFail(t, "%s missing (Debian package ovmf)", f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if keep := os.Getenv("RACKLIFT_TESTBED_KEEP"); keep != "" {
		work = filepath.Join(keep, t.Name())
		_ = os.RemoveAll(work)
		if err := os.MkdirAll(work, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := buildRacklift(t)
	agentDir, rawImage := agentAndImage(ctx, t, root)

	// The plan is the example, as a field engineer would start from it.
	planBytes, err := fs.ReadFile(plan.Examples(), "image-lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	planFile, secretsFile := filepath.Join(work, "plan.yaml"), filepath.Join(work, "secrets.yaml")
	if err := os.WriteFile(planFile, planBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretsFile, []byte(Secrets+"bmc-lab: "+BMCPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load(planFile, planBytes, plan.Options{})
	if ds.HasErrors() {
		t.Fatalf("image-lab: %v", ds)
	}
	state := filepath.Join(work, "state")
	start := time.Now()
	if out, err := exec.CommandContext(ctx, bin, "image", "import", "debian12", rawImage, "--state-dir", state).CombinedOutput(); err != nil {
		t.Fatalf("racklift image import: %v\n%s", err, out)
	}
	importTime := time.Since(start)
	if out, err := exec.CommandContext(ctx, bin, "plan", "validate", planFile, "--secrets", secretsFile, "--state-dir", state).CombinedOutput(); err != nil {
		t.Fatalf("racklift plan validate: %v\n%s", err, out)
	}

	nodes := imageNodes(t, p)
	ns := testbed.NewNetns(t, "img", "10.99.0.1/24")
	if dir := os.Getenv("E2E_PCAP"); dir != "" {
		capture(ctx, t, ns, filepath.Join(dir, t.Name()+".pcap"))
	}
	died := make(reporter, 8)
	var bmcs []*bmc
	var siteNodes []Node
	for i := range nodes {
		in := &nodes[i]
		n := in.plan
		sn := Node{Name: n.Name, MAC: n.MAC, UEFI: in.fw.IsUEFI(), BMCAddr: n.BMC.Address, BMCPort: n.BMC.Port}
		siteNodes = append(siteNodes, sn)
		b := startBMC(ctx, t, ns, sn, died)
		bmcs = append(bmcs, b)
		in.keep, in.wipe = filepath.Join(work, n.Name+"-osd-keep.raw"), filepath.Join(work, n.Name+"-osd-wipe.raw")
		plantOSDs(t, in.keep, in.wipe)
		opts := testbed.VMOptions{Name: n.Name, MAC: n.MAC, Firmware: in.fw, MemMB: 1024,
			DiskPath: filepath.Join(work, n.Name+"-os.raw"), DiskMB: 8192,
			VarsPath: filepath.Join(work, n.Name+"-vars.fd"), TapName: "tap" + n.MAC[len(n.MAC)-2:], Dir: filepath.Join(work, n.Name),
			Disks: []testbed.Disk{{Path: in.keep, Serial: n.Name + "-osd-keep"}, {Path: in.wipe, Serial: n.Name + "-osd-wipe"}}}
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for j, nic := range n.NICs {
			switch {
			case j == 0 && (nic.MAC == "" || nic.MAC == n.MAC): // the PXE NIC: the VM's first
			case nic.MAC == "":
				t.Fatalf("%s: plan NIC %s has no MAC: the test bed cannot give the VM that NIC", n.Name, nic.Name)
			default:
				opts.NICs = append(opts.NICs, testbed.NIC{MAC: nic.MAC, HostMTU: in.capMTU})
			}
		}
		go b.reconcile(ctx, t, ns, opts, died)
	}
	serveArgs := []string{"serve", "--plan", planFile, "--secrets", secretsFile, "--interface", "br0",
		"--state-dir", state, "--dhcp-mode", "authoritative", "--probe-wait", "3s", "--no-ra",
		"--agent-dir", agentDir, "--admin-listen", "127.0.0.1:8081"}
	serve, serveLog := startServe(ctx, t, ns, bin, serveArgs, filepath.Join(work, "serve.log"), bmcs, died)
	st := &site{ns: ns, bin: bin, nodes: siteNodes, bmcs: bmcs, plan: planFile, secrets: secretsFile,
		serve: serve, serveLog: serveLog, state: state, died: died}

	start = time.Now()
	out, err := ns.Run(ctx, bin, "install", "--all", "--server", "http://127.0.0.1:8081", "--state-dir", state, "--stagger", "1s").CombinedOutput()
	if err != nil {
		t.Fatalf("racklift install: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
	final := waitFinal(ctx, t, st, nodes, start)
	total := time.Since(start)

	// Each node ended where it must, with the reasons it must give.
	for _, in := range nodes {
		n := final[in.plan.Name]
		detail := ""
		if n.LastEvent != nil {
			detail = n.LastEvent.Detail
		}
		if n.Phase != in.want {
			t.Errorf("%s (%s) ended %s, want %s: %s", in.plan.Name, in.fw, n.Phase, in.want, detail)
		}
		if in.reason != "" && !strings.Contains(detail, in.reason) {
			t.Errorf("%s's mismatch does not say %q: %s", in.plan.Name, in.reason, detail)
		}
		t.Logf("%s (%s): %s: %s", in.plan.Name, in.fw, n.Phase, detail)
	}

	rows := phaseTimes(t, st, nodes, bmcs)
	facts := readFacts(t, state)
	for i, in := range nodes {
		name := in.plan.Name
		f := facts[name]
		if f == nil {
			t.Errorf("%s: no facts stored", name)
			continue
		}
		// What the installed system says it booted with.
		switch {
		case in.fw == testbed.SecureBoot && (!f.UEFI || f.SecureBoot == nil || !*f.SecureBoot):
			t.Errorf("%s: booted UEFI=%v SecureBoot=%v, want Secure Boot on", name, f.UEFI, f.SecureBoot)
		case in.fw == testbed.BIOS && f.UEFI:
			t.Errorf("%s: booted UEFI, want legacy BIOS", name)
		}
		if f.OS.ID != "debian" || f.OS.VersionID != "12" {
			t.Errorf("%s: OS %+v, want Debian 12", name, f.OS)
		}
		// One power-on by the BMC, one agent run: no reinstall loop.
		if got := bmcs[i].powerOns(); got != 1 {
			t.Errorf("%s: powered on %d times by its BMC, want 1", name, got)
		}
		if got := rows[i].instructions; got != 1 {
			t.Errorf("%s: the agent's instructions were served %d times, want 1 (a reinstall loop?)", name, got)
		}
	}
	handoffLogin(ctx, t, st, p, nodes)

	// The OSD disks, read from their images with the VMs stopped.
	for _, b := range bmcs {
		if vm := b.current(); vm != nil {
			b.kill(vm)
		}
	}
	for _, in := range nodes {
		checkOSDs(t, in)
	}

	t.Logf("image import %.1f s; %d nodes from install to final in %s", importTime.Seconds(), len(nodes), total.Round(time.Second))
	table := resultsTable(rows, importTime, total)
	t.Logf("per-node times:\n%s", table)
	if os.Getenv("RACKLIFT_WRITE_RESULTS") == "1" {
		writeResults(t, filepath.Join(root, "hack", "bench", "RESULTS.md"), table)
	}
	st.assertNoSecrets(ctx, t)
}

// agentAndImage builds (or reuses) the deploy agent directory and the
// Debian 12 image, in the caches hack/agent and hack/image share with
// their own tests.
func agentAndImage(ctx context.Context, t *testing.T, root string) (agentDir, raw string) {
	t.Helper()
	cache := filepath.Join(root, "hack", ".cache", "agent")
	agentDir = filepath.Join(cache, "out")
	start := time.Now()
	if _, err := agentbuild.Build(ctx, agentbuild.Options{Out: agentDir, Cache: cache, Logf: t.Logf}); err != nil {
		t.Fatalf("build the agent directory: %v", err)
	}
	t.Logf("agent directory %s ready in %.0f s", agentDir, time.Since(start).Seconds())
	raw = filepath.Join(root, "out", "debian12.raw")
	start = time.Now()
	build := exec.CommandContext(ctx, filepath.Join(root, "hack", "image", "build-debian12.sh"))
	build.Env = append(os.Environ(), "IMAGE_OUT="+raw)
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build-debian12.sh: %v\n%s", err, tailString(string(out), 4000))
	}
	t.Logf("image %s ready in %.0f s (reused: %v)", raw, time.Since(start).Seconds(), strings.Contains(string(out), "reusing "))
	return agentDir, raw
}

// imageNodes maps the plan's nodes to VMs: img-01 legacy BIOS, img-02
// Secure Boot, img-03 UEFI with its bond's NICs capped at MTU 1500.
func imageNodes(t *testing.T, p *plan.Plan) []imageNode {
	t.Helper()
	var out []imageNode
	for _, n := range p.Nodes {
		in := imageNode{plan: n, want: events.PhaseVerified}
		switch {
		case !n.BIOS.UEFI():
			in.fw = testbed.BIOS
		case n.BIOS.SecureBoot:
			in.fw = testbed.SecureBoot
		default:
			in.fw = testbed.UEFI
			in.capMTU, in.want, in.reason = 1500, events.PhaseMismatch, "MTU 1500, plan 9000"
		}
		if n.BMC == nil || n.BMC.Port == 0 {
			t.Fatalf("%s: the example plan's node has no BMC port", n.Name)
		}
		out = append(out, in)
	}
	fws := map[testbed.Firmware]int{}
	for _, in := range out {
		fws[in.fw]++
	}
	if len(out) != 3 || fws[testbed.BIOS] != 1 || fws[testbed.SecureBoot] != 1 || fws[testbed.UEFI] != 1 {
		t.Fatalf("image-lab should have one legacy, one Secure Boot and one UEFI node: %v", fws)
	}
	return out
}

// plantOSDs makes a node's two 1 GiB OSD disks: keep carries
// osdKeepMarker at its start and at 512 MiB; wipe a GPT with a BlueStore
// label in its partition, as an old Ceph OSD leaves.
func plantOSDs(t *testing.T, keep, wipe string) {
	t.Helper()
	for _, p := range []string{keep, wipe} {
		_ = os.Remove(p)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(1 << 30); err != nil {
			t.Fatal(err)
		}
		if p == keep {
			for _, off := range []int64{0, 512 << 20} {
				if _, err := f.WriteAt([]byte(osdKeepMarker+keep), off); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("sgdisk", "-n", "1:2048:0", "-t", "1:8300", "-c", "1:ceph data", wipe).CombinedOutput(); err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	f, err := os.OpenFile(wipe, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("bluestore block device\nRACKLIFT-E2E-OSD-WIPE"), 2048*512); err != nil {
		t.Fatal(err)
	}
}

// checkOSDs reads a node's OSD disk images after the install.
func checkOSDs(t *testing.T, in imageNode) {
	t.Helper()
	f, err := os.Open(in.keep)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []byte(osdKeepMarker + in.keep)
	for _, off := range []int64{0, 512 << 20} {
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, off); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: the kept OSD disk's signature at byte %d is %q (%v), want it intact", in.plan.Name, off, got, err)
		}
	}
	out, err := exec.Command("wipefs", "--no-act", "--noheadings", in.wipe).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("%s: the OSD disk the plan wipes still has signatures: %s %v", in.plan.Name, out, err)
	}
}

// waitFinal polls the API until every node is in a final phase (verified,
// mismatch or failed), logging progress every 30 s; it returns the nodes.
func waitFinal(ctx context.Context, t *testing.T, st *site, nodes []imageNode, start time.Time) map[string]webui.NodeJSON {
	t.Helper()
	lastLog := time.Now()
	for {
		select {
		case d := <-st.died:
			t.Fatalf("%s ended by itself (%v); its log:\n%s", d.what, d.err, testbed.Tail(d.log, 30))
		default:
		}
		var got []webui.NodeJSON
		if err := api(st.ns, "/api/v1/nodes", &got); err != nil {
			t.Fatal(err)
		}
		byName := map[string]webui.NodeJSON{}
		done := 0
		for _, n := range got {
			byName[n.Name] = n
			if n.Phase.Final() {
				done++
			}
		}
		if done == len(nodes) {
			return byName
		}
		if time.Since(lastLog) > 30*time.Second {
			lastLog = time.Now()
			var line []string
			for _, n := range got {
				last := ""
				if n.LastEvent != nil {
					last = n.LastEvent.Type
					if s := n.LastEvent.Attrs["step"]; s != "" {
						last += "/" + s
					}
				}
				line = append(line, fmt.Sprintf("%s=%s(%s)", n.Name, n.Phase, last))
			}
			t.Logf("%s: %s", time.Since(start).Round(time.Second), strings.Join(line, " "))
		}
		if ctx.Err() != nil {
			for _, b := range st.bmcs {
				if vm := b.current(); vm != nil {
					t.Logf("%s serial tail:\n%s", b.node.Name, tailString(vm.SerialLog(), 3000))
				}
			}
			t.Fatalf("timed out after %s: %+v", time.Since(start).Round(time.Second), byName)
		}
		time.Sleep(3 * time.Second)
	}
}

// phaseRow is one node's times, from its events (since the BMC's power-on).
type phaseRow struct {
	node, fw                                          string
	dhcp, agent, written, installed, firstBoot, ready time.Duration
	final                                             time.Duration
	phase                                             events.Phase
	rate                                              string // MB/s the agent reported
	instructions                                      int    // times the instructions were served
}

func phaseTimes(t *testing.T, st *site, nodes []imageNode, bmcs []*bmc) []phaseRow {
	t.Helper()
	rows := make([]phaseRow, len(nodes))
	rateRE := regexp.MustCompile(`\(([\d.]+) MB/s\)`)
	for i, in := range nodes {
		var d webui.NodeJSON
		if err := api(st.ns, "/api/v1/nodes/"+in.plan.Name+"?limit=2000", &d); err != nil {
			t.Fatal(err)
		}
		r := phaseRow{node: in.plan.Name, fw: in.fw.String(), phase: d.Phase}
		var on time.Time
		since := func(at time.Time) time.Duration {
			if on.IsZero() {
				return 0
			}
			return at.Sub(on).Round(time.Second)
		}
		first := map[string]bool{}
		for _, e := range d.Events {
			key := e.Type
			if s := e.Attrs["step"]; s != "" {
				key += "/" + s
			}
			if e.Type == "http.instructions" {
				r.instructions++
			}
			if first[key] {
				continue
			}
			first[key] = true
			switch {
			case e.Type == "bmc.power":
				on = e.At
			case strings.HasPrefix(e.Type, "dhcp.") && r.dhcp == 0:
				r.dhcp = since(e.At)
			case e.Type == "install.pre":
				r.agent = since(e.At)
			case e.Type == "install.post" && e.Attrs["step"] == "image":
				r.written = since(e.At)
				if m := rateRE.FindStringSubmatch(e.Detail); m != nil {
					r.rate = m[1]
				} else if v := e.Attrs["rate_mbps"]; v != "" {
					r.rate = v
				}
			case e.Type == "install.installed":
				r.installed = since(e.At)
			case e.Type == "install.first-boot":
				r.firstBoot = since(e.At)
			case e.Type == "install.ready":
				r.ready = since(e.At)
			case e.Phase.Final():
				r.final = since(e.At)
			}
		}
		rows[i] = r
	}
	return rows
}

// readFacts reads every node's stored facts from the state dir (read-only,
// beside the running serve).
func readFacts(t *testing.T, state string) map[string]*nodeapi.Facts {
	t.Helper()
	s, err := events.OpenReadOnly(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	states, err := s.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*nodeapi.Facts{}
	for _, n := range states {
		raw, _, ok, err := s.Facts(context.Background(), n.Name)
		if err != nil || !ok {
			continue
		}
		f := &nodeapi.Facts{}
		if err := json.Unmarshal(raw, f); err != nil {
			t.Errorf("%s: facts: %v", n.Name, err)
			continue
		}
		out[n.Name] = f
	}
	return out
}

func resultsTable(rows []phaseRow, importTime, total time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Debian 12 image (hack/image, 2 GiB, about 640 MiB of data) imported in %.0f s; three nodes at once from `racklift install --all` to their final state in %s (QEMU TCG, 1 vCPU and 1 GiB each, 2 host cores).\n\n", importTime.Seconds(), total.Round(time.Second))
	b.WriteString("| node | firmware | DHCP | agent running | image written | installed | first boot | ready | final | phase | write MB/s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.node, r.fw, r.dhcp, r.agent, r.written, r.installed, r.firstBoot, r.ready, r.final, r.phase, r.rate)
	}
	b.WriteString("\nTimes are since the BMC's power-on.\n")
	return b.String()
}

// writeResults replaces the image-install section of RESULTS.md (between
// its markers, appended if missing).
func writeResults(t *testing.T, path, table string) {
	t.Helper()
	const begin, end = "<!-- image-install:begin -->", "<!-- image-install:end -->"
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	section := begin + "\n### Image install (make test: TestImageInstall, " + time.Now().UTC().Format("2006-01-02") + ")\n\n" + table + end
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + section + s[j+len(end):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + section + "\n"
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// handoffLogin writes the hand-off from the verified nodes and logs into
// each of them over SSH with its deployment key and known_hosts (strict
// host key checking): the files kolla-ansible and cephadm will use work
// against the real installed systems.
func handoffLogin(ctx context.Context, t *testing.T, st *site, p *plan.Plan, nodes []imageNode) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "handoff")
	out, err := exec.CommandContext(ctx, st.bin, "handoff", "--plan", st.plan, "--secrets", st.secrets, "--state-dir", st.state, "-o", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("racklift handoff: %v\n%s", err, out)
	}
	t.Logf("racklift handoff: %s", bytes.TrimSpace(out))
	inventory, err := os.ReadFile(filepath.Join(dir, "kolla", "multinode"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range nodes {
		name := in.plan.Name
		listed := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\b`).Match(inventory)
		if verified := in.want == events.PhaseVerified; listed != verified {
			t.Errorf("%s (want %s) listed in kolla/multinode: %v\n%s", name, in.want, listed, inventory)
		}
		if in.want != events.PhaseVerified {
			continue
		}
		a, ok := in.plan.Provisioning()
		if !ok {
			t.Fatalf("%s has no provisioning address", name)
		}
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		got, err := st.ns.Run(sctx, "ssh", "-i", filepath.Join(dir, "ssh", "id_ed25519"),
			"-o", "UserKnownHostsFile="+filepath.Join(dir, "ssh", "known_hosts"), "-o", "StrictHostKeyChecking=yes",
			"-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
			"root@"+a.Addr.String(), "hostname; cat /sys/class/net/bond0.30/mtu").CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s: ssh with the hand-off's key and known_hosts: %v\n%s", name, err, got)
			continue
		}
		t.Logf("%s over ssh: %s", name, strings.Join(strings.Fields(string(got)), " "))
		if f := strings.Fields(string(got)); len(f) < 2 || f[0] != name || f[1] != "9000" {
			t.Errorf("%s over ssh: %q, want its hostname and the storage VLAN's MTU 9000", name, got)
		}
	}
	// kolla-ansible's own way in: Ansible with the inventory as written
	// (its ansible_host, key and known_hosts settings), every host listed.
	actx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	ping := st.ns.Run(actx, "ansible", "-i", filepath.Join(dir, "kolla", "multinode"), "all", "-m", "ping", "-o")
	ping.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_NOCOLOR=1")
	got, err := ping.CombinedOutput()
	t.Logf("ansible all -m ping:\n%s", bytes.TrimSpace(got))
	if err != nil {
		t.Errorf("ansible ping through the hand-off's inventory: %v", err)
	}
	for _, in := range nodes {
		if in.want == events.PhaseVerified && !regexp.MustCompile(regexp.QuoteMeta(in.plan.Name)+` \| SUCCESS`).Match(got) {
			t.Errorf("ansible did not reach %s", in.plan.Name)
		}
	}
}
