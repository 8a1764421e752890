package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

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
