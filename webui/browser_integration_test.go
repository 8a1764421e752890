//go:build integration

package webui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// stepTimeout bounds every browser step.
	stepTimeout = 20 * time.Second
	// startTimeout bounds Chromium's start-up (slow on a busy 2-core machine).
	startTimeout = 90 * time.Second
	failNode     = "cs-compute-0007"
	failReason   = "disk /dev/sdb not found: kickstart stopped at partitioning"
	watchNode    = "cs-compute-0001"
)

// ---------------------------------------------------------------- server

// server runs the real API handler on 127.0.0.1 and can be stopped and
// started again on the same port (a racklift restart with the same store).
type server struct {
	t       *testing.T
	handler http.Handler
	addr    string
	srv     *http.Server
}

func (s *server) start() {
	s.t.Helper()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the old socket may take a moment to go
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(s.srv)
}

// stop closes the listener and every connection, like a killed process.
func (s *server) stop() {
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// ---------------------------------------------------------------- simulated install

// step is one scripted event of a node's install and the simulated time
// it takes before the next one.
type step struct {
	ev   events.Event
	took time.Duration
}

func installScript(n *plan.Node) []step {
	ip := "?"
	if a, ok := n.Provisioning(); ok {
		ip = a.Addr.String()
	}
	s := []step{
		{events.Event{Source: events.SourceBMC, Type: "bmc.check", Phase: events.PhaseBMCChecked, Percent: -1, Detail: "BMC credentials accepted (ipmi)"}, 70 * time.Second},
		{events.Event{Source: events.SourceBMC, Type: "bmc.bios", Phase: events.PhaseBIOSOK, Percent: -1, Detail: "BIOS settings applied, next boot: network"}, 85 * time.Second},
		{events.Event{Source: events.SourceBMC, Type: "bmc.power", Phase: events.PhasePoweringOn, Percent: -1, Detail: "power on"}, 65 * time.Second},
		{events.Event{Source: events.SourceDHCP, Type: "dhcp.offer", Phase: events.PhaseDHCP, Percent: -1, Detail: "offered " + ip, Attrs: map[string]string{"ip": ip}}, 15 * time.Second},
		{events.Event{Source: events.SourceHTTP, Type: "http.ipxe-script", Phase: events.PhaseIPXE, Percent: -1, Detail: "iPXE fetched its boot script"}, 10 * time.Second},
		{events.Event{Source: events.SourceHTTP, Type: "http.kernel", Phase: events.PhaseKernel, Percent: -1, Detail: "fetched images/pxeboot/vmlinuz"}, 30 * time.Second},
	}
	for pct := 0; pct <= 100; pct += 20 {
		s = append(s, step{events.Event{Source: events.SourceInstaller, Type: "install.progress", Phase: events.PhaseInstalling, Percent: pct,
			Detail: fmt.Sprintf("installing packages (%d%%)", pct)}, 85 * time.Second})
	}
	s = append(s,
		step{events.Event{Source: events.SourceInstaller, Type: "install.done", Phase: events.PhaseInstalled, Percent: 100, Detail: "installer finished"}, 5 * time.Second},
		step{events.Event{Source: events.SourceInstaller, Type: "install.reboot", Phase: events.PhaseRebooting, Percent: -1, Detail: "rebooting into the installed system"}, 60 * time.Second},
		step{events.Event{Source: events.SourceHTTP, Type: "http.local-boot", Phase: events.PhaseFirstBoot, Percent: -1, Detail: "installed: booting from local disk"}, 80 * time.Second},
		step{events.Event{Source: events.SourceInstaller, Type: "install.ready", Phase: events.PhaseReady, Percent: -1, Detail: "first boot finished, node reachable"}, 10 * time.Second},
		step{events.Event{Source: events.SourceOrchestrator, Type: "verify.ok", Phase: events.PhaseVerified, Percent: -1, Detail: "matches the plan: interfaces, bonds, VLANs, MTUs, routes, disks"}, 0},
	)
	for i := range s {
		s[i].ev.Node, s[i].ev.MAC = n.Name, n.MAC
	}
	return s
}

// simNode is one node's place in the simulated install.
type simNode struct {
	node   *plan.Node
	script []step
	done   int       // steps recorded
	at     time.Time // simulated time of the next step; zero: now
	pause  int       // steps to record before the pause
	fail   bool      // fails instead of going past pause
}

// simulator feeds the store with every node's install, backdating events
// so the time split looks like a real 30-minute install.
type simulator struct {
	store *events.Store
	nodes []*simNode
	tick  time.Duration
}

func newSimulator(st *events.Store, p *plan.Plan) *simulator {
	sim := &simulator{store: st, tick: 120 * time.Millisecond}
	base := time.Now().UTC().Add(-40 * time.Minute)
	for i, n := range p.Nodes {
		sn := &simNode{node: n, script: installScript(n), at: base.Add(time.Duration(i) * 15 * time.Second)}
		switch {
		case n.Has(plan.RoleController):
			sn.pause = len(sn.script) // ready
		case n.Has(plan.RoleNetwork):
			sn.pause = len(sn.script) - 1 // first boot
		case n.Has(plan.RoleStorage):
			sn.pause = 10 // installing 60%
		case n.Name == failNode:
			sn.pause, sn.fail = 9, true // fails while installing
		default: // a mix of every phase
			sn.pause = 2 + (i*5)%(len(sn.script)-1)
		}
		sim.nodes = append(sim.nodes, sn)
	}
	return sim
}

// expected is the phase each node shows when the simulation pauses.
func (s *simulator) expected() map[string]events.Phase {
	out := map[string]events.Phase{}
	for _, sn := range s.nodes {
		out[sn.node.Name] = sn.script[sn.pause-1].ev.Phase
		if sn.fail {
			out[sn.node.Name] = events.PhaseFailed
		}
	}
	return out
}

// run advances every node one step per tick until each reaches its pause
// (or, with toEnd, the end of its script).
func (s *simulator) run(ctx context.Context, toEnd bool) error {
	for {
		var batch []events.Event
		for _, sn := range s.nodes {
			limit := sn.pause
			if toEnd {
				limit = len(sn.script)
			}
			if sn.done >= limit {
				if sn.fail && !toEnd && sn.done == limit {
					batch = append(batch, events.Event{Node: sn.node.Name, MAC: sn.node.MAC, At: sn.at, Source: events.SourceInstaller,
						Type: "install.failed", Phase: events.PhaseFailed, Percent: -1, Detail: failReason})
					sn.done++ // past the pause: recorded the failure
				}
				continue
			}
			st := sn.script[sn.done]
			ev := st.ev
			ev.At = sn.at
			if !sn.at.IsZero() {
				sn.at = sn.at.Add(st.took)
			}
			batch = append(batch, ev)
			sn.done++
		}
		if len(batch) == 0 {
			return nil
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(batch))
		for _, ev := range batch {
			wg.Go(func() {
				if _, err := s.store.Record(ctx, ev); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.tick):
		}
	}
}

// resumeAfterReinstall continues the failed node after the reinstall: the
// orchestrator powered it on, so it goes on from DHCP, in real time.
func (s *simulator) resumeAfterReinstall() {
	for _, sn := range s.nodes {
		if sn.fail {
			sn.done, sn.fail, sn.at = 3, false, time.Time{}
		}
	}
}

// ---------------------------------------------------------------- browser

type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string // screenshots
	pre  string // screenshot name prefix
	n    atomic.Int32
	done atomic.Bool // the test ended: chromedp must not log any more
}

func (b *browser) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	// Chromium 156 speaks a newer protocol than cdproto knows; harmless.
	if b.done.Load() || strings.Contains(msg, "could not unmarshal event") || strings.Contains(msg, "unhandled node event") {
		return
	}
	b.t.Log("chromedp: " + msg)
}

// run runs actions as one bounded step.
func (b *browser) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// eval evaluates a JavaScript expression into v.
func (b *browser) eval(what, expr string, v any) {
	b.t.Helper()
	b.run(what, chromedp.Evaluate(expr, v))
}

// waitFor polls a JavaScript expression until it is true.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	var ok bool
	var err error
	for {
		if err = chromedp.Run(ctx, chromedp.Evaluate(expr, &ok)); err == nil && ok {
			return
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("still false: " + expr)
			}
			b.fail("waiting for "+what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fail saves a screenshot and the visible text, then fails the test.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	var png []byte
	var text string
	if chromedp.Run(ctx, chromedp.CaptureScreenshot(&png), chromedp.Evaluate(`document.body.innerText.slice(0, 3000)`, &text)) == nil {
		_ = os.WriteFile(filepath.Join(b.dir, "failure.png"), png, 0o644)
	}
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, text)
}

// shot saves a PNG of the viewport.
func (b *browser) shot(name string) string {
	b.t.Helper()
	var png []byte
	b.run("screenshot "+name, chromedp.CaptureScreenshot(&png))
	path := filepath.Join(b.dir, fmt.Sprintf("%s-%02d-%s.png", b.pre, b.n.Add(1), name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
	return path
}

// startBrowser starts headless Chromium; screenshots are named prefix-NN-*.png.
func startBrowser(t *testing.T, prefix string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testbed.SkipOrFail(t, "browser test needs Debian's chromium at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	dir := os.Getenv("RACKLIFT_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after the browser is gone.
	profile, err := os.MkdirTemp("", "racklift-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1366, 768),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, dir: dir, pre: prefix}
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(b.logf), chromedp.WithErrorf(b.logf))
	b.ctx = ctx
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // kills Chromium and waits for it
		b.done.Store(true)
		for range 20 {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s", profile)
	})
	// The first Run starts Chromium; it must get the browser's own context
	// (a timeout context would end the browser with it), so a timer bounds it.
	timer := time.AfterFunc(startTimeout, cancelCtx)
	defer timer.Stop()
	start := time.Now()
	if err := chromedp.Run(ctx, chromedp.EmulateViewport(1366, 768)); err != nil {
		t.Fatalf("start chromium (%s): %v", chromiumPath, err)
	}
	t.Logf("chromium started in %s", time.Since(start).Round(time.Millisecond))
	return b
}

// setField sets a form field's value as a user would and fires event.
func (b *browser) setField(id, value, event string) {
	b.t.Helper()
	b.eval("set #"+id, `(() => { const el = document.getElementById(`+js(id)+`); el.value = `+js(value)+
		`; el.dispatchEvent(new Event(`+js(event)+`, {bubbles: true})); return el.value === `+js(value)+`; })()`, new(bool))
}

// rowState is what a node row shows.
type rowState struct {
	Name, Phase, Sub, Last, Class string
	Now                           int
}

const rowsJS = `JSON.stringify([...document.querySelectorAll('#node-rows tr[data-node]')].map(tr => ({
  Name: tr.dataset.node,
  Phase: tr.querySelector('.phase-label').textContent,
  Sub: tr.querySelector('.phase-sub').textContent,
  Last: tr.querySelector('.last-main').textContent,
  Class: tr.className,
  Now: Number(tr.querySelector('[role=progressbar]').getAttribute('aria-valuenow')),
})))`

func (b *browser) rows() map[string]rowState {
	b.t.Helper()
	var s string
	b.eval("read rows", rowsJS, &s)
	var list []rowState
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		b.t.Fatal(err)
	}
	out := map[string]rowState{}
	for _, r := range list {
		out[r.Name] = r
	}
	return out
}

// waitRows polls the rows until check returns "" (or the step times out
// with check's last complaint).
func (b *browser) waitRows(what string, check func(map[string]rowState) string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		msg := check(b.rows())
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			b.fail("waiting for "+what, errors.New(msg))
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ---------------------------------------------------------------- the test

func TestDashboardInBrowser(t *testing.T) {
	b := startBrowser(t, "dashboard")

	st := openStore(t, t.TempDir())
	p := testPlan(t, 42)
	if len(p.Nodes) != 50 {
		t.Fatalf("plan has %d nodes, want 50", len(p.Nodes))
	}
	ctl := &fakeControl{store: st}
	srv := &server{t: t, handler: newAPI(p, st, ctl).Handler()}
	srv.start()
	t.Cleanup(srv.stop)
	url := "http://" + srv.addr + "/"

	sim := newSimulator(st, p)
	simCtx, stopSim := context.WithCancel(context.Background())
	simErr := make(chan error, 1)
	simPaused := make(chan struct{})
	simResume := make(chan struct{})
	var simWG sync.WaitGroup
	t.Cleanup(func() { stopSim(); simWG.Wait() })

	dict := loadDict(t)
	en, zh := dict["en"], dict["zh-CN"]
	label := func(p events.Phase) string { return en["phase."+string(p)] }

	// 1. The page loads the 50 plan nodes, all planned, and goes live.
	b.run("open dashboard", chromedp.Navigate(url))
	b.waitFor("50 rows", `document.querySelectorAll('#node-rows tr[data-node]').length === 50`)
	b.waitFor("live", `document.getElementById('conn').classList.contains('conn-up') && document.getElementById('banner').hidden`)
	b.eval("mark page", `window.__noReload = 'still here'; true`, new(bool))
	b.waitRows("all planned", func(rows map[string]rowState) string {
		for _, r := range rows {
			if r.Phase != label(events.PhasePlanned) || r.Now != 0 {
				return fmt.Sprintf("%s shows %q %d%%", r.Name, r.Phase, r.Now)
			}
		}
		return ""
	})

	// 2. Start install for all nodes through the dialog: the request reaches
	// the orchestrator (the fake starts the simulated install).
	b.run("open install dialog", chromedp.Click(`#btn-install`, chromedp.ByQuery))
	b.waitFor("install dialog", `document.getElementById('install').open`)
	b.setField("i-parallel", "10", "input")
	b.setField("i-stagger", "1m30s", "input")
	b.run("start install", chromedp.Click(`#i-ok`, chromedp.ByQuery))
	waitCall(t, ctl, func(c call) bool {
		return c.Op == "start" && c.Sel.All && c.Parallel == 10 && c.Stagger == 90*time.Second
	})
	simWG.Go(func() {
		if err := sim.run(simCtx, false); err != nil {
			simErr <- err
			return
		}
		close(simPaused)
		select {
		case <-simResume:
		case <-simCtx.Done():
			return
		}
		if err := sim.run(simCtx, true); err != nil {
			simErr <- err
		}
	})

	// 3. Rows move live: the watched node leaves "planned", its bar grows.
	b.waitRows("live progress of "+watchNode, func(rows map[string]rowState) string {
		if r := rows[watchNode]; r.Now == 0 || r.Phase == label(events.PhasePlanned) {
			return fmt.Sprintf("%s still %q %d%%", watchNode, r.Phase, r.Now)
		}
		return ""
	})
	select {
	case <-simPaused:
	case err := <-simErr:
		t.Fatalf("simulation: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("simulation did not reach its pause in 60 s")
	}
	want := sim.expected()
	b.waitRows("every row in its phase", func(rows map[string]rowState) string {
		for name, ph := range want {
			r := rows[name]
			if r.Phase != label(ph) {
				return fmt.Sprintf("%s shows %q, want %q", name, r.Phase, label(ph))
			}
		}
		return ""
	})
	rows := b.rows()
	// The dashboard's bar and the API's progress (what racklift status
	// prints) agree for every node: one phase table (issue 20).
	resp, err := http.Get("http://" + srv.addr + "/api/v1/nodes")
	if err != nil {
		t.Fatal(err)
	}
	var apiNodes []struct {
		Name     string `json:"name"`
		Progress int    `json:"progress"`
	}
	err = json.NewDecoder(resp.Body).Decode(&apiNodes)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range apiNodes {
		if r := rows[n.Name]; r.Now != n.Progress {
			t.Errorf("%s: dashboard %d%%, API (racklift status) %d%%", n.Name, r.Now, n.Progress)
		}
	}
	if r := rows["cs-controller-01"]; r.Now != 100 || r.Phase != label(events.PhaseVerified) {
		t.Errorf("controller row = %+v, want Verified 100%%", r)
	}
	if r := rows["cs-storage-01"]; r.Phase != label(events.PhaseInstalling) || !strings.HasPrefix(r.Sub, "60%") || r.Now <= 30 || r.Now >= 85 {
		t.Errorf("storage row = %+v, want Installing 60%% with the bar inside the install span", r)
	}
	// 4. The failed node is red, with its reason.
	if r := rows[failNode]; r.Class != "g-failed" || !strings.Contains(r.Last, failReason) || r.Phase != label(events.PhaseFailed) {
		t.Errorf("failed row = %+v, want class g-failed with %q", r, failReason)
	}
	var overview string
	b.eval("overview", `document.getElementById('overview').innerText`, &overview)
	for _, s := range []string{"1 failed", en["group.bmc"], en["group.install"], en["role.compute"]} {
		if !strings.Contains(overview, s) {
			t.Errorf("overview lacks %q:\n%s", s, overview)
		}
	}
	// Readable at 1366×768: nothing sticks out sideways.
	b.waitFor("no horizontal scrolling at 1366 px", `document.documentElement.scrollWidth <= window.innerWidth`)
	b.shot("overview")

	// 5. Filter, search and sort.
	b.run("search by MAC", chromedp.SendKeys(`#f-search`, strings.ReplaceAll(p.Nodes[5].MAC, ":", ""), chromedp.ByQuery))
	b.waitFor("one row for the MAC", `document.querySelectorAll('#node-rows tr').length === 1 && document.querySelector('#node-rows tr').dataset.node === `+js(p.Nodes[5].Name))
	b.setField("f-search", "", "input")
	b.setField("f-phase", "failed", "change")
	b.waitFor("only the failed row", `document.querySelectorAll('#node-rows tr').length === 1 && document.querySelector('#node-rows tr').dataset.node === `+js(failNode))
	b.setField("f-phase", "", "change")
	b.setField("f-role", "storage", "change")
	b.waitFor("3 storage rows", `document.querySelectorAll('#node-rows tr').length === 3`)
	b.setField("f-role", "", "change")
	b.setField("f-sort", "phase", "change")
	b.waitFor("failed node first", `document.querySelectorAll('#node-rows tr').length === 50 && document.querySelector('#node-rows tr').dataset.node === `+js(failNode))

	// 6. Node detail: timeline with the failure, the rendered file as text.
	b.run("open detail", chromedp.Click(`tr[data-node="`+failNode+`"] .node-link`, chromedp.ByQuery))
	b.waitFor("detail with timeline", `document.getElementById('detail').open && document.querySelectorAll('#d-timeline tbody tr').length === 10`)
	b.waitFor("failure in detail", `document.getElementById('d-failed').textContent.includes(`+js(failReason)+`) && document.querySelector('#d-timeline tbody tr').classList.contains('tl-failed')`)
	b.waitFor("file list", `document.querySelectorAll('#d-files button').length === 1`)
	b.shot("detail")
	b.run("show kickstart", chromedp.Click(`#d-files button`, chromedp.ByQuery))
	b.waitFor("kickstart text", `document.getElementById('d-file').textContent.includes('kickstart for `+failNode+` <script>') && document.querySelectorAll('#d-file *').length === 0`)
	b.shot("detail-file")

	// 7. A cancelled confirmation does nothing (Esc closes the dialog).
	b.run("power cycle", chromedp.Click(`#d-power`, chromedp.ByQuery))
	b.waitFor("confirm dialog", `document.getElementById('confirm').open && document.getElementById('c-text').textContent.includes(`+js(failNode)+`)`)
	b.run("press Esc", chromedp.KeyEvent(kb.Escape))
	b.waitFor("confirm closed, detail open", `!document.getElementById('confirm').open && document.getElementById('detail').open`)

	// 8. Reinstall with confirmation round-trips to the orchestrator and its
	// event shows in the timeline and the row.
	b.run("reinstall", chromedp.Click(`#d-reinstall`, chromedp.ByQuery))
	b.waitFor("reinstall confirm", `document.getElementById('confirm').open && document.getElementById('c-title').textContent.includes(`+js(failNode)+`)`)
	b.run("confirm reinstall", chromedp.Click(`#c-ok`, chromedp.ByQuery))
	waitCall(t, ctl, func(c call) bool { return c.Op == "reinstall" && c.Node == failNode })
	for _, c := range ctl.Calls() {
		if c.Op == "power" {
			t.Errorf("cancelled power cycle reached the orchestrator: %+v", c)
		}
	}
	b.waitFor("reinstall event in the timeline", `document.querySelector('#d-timeline tbody tr').textContent.includes('orchestrator.reinstall')`)
	b.waitFor("toast", `document.getElementById('toast').matches(':popover-open') && document.getElementById('toast').textContent.includes(`+js(failNode)+`)`)
	b.waitRows("reinstalled row", func(rows map[string]rowState) string {
		if r := rows[failNode]; r.Phase != label(events.PhasePoweringOn) || r.Class == "g-failed" {
			return fmt.Sprintf("%s = %+v, want powering on", failNode, r)
		}
		return ""
	})
	b.run("close detail with Esc", chromedp.KeyEvent(kb.Escape))
	b.waitFor("detail closed", `!document.getElementById('detail').open`)
	// Keyboard: focus went back to the node's button; Enter opens it again.
	nodeLink := `tr[data-node="` + failNode + `"] .node-link`
	b.waitFor("focus back on the row", `document.activeElement === document.querySelector('`+nodeLink+`')`)
	b.run("Enter on the node", chromedp.KeyEvent(kb.Enter))
	b.waitFor("detail open by keyboard", `document.getElementById('detail').open && document.activeElement.id === 'd-close'`)
	b.run("Esc again", chromedp.KeyEvent(kb.Escape))
	b.waitFor("detail closed again", `!document.getElementById('detail').open`)
	sim.resumeAfterReinstall()

	// 8b. A machine not in the plan PXE-boots with a MAC one digit off a
	// plan node's: the warning block appears live and names that node.
	var hidden bool
	b.eval("unplanned block hidden", `document.getElementById('unplanned').hidden`, &hidden)
	if !hidden {
		t.Error("the unplanned-machines block shows before any such machine")
	}
	first := p.Nodes[0]
	typo := []byte(first.MAC)
	typo[4] = 'd' // 3c:ec:ef:... → 3c:ed:ef:...
	record(t, st, events.Event{MAC: string(typo), Source: events.SourceDHCP, Type: "dhcp.ignore", Percent: -1,
		Attrs: map[string]string{"firmware": "efi-x64", "arch": "7", "reason": "MAC not in plan"}})
	enHint := strings.NewReplacer("{node}", first.Name, "{mac}", first.MAC).Replace(en["unplanned.hintDigit"])
	b.waitFor("unplanned machine shown", `!document.getElementById('unplanned').hidden && (() => {
		const r = document.querySelector('#unplanned-table tbody tr');
		return r && r.querySelector('th').textContent === `+js(string(typo))+` && r.cells[4].textContent === `+js(enHint)+`; })()`)
	b.shot("unplanned")

	// 9. Language switch to Simplified Chinese, remembered.
	b.run("switch to Chinese", chromedp.Click(`button[data-lang="zh-CN"]`, chromedp.ByQuery))
	zhHint := strings.NewReplacer("{node}", first.Name, "{mac}", first.MAC).Replace(zh["unplanned.hintDigit"])
	b.waitFor("Chinese labels", `document.documentElement.lang === 'zh-CN' && document.querySelector('#nodes-table thead th:nth-child(7)').textContent === `+js(zh["col.phase"])+
		` && document.querySelector('#unplanned-table tbody tr').cells[4].textContent === `+js(zhHint)+
		` && document.querySelector('tr[data-node="cs-controller-01"] .phase-label').textContent === `+js(zh["phase.verified"])+
		` && document.getElementById('btn-install').textContent === `+js(zh["act.startInstall"])+
		` && localStorage.getItem('racklift.lang') === 'zh-CN'`)
	b.shot("chinese")
	b.run("switch to English", chromedp.Click(`button[data-lang="en"]`, chromedp.ByQuery))
	b.waitFor("English labels", `document.querySelector('tr[data-node="cs-controller-01"] .phase-label').textContent === `+js(en["phase.verified"]))

	// 10. racklift goes away: the banner says so.
	srv.stop()
	b.waitFor("disconnected banner", `!document.getElementById('banner').hidden && document.getElementById('banner-text').textContent === `+js(en["conn.lost"])+
		` && document.getElementById('conn').classList.contains('conn-down')`)
	b.shot("disconnected")

	// 11. An event recorded while the page is disconnected, then racklift
	// restarts on the same port with the same store: the page catches up.
	missed := record(t, st, events.Event{Node: watchNode, Source: events.SourceOrchestrator, Type: "orchestrator.note", Percent: -1,
		Detail: "recorded while the dashboard was disconnected"})
	srv.start()
	b.waitFor("reconnected", `document.getElementById('banner').hidden && document.getElementById('conn').classList.contains('conn-up')`)
	b.waitRows("missed event replayed", func(rows map[string]rowState) string {
		if r := rows[watchNode]; r.Last != missed.Detail {
			return fmt.Sprintf("%s last event %q, want %q", watchNode, r.Last, missed.Detail)
		}
		return ""
	})

	// 12. Live updates resume without a reload: the install finishes.
	close(simResume)
	b.waitRows("every node verified", func(rows map[string]rowState) string {
		for _, r := range rows {
			if r.Phase != label(events.PhaseVerified) || r.Now != 100 {
				return fmt.Sprintf("%s shows %q %d%%", r.Name, r.Phase, r.Now)
			}
		}
		return ""
	})
	b.waitFor("100% overall", `document.getElementById('ov-percent').textContent === '100%'`)
	// The time split adds up the simulated phase times: 70+85+65 s of
	// BMC/BIOS per node (a few seconds more for the reinstalled node).
	b.waitFor("BMC/BIOS time per node", `(() => {
		const [m, s] = document.querySelector('#ov-time tr.g-bmc td:nth-child(4)').textContent.split(':').map(Number);
		return m * 60 + s >= 220 && m * 60 + s <= 226;
	})()`)
	var marker string
	b.eval("no reload", `String(window.__noReload)`, &marker)
	if marker != "still here" {
		t.Errorf("the page reloaded (marker %q)", marker)
	}
	b.shot("finished")
	b.run("large text", chromedp.Click(`#large-text`, chromedp.ByQuery))
	b.waitFor("large text on", `document.documentElement.classList.contains('large') && getComputedStyle(document.documentElement).fontSize === '20px'`)
	b.shot("large-text")
	b.run("normal text", chromedp.Click(`#large-text`, chromedp.ByQuery))
	b.run("dark colour scheme", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}))
	b.shot("dark")
	b.run("light colour scheme", emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}))

	// 13. The plan view: networks, VIPs and HA checks.
	b.run("plan view", chromedp.Click(`#view-plan`, chromedp.ByQuery))
	b.waitFor("plan tables", `document.querySelectorAll('#plan-networks tbody tr').length >= 5 && document.querySelectorAll('#plan-ha tbody tr').length >= 3 && !document.getElementById('plan-view').hidden`)
	b.shot("plan")
	select {
	case err := <-simErr:
		t.Fatalf("simulation: %v", err)
	default:
	}
}

// waitCall waits until the fake orchestrator received a matching call.
func waitCall(t *testing.T, ctl *fakeControl, match func(call) bool) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		for _, c := range ctl.Calls() {
			if match(c) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("orchestrator calls %+v: the expected one did not arrive", ctl.Calls())
}

// TestDashboardTokenPrompt: with an admin token the dashboard asks for it,
// keeps it in sessionStorage and uses it for fetch and the event stream.
func TestDashboardTokenPrompt(t *testing.T) {
	b := startBrowser(t, "token")
	st := openStore(t, t.TempDir())
	p := testPlan(t, 4)
	api := newAPI(p, st, &fakeControl{store: st})
	api.Token, api.TokenRequired = "field-token-123", true
	srv := &server{t: t, handler: api.Handler()}
	srv.start()
	t.Cleanup(srv.stop)

	b.run("open dashboard", chromedp.Navigate("http://"+srv.addr+"/"))
	b.waitFor("token prompt", `document.getElementById('token').open && !document.getElementById('banner').hidden`)
	b.run("wrong token", chromedp.SendKeys(`#t-input`, "wrong", chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
	b.waitFor("asked again", `document.getElementById('token').open && document.getElementById('t-input').value === ''`)
	b.run("right token", chromedp.SendKeys(`#t-input`, api.Token, chromedp.ByQuery), chromedp.KeyEvent(kb.Enter))
	b.waitFor("rows and live stream", `document.querySelectorAll('#node-rows tr[data-node]').length === 12 && document.getElementById('conn').classList.contains('conn-up') && document.getElementById('banner').hidden`)
	var saved string
	b.eval("token kept", `sessionStorage.getItem('racklift.token')`, &saved)
	if saved != api.Token {
		t.Errorf("sessionStorage token %q", saved)
	}
	ev := record(t, st, events.Event{Node: "cs-compute-0002", Source: events.SourceDHCP, Type: "dhcp.offer", Phase: events.PhaseDHCP, Percent: -1, Detail: "offered by the token test"})
	b.waitFor("event through the authenticated stream", `document.querySelector('tr[data-node="cs-compute-0002"] .last-main').textContent === `+js(ev.Detail))
	b.shot("token-ok")
}

// evilPage is a page of another site (another port on loopback) that tries
// every way a web page can make the engineer's browser act on the admin
// API at target, and records what happened in window.results.
const evilPage = `<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="f1" method="POST" enctype="text/plain" target="sink" action="TARGET/api/v1/runs">
<input name='{"all":true,"role":"' value='x"}'></form>
<form id="f2" method="POST" target="sink" action="TARGET/api/v1/runs/stop"><input name="x" value="1"></form>
<script>
window.results = {};
async function attempt(name, url, opts) {
  try { const r = await fetch(url, opts); window.results[name] = 'status ' + r.status + (r.type === 'opaque' ? ' (opaque)' : ''); }
  catch (e) { window.results[name] = 'error ' + e.name; }
}
(async () => {
  const t = 'TARGET';
  await attempt('json', t + '/api/v1/nodes/cs-compute-0001/reinstall', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'});
  await attempt('text-plain', t + '/api/v1/runs', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: '{"nodes":["cs-compute-0002"]}'});
  await attempt('no-cors-json', t + '/api/v1/nodes/cs-compute-0003/power/off', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'application/json'}, body: '{}'});
  await attempt('read-plan', t + '/api/v1/cluster', {});
  document.getElementById('f1').submit();
  await new Promise(r => setTimeout(r, 500));
  document.getElementById('f2').submit();
  await new Promise(r => setTimeout(r, 500));
  window.results.done = true;
})();
</script></body></html>`

// TestOtherSitesCannotDriveTheAPI: a page from another origin, in the same
// headless Chromium the engineer would use, tries fetch and form POSTs
// against the admin API (issue 21). None reaches the orchestrator and the
// plan cannot be read; then the dashboard's own action works.
func TestOtherSitesCannotDriveTheAPI(t *testing.T) {
	b := startBrowser(t, "csrf")
	st := openStore(t, t.TempDir())
	ctl := &fakeControl{store: st}
	api := newAPI(testPlan(t, 4), st, ctl)
	api.Token = "admin-token-never-in-the-page"
	srv := &server{t: t, handler: api.Handler()}
	srv.start()
	t.Cleanup(srv.stop)
	evil := &server{t: t, handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(strings.ReplaceAll(evilPage, "TARGET", "http://"+srv.addr)))
	})}
	evil.start()
	t.Cleanup(evil.stop)

	b.run("open the other site's page", chromedp.Navigate("http://"+evil.addr+"/"))
	b.waitFor("its attempts finished", `window.results && window.results.done === true`)
	var results map[string]any
	b.eval("results", `window.results`, &results)
	t.Logf("the other page saw: %v", results)
	// A cross-origin fetch that sets JSON needs a preflight the server never
	// approves; a cross-origin read is not readable.
	for _, k := range []string{"json", "read-plan"} {
		if r, _ := results[k].(string); !strings.HasPrefix(r, "error") {
			t.Errorf("%s: %q, want a network error (no CORS)", k, r)
		}
	}
	if calls := ctl.Calls(); len(calls) != 0 {
		t.Fatalf("another site's page reached the orchestrator: %+v", calls)
	}
	// The dashboard itself still acts (Chromium sends its Origin and
	// Sec-Fetch-Site: same-origin).
	b.run("open the dashboard", chromedp.Navigate("http://"+srv.addr+"/"))
	b.waitFor("rows", `document.querySelectorAll('#node-rows tr[data-node]').length === 12`)
	var status int
	b.run("same-origin action", chromedp.Evaluate(`fetch('api/v1/nodes/cs-compute-0001/retry', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)`,
		&status, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if status != http.StatusAccepted {
		t.Errorf("the dashboard's own action: %d, want 202", status)
	}
	waitCall(t, ctl, func(c call) bool { return c.Op == "retry" && c.Node == "cs-compute-0001" })
}
