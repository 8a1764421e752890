package main

import (
	"strings"
	"testing"
)

// TestDestructiveFlagsNeverFromEnvironment: a RACKLIFT_YES, RACKLIFT_ALL,
// RACKLIFT_ROLE or RACKLIFT_FORCE left in the environment must not confirm
// or widen a destructive command (issue 21). Each case would have run
// (reinstall a node, start a run over every node) before the fix.
func TestDestructiveFlagsNeverFromEnvironment(t *testing.T) {
	srv, _, fc := startAPI(t, "sekrit-admin-token")
	base := map[string]string{"RACKLIFT_TOKEN": "sekrit-admin-token", "RACKLIFT_SERVER": srv.URL}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range base {
			m[a] = b
		}
		return m
	}
	cases := []struct {
		name     string
		vars     map[string]string
		args     []string
		wantCode int
		wantErr  []string
	}{
		{"reinstall with RACKLIFT_YES", with("RACKLIFT_YES", "1"), []string{"reinstall", "lab-01"}, exitUsage,
			[]string{"ignoring RACKLIFT_YES from the environment: --yes must be typed", "add --yes to confirm"}},
		{"install with RACKLIFT_ALL", with("RACKLIFT_ALL", "true"), []string{"install"}, exitUsage,
			[]string{"ignoring RACKLIFT_ALL", "exactly one of"}},
		{"install with RACKLIFT_ROLE", with("RACKLIFT_ROLE", "compute"), []string{"install"}, exitUsage,
			[]string{"ignoring RACKLIFT_ROLE", "exactly one of"}},
		{"bmc power off with RACKLIFT_YES and RACKLIFT_ALL", map[string]string{"RACKLIFT_YES": "1", "RACKLIFT_ALL": "1"},
			[]string{"bmc", "power", "off", "--plan", "example:lab"}, exitUsage, []string{"ignoring RACKLIFT_YES", "ignoring RACKLIFT_ALL"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runCmd(t, c.vars, c.args...)
			if code != c.wantCode {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.wantCode, errs)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.calls) != 0 {
		t.Errorf("the server was asked to act: %v", fc.calls)
	}
}

func TestServeForceNeverFromEnvironment(t *testing.T) {
	var errb syncBuffer
	e := &env{stdout: &errb, stderr: &errb, lookupEnv: func(k string) (string, bool) {
		if k == "RACKLIFT_FORCE" {
			return "1", true
		}
		return "", false
	}}
	c, _, ok := parseServe([]string{"--plan", "example:lab", "--interface", "lo", "--dhcp-mode", "authoritative"}, e)
	if !ok || c.force {
		t.Fatalf("RACKLIFT_FORCE set --force (ok %v, force %v)", ok, c != nil && c.force)
	}
	if !strings.Contains(errb.String(), "ignoring RACKLIFT_FORCE") {
		t.Errorf("no word that RACKLIFT_FORCE was ignored: %s", errb.String())
	}
	// Paths and addresses still come from the environment.
	e.lookupEnv = func(k string) (string, bool) {
		if k == "RACKLIFT_STATE_DIR" {
			return "/tmp/racklift-state-from-env", true
		}
		return "", false
	}
	c, _, ok = parseServe([]string{"--plan", "example:lab", "--interface", "lo"}, e)
	if !ok || c.stateDir != "/tmp/racklift-state-from-env" {
		t.Errorf("RACKLIFT_STATE_DIR was not used: %+v", c)
	}
}

func TestBootdevPersistentNeverFromEnvironment(t *testing.T) {
	fs := newFlags("x", &env{stderr: &syncBuffer{}})
	persistent := fs.Bool("persistent", false, "")
	var errb syncBuffer
	e := &env{stderr: &errb, lookupEnv: func(k string) (string, bool) { return "true", k == "RACKLIFT_PERSISTENT" }}
	if _, _, ok := parseFlags(fs, []string{"pxe", "lab-01"}, e); !ok || *persistent {
		t.Fatalf("RACKLIFT_PERSISTENT set --persistent (ok %v)", ok)
	}
	if !strings.Contains(errb.String(), "ignoring RACKLIFT_PERSISTENT") {
		t.Errorf("stderr: %s", errb.String())
	}
}
