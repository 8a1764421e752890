package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPlanRender(t *testing.T) {
	lab := examplePlan(t, "lab")
	secrets := writeFile(t, "s.yaml", labSecrets, 0o600)
	out := filepath.Join(t.TempDir(), "render")
	code, stdout, stderr := runCmd(t, nil, "plan", "render", lab, "-o", out, "--secrets", secrets, "--server-url", "http://10.99.0.1:8080")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "rendered 3 nodes (13 files)") {
		t.Errorf("stdout: %s", stdout)
	}
	want := map[string][]string{
		"lab-01": {"boot.ipxe", "ks.cfg", "user-data", "meta-data"},
		"lab-02": {"boot.ipxe", "ks.cfg", "user-data", "meta-data"},
		"lab-03": {"boot.ipxe", "user-data", "meta-data", "vendor-data"},
	}
	tokenRE := regexp.MustCompile(`X-Racklift-Token: ([A-Za-z0-9_-]+)`)
	tokens := map[string]string{}
	for node, files := range want {
		st, err := os.Stat(filepath.Join(out, node))
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", node, err, st.Mode())
		}
		for _, f := range files {
			p := filepath.Join(out, node, f)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v", p, st.Mode())
			}
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "bmc-lab") || strings.Contains(string(b), "password\n") {
				t.Errorf("%s mentions the BMC secret", p)
			}
			if m := tokenRE.FindStringSubmatch(string(b)); m != nil {
				if old, ok := tokens[node]; ok && old != m[1] {
					t.Errorf("%s: two tokens", node)
				}
				tokens[node] = m[1]
			}
		}
	}
	if len(tokens) != 3 || tokens["lab-01"] == tokens["lab-02"] || len(tokens["lab-01"]) < 40 {
		t.Errorf("tokens: %v", tokens)
	}
	ks, _ := os.ReadFile(filepath.Join(out, "lab-01", "ks.cfg"))
	if !strings.Contains(string(ks), "rootpw --iscrypted $6$labsalt1$") {
		t.Error("ks.cfg lacks the root hash")
	}
	idx, err := os.ReadFile(filepath.Join(out, "index.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"lab-03  52:54:00:99:00:03  10.99.0.103  ubuntu2404  autoinstall  boot.ipxe user-data meta-data vendor-data", "A serving\nracklift issues and checks its own tokens", "Server URL: http://10.99.0.1:8080"} {
		if !strings.Contains(string(idx), w) {
			t.Errorf("index lacks %q:\n%s", w, idx)
		}
	}
}

func TestPlanRenderErrors(t *testing.T) {
	lab := examplePlan(t, "lab")
	broken := writeFile(t, "broken.yaml", "cluster: {name: x}\nnodes: []\nnetworks: []\nbogus: 1\n", 0o644)
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		in   string
	}{
		{"no server url", []string{"plan", "render", lab, "-o", dir}, 2, "--server-url is required"},
		{"bad server url", []string{"plan", "render", lab, "-o", dir, "--server-url", "http://x y"}, 2, "want http://HOST"},
		{"no output", []string{"plan", "render", lab, "--server-url", "http://10.99.0.1"}, 2, "-o DIR is required"},
		{"invalid plan", []string{"plan", "render", broken, "-o", dir, "--server-url", "http://10.99.0.1"}, 1, "is not usable; nothing rendered"},
	}
	for _, c := range cases {
		code, stdout, stderr := runCmd(t, nil, c.args...)
		if code != c.code || !strings.Contains(stdout+stderr, c.in) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", c.name, code, c.code, c.in, stdout, stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed renders wrote files: %v", entries)
	}

	// Without secrets: rendered, root password locked, and said so.
	out := filepath.Join(t.TempDir(), "r")
	code, _, stderr := runCmd(t, nil, "plan", "render", lab, "-o", out, "--server-url", "http://10.99.0.1:8080")
	if code != 0 || !strings.Contains(stderr, "root password locked") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ks, _ := os.ReadFile(filepath.Join(out, "lab-02", "ks.cfg"))
	if !strings.Contains(string(ks), "\nrootpw --lock\n") {
		t.Error("want rootpw --lock")
	}
}
