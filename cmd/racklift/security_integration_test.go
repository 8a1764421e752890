//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/webui"
)

// secPlan is one node on the provisioning network of the test segment;
// the site's own DHCP server (dnsmasq in another namespace) hands out the
// addresses and racklift runs as proxyDHCP, as on a customer LAN.
const secPlan = `cluster:
  name: sec
  profile: testbed
  ha: false
  root_password_secret: root-hash
  ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecTestKeySecTestKeySecTestKeySec00 t"]
networks:
  - {name: prov, purpose: management, provisioning: true, cidr: 10.99.0.0/24, gateway: 10.99.0.1, dns: [10.99.0.1], allocate: {default: 10.99.0.100}}
defaults: {disks: {os: {path: /dev/vda}}}
nodes:
  - {name: sec-01, roles: [compute], mac: "52:54:00:99:5e:01"}
`

const (
	secMAC      = "52:54:00:99:5e:01"
	secRootHash = "$6$secsalt0$Wm8Tq3Yk0hS1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6A7B8C9D0E1F2G3H4I5J6"
)

// udhcpcScript applies the lease to the interface (busybox udhcpc).
const udhcpcScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	echo "$ip" > "$(dirname "$0")/ip.$interface"
	;;
esac
exit 0
`

// lanHost is a machine of the test segment.
type lanHost struct {
	t  *testing.T
	ns *testbed.Netns
	ip string
}

// dhcp gets an address from the site's DHCP server with the host's NIC.
func (h *lanHost) dhcp(ctx context.Context) {
	h.t.Helper()
	dir := h.t.TempDir()
	script := filepath.Join(dir, "udhcpc.sh")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		h.t.Fatal(err)
	}
	out, err := h.ns.Run(ctx, "busybox", "udhcpc", "-i", testbed.HostNIC, "-f", "-q", "-n", "-t", "5", "-T", "1", "-A", "1", "-s", script).CombinedOutput()
	if err != nil {
		h.t.Fatalf("udhcpc in %s: %v\n%s", h.ns.Name, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ip."+testbed.HostNIC))
	if err != nil {
		h.t.Fatalf("udhcpc in %s: no lease: %v\n%s", h.ns.Name, err, out)
	}
	h.ip = strings.TrimSpace(string(b))
}

// http does one request with curl and returns the status and body (0
// when it could not connect).
func (h *lanHost) http(ctx context.Context, method, url string, hdr ...string) (int, string) {
	h.t.Helper()
	out := filepath.Join(h.t.TempDir(), "body")
	args := []string{"-s", "-o", out, "-w", "%{http_code}", "-X", method, "--max-time", "10"}
	for _, v := range hdr {
		args = append(args, "-H", v)
	}
	if method == "POST" {
		args = append(args, "--data", `{"percent":50,"detail":"test"}`)
	}
	code, err := h.ns.Run(ctx, "curl", append(args, url)...).Output()
	if err != nil && !strings.HasPrefix(string(code), "000") {
		h.t.Fatalf("curl %s %s from %s: %v", method, url, h.ns.Name, err)
	}
	body, _ := os.ReadFile(out)
	var c int
	fmt.Sscanf(string(code), "%d", &c)
	return c, string(body)
}

// TestLANStrangerCannotTakeOrUndoAnInstall replays the outside probe of
// issue 21 against a real racklift serve in proxy mode, beside the site's
// DHCP server: a second machine on the LAN ("the stranger", its own
// namespace) cannot get the node's install files after fetching its boot
// script, cannot move its timeline with media fetches, cannot get them by
// spoofing its MAC once the node has them, and cannot send the installed
// node back to install; the admin API refuses cross-site requests. Each
// step succeeded for the stranger before the fix.
func TestLANStrangerCannotTakeOrUndoAnInstall(t *testing.T) {
	for _, b := range []string{"dnsmasq", "curl", "busybox"} {
		if _, err := exec.LookPath(b); err != nil {
			testbed.SkipOrFail(t, "%s not installed (make deps): %v", b, err)
		}
	}
	bin := buildRacklift(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := t.TempDir()
	ns := testbed.NewNetns(t, "sec", "10.99.0.1/24")
	site := testbed.NewNetns(t, "ssite", "10.99.0.2/24")
	if err := ns.Connect(site); err != nil {
		t.Fatal(err)
	}
	testbed.SiteDHCP(ctx, t, site, work)
	node := &lanHost{t: t, ns: testbed.NewHost(t, "snode", ns)}
	stranger := &lanHost{t: t, ns: testbed.NewHost(t, "sstr", ns)}
	if out, err := node.ns.Run(ctx, "ip", "link", "set", testbed.HostNIC, "address", secMAC).CombinedOutput(); err != nil {
		t.Fatalf("set the node's MAC: %v %s", err, out)
	}

	media := filepath.Join(work, "media")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"vmlinuz", "initrd.gz"} {
		if err := os.WriteFile(filepath.Join(media, f), []byte("not a kernel: "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	planFile := filepath.Join(work, "plan.yaml")
	secrets := filepath.Join(work, "secrets.yaml")
	if err := os.WriteFile(planFile, []byte(secPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secrets, []byte("root-hash: \""+secRootHash+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	profiles, _ := filepath.Abs("../../hack/e2e/testdata/profiles")
	state := filepath.Join(work, "state")
	logPath := filepath.Join(work, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	serve := ns.Run(ctx, bin, "serve", "--plan", planFile, "--secrets", secrets, "--interface", "br0", "--dhcp-mode", "proxy",
		"--no-ra", "--profiles-dir", profiles, "--media", "testbed="+media, "--admin-listen", "127.0.0.1:8081", "--state-dir", state)
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = serve.Wait(); logf.Close() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve.log:\n%s", testbed.Tail(logPath, 60))
		}
	})
	admin := &lanHost{t: t, ns: ns}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, _ := admin.http(ctx, "GET", "http://127.0.0.1:8081/healthz"); c == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("racklift serve did not come up:\n%s", testbed.Tail(logPath, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	const srv = "http://10.99.0.1:8080"
	ks := srv + "/ks/" + secMAC
	script := srv + "/ipxe/" + secMAC + "/boot.ipxe"
	kernel := srv + "/media/testbed/vmlinuz"
	nodeState := func() webui.NodeJSON {
		t.Helper()
		_, body := admin.http(ctx, "GET", "http://127.0.0.1:8081/api/v1/nodes/sec-01?limit=500")
		var d webui.NodeJSON
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatalf("node state: %v: %s", err, body)
		}
		return d
	}
	kernelEventsFrom := func(ip string) int {
		n := 0
		for _, e := range nodeState().Events {
			if e.Type == "http.kernel" && e.Attrs["client"] == ip {
				n++
			}
		}
		return n
	}

	// Both machines get addresses from the site's DHCP server; racklift
	// sees the node's DHCPREQUEST (its MAC is in the plan).
	node.dhcp(ctx)
	stranger.dhcp(ctx)
	t.Logf("node %s, stranger %s", node.ip, stranger.ip)
	time.Sleep(500 * time.Millisecond) // DHCP events are stored just after the reply

	// 1. The boot script is public (and holds no secret); fetching it
	// binds nothing: the node's install files stay the node's.
	if c, body := stranger.http(ctx, "GET", script); c != 200 || strings.Contains(body, "token") {
		t.Fatalf("boot script to anyone: %d %q", c, body)
	}
	for _, u := range []string{ks, srv + "/ci/" + secMAC + "/user-data"} {
		if c, body := stranger.http(ctx, "GET", u); c != 403 || strings.Contains(body, secRootHash) {
			t.Errorf("stranger after the boot script: GET %s: %d (want 403)", u, c)
		}
	}
	// Its media fetches do not move the node's timeline; the node's do.
	if c, _ := stranger.http(ctx, "GET", kernel); c != 200 {
		t.Fatalf("media to the stranger: %d", c)
	}
	node.http(ctx, "GET", script)
	node.http(ctx, "GET", kernel)
	if n := kernelEventsFrom(stranger.ip); n != 0 {
		t.Errorf("the stranger's media fetch moved the node's timeline (%d kernel events)", n)
	}
	if n := kernelEventsFrom(node.ip); n != 1 {
		t.Errorf("the node's own kernel fetch: %d kernel events, want 1", n)
	}

	// 2. The node (its address from its own DHCP exchange) gets its config.
	c, body := node.http(ctx, "GET", ks)
	if c != 200 || !strings.Contains(body, "sec-01") {
		t.Fatalf("node's own kickstart: %d", c)
	}
	m := regexp.MustCompile(`X-Racklift-Token: ([A-Za-z0-9._~-]+)`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no token in the kickstart")
	}
	token := "X-Racklift-Token: " + m[1]
	jsonCT := "Content-Type: application/json"
	for _, ph := range []string{"pre", "installed"} {
		if c, _ := node.http(ctx, "POST", srv+"/phone-home/"+secMAC+"/"+ph, token, jsonCT); c != 204 {
			t.Fatalf("node callback %s: %d", ph, c)
		}
	}
	// The right token from another address is refused.
	if c, _ := stranger.http(ctx, "POST", srv+"/phone-home/"+secMAC+"/error", token, jsonCT); c != 403 {
		t.Errorf("the node's token from the stranger's address: %d, want 403", c)
	}

	// 3. A stranger that spoofs the node's MAC in DHCP after the node got
	// its files gets nothing: this attempt's files went to the node.
	if out, err := stranger.ns.Run(ctx, "ip", "link", "set", testbed.HostNIC, "address", "52:54:00:99:5e:ff").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	spoof := &lanHost{t: t, ns: testbed.NewHost(t, "sspoof", ns)}
	if out, err := spoof.ns.Run(ctx, "ip", "link", "set", testbed.HostNIC, "address", secMAC).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	// It names an address of its own in a DHCPREQUEST with the node's MAC
	// (racklift sees that, as it sees the node's), then uses it. (With the
	// node's own address too, it would be the node for every L2/L3 means
	// racklift has: see the README's security section.)
	spoof.ip = "10.99.0.190"
	_, _ = spoof.ns.Run(ctx, "busybox", "udhcpc", "-i", testbed.HostNIC, "-f", "-q", "-n", "-t", "2", "-T", "1", "-r", spoof.ip, "-s", "/bin/true").CombinedOutput()
	if out, err := spoof.ns.Run(ctx, "ip", "addr", "add", spoof.ip+"/24", "dev", testbed.HostNIC).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	time.Sleep(500 * time.Millisecond)
	if c, _ := spoof.http(ctx, "GET", ks); c != 403 {
		t.Errorf("MAC spoofer after the node got its files: %d, want 403", c)
	}
	for _, e := range nodeState().Events {
		if e.Type == "security.config-refused" && e.Attrs["client"] == spoof.ip {
			t.Logf("refused: %s", e.Detail)
		}
	}

	// 4. The node becomes ready; after that nobody, not even the node's
	// own address with its old token, can undo the install.
	for _, ph := range []string{"first-boot", "ready"} {
		if c, _ := node.http(ctx, "POST", srv+"/phone-home/"+secMAC+"/"+ph, token, jsonCT); c != 204 {
			t.Fatalf("node callback %s: %d", ph, c)
		}
	}
	if st := nodeState(); st.Phase != "ready" && st.Phase != "verified" && st.Phase != "mismatch" {
		t.Fatalf("node phase %s after ready", st.Phase)
	}
	installed := nodeState().Phase
	for _, h := range []*lanHost{stranger, spoof, node} {
		if c, body := h.http(ctx, "GET", script); c != 200 || !strings.Contains(body, "installed") {
			t.Errorf("boot script for an installed node (to %s): %d %q, want the local-boot script", h.ns.Name, c, body)
		}
		if c, _ := h.http(ctx, "GET", ks); c != 403 {
			t.Errorf("%s: kickstart of a ready node: %d, want 403", h.ns.Name, c)
		}
		if c, _ := h.http(ctx, "POST", srv+"/phone-home/"+secMAC+"/error", token, jsonCT); c != 403 {
			t.Errorf("%s: error callback to a ready node: %d, want 403", h.ns.Name, c)
		}
	}
	if st := nodeState(); st.Phase != installed {
		t.Errorf("the installed node moved from %s to %s", installed, st.Phase)
	}

	// 5. The admin API (loopback, inside racklift's namespace) refuses what
	// another web page could send.
	reinstall := "http://127.0.0.1:8081/api/v1/nodes/sec-01/reinstall"
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"cross-site Origin", []string{"Origin: http://evil.example", jsonCT}, 403},
		{"text/plain (form)", []string{"Origin: http://evil.example", "Content-Type: text/plain"}, 415},
		{"DNS rebinding", []string{"Host: evil.example:8081", jsonCT}, 421},
		{"no token", []string{jsonCT}, 401},
	} {
		if c, _ := admin.http(ctx, "POST", reinstall, tc.hdr...); c != tc.want {
			t.Errorf("admin API, %s: %d, want %d", tc.name, c, tc.want)
		}
	}
	if c, _ := admin.http(ctx, "GET", "http://127.0.0.1:8081/api/v1/cluster", "Host: evil.example:8081"); c != 421 {
		t.Errorf("admin API read through DNS rebinding: %d, want 421", c)
	}
	if st := nodeState(); st.Phase != installed {
		t.Errorf("the node moved to %s", st.Phase)
	}
	var refused int
	for _, e := range nodeState().Events {
		if strings.HasPrefix(e.Type, "security.") {
			refused++
		}
	}
	if refused == 0 {
		t.Error("no security event recorded for the refusals")
	}
}
