package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

// apiFlags are the flags of commands that talk to a running racklift.
type apiFlags struct {
	server   string
	token    string
	stateDir string
}

func (a *apiFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&a.server, "server", "http://127.0.0.1:8081", "admin API of the running racklift serve")
	fs.StringVar(&a.token, "token", "", "admin token (default: read from STATE-DIR/admin-token when needed)")
	fs.StringVar(&a.stateDir, "state-dir", defaultStateDir(e.lookupEnv), "state dir of the running server (for its admin token)")
}

// client is a small admin API client.
type client struct {
	base  string
	token string
	hc    *http.Client
}

func (a *apiFlags) client() *client {
	tok := a.token
	if tok == "" {
		if b, err := os.ReadFile(filepath.Join(a.stateDir, "admin-token")); err == nil {
			tok = strings.TrimSpace(string(b))
		}
	}
	return &client{base: strings.TrimRight(a.server, "/"), token: tok, hc: &http.Client{Timeout: 30 * time.Second}}
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body == nil && method != http.MethodGet {
		body = struct{}{} // the admin API takes actions as JSON only
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach racklift at %s (is racklift serve running? --server): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
			e.Error += " (run as the user that can read STATE-DIR/admin-token, or pass --token / RACKLIFT_TOKEN)"
		}
		return fmt.Errorf("%s %s: %s", method, path, e.Error)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func runInstall(ctx context.Context, args []string, e *env) int {
	fs := newFlags("install", e)
	var a apiFlags
	a.register(fs, e)
	all := fs.Bool("all", false, "install every node of the plan")
	role := fs.String("role", "", "install the nodes with this role (comma-separated for several)")
	parallel := fs.Int("parallel", 0, "nodes prepared (BMC work) at once (default 8)")
	stagger := fs.Duration("stagger", 0, "time between power-ons (default 2s)")
	watch := fs.Bool("watch", false, "then show progress until the run ends")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	sel := webui.Selection{All: *all, Role: *role, Nodes: pos, Parallel: *parallel}
	if *stagger > 0 {
		sel.Stagger = stagger.String()
	}
	// The server resolves the selection (plan.Select, as racklift bmc does);
	// a selection that cannot be right fails here, before anything is asked.
	if ps, _, _, err := sel.Plan(); err != nil {
		fmt.Fprintf(e.stderr, "racklift install: %v\n", err)
		return exitUsage
	} else if n := len(ps.Nodes) + len(ps.Roles); (ps.All && n > 0) || (!ps.All && (n == 0 || (len(ps.Nodes) > 0 && len(ps.Roles) > 0))) {
		fmt.Fprintln(e.stderr, "racklift install: give exactly one of --all, --role ROLE[,ROLE...], or node names")
		return exitUsage
	}
	c := a.client()
	var run struct {
		ID       int64
		Selector struct{ Nodes []string }
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/runs", sel, &run); err != nil {
		fmt.Fprintf(e.stderr, "racklift install: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "run %d started: %d node(s): %s\n", run.ID, len(run.Selector.Nodes), strings.Join(run.Selector.Nodes, " "))
	if *watch {
		return watchStatus(ctx, c, e, run.Selector.Nodes, true)
	}
	return exitOK
}

func runReinstall(ctx context.Context, args []string, e *env) int {
	fs := newFlags("reinstall", e)
	var a apiFlags
	a.register(fs, e)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, "racklift reinstall: name exactly one node (its disk is wiped)")
		return exitUsage
	}
	if !*yes {
		fmt.Fprintf(e.stderr, "racklift reinstall: this wipes %s's OS disk; add --yes to confirm\n", pos[0])
		return exitUsage
	}
	if err := a.client().do(ctx, http.MethodPost, "/api/v1/nodes/"+pos[0]+"/reinstall", nil, nil); err != nil {
		fmt.Fprintf(e.stderr, "racklift reinstall: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(e.stdout, "%s will be reinstalled: one-time PXE and power cycle requested\n", pos[0])
	return exitOK
}

func runStatus(ctx context.Context, args []string, e *env) int {
	fs := newFlags("status", e)
	var a apiFlags
	a.register(fs, e)
	watch := fs.Bool("watch", false, "keep showing progress until interrupted")
	asJSON := fs.Bool("json", false, "print the nodes (and the machines not in the plan) as JSON")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	c := a.client()
	if *watch {
		return watchStatus(ctx, c, e, pos, false)
	}
	nodes, err := fetchNodes(ctx, c, pos)
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift status: %v\n", err)
		return exitFailed
	}
	switch {
	case *asJSON:
		out := struct {
			Nodes     []webui.NodeJSON      `json:"nodes"`
			Unplanned []webui.UnplannedJSON `json:"unplanned,omitempty"`
		}{Nodes: nodes}
		if len(pos) == 0 {
			out.Unplanned = fetchUnplanned(ctx, c)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return exitRuntime
		}
	default:
		writeStatus(e.stdout, nodes, time.Now())
		if len(pos) == 0 {
			writeUnplanned(e.stdout, fetchUnplanned(ctx, c))
		}
	}
	return exitCodeFor(nodes)
}

// fetchUnplanned returns the machines not in the plan that are network
// booting; nil if the server cannot say (the status is shown without).
func fetchUnplanned(ctx context.Context, c *client) []webui.UnplannedJSON {
	var out []webui.UnplannedJSON
	if err := c.do(ctx, http.MethodGet, "/api/v1/unplanned", nil, &out); err != nil {
		return nil
	}
	return out
}

// writeUnplanned lists machines not in the plan that asked for a network
// boot in the last day, with the plan node each probably is.
func writeUnplanned(w io.Writer, list []webui.UnplannedJSON) {
	if len(list) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d machine(s) not in the plan asked for a network boot in the last 24h (racklift gives them nothing):\n", len(list))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, u := range list {
		fw := u.Firmware
		if u.Relay != "" {
			fw += " via " + u.Relay
		}
		fmt.Fprintf(tw, "  %s\t%s\tlast %s\t%s\n", u.MAC, fw, u.LastSeen.Local().Format("15:04:05"), hintString(u.Hint))
	}
	_ = tw.Flush()
}

// hintString says in English which plan node a MAC probably is.
func hintString(h *plan.MACHint) string {
	switch {
	case h == nil:
		return "no plan MAC is close"
	case h.Kind == "port":
		return fmt.Sprintf("probably %s: %d from its MAC %s (another port of the same card?)", h.Node, h.Distance, h.NodeMAC)
	case h.Kind == "digit":
		return fmt.Sprintf("probably %s: one digit differs from its MAC %s (typo in the plan?)", h.Node, h.NodeMAC)
	default:
		return fmt.Sprintf("probably %s: two digits swapped in its MAC %s (typo in the plan?)", h.Node, h.NodeMAC)
	}
}

func fetchNodes(ctx context.Context, c *client, only []string) ([]webui.NodeJSON, error) {
	var nodes []webui.NodeJSON
	if err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &nodes); err != nil {
		return nil, err
	}
	if len(only) == 0 {
		return nodes, nil
	}
	var out []webui.NodeJSON
	for _, n := range nodes {
		for _, o := range only {
			if n.Name == o {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// progressBar draws a 20-cell bar of a node's overall progress (the
// server's, from the one phase table the dashboard uses too).
func progressBar(n webui.NodeJSON) string {
	pct := min(max(n.Progress, 0), 100)
	cells := pct / 5
	return "[" + strings.Repeat("#", cells) + strings.Repeat(".", 20-cells) + fmt.Sprintf("] %3d%%", pct)
}

func writeStatus(w io.Writer, nodes []webui.NodeJSON, now time.Time) {
	counts := map[string]int{}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPHASE\tPROGRESS\tIN PHASE\tLAST EVENT")
	for _, n := range nodes {
		counts[string(n.Phase)]++
		in := "-"
		if n.Since != nil {
			in = now.Sub(*n.Since).Round(time.Second).String()
		}
		last := ""
		if n.LastEvent != nil {
			last = n.LastEvent.Type
			if n.LastEvent.Detail != "" {
				last += ": " + n.LastEvent.Detail
			}
		}
		switch n.Phase {
		case events.PhaseFailed:
			last = "FAILED: " + n.Failed
		case events.PhaseMismatch:
			last = "DIFFERS FROM THE PLAN: " + n.Failed
		}
		if len(last) > 70 {
			last = last[:67] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Phase, progressBar(n), in, last)
	}
	_ = tw.Flush()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	fmt.Fprintf(w, "%d nodes: %s\n", len(nodes), strings.Join(parts, ", "))
}

// watchStatus redraws the status on every event (at most once a second).
// untilDone stops when every node is ready or failed.
func watchStatus(ctx context.Context, c *client, e *env, only []string, untilDone bool) int {
	changed := make(chan struct{}, 1)
	go followEvents(ctx, c, changed)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	dirty := true
	for {
		if dirty {
			nodes, err := fetchNodes(ctx, c, only)
			if err != nil {
				fmt.Fprintf(e.stderr, "racklift status: %v (retrying)\n", err)
			} else {
				if isTerminal(e.stdout) {
					fmt.Fprint(e.stdout, "\033[H\033[2J")
				}
				writeStatus(e.stdout, nodes, time.Now())
				if len(only) == 0 {
					writeUnplanned(e.stdout, fetchUnplanned(ctx, c))
				}
				if untilDone && allDone(nodes) {
					return exitCodeFor(nodes)
				}
			}
			dirty = false
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-changed:
			dirty = true
			// coalesce bursts: redraw at most once per tick
			select {
			case <-tick.C:
			case <-ctx.Done():
				return exitOK
			}
		case <-tick.C:
			if isTerminal(e.stdout) {
				dirty = true // time in phase moves
			}
		}
	}
}

// allDone reports whether every node's install attempt is over (verified,
// different from the plan, or failed).
func allDone(nodes []webui.NodeJSON) bool {
	for _, n := range nodes {
		if !n.Phase.Final() {
			return false
		}
	}
	return len(nodes) > 0
}

// exitCodeFor is 1 when a node failed or differs from the plan.
func exitCodeFor(nodes []webui.NodeJSON) int {
	for _, n := range nodes {
		if n.Phase == events.PhaseFailed || n.Phase == events.PhaseMismatch {
			return exitFailed
		}
	}
	return exitOK
}

// followEvents signals changed for every event on the SSE stream,
// reconnecting (bounded backoff) until ctx is done.
func followEvents(ctx context.Context, c *client, changed chan<- struct{}) {
	var last string
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := readSSE(ctx, c, &last, changed)
		if err == nil || ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
		case <-ctx.Done():
			return
		}
	}
}

func readSSE(ctx context.Context, c *client, last *string, changed chan<- struct{}) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/events", nil)
	if err != nil {
		return err
	}
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	} else {
		req.URL.RawQuery = "after=now" // only new events
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{}).Do(req) // no timeout: a long-lived stream
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			*last = id
		}
		if strings.HasPrefix(line, "data: ") {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
