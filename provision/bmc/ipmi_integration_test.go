//go:build integration

// Integration tests against real OpenIPMI ipmi_sim BMCs on 127.0.0.1,
// driven through bmclib's ipmitool provider. Run (as root or not):
//
//	go test -tags integration -run IPMISim -v ./provision/bmc/
//
// Needs Debian's openipmi (ipmi_sim) and ipmitool packages.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
)

// simBMC is one running ipmi_sim.
type simBMC struct {
	dir  string
	port int
}

func (s *simBMC) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name))
	return strings.TrimSpace(string(b))
}

func (s *simBMC) target(node, password string) Target {
	return Target{Node: node, Address: "127.0.0.1", Port: s.port, Driver: DriverIPMI, User: "admin", Password: password}
}

func needIPMISim(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(bin); err != nil {
			testbed.SkipOrFail(t, "%s not installed (apt-get install openipmi ipmitool): %v", bin, err)
		}
	}
}

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// startSim starts one ipmi_sim with user admin/password on a free port and
// stops it (by PID) in t.Cleanup.
func startSim(t *testing.T, name string) *simBMC {
	t.Helper()
	return startSimOn(t, name, freeUDPPort(t))
}

// startSimOn is startSim on a given port.
func startSimOn(t *testing.T, name string, port int) *simBMC {
	t.Helper()
	return &simBMC{dir: testbed.StartIPMISim(t, name, "127.0.0.1", port, "password"), port: port}
}

func testOptions(t *testing.T) Options {
	return Options{
		PerCallTimeout: 4 * time.Second,
		Retry:          Retry{Attempts: 2, Base: 50 * time.Millisecond, Max: 100 * time.Millisecond},
		Log:            slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func TestIPMISimPowerAndBoot(t *testing.T) {
	needIPMISim(t)
	sim := startSim(t, "bmc0")
	ctx := t.Context()
	tg := sim.target("node0", "password")
	c := NewBMCLib(tg, testOptions(t))
	if err := c.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	defer func() {
		if err := c.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if p := c.Provider(); p != "ipmitool" {
		t.Errorf("provider %q", p)
	}
	state := func(want string) {
		t.Helper()
		got, err := c.PowerState(ctx)
		if err != nil || got != want {
			t.Fatalf("power state = %q, %v; want %q", got, err, want)
		}
	}
	state("off")
	if err := c.Power(ctx, PowerOn); err != nil {
		t.Fatalf("power on: %v", err)
	}
	state("on")
	if err := c.Power(ctx, PowerOn); err != nil { // idempotent
		t.Fatalf("power on again: %v", err)
	}
	if err := c.Power(ctx, PowerCycle); err != nil {
		t.Fatalf("power cycle: %v", err)
	}
	if err := c.Power(ctx, PowerOn); err != nil {
		t.Fatalf("power on after cycle: %v", err)
	}
	state("on")
	if err := c.Power(ctx, PowerOff); err != nil {
		t.Fatalf("power off: %v", err)
	}
	state("off")
	if err := c.SetBootDevice(ctx, BootPXE, BootOptions{EFI: true}); err != nil {
		t.Fatalf("set boot pxe: %v", err)
	}
	if got := sim.file("boot"); got != "pxe" {
		t.Errorf("chassis boot = %q, want pxe", got)
	}
	calls := sim.file("calls.log")
	for _, want := range []string{"set power 1", "set power 0", "set boot pxe"} {
		if !strings.Contains(calls, want) {
			t.Errorf("chassis_control never saw %q:\n%s", want, calls)
		}
	}
	if _, err := c.BIOS(ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("BIOS over ipmitool: %v, want ErrUnsupported", err)
	}
	// ipmi_sim: "mc info" works (firmware 9.08 from bmc.emu's mc_add), no FRU.
	inv, err := c.Inventory(ctx)
	if err != nil || inv.BMCFirmware != "9.08" || inv.Vendor == "" || inv.BIOSVersion != "" {
		t.Errorf("Inventory over ipmitool: %+v %v", inv, err)
	}
	t.Logf("ipmi inventory: %+v", inv)
	if err := c.Power(ctx, "explode"); Kind(err) != KindInvalid {
		t.Errorf("bad action: %v", err)
	}
}

func TestIPMISimFanOutAuthAndUnreachable(t *testing.T) {
	needIPMISim(t)
	a, b := startSim(t, "bmcA"), startSim(t, "bmcB")
	dead := a.target("dead", "password")
	dead.Port = freeUDPPort(t) // nothing listens here
	ts := []Target{
		a.target("good-a", "password"),
		b.target("wrong-pw", "not-the-password"),
		dead,
		b.target("good-b", "password"),
	}
	opts := testOptions(t)
	opts.PerCallTimeout = 3 * time.Second
	start := time.Now()
	res := Run(t.Context(), ts, FanOut[string]{Parallel: 4}, func(tg Target) Controller { return NewBMCLib(tg, opts) },
		func(ctx context.Context, c Controller) (string, error) {
			if err := c.Power(ctx, PowerOn); err != nil {
				return "", err
			}
			return c.PowerState(ctx)
		})
	t.Logf("fan-out took %v", time.Since(start))
	for _, r := range res {
		t.Logf("%s: provider=%q value=%q kind=%v err=%v took=%v", r.Node, r.Provider, r.Value, r.Kind, r.Err, r.Duration)
	}
	for _, i := range []int{0, 3} {
		if res[i].Err != nil || res[i].Value != "on" {
			t.Errorf("%s: %v %q", res[i].Node, res[i].Err, res[i].Value)
		}
	}
	if r := res[1]; r.Kind != KindAuth || !errors.Is(r.Err, ErrAuth) {
		t.Errorf("wrong password: kind %v err %v, want auth", r.Kind, r.Err)
	} else if strings.Contains(r.Err.Error(), "not-the-password") {
		t.Errorf("password in error: %v", r.Err)
	} else if r.Duration > 2*time.Second {
		t.Errorf("auth failure took %v: retried?", r.Duration)
	}
	if r := res[2]; r.Kind != KindUnreachable || !errors.Is(r.Err, ErrUnreachable) {
		t.Errorf("unreachable: kind %v err %v", r.Kind, r.Err)
	} else if r.Duration > 3*time.Second {
		t.Errorf("unreachable BMC took %v to report", r.Duration)
	}
	if a.file("power") != "1" || b.file("power") != "1" {
		t.Errorf("power files: a=%q b=%q", a.file("power"), b.file("power"))
	}
}

func TestIPMISimTenParallelStagger(t *testing.T) {
	needIPMISim(t)
	const n, parallel, stagger = 10, 3, 40 * time.Millisecond
	sims := make([]*simBMC, n)
	ts := make([]Target, n)
	for i := range sims {
		sims[i] = startSim(t, fmt.Sprintf("bmc%d", i))
		ts[i] = sims[i].target(fmt.Sprintf("node%02d", i), "password")
	}
	var mu sync.Mutex
	inflight, peak := 0, 0
	opts := testOptions(t)
	opts.Log = nil // quiet
	res := Run(t.Context(), ts, FanOut[string]{Parallel: parallel, Stagger: stagger},
		func(tg Target) Controller { return NewBMCLib(tg, opts) },
		func(ctx context.Context, c Controller) (string, error) {
			mu.Lock()
			inflight++
			peak = max(peak, inflight)
			mu.Unlock()
			defer func() { mu.Lock(); inflight--; mu.Unlock() }()
			if err := c.SetBootDevice(ctx, BootPXE, BootOptions{EFI: true}); err != nil {
				return "", err
			}
			if err := c.Power(ctx, PowerOn); err != nil {
				return "", err
			}
			return c.PowerState(ctx)
		})
	starts := make([]time.Time, 0, n)
	for i, r := range res {
		if r.Err != nil || r.Value != "on" || r.Node != ts[i].Node {
			t.Errorf("%s: %q %v", r.Node, r.Value, r.Err)
		}
		if sims[i].file("boot") != "pxe" || sims[i].file("power") != "1" {
			t.Errorf("%s: sim boot=%q power=%q", r.Node, sims[i].file("boot"), sims[i].file("power"))
		}
		starts = append(starts, r.Started)
	}
	// Concurrency measured from the results' own [Started, Started+Duration] spans.
	spanPeak := 0
	for _, r := range res {
		c := 0
		for _, o := range res {
			if !o.Started.After(r.Started) && o.Started.Add(o.Duration).After(r.Started) {
				c++
			}
		}
		spanPeak = max(spanPeak, c)
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	gaps := make([]time.Duration, 0, n-1)
	for i := 1; i < n; i++ {
		gap := starts[i].Sub(starts[i-1])
		gaps = append(gaps, gap.Round(time.Millisecond))
		if gap < stagger {
			t.Errorf("start gap %d = %v < stagger %v", i, gap, stagger)
		}
	}
	t.Logf("start gaps %v; peak in flight (op) %d, (spans) %d; total %v", gaps, peak, spanPeak,
		starts[n-1].Sub(starts[0]).Round(time.Millisecond))
	if peak > parallel || spanPeak > parallel {
		t.Errorf("peak in flight %d/%d > Parallel %d", peak, spanPeak, parallel)
	}
	if spanPeak < 2 {
		t.Errorf("peak in flight %d: the bound was never exercised", spanPeak)
	}
}

// TestAutoDriverSessions runs driver auto (every bmclib provider at once)
// against an ipmi_sim on 127.0.0.1:623 and the fake Redfish service on
// 127.0.0.1:443, and checks that every Redfish session any provider opened
// was deleted. Skipped when those ports are taken (or not root).
func TestAutoDriverSessions(t *testing.T) {
	needIPMISim(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:623")
	if err != nil {
		t.Skipf("127.0.0.1:623/udp not available: %v", err)
	}
	pc.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:443")
	if err != nil {
		t.Skipf("127.0.0.1:443/tcp not available: %v", err)
	}
	f, _ := newFakeRedfishOn(t, ln)
	f.pass = "password" // same credentials as the ipmi_sim
	sim := startSimOn(t, "auto", 623)
	opts := testOptions(t)
	opts.PerCallTimeout = 10 * time.Second
	tg := Target{Node: "auto", Address: "127.0.0.1", Driver: DriverAuto, User: "admin", Password: "password"}
	v, err, closeErr := Do(t.Context(), NewBMCLib(tg, opts), func(ctx context.Context, c Controller) (string, error) {
		t.Logf("auto opened providers %q", c.Provider())
		if err := c.Power(ctx, PowerOn); err != nil {
			return "", err
		}
		st, err := c.PowerState(ctx)
		return c.Provider() + ":" + st, err
	})
	t.Logf("auto: %q err=%v closeErr=%v", v, err, closeErr)
	if err != nil || !strings.HasSuffix(v, ":on") {
		t.Errorf("auto power on: %q %v", v, err)
	}
	if closeErr != nil {
		t.Errorf("close: %v", closeErr)
	}
	live, made, ended := f.liveSessions()
	t.Logf("redfish sessions made %d deleted %d live %d; ipmi_sim power=%q", made, ended, live, sim.file("power"))
	if live != 0 {
		t.Errorf("%d redfish sessions left open by driver auto", live)
	}
}
