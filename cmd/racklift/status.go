package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

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
