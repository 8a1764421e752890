package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAgentCommand(t *testing.T) {
	// A bad command line is reported with the agent's error marker.
	noArgs := writeFile(t, "cmdline", "console=ttyS0,115200 quiet\n", 0o644)
	code, out, _ := runCmd(t, nil, "agent", "--cmdline", noArgs)
	if code != exitUsage || !strings.Contains(out, "RACKLIFT-AGENT: error: kernel command line: racklift.server= is missing") {
		t.Errorf("code %d, out %q", code, out)
	}
	code, _, errOut := runCmd(t, nil, "agent", "--cmdline", "/nonexistent/cmdline")
	if code != exitRuntime || !strings.Contains(errOut, "no such file") {
		t.Errorf("code %d, stderr %q", code, errOut)
	}
	// With good arguments it asks racklift for its instructions (here a
	// server that never has them, and a context that ends: the agent
	// reports the failure and returns, as it is not PID 1).
	var mu sync.Mutex
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = r.URL.Path
		mu.Unlock()
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	defer srv.Close()
	cl := writeFile(t, "cmdline", "racklift.server="+srv.URL+" BOOTIF=01-52-54-00-99-00-31 racklift.onerror=wait\n", 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var o, e strings.Builder
	code = run(ctx, []string{"agent", "--cmdline", cl}, &env{stdout: &o, stderr: &e, lookupEnv: func(string) (string, bool) { return "", false }})
	mu.Lock()
	defer mu.Unlock()
	if code != exitFailed || asked != "/agent/52:54:00:99:00:31/instructions" || !strings.Contains(o.String(), "RACKLIFT-AGENT: error: instructions") {
		t.Errorf("code %d, asked %q, out %q", code, asked, o.String())
	}
}
