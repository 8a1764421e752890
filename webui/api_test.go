package webui_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/webui"
)

// apiEnv is the real API over a real store, served by httptest.
type apiEnv struct {
	t     *testing.T
	store *events.Store
	ctl   *fakeControl
	api   *webui.API
	srv   *httptest.Server
}

func newEnv(t *testing.T, configure func(*webui.API)) *apiEnv {
	t.Helper()
	st := openStore(t, t.TempDir())
	e := &apiEnv{t: t, store: st, ctl: &fakeControl{store: st}}
	e.api = newAPI(testPlan(t, 4), st, e.ctl)
	if configure != nil {
		configure(e.api)
	}
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request and returns the status and body.
func (e *apiEnv) do(method, path, body string, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if method != "GET" && method != "HEAD" {
		// What the dashboard's own fetch sends; a test overrides these
		// (an empty value removes one).
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", e.srv.URL)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		switch {
		case hdr[i] == "Host": // Go sends req.Host, not a Host header
			req.Host = hdr[i+1]
		case hdr[i+1] == "":
			req.Header.Del(hdr[i])
		default:
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// getJSON GETs path, wants 200 and decodes the body into v.
func (e *apiEnv) getJSON(path string, v any) {
	e.t.Helper()
	code, _, b := e.do("GET", path, "")
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

func TestClusterJSON(t *testing.T) {
	e := newEnv(t, nil)
	var c webui.ClusterJSON
	e.getJSON("/api/v1/cluster", &c)
	if c.Name != "cs" || c.Version != "test" || c.ServerTime.IsZero() {
		t.Errorf("cluster = %+v", c)
	}
	if c.Roles["controller"] != 3 || c.Roles["compute"] != 4 || c.Roles["storage"] != 3 || c.Roles["network"] != 2 {
		t.Errorf("roles = %v", c.Roles)
	}
	if len(c.Networks) == 0 || len(c.HAChecks) == 0 {
		t.Errorf("networks %d, HA checks %d: want some", len(c.Networks), len(c.HAChecks))
	}
	var prov int
	for _, n := range c.Networks {
		if n.Provisioning {
			prov++
		}
	}
	if prov != 1 {
		t.Errorf("%d provisioning networks, want 1", prov)
	}
}

func TestNodesAndDetail(t *testing.T) {
	e := newEnv(t, nil)
	t0 := time.Now().UTC().Add(-time.Minute)
	for i, ev := range []events.Event{
		{Node: "cs-compute-0001", Source: events.SourceBMC, Type: "bmc.check", Phase: events.PhaseBMCChecked, Percent: -1},
		{Node: "cs-compute-0001", Source: events.SourceDHCP, Type: "dhcp.offer", Phase: events.PhaseDHCP, Percent: -1},
		{Node: "cs-compute-0001", Source: events.SourceInstaller, Type: "install.progress", Phase: events.PhaseInstalling, Percent: 40, Detail: "installing packages"},
		{Node: "cs-compute-0002", Source: events.SourceInstaller, Type: "install.failed", Phase: events.PhaseFailed, Percent: -1, Detail: "no disk matches /dev/sdb"},
	} {
		ev.At = t0.Add(time.Duration(i) * 10 * time.Second)
		record(t, e.store, ev)
	}

	var nodes []webui.NodeJSON
	e.getJSON("/api/v1/nodes", &nodes)
	if len(nodes) != 12 {
		t.Fatalf("%d nodes, want 12 (every plan node)", len(nodes))
	}
	by := map[string]webui.NodeJSON{}
	for _, n := range nodes {
		by[n.Name] = n
	}
	n1 := by["cs-compute-0001"]
	if n1.Phase != events.PhaseInstalling || n1.Percent != 40 || n1.Since == nil || n1.LastEvent == nil || n1.LastEvent.Detail != "installing packages" {
		t.Errorf("cs-compute-0001 = %+v", n1)
	}
	if n1.MAC == "" || n1.IP == "" || n1.BMC == "" || !slices.Contains(n1.Roles, "compute") {
		t.Errorf("cs-compute-0001 plan facts missing: %+v", n1)
	}
	if n1.Durations["bmc-checked"] < 9 || n1.Durations["dhcp"] < 9 {
		t.Errorf("cs-compute-0001 durations = %v, want ~10 s in bmc-checked and dhcp", n1.Durations)
	}
	if n2 := by["cs-compute-0002"]; n2.Phase != events.PhaseFailed || n2.Failed != "no disk matches /dev/sdb" {
		t.Errorf("cs-compute-0002 = %+v", n2)
	}
	if c1 := by["cs-controller-01"]; c1.Phase != events.PhasePlanned || c1.Percent != -1 || c1.Since != nil || c1.LastEvent != nil {
		t.Errorf("untouched node = %+v, want planned, percent -1", c1)
	}

	var d webui.NodeJSON
	e.getJSON("/api/v1/nodes/cs-compute-0001", &d)
	if len(d.Events) != 3 || d.Events[0].Type != "bmc.check" || d.Events[2].Percent != 40 {
		t.Errorf("detail events = %+v", d.Events)
	}
	if !slices.Equal(d.Files, []string{"ks.cfg"}) {
		t.Errorf("detail files = %v", d.Files)
	}
	e.getJSON("/api/v1/nodes/cs-compute-0001?limit=1", &d)
	if len(d.Events) != 1 || d.Events[0].Type != "install.progress" {
		t.Errorf("detail with limit=1 = %+v, want the newest event", d.Events)
	}
	// "events" has omitempty: a node without events has no "events" key
	// (the dashboard treats that as an empty timeline).
	var d2 webui.NodeJSON
	e.getJSON("/api/v1/nodes/cs-controller-02", &d2)
	if len(d2.Events) != 0 || d2.Phase != events.PhasePlanned {
		t.Errorf("node without events: %+v", d2)
	}

	code, hdr, b := e.do("GET", "/api/v1/nodes/cs-compute-0001/files/ks.cfg", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || !strings.Contains(string(b), "cs-compute-0001") {
		t.Errorf("file: %d %s %q", code, hdr.Get("Content-Type"), b)
	}
	if code, _, _ := e.do("GET", "/api/v1/nodes/cs-compute-0001/files/nope", ""); code != http.StatusNotFound {
		t.Errorf("unknown file: %d, want 404", code)
	}
	if code, _, _ := e.do("GET", "/api/v1/nodes/no-such-node", ""); code != http.StatusNotFound {
		t.Errorf("unknown node: %d, want 404", code)
	}
}

func TestActions(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		path, op, arg, evType string
	}{
		{"/api/v1/nodes/cs-compute-0003/reinstall", "reinstall", "", "orchestrator.reinstall"},
		{"/api/v1/nodes/cs-compute-0003/retry", "retry", "", "orchestrator.retry"},
		{"/api/v1/nodes/cs-compute-0003/power/cycle", "power", "cycle", "bmc.power"},
	} {
		code, _, b := e.do("POST", tc.path, "")
		if code != http.StatusAccepted {
			t.Errorf("POST %s: %d %s", tc.path, code, b)
			continue
		}
		calls := e.ctl.Calls()
		if last := calls[len(calls)-1]; last.Op != tc.op || last.Node != "cs-compute-0003" || last.Arg != tc.arg {
			t.Errorf("POST %s: control got %+v", tc.path, last)
		}
		evs, err := e.store.NodeEvents(context.Background(), "cs-compute-0003", 1)
		if err != nil || len(evs) != 1 || evs[0].Type != tc.evType {
			t.Errorf("POST %s: last event %+v, %v; want %s", tc.path, evs, err, tc.evType)
		}
	}
	if code, _, _ := e.do("POST", "/api/v1/nodes/nope/reinstall", ""); code != http.StatusNotFound {
		t.Errorf("action on unknown node: %d, want 404", code)
	}
	e.ctl.mu.Lock()
	e.ctl.refuse = errors.New("node is installing")
	e.ctl.mu.Unlock()
	code, _, b := e.do("POST", "/api/v1/nodes/cs-compute-0003/retry", "")
	if code != http.StatusConflict || !strings.Contains(string(b), "node is installing") {
		t.Errorf("refused action: %d %s, want 409 with the reason", code, b)
	}
	if code, _, _ := e.do("GET", "/api/v1/nodes/cs-compute-0003/reinstall", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET on an action: %d, want 405", code)
	}
}

func TestActionsWithoutControl(t *testing.T) {
	e := newEnv(t, func(a *webui.API) { a.Control, a.Files = nil, nil })
	for _, path := range []string{"/api/v1/nodes/cs-compute-0001/reinstall", "/api/v1/runs", "/api/v1/runs/stop"} {
		if code, _, _ := e.do("POST", path, `{"all":true}`); code != http.StatusServiceUnavailable {
			t.Errorf("POST %s without control: %d, want 503", path, code)
		}
	}
	if code, _, _ := e.do("GET", "/api/v1/nodes/cs-compute-0001/files/ks.cfg", ""); code != http.StatusServiceUnavailable {
		t.Errorf("file without Files: %d, want 503", code)
	}
}

func TestRuns(t *testing.T) {
	e := newEnv(t, nil)
	var runs []events.Run
	e.getJSON("/api/v1/runs", &runs)
	if runs == nil || len(runs) != 0 {
		t.Fatalf("runs before any = %#v, want []", runs)
	}
	code, _, b := e.do("POST", "/api/v1/runs", `{"role":"compute","parallel":4,"stagger":"2s"}`, "Content-Type", "application/json")
	if code != http.StatusCreated {
		t.Fatalf("start run: %d %s", code, b)
	}
	var run events.Run
	if err := json.Unmarshal(b, &run); err != nil || run.ID == 0 || run.State != events.RunActive {
		t.Fatalf("start run answered %s (%v)", b, err)
	}
	if c := e.ctl.Calls()[0]; c.Op != "start" || len(c.Sel.Roles) != 1 || c.Sel.Roles[0] != "compute" || c.Parallel != 4 || c.Stagger != 2*time.Second {
		t.Errorf("control got %+v", c)
	}
	if code, _, b := e.do("POST", "/api/v1/runs", `{"all":true}`); code != http.StatusConflict {
		t.Errorf("second run: %d %s, want 409", code, b)
	}
	for _, bad := range []string{`{"everything":true}`, `{"all":`, `{"nodes":"x"}`} {
		if code, _, _ := e.do("POST", "/api/v1/runs", bad); code != http.StatusBadRequest {
			t.Errorf("start run with %s: %d, want 400", bad, code)
		}
	}
	if code, _, b := e.do("POST", "/api/v1/runs/stop", ""); code != http.StatusAccepted {
		t.Errorf("stop: %d %s", code, b)
	}
	e.getJSON("/api/v1/runs", &runs)
	if len(runs) != 1 || runs[0].State != events.RunCancelled || runs[0].Ended.IsZero() {
		t.Errorf("runs after stop = %+v", runs)
	}
	if code, _, _ := e.do("POST", "/api/v1/runs/stop", ""); code != http.StatusConflict {
		t.Errorf("stop without a run: %d, want 409", code)
	}
}

func TestTokenAuth(t *testing.T) {
	e := newEnv(t, func(a *webui.API) { a.Token, a.TokenRequired = "s3cret-token", true })
	code, hdr, _ := e.do("GET", "/api/v1/nodes", "")
	if code != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q, want 401 with WWW-Authenticate: Bearer", code, hdr.Get("WWW-Authenticate"))
	}
	for _, tc := range []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"bearer", "/api/v1/nodes", []string{"Authorization", "Bearer s3cret-token"}, 200},
		{"query (EventSource)", "/api/v1/cluster?token=s3cret-token", nil, 200},
		{"wrong bearer", "/api/v1/nodes", []string{"Authorization", "Bearer nope"}, 401},
		{"wrong query", "/api/v1/cluster?token=s3cret", nil, 401},
		{"basic is not bearer", "/api/v1/nodes", []string{"Authorization", "Basic czNjcmV0LXRva2Vu"}, 401},
		{"action without token", "/api/v1/nodes/cs-compute-0001/reinstall", nil, 401},
		{"healthz is open", "/healthz", nil, 200},
		{"dashboard is open (it asks for the token)", "/", nil, 200},
		{"dashboard assets are open", "/app.js", nil, 200},
	} {
		method := "GET"
		if strings.HasSuffix(tc.path, "reinstall") {
			method = "POST"
		}
		if code, _, b := e.do(method, tc.path, "", tc.hdr...); code != tc.want {
			t.Errorf("%s: %s %s: %d %s, want %d", tc.name, method, tc.path, code, b, tc.want)
		}
	}
	if calls := e.ctl.Calls(); len(calls) != 0 {
		t.Errorf("control called without a token: %+v", calls)
	}
}

func TestStaticServed(t *testing.T) {
	e := newEnv(t, nil)
	for path, ctype := range map[string]string{
		"/":            "text/html",
		"/app.js":      "text/javascript", // module scripts need a JavaScript MIME type
		"/i18n.js":     "text/javascript",
		"/style.css":   "text/css",
		"/i18n.json":   "application/json",
		"/favicon.svg": "image/svg+xml",
	} {
		code, hdr, b := e.do("GET", path, "")
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), ctype) || len(b) == 0 {
			t.Errorf("GET %s: %d %q (%d bytes), want 200 %s", path, code, hdr.Get("Content-Type"), len(b), ctype)
		}
		if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	if code, _, _ := e.do("GET", "/nope.js", ""); code != http.StatusNotFound {
		t.Errorf("missing asset: %d, want 404", code)
	}
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct{ id, name, data string }

// readSSE parses events from r onto a channel until r ends.
func readSSE(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" || ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	return ch
}

// openSSE opens /api/v1/events with a header or query and returns the
// parsed stream; it is closed when ctx ends.
func (e *apiEnv) openSSE(ctx context.Context, query string, hdr ...string) <-chan sseEvent {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/v1/events"+query, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return readSSE(res.Body)
}

// next returns the next SSE event, failing the test after a timeout.
func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("event stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return sseEvent{}
}

func TestEventsReplayAndLive(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 5 {
		record(t, e.store, events.Event{Node: "cs-compute-0001", Source: events.SourceInstaller, Type: "install.progress",
			Phase: events.PhaseInstalling, Percent: i * 20})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A browser reconnecting sends Last-Event-ID: it gets what it missed.
	ch := e.openSSE(ctx, "", "Last-Event-ID", "2")
	for _, want := range []string{"3", "4", "5"} {
		ev := next(t, ch)
		if ev.name != "event" || ev.id != want {
			t.Fatalf("replay: got %+v, want event id %s", ev, want)
		}
		var got events.Event
		if err := json.Unmarshal([]byte(ev.data), &got); err != nil || got.Node != "cs-compute-0001" || got.Phase != events.PhaseInstalling {
			t.Fatalf("replay data %s (%v)", ev.data, err)
		}
	}
	if ev := next(t, ch); ev.name != "synced" || ev.data != `{"last_id":5}` {
		t.Fatalf("after replay: %+v, want synced with last_id 5", ev)
	}
	// Then live events.
	record(t, e.store, events.Event{Node: "cs-compute-0002", Source: events.SourceDHCP, Type: "dhcp.offer", Phase: events.PhaseDHCP, Percent: -1})
	if ev := next(t, ch); ev.name != "event" || ev.id != "6" || !strings.Contains(ev.data, `"cs-compute-0002"`) {
		t.Fatalf("live: %+v", ev)
	}

	// ?after= is what the dashboard uses on its first connection.
	ch2 := e.openSSE(ctx, "?after=5")
	if ev := next(t, ch2); ev.id != "6" {
		t.Fatalf("after=5: first event %+v, want id 6", ev)
	}
	if ev := next(t, ch2); ev.name != "synced" || ev.data != `{"last_id":6}` {
		t.Fatalf("after=5: %+v, want synced 6", ev)
	}

	// A fresh client replays everything.
	ch3 := e.openSSE(ctx, "")
	for want := 1; want <= 6; want++ {
		if ev := next(t, ch3); ev.name != "event" {
			t.Fatalf("full replay: %+v", ev)
		}
	}
	if ev := next(t, ch3); ev.name != "synced" {
		t.Fatalf("full replay: %+v, want synced", ev)
	}
}

func TestEventsNeedToken(t *testing.T) {
	e := newEnv(t, func(a *webui.API) { a.Token, a.TokenRequired = "tok", true })
	record(t, e.store, events.Event{Node: "cs-compute-0001", Source: events.SourceDHCP, Type: "dhcp.offer", Phase: events.PhaseDHCP, Percent: -1})
	if code, _, _ := e.do("GET", "/api/v1/events?after=1", ""); code != http.StatusUnauthorized {
		t.Errorf("events without token: %d, want 401", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch := e.openSSE(ctx, "?token=tok")
	if ev := next(t, ch); ev.id != "1" {
		t.Errorf("events with ?token=: %+v", ev)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	node := e.api.Plan.Nodes[0].Name
	for _, ph := range []events.Phase{events.PhasePoweringOn, events.PhaseDHCP, events.PhaseInstalling} {
		if _, err := e.store.Record(ctx, events.Event{Node: node, Source: events.SourceInstaller, Type: "t", Phase: ph, Percent: -1}); err != nil {
			t.Fatal(err)
		}
	}
	code, _, b := e.do(http.MethodGet, "/metrics", "")
	body := string(b)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	for _, want := range []string{
		`racklift_nodes{phase="installing"} 1`,
		fmt.Sprintf(`racklift_nodes{phase="planned"} %d`, len(e.api.Plan.Nodes)-1),
		`racklift_phase_seconds_total{phase="dhcp"}`,
		`racklift_events_total 3`,
		`racklift_install_attempts_total 1`,
		`racklift_store_up 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// With an admin token, /metrics needs it too.
	e2 := newEnv(t, func(a *webui.API) { a.Token, a.TokenRequired = "tok-metrics-123", true })
	if code, _, _ := e2.do(http.MethodGet, "/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("metrics without token: %d", code)
	}
	if code, _, _ := e2.do(http.MethodGet, "/metrics", "", "Authorization", "Bearer tok-metrics-123"); code != http.StatusOK {
		t.Fatalf("metrics with token: %d", code)
	}
}

func TestUnplanned(t *testing.T) {
	e := newEnv(t, nil)
	var empty []webui.UnplannedJSON
	e.getJSON("/api/v1/unplanned", &empty)
	if empty == nil || len(empty) != 0 {
		t.Fatalf("no sightings must be [], got %#v", empty)
	}
	n := e.api.Plan.Nodes[0]
	mac := []byte(n.MAC) // 3c:ec:ef:...: mistyped as 3c:ed:ef:...
	mac[4] = 'd'
	now := time.Now().UTC()
	ignore := func(at time.Time, mac string, attrs map[string]string) {
		record(t, e.store, events.Event{At: at, MAC: mac, Source: events.SourceDHCP, Type: "dhcp.ignore", Percent: -1, Attrs: attrs})
	}
	ignore(now.Add(-2*time.Minute), string(mac), map[string]string{"firmware": "efi-x64", "arch": "7", "reason": "MAC not in plan"})
	ignore(now.Add(-time.Minute), string(mac), map[string]string{"firmware": "efi-x64", "arch": "7", "reason": "MAC not in plan", "relay": "10.1.2.1"})
	ignore(now.Add(-time.Minute), "aa:bb:cc:dd:ee:ff", map[string]string{"reason": "MAC not in plan"}) // a laptop: not listed
	ignore(now.Add(-48*time.Hour), "aa:bb:cc:00:00:01", map[string]string{"firmware": "bios", "reason": "MAC not in plan"})

	var got []webui.UnplannedJSON
	e.getJSON("/api/v1/unplanned", &got)
	if len(got) != 1 {
		t.Fatalf("got %+v, want the one PXE machine of the last 24h", got)
	}
	u := got[0]
	if u.MAC != string(mac) || u.Count != 2 || u.Firmware != "efi-x64" || u.Arch != "7" || u.Relay != "10.1.2.1" {
		t.Errorf("sighting = %+v", u)
	}
	if u.Hint == nil || u.Hint.Node != n.Name || u.Hint.NodeMAC != n.MAC || u.Hint.Kind != "digit" {
		t.Errorf("hint = %+v, want one digit off %s's MAC", u.Hint, n.Name)
	}
	e.getJSON("/api/v1/unplanned?since=72h", &got)
	if len(got) != 2 || got[1].MAC != "aa:bb:cc:00:00:01" || got[1].Hint != nil {
		t.Errorf("since=72h: %+v", got)
	}
	for _, bad := range []string{"x", "-1h", "0s", "10000h"} {
		if code, _, _ := e.do("GET", "/api/v1/unplanned?since="+bad, ""); code != http.StatusBadRequest {
			t.Errorf("since=%s: %d, want 400", bad, code)
		}
	}
}
