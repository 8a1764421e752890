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
