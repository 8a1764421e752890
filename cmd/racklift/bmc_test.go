package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/bmc"
)

// bmcTestNode is one node of a generated test plan.
type bmcTestNode struct {
	name   string
	role   string // default compute
	addr   string // BMC address; "" for a node without BMC
	port   int
	driver string // "" inherits defaults.bmc.driver (ipmi)
	secret string // "" inherits defaults.bmc.password_secret (bmc-lab)
	bios   string // extra YAML under the node's bios:, e.g. "boot_mode: legacy"
}

// bmcPlanYAML writes a lab-like plan (cluster "lab", defaults.bmc driver
// ipmi, user admin, password_secret bmc-lab) with the given nodes.
func bmcPlanYAML(nodes []bmcTestNode) string {
	var b strings.Builder
	b.WriteString(`cluster:
  name: lab
  domain: lab.racklift.test
  timezone: UTC
  ntp: [10.99.0.1]
  dns: [10.99.0.1]
  ssh_keys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx1bW9ja2tleWZvcnRoZWxhYm9ubHlub3RyZWFs engineer@laptop
  root_password_secret: root-hash
  profile: rocky9
  ha: false
networks:
  - name: mgmt
    purpose: management
    provisioning: true
    cidr: 10.99.0.0/24
    gateway: 10.99.0.1
    allocate:
      default: 10.99.0.100
  - name: bmc
    purpose: bmc
    cidr: 127.0.0.0/8
defaults:
  bmc:
    driver: ipmi
    user: admin
    password_secret: bmc-lab
  disks:
    os: {path: /dev/vda}
nodes:
`)
	for i, n := range nodes {
		role := n.role
		if role == "" {
			role = "compute"
		}
		fmt.Fprintf(&b, "  - name: %s\n    roles: [%s]\n    mac: 52:54:00:99:01:%02x\n", n.name, role, i+1)
		if n.addr != "" {
			fmt.Fprintf(&b, "    bmc: {address: %s", n.addr)
			if n.port != 0 {
				fmt.Fprintf(&b, ", port: %d", n.port)
			}
			if n.driver != "" {
				fmt.Fprintf(&b, ", driver: %s", n.driver)
			}
			if n.secret != "" {
				fmt.Fprintf(&b, ", password_secret: %s", n.secret)
			}
			b.WriteString("}\n")
		}
		if n.bios != "" {
			fmt.Fprintf(&b, "    bios: {%s}\n", n.bios)
		}
	}
	return b.String()
}

const bmcRootHash = "$6$labsalt1$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"

// bmcWriteFiles writes the plan and a 0600 secrets file into a temp dir.
func bmcWriteFiles(t *testing.T, nodes []bmcTestNode, secrets map[string]string) (planPath, secretsPath string) {
	t.Helper()
	dir := t.TempDir()
	planPath = filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planPath, []byte(bmcPlanYAML(nodes)), 0o644); err != nil {
		t.Fatal(err)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "root-hash: %q\n", bmcRootHash)
	for _, k := range slices.Sorted(maps.Keys(secrets)) {
		fmt.Fprintf(&s, "%s: %q\n", k, secrets[k])
	}
	secretsPath = filepath.Join(dir, "secrets.yaml")
	if err := os.WriteFile(secretsPath, []byte(s.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return planPath, secretsPath
}

// fakeBMCs is a set of fake BMCs keyed by node name; it records what the
// commands asked of them.
type fakeBMCs struct {
	mu       sync.Mutex
	targets  map[string]bmc.Target
	opts     []bmc.Options
	power    map[string]string
	boot     map[string]string // node -> "pxe efi=true persistent=false"
	bios     map[string]map[string]string
	stuck    map[string]map[string]string // node -> attribute -> the value its BMC writes whatever it is asked
	openErr  map[string]error
	callErr  map[string]error         // returned by every call after Open
	delay    map[string]time.Duration // before answering Open
	opens    map[string]int
	closes   map[string]int
	actions  []string // "node power off"
	inflight int
	peak     int
}

func newFakeBMCs() *fakeBMCs {
	return &fakeBMCs{targets: map[string]bmc.Target{}, power: map[string]string{}, boot: map[string]string{},
		bios: map[string]map[string]string{}, stuck: map[string]map[string]string{}, openErr: map[string]error{}, callErr: map[string]error{},
		delay: map[string]time.Duration{}, opens: map[string]int{}, closes: map[string]int{}}
}

func (f *fakeBMCs) factory(o bmc.Options) func(bmc.Target) bmc.Controller {
	f.mu.Lock()
	f.opts = append(f.opts, o)
	f.mu.Unlock()
	return func(t bmc.Target) bmc.Controller {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.targets[t.Node] = t
		return &fakeCtl{f: f, t: t}
	}
}

func (f *fakeBMCs) countActions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.actions)
}

type fakeCtl struct {
	f      *fakeBMCs
	t      bmc.Target
	opened bool
	closed bool
}

func (c *fakeCtl) Open(ctx context.Context) error {
	f := c.f
	f.mu.Lock()
	f.opens[c.t.Node]++
	f.inflight++
	f.peak = max(f.peak, f.inflight)
	d, err := f.delay[c.t.Node], f.openErr[c.t.Node]
	f.mu.Unlock()
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			return &bmc.Error{Node: c.t.Node, Op: "open", Kind: bmc.KindTimeout, Err: ctx.Err()}
		}
	}
	if err != nil {
		return err
	}
	c.opened = true
	return nil
}

func (c *fakeCtl) call(op string) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if !c.opened {
		return &bmc.Error{Node: c.t.Node, Op: op, Kind: bmc.KindInvalid, Err: errors.New("not open")}
	}
	c.f.actions = append(c.f.actions, c.t.Node+" "+op)
	return c.f.callErr[c.t.Node]
}

func (c *fakeCtl) PowerState(context.Context) (string, error) {
	if err := c.call("power status"); err != nil {
		return "", err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if s := c.f.power[c.t.Node]; s != "" {
		return s, nil
	}
	return "off", nil
}

func (c *fakeCtl) Power(_ context.Context, a bmc.PowerAction) error {
	if err := c.call("power " + string(a)); err != nil {
		return err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	switch a {
	case bmc.PowerOn, bmc.PowerCycle, bmc.PowerReset:
		c.f.power[c.t.Node] = "on"
	default:
		c.f.power[c.t.Node] = "off"
	}
	return nil
}

func (c *fakeCtl) SetBootDevice(_ context.Context, d bmc.BootDevice, o bmc.BootOptions) error {
	if err := c.call("bootdev"); err != nil {
		return err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.boot[c.t.Node] = fmt.Sprintf("%s efi=%t persistent=%t", d, o.EFI, o.Persistent)
	return nil
}

func (c *fakeCtl) BIOS(context.Context) (map[string]string, error) {
	if err := c.call("bios"); err != nil {
		return nil, err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	attrs, ok := c.f.bios[c.t.Node]
	if !ok {
		return nil, &bmc.Error{Node: c.t.Node, Op: "get bios", Kind: bmc.KindUnsupported, Err: errors.New("no BiosConfigurationGetter implementations found")}
	}
	return maps.Clone(attrs), nil
}

func (c *fakeCtl) SetBIOS(_ context.Context, attrs map[string]string) error {
	if err := c.call("set bios"); err != nil {
		return err
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	maps.Copy(c.f.bios[c.t.Node], attrs)
	maps.Copy(c.f.bios[c.t.Node], c.f.stuck[c.t.Node])
	return nil
}

func (c *fakeCtl) Inventory(context.Context) (bmc.Inventory, error) {
	if err := c.call("inventory"); err != nil {
		return bmc.Inventory{}, err
	}
	return bmc.Inventory{Vendor: "Fake", Model: "FK-1", Serial: "SN-" + c.t.Node, BMCFirmware: "1.0", MACs: []string{"52:54:00:00:00:01"}}, nil
}

func (c *fakeCtl) Provider() string {
	if c.opened {
		return "fake"
	}
	return ""
}

func (c *fakeCtl) Close(context.Context) error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.f.closes[c.t.Node]++
		c.f.inflight--
	}
	return nil
}

// bmcRun runs "racklift bmc ARGS..." in-process against fake BMCs.
type bmcRun struct {
	fake   *fakeBMCs
	vars   map[string]string
	stdin  string
	ttyIn  bool // stdin is a terminal
	ttyErr bool // stderr is a terminal
}

func (r bmcRun) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, lookupEnv: func(k string) (string, bool) { v, ok := r.vars[k]; return v, ok }}
	stdin := strings.NewReader(r.stdin)
	deps := bmcDeps{
		factory: r.fake.factory,
		stdin:   stdin,
		isTerminal: func(v any) bool {
			switch v {
			case stdin:
				return r.ttyIn
			case e.stderr:
				return r.ttyErr
			}
			return false
		},
	}
	e.log = slog.New(slog.NewTextHandler(&errb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	code = runBMCWith(context.Background(), append([]string{}, args...), e, deps)
	return code, out.String(), errb.String()
}

// bmcStdNodes: three nodes with an IPMI BMC (lab-03 legacy boot), one without.
func bmcStdNodes() []bmcTestNode {
	return []bmcTestNode{
		{name: "lab-01", role: "controller, database, messaging, network", addr: "127.0.0.1", port: 9001},
		{name: "lab-02", addr: "127.0.0.2", port: 9002},
		{name: "lab-03", addr: "127.0.0.3", port: 9003, bios: "boot_mode: legacy"},
		{name: "lab-04"},
	}
}

const bmcTestPassword = "Zq9-very-secret-pw"

func bmcStdFiles(t *testing.T) (string, string) {
	return bmcWriteFiles(t, bmcStdNodes(), map[string]string{"bmc-lab": bmcTestPassword})
}

func TestBMCSelection(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	base := []string{"--plan", planPath, "--secrets", secrets}
	cases := []struct {
		name  string
		args  []string
		vars  map[string]string
		code  int
		nodes []string // nodes contacted
		in    string
	}{
		{"names", []string{"status", "lab-02", "lab-01"}, nil, 0, []string{"lab-01", "lab-02"}, "2 ok, 0 failed"},
		{"role", []string{"status", "--role", "controller"}, nil, 0, []string{"lab-01"}, "1 ok, 0 failed"},
		{"roles", []string{"status", "--role", "controller,compute"}, nil, 0, []string{"lab-01", "lab-02", "lab-03"}, "3 ok, 0 failed, 1 skipped"},
		{"all", []string{"status", "--all"}, nil, 0, []string{"lab-01", "lab-02", "lab-03"}, "3 ok, 0 failed, 1 skipped"},
		{"nothing selected", []string{"status"}, nil, 2, nil, "select nodes"},
		{"two ways", []string{"status", "lab-01", "--all"}, nil, 2, nil, "one way only"},
		{"unknown node", []string{"status", "lab-01", "lab-99"}, nil, 2, nil, "no node named lab-99"},
		{"unknown role", []string{"status", "--role", "kitchen"}, nil, 2, nil, `unknown role "kitchen"`},
		{"empty role", []string{"status", "--role", "storage"}, nil, 2, nil, "no node in the plan has role storage"},
		{"RACKLIFT_ALL is ignored", []string{"status"}, map[string]string{"RACKLIFT_ALL": "true"}, 2, nil, "select nodes"},
		{"RACKLIFT_ROLE is ignored", []string{"status", "lab-01"}, map[string]string{"RACKLIFT_ROLE": "compute"}, 0, []string{"lab-01"}, "1 ok"},
		{"no plan", []string{"status", "--all"}, nil, 2, nil, "--plan FILE is required"},
		{"bad parallel", []string{"status", "--all", "--parallel", "0"}, nil, 2, nil, "--parallel 0"},
		{"bad action", []string{"power", "explode", "lab-01"}, nil, 2, nil, `want a power action (on, off, soft, cycle, reset), got "explode"`},
		{"no action", []string{"bootdev"}, nil, 2, nil, "want a boot device"},
		{"unknown subcommand", []string{"frob"}, nil, 2, nil, `unknown subcommand "frob"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeBMCs()
			args := append(append([]string{}, c.args...), base...)
			switch c.name {
			case "unknown subcommand":
				args = c.args
			case "no plan":
				args = append(append([]string{}, c.args...), "--secrets", secrets)
			}
			code, out, errs := bmcRun{fake: f, vars: c.vars}.run(t, args...)
			if code != c.code || !strings.Contains(out+errs, c.in) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, c.code, c.in, out, errs)
			}
			got := slices.Sorted(maps.Keys(f.opens))
			if !slices.Equal(got, c.nodes) {
				t.Errorf("contacted %v, want %v", got, c.nodes)
			}
		})
	}
}

func TestBMCPlanFromEnvAndExample(t *testing.T) {
	planPath, _ := bmcStdFiles(t)
	f := newFakeBMCs()
	// Plan path and password from the environment only.
	vars := map[string]string{"RACKLIFT_PLAN": planPath, "RACKLIFT_SECRET_BMC_LAB": "from-env",
		"RACKLIFT_SECRET_ROOT_HASH": bmcRootHash}
	code, out, errs := bmcRun{fake: f, vars: vars}.run(t, "status", "lab-02")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if pw := f.targets["lab-02"].Password; pw != "from-env" {
		t.Errorf("password %q, want the env secret", pw)
	}
	// The embedded lab example works like other commands' --plan.
	f = newFakeBMCs()
	code, out, errs = bmcRun{fake: f, vars: map[string]string{"RACKLIFT_SECRET_BMC_LAB": "pw", "RACKLIFT_SECRET_ROOT_HASH": bmcRootHash}}.
		run(t, "power", "on", "--all", "--plan", "example:lab")
	if code != 0 || len(f.opens) != 3 {
		t.Fatalf("exit %d opens %v\n%s%s", code, f.opens, out, errs)
	}
	if tg := f.targets["lab-03"]; tg.Address != "127.0.0.3" || tg.Port != 9003 || tg.Driver != bmc.DriverIPMI || tg.User != "admin" {
		t.Errorf("lab-03 target %v", tg)
	}
}

func TestBMCPowerConfirmation(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	base := []string{"--plan", planPath, "--secrets", secrets}
	cases := []struct {
		name    string
		args    []string
		r       bmcRun
		code    int
		actions int
		in      string
	}{
		{"off several, no terminal", []string{"power", "off", "--all"}, bmcRun{}, 2, 0, "Add --yes"},
		{"cycle by role, no terminal", []string{"power", "cycle", "--role", "compute"}, bmcRun{}, 2, 0, "refusing to power cycle 2 nodes"},
		{"reset two names", []string{"power", "reset", "lab-01", "lab-02"}, bmcRun{}, 2, 0, "refusing"},
		{"soft several", []string{"power", "soft", "lab-01", "lab-02"}, bmcRun{}, 2, 0, "refusing"},
		{"off several --yes", []string{"power", "off", "--all", "--yes"}, bmcRun{}, 0, 6, "3 ok, 0 failed, 1 skipped"},
		{"RACKLIFT_YES is ignored", []string{"power", "off", "--all"}, bmcRun{vars: map[string]string{"RACKLIFT_YES": "true"}}, 2, 0, "refusing"},
		{"off one node", []string{"power", "off", "lab-02"}, bmcRun{}, 0, 2, "1 ok, 0 failed"},
		{"off one node with BMC among skipped", []string{"power", "off", "lab-02", "lab-04"}, bmcRun{}, 0, 2, "1 ok, 0 failed, 1 skipped"},
		{"on several", []string{"power", "on", "--all"}, bmcRun{}, 0, 6, "3 ok"},
		{"terminal, right name", []string{"power", "off", "--all"}, bmcRun{ttyIn: true, stdin: "lab\n"}, 0, 6, `Type the cluster name`},
		{"terminal, wrong name", []string{"power", "off", "--all"}, bmcRun{ttyIn: true, stdin: "yes\n"}, 2, 0, "did not match"},
		{"terminal, end of input", []string{"power", "off", "--all"}, bmcRun{ttyIn: true, stdin: ""}, 2, 0, "did not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.r
			r.fake = newFakeBMCs()
			code, out, errs := r.run(t, append(append([]string{}, c.args...), base...)...)
			if code != c.code || !strings.Contains(out+errs, c.in) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, c.code, c.in, out, errs)
			}
			if n := r.fake.countActions(); n != c.actions {
				t.Errorf("%d BMC calls, want %d: %v", n, c.actions, r.fake.actions)
			}
			if c.code == 2 && len(r.fake.opens) != 0 {
				t.Errorf("BMCs contacted although refused: %v", r.fake.opens)
			}
		})
	}
}

func TestBMCSummaryAndExitCodes(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	f := newFakeBMCs()
	f.openErr["lab-02"] = &bmc.Error{Node: "lab-02", Op: "open", Kind: bmc.KindAuth, Err: errors.New("RAKP 2 HMAC is invalid")}
	f.openErr["lab-03"] = &bmc.Error{Node: "lab-03", Op: "open", Kind: bmc.KindUnreachable, Err: errors.New("no answer to an IPMI RMCP request on 127.0.0.3:9003/udp")}
	code, out, errs := bmcRun{fake: f}.run(t, "status", "--all", "--plan", planPath, "--secrets", secrets)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errs)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
	for _, want := range []string{
		"NODE    BMC                  REACHABLE  CREDENTIALS  POWER  PROVIDER  MODEL/SERIAL    TOOK",
		"lab-01  ipmi 127.0.0.1:9001  yes        yes          off    fake      FK-1/SN-lab-01",
		"lab-02  ipmi 127.0.0.2:9002  yes        no           -      -",
		"lab-03  ipmi 127.0.0.3:9003  no         ?            -      -",
		"lab-04  none                 -          -            -      -",
		"1 ok, 2 failed, 1 skipped (no BMC)",
		"lab-02  auth         open: auth: RAKP 2 HMAC is invalid",
		"lab-03  unreachable  open: unreachable: no answer to an IPMI RMCP request",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	// Non-terminal progress: one line per finished node.
	for _, want := range []string{"] lab-04 skipped: no BMC in the plan", "] lab-02 failed (auth) in", "] lab-01 ok in"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if n := strings.Count(errs, "racklift bmc: ["); n != 4 {
		t.Errorf("%d progress lines, want 4", n)
	}
	for _, n := range []string{"lab-01", "lab-02", "lab-03"} {
		if f.closes[n] != 1 {
			t.Errorf("%s closed %d times", n, f.closes[n])
		}
	}

	// A failure after Open (the BMC said no to the power action).
	f = newFakeBMCs()
	f.callErr["lab-01"] = &bmc.Error{Node: "lab-01", Op: "power on", Kind: bmc.KindBMC, Err: errors.New("node busy")}
	code, out, _ = bmcRun{fake: f}.run(t, "power", "on", "lab-01", "lab-02", "--plan", planPath, "--secrets", secrets)
	if code != 1 || !strings.Contains(out, "1 ok, 1 failed") || !strings.Contains(out, "lab-01  bmc  power on: bmc: node busy") {
		t.Errorf("exit %d\n%s", code, out)
	}
	// Only skipped nodes: nothing failed.
	code, out, _ = bmcRun{fake: newFakeBMCs()}.run(t, "power", "off", "lab-04", "--plan", planPath, "--secrets", secrets)
	if code != 0 || !strings.Contains(out, "0 ok, 0 failed, 1 skipped") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestBMCTerminalProgressBar(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	code, out, errs := bmcRun{fake: newFakeBMCs(), ttyErr: true}.run(t, "status", "--all", "--plan", planPath, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "\r\x1b[K[") || !strings.Contains(errs, "4/4 nodes  3 ok  0 failed") || strings.Contains(errs, "racklift bmc: [") {
		t.Errorf("stderr %q", errs)
	}
	if !strings.HasSuffix(errs, "\r\x1b[K") {
		t.Errorf("bar not cleared at the end: %q", errs)
	}
}

// bmcJSONOut mirrors the JSON output for tests.
type bmcJSONOut struct {
	Command string `json:"command"`
	Action  string `json:"action"`
	Cluster string `json:"cluster"`
	Nodes   []struct {
		Node          string    `json:"node"`
		BMC           string    `json:"bmc"`
		Status        string    `json:"status"`
		Kind          string    `json:"kind"`
		Reason        string    `json:"reason"`
		Provider      string    `json:"provider"`
		Started       time.Time `json:"started"`
		DurationMS    float64   `json:"duration_ms"`
		Reachable     *bool     `json:"reachable"`
		CredentialsOK *bool     `json:"credentials_ok"`
		Power         string    `json:"power"`
		Boot          *struct {
			Device     string `json:"device"`
			EFI        bool   `json:"efi"`
			Persistent bool   `json:"persistent"`
		} `json:"boot"`
		Inventory *struct {
			Model  string `json:"model"`
			Serial string `json:"serial"`
		} `json:"inventory"`
		BIOS map[string]string `json:"bios"`
		Diff *struct {
			Family    string `json:"family"`
			Converged bool   `json:"converged"`
			Entries   []struct {
				Setting, Attribute, Want, Before, Got, Status, Note string
			} `json:"entries"`
		} `json:"diff"`
	} `json:"nodes"`
	Summary struct{ OK, Failed, Skipped int } `json:"summary"`
}

func decodeBMCJSON(t *testing.T, out string) bmcJSONOut {
	t.Helper()
	var j bmcJSONOut
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&j); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	return j
}

func TestBMCJSON(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	f := newFakeBMCs()
	f.openErr["lab-03"] = &bmc.Error{Node: "lab-03", Op: "open", Kind: bmc.KindAuth, Err: errors.New("unauthorized name")}
	code, out, errs := bmcRun{fake: f}.run(t, "status", "--all", "--json", "--plan", planPath, "--secrets", secrets)
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	j := decodeBMCJSON(t, out)
	if j.Command != "status" || j.Cluster != "lab" || len(j.Nodes) != 4 || j.Summary.OK != 2 || j.Summary.Failed != 1 || j.Summary.Skipped != 1 {
		t.Fatalf("%+v", j)
	}
	n1, n3, n4 := j.Nodes[0], j.Nodes[2], j.Nodes[3]
	if n1.Status != "ok" || n1.Power != "off" || n1.Provider != "fake" || n1.Inventory == nil || n1.Inventory.Model != "FK-1" ||
		!*n1.Reachable || !*n1.CredentialsOK || n1.Started.IsZero() || n1.BMC != "ipmi 127.0.0.1:9001" {
		t.Errorf("lab-01: %+v", n1)
	}
	if n3.Status != "failed" || n3.Kind != "auth" || !strings.Contains(n3.Reason, "unauthorized name") || !*n3.Reachable || *n3.CredentialsOK {
		t.Errorf("lab-03: %+v", n3)
	}
	if n4.Status != "skipped" || n4.Reason != "no BMC in the plan" || !n4.Started.IsZero() || n4.Reachable != nil {
		t.Errorf("lab-04: %+v", n4)
	}
	if !strings.Contains(errs, "2 ok, 1 failed, 1 skipped") {
		t.Errorf("no summary on stderr: %s", errs)
	}
}

func TestBMCBootdev(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	base := []string{"--plan", planPath, "--secrets", secrets}
	cases := []struct {
		args []string
		want map[string]string
		code int
	}{
		{[]string{"pxe", "--all"}, map[string]string{"lab-01": "pxe efi=true persistent=false", "lab-02": "pxe efi=true persistent=false", "lab-03": "pxe efi=false persistent=false"}, 0},
		{[]string{"disk", "lab-03", "--efi", "--persistent"}, map[string]string{"lab-03": "disk efi=true persistent=true"}, 0},
		{[]string{"pxe", "lab-01", "--legacy", "--once"}, map[string]string{"lab-01": "pxe efi=false persistent=false"}, 0},
		{[]string{"pxe", "lab-01", "--once", "--persistent"}, map[string]string{}, 2},
		{[]string{"pxe", "lab-01", "--efi", "--legacy"}, map[string]string{}, 2},
		{[]string{"floppy", "lab-01"}, map[string]string{}, 2},
	}
	for _, c := range cases {
		f := newFakeBMCs()
		code, out, errs := bmcRun{fake: f}.run(t, append(append([]string{"bootdev"}, c.args...), base...)...)
		if code != c.code || !maps.Equal(f.boot, c.want) {
			t.Errorf("%v: exit %d boot %v, want %d %v\n%s%s", c.args, code, f.boot, c.code, c.want, out, errs)
		}
	}
	f := newFakeBMCs()
	code, out, _ := bmcRun{fake: f}.run(t, append([]string{"bootdev", "pxe", "lab-03", "lab-02"}, base...)...)
	if code != 0 || !strings.Contains(out, "lab-02  ipmi 127.0.0.2:9002  pxe     uefi    once") ||
		!strings.Contains(out, "lab-03  ipmi 127.0.0.3:9003  pxe     legacy  once") {
		t.Errorf("exit %d\n%s", code, out)
	}
	code, out, _ = bmcRun{fake: newFakeBMCs()}.run(t, append([]string{"bootdev", "pxe", "lab-03", "--json"}, base...)...)
	if j := decodeBMCJSON(t, out); code != 0 || j.Nodes[0].Boot == nil || j.Nodes[0].Boot.EFI || j.Nodes[0].Boot.Device != "pxe" {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestBMCBIOS(t *testing.T) {
	nodes := bmcStdNodes()
	nodes[0].bios = "virtualization: true, attributes: {SriovGlobalEnable: Enabled}"
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword})
	base := []string{"--plan", planPath, "--secrets", secrets}
	dell := func() map[string]string {
		return map[string]string{"SysProfile": "PerfOptimized", "BootMode": "Bios", "ProcVirtualization": "Disabled", "SriovGlobalEnable": "Disabled"}
	}

	// show: current attributes; lab-02 speaks IPMI only (unsupported).
	f := newFakeBMCs()
	f.bios["lab-01"] = dell()
	code, out, _ := bmcRun{fake: f}.run(t, append([]string{"bios", "show", "lab-01", "lab-02"}, base...)...)
	if code != 1 || !strings.Contains(out, "lab-01  ProcVirtualization  Disabled") || !strings.Contains(out, "lab-02  unsupported") {
		t.Errorf("show: exit %d\n%s", code, out)
	}

	// show --dry-run: the planned diff, nothing written.
	code, out, _ = bmcRun{fake: f}.run(t, append([]string{"bios", "show", "--dry-run", "lab-01", "--json"}, base...)...)
	j := decodeBMCJSON(t, out)
	if code != 0 || j.Nodes[0].Diff == nil || j.Nodes[0].Diff.Family != "dell" || len(j.Nodes[0].Diff.Entries) != 3 {
		t.Fatalf("dry-run: exit %d\n%s", code, out)
	}
	for _, en := range j.Nodes[0].Diff.Entries {
		if en.Status != string(bmc.StatusWouldChange) {
			t.Errorf("dry-run entry %+v", en)
		}
	}
	if f.bios["lab-01"]["BootMode"] != "Bios" || slices.Contains(f.actions, "lab-01 set bios") {
		t.Errorf("dry run wrote: %v", f.actions)
	}

	// apply: written, read back, diff shown.
	code, out, errs := bmcRun{fake: f}.run(t, append([]string{"bios", "apply", "lab-01"}, base...)...)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"NODE    FAMILY  SETTING         ATTRIBUTE           BEFORE    WANT     GOT      STATUS   NOTE",
		"lab-01  dell    BootMode        BootMode            Bios      Uefi     Uefi     changed  -",
		"lab-01  dell    Virtualization  ProcVirtualization  Disabled  Enabled  Enabled  changed  -",
		"lab-01  dell    Attributes      SriovGlobalEnable   Disabled  Enabled  Enabled  changed  -",
		"1 ok, 0 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	if f.bios["lab-01"]["BootMode"] != "Uefi" {
		t.Errorf("not applied: %v", f.bios["lab-01"])
	}
	// Applying again: everything matches.
	code, out, _ = bmcRun{fake: f}.run(t, append([]string{"bios", "apply", "lab-01", "--json"}, base...)...)
	if j := decodeBMCJSON(t, out); code != 0 || !j.Nodes[0].Diff.Converged {
		t.Errorf("second apply: exit %d\n%s", code, out)
	}
	// IPMI-only BMC: unsupported is a failed node with a clear kind.
	code, out, _ = bmcRun{fake: newFakeBMCs()}.run(t, append([]string{"bios", "apply", "lab-02"}, base...)...)
	if code != 1 || !strings.Contains(out, "lab-02  dell") && !strings.Contains(out, "lab-02  unknown  BootMode") || !strings.Contains(out, "lab-02  unsupported") {
		t.Errorf("apply over IPMI: exit %d\n%s", code, out)
	}
}

func TestBMCInventory(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	code, out, _ := bmcRun{fake: newFakeBMCs()}.run(t, "inventory", "lab-01", "--plan", planPath, "--secrets", secrets)
	if code != 0 || !strings.Contains(out, "lab-01  Fake    FK-1   SN-lab-01  1.0     -     52:54:00:00:00:01  fake      ok") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestBMCSecretsNeverPrinted(t *testing.T) {
	nodes := bmcStdNodes()
	nodes[1].secret = "bmc-other"
	nodes = append(nodes, bmcTestNode{name: "lab-05", addr: "bmc5.lab.racklift.test", driver: "auto"})
	const other = "0ther-s3cret-value"
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword, "bmc-other": other})
	leak := func(node, pw string) error {
		// A misbehaving provider that echoes the password.
		return &bmc.Error{Node: node, Op: "open", Kind: bmc.KindAuth, Err: fmt.Errorf("login as admin:%s refused", pw)}
	}
	for _, args := range [][]string{
		{"status", "--all"},
		{"status", "--all", "--json"},
		{"power", "off", "--all", "--yes"},
		{"bios", "apply", "--all", "--json"},
		{"inventory", "--all"},
	} {
		f := newFakeBMCs()
		f.openErr["lab-01"] = leak("lab-01", bmcTestPassword)
		f.openErr["lab-02"] = leak("lab-02", other)
		f.callErr["lab-03"] = fmt.Errorf("bmc said %s", bmcTestPassword)
		r := bmcRun{fake: f}
		code, out, errs := r.run(t, append(args, "--plan", planPath, "--secrets", secrets)...)
		if code != 1 {
			t.Errorf("%v: exit %d", args, code)
		}
		all := out + errs
		if strings.Contains(all, bmcTestPassword) || strings.Contains(all, other) {
			t.Errorf("%v: a password was printed:\n%s", args, all)
		}
		if !strings.Contains(all, "[redacted]") {
			t.Errorf("%v: no redaction marker:\n%s", args, all)
		}
		// The BMC layer does get the passwords.
		if f.targets["lab-01"].Password != bmcTestPassword || f.targets["lab-02"].Password != other {
			t.Errorf("passwords not passed to the targets")
		}
		// Driver auto: no port (Target.Validate's rule), though the plan fills in 623.
		if tg := f.targets["lab-05"]; tg.Driver != bmc.DriverAuto || tg.Port != 0 || tg.Validate() != nil {
			t.Errorf("auto target %#v: %v", tg, tg.Validate())
		}
		if tg := f.targets["lab-02"]; tg.Port != 9002 || tg.Validate() != nil {
			t.Errorf("ipmi target %#v", tg)
		}
	}
}

// bmcNoGoroutineLeak fails t if more goroutines than before are still
// running a moment after a command returned.
func bmcNoGoroutineLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left running (had %d before):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBMCPerNodeTimeout(t *testing.T) {
	planPath, secrets := bmcStdFiles(t)
	before := runtime.NumGoroutine()
	defer bmcNoGoroutineLeak(t, before)
	f := newFakeBMCs()
	f.delay["lab-02"] = 10 * time.Second
	start := time.Now()
	code, out, errs := bmcRun{fake: f}.run(t, "power", "on", "lab-01", "lab-02", "--timeout", "200ms", "--plan", planPath, "--secrets", secrets)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
	if code != 1 || !strings.Contains(out, "lab-02  timeout") || !strings.Contains(out, "1 ok, 1 failed") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
	if f.closes["lab-02"] != 1 {
		t.Errorf("timed-out node closed %d times", f.closes["lab-02"])
	}
	if o := f.opts[0]; o.PerCallTimeout != 200*time.Millisecond || o.Log == nil {
		t.Errorf("options %+v", o)
	}
}

func TestBMCParallelAndStaggerFake(t *testing.T) {
	var nodes []bmcTestNode
	for i := 1; i <= 8; i++ {
		nodes = append(nodes, bmcTestNode{name: fmt.Sprintf("n-%02d", i), addr: fmt.Sprintf("127.0.0.%d", 10+i), port: 623})
	}
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": "pw"})
	f := newFakeBMCs()
	for _, n := range nodes {
		f.delay[n.name] = 60 * time.Millisecond
	}
	const stagger = 30 * time.Millisecond
	code, out, errs := bmcRun{fake: f}.run(t, "power", "on", "--all", "--parallel", "2", "--stagger", stagger.String(), "--json", "--plan", planPath, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	j := decodeBMCJSON(t, out)
	var starts []time.Time
	for _, n := range j.Nodes {
		starts = append(starts, n.Started)
	}
	slices.SortFunc(starts, time.Time.Compare)
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < stagger-time.Millisecond {
			t.Errorf("gap %d = %v < %v", i, gap, stagger)
		}
	}
	if f.peak > 2 {
		t.Errorf("peak in flight %d > 2", f.peak)
	}
}

func TestBMCHelp(t *testing.T) {
	code, out, _ := bmcRun{fake: newFakeBMCs()}.run(t, "help")
	if code != 0 || !strings.Contains(out, "racklift bmc power on|off|soft|cycle|reset") {
		t.Errorf("exit %d\n%s", code, out)
	}
	code, _, errs := bmcRun{fake: newFakeBMCs()}.run(t, "power", "-h")
	if code != 0 || !strings.Contains(errs, "-yes") {
		t.Errorf("exit %d\n%s", code, errs)
	}
	// Through the top-level dispatcher.
	var o, e bytes.Buffer
	code = run(context.Background(), []string{"bmc"}, &env{stdout: &o, stderr: &e, lookupEnv: func(string) (string, bool) { return "", false }})
	if code != 2 || !strings.Contains(e.String(), "racklift bmc status") {
		t.Errorf("exit %d\n%s", code, e.String())
	}
}

func TestBMCEmptyPasswordIsInvalid(t *testing.T) {
	nodes := bmcStdNodes()
	nodes[1].secret = "bmc-empty"
	planPath, secrets := bmcWriteFiles(t, nodes, map[string]string{"bmc-lab": bmcTestPassword, "bmc-empty": ""})
	f := newFakeBMCs()
	code, out, errs := bmcRun{fake: f}.run(t, "status", "lab-01", "lab-02", "--plan", planPath, "--secrets", secrets)
	if code != 1 || !strings.Contains(out, "lab-02  invalid") || !strings.Contains(out, "1 ok, 1 failed") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if _, contacted := f.opens["lab-02"]; contacted || f.opens["lab-01"] != 1 {
		t.Errorf("opens %v", f.opens)
	}
	if !strings.Contains(errs, "lab-02 failed (invalid) (not started): BMC password secret \"bmc-empty\" is not set") {
		t.Errorf("stderr:\n%s", errs)
	}
}
