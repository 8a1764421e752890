package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklift/racklift/provision/plan"
)

// runCmd runs racklift in-process with its own environment.
func runCmd(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	code = run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func examplePlan(t *testing.T, name string) string {
	t.Helper()
	code, out, _ := runCmd(t, nil, "plan", "example", name)
	if code != 0 {
		t.Fatalf("plan example %s: %d", name, code)
	}
	return writeFile(t, name+".yaml", out, 0o644)
}

const labSecrets = "root-hash: \"$6$labsalt1$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP\"\nbmc-lab: password\n"

func TestPlanValidateExitCodes(t *testing.T) {
	lab := examplePlan(t, "lab")
	secrets := writeFile(t, "s.yaml", labSecrets, 0o600)
	broken := writeFile(t, "broken.yaml", "cluster: {name: x}\nnodes: []\nnetworks: []\nbogus: 1\n", 0o644)

	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		in   string // substring of stdout+stderr
	}{
		{"valid", []string{"plan", "validate", lab, "--secrets", secrets}, nil, 0, `plan "lab" is usable: 3 nodes`},
		{"flags before file", []string{"plan", "validate", "--secrets", secrets, lab}, nil, 0, "usable"},
		{"strict fails on warnings", []string{"plan", "validate", lab, "--secrets", secrets, "--strict"}, nil, 1, "1 controller is a single point of failure"},
		{"invalid", []string{"plan", "validate", broken}, nil, 1, `broken.yaml:4:1: error: bogus: unknown field "bogus"`},
		{"no file", []string{"plan", "validate"}, nil, 2, "want exactly one plan FILE"},
		{"bad flag", []string{"plan", "validate", lab, "--nope"}, nil, 2, "flag provided but not defined"},
		{"missing file", []string{"plan", "validate", "/nonexistent/plan.yaml"}, nil, 3, "no such file"},
		{"secrets from env var", []string{"plan", "validate", lab}, map[string]string{"RACKLIFT_SECRETS": secrets}, 0, "usable"},
		{"unknown command", []string{"frobnicate"}, nil, 2, "unknown command"},
		{"unknown plan subcommand", []string{"plan", "frob"}, nil, 2, "unknown subcommand"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCmd(t, c.env, c.args...)
			if code != c.code || !strings.Contains(out+errs, c.in) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s%s", code, c.code, c.in, out, errs)
			}
		})
	}
}

func TestSecretsPermissionsRefused(t *testing.T) {
	lab := examplePlan(t, "lab")
	secrets := writeFile(t, "s.yaml", labSecrets, 0o644)
	code, out, errs := runCmd(t, nil, "plan", "validate", lab, "--secrets", secrets)
	if code != 1 || !strings.Contains(errs, "chmod 600") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out+errs, "labsalt") {
		t.Fatal("secret value printed")
	}
}

func TestPlanValidateJSON(t *testing.T) {
	broken := writeFile(t, "broken.yaml", "cluster:\n  name: ok\n  ceph_pool_size: many\n", 0o644)
	code, out, _ := runCmd(t, nil, "plan", "validate", broken, "--json")
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var res struct {
		Valid       bool
		Errors      int
		Diagnostics []struct {
			Severity, File, Path, Message, Hint, Rule string
			Line, Col                                 int
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Valid || res.Errors == 0 {
		t.Fatalf("%+v", res)
	}
	var d struct {
		Severity, File, Path, Message, Hint, Rule string
		Line, Col                                 int
	}
	for _, x := range res.Diagnostics {
		if x.Rule == "yaml-type" {
			d = x
		}
	}
	if d.Path != "cluster.ceph_pool_size" || d.Line != 3 || d.Col != 19 || d.Severity != "error" || d.Rule != "yaml-type" {
		t.Fatalf("first diagnostic %+v", d)
	}
}

func TestPlanShowAndDemo(t *testing.T) {
	code, out, errs := runCmd(t, nil, "demo")
	if code != 0 {
		t.Fatalf("demo exit %d: %s", code, errs)
	}
	for _, want := range []string{"Cluster lab", "mgmt", "10.99.0.101", "lab-03", "HA CHECK", "ubuntu2404"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	hci := examplePlan(t, "hyperconverged")
	code, out, _ = runCmd(t, map[string]string{"RACKLIFT_SECRET_ROOT_HASH": "$6$abcdefgh$0123456789abcdefghijklmnop", "RACKLIFT_SECRET_BMC_HCI": "pw-should-never-print"}, "plan", "show", hci)
	if code != 0 || !strings.Contains(out, "hci-compute-06") || !strings.Contains(out, "VLAN") {
		t.Fatalf("show exit %d:\n%s", code, out)
	}
	if strings.Contains(out, "pw-should-never-print") {
		t.Fatal("plan show printed a secret")
	}
}

func TestPlanSchemaAndExample(t *testing.T) {
	code, out, _ := runCmd(t, nil, "plan", "schema")
	var s map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s["title"] != "racklift cluster plan" {
		t.Fatalf("schema exit %d", code)
	}
	if code, _, errs := runCmd(t, nil, "plan", "example", "nope"); code != 2 || !strings.Contains(errs, "hyperconverged") {
		t.Fatalf("unknown example: %d %s", code, errs)
	}
	if code, out, _ := runCmd(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "racklift ") {
		t.Fatal(out)
	}
}

// TestUsageNamesEveryExample: an example plan added to provision/plan is
// named by both usage texts, so the field engineer finds it.
func TestUsageNamesEveryExample(t *testing.T) {
	names, err := fs.Glob(plan.Examples(), "*.yaml")
	if err != nil || len(names) == 0 {
		t.Fatalf("examples: %v %v", names, err)
	}
	for _, n := range names {
		n = strings.TrimSuffix(n, ".yaml")
		if !strings.Contains(usage, "|"+n+"|") && !strings.Contains(usage, "["+n+"|") && !strings.Contains(usage, "|"+n+"]") {
			t.Errorf("racklift usage does not name example %q", n)
		}
		if !strings.Contains(planUsage, " "+n+",") && !strings.Contains(planUsage, "("+n+",") && !strings.Contains(planUsage, " "+n+")") {
			t.Errorf("plan usage does not name example %q", n)
		}
		examplePlan(t, n)
	}
}
