// Package archtest holds the architecture's rules as a test: which
// racklift package may import which (ARCHITECTURE.md explains them). It
// reads the import graph with `go list` and fails naming the rule a
// package breaks.
package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/racklift/racklift/"

// rule forbids imports: a package matching from may not import a package
// matching to (prefixes of the path below the module; "*" is any).
type rule struct {
	from, to []string
	why      string
}

// leaves import no other racklift package: everything else builds on them.
var leaves = []string{"provision/nodeapi", "provision/image", "provision/events", "boot/pxe", "boot/ipxe", "profiles", "templates"}

var rules = []rule{
	{[]string{"provision/"}, []string{"boot/", "webui", "cmd/"},
		"provision/* is the domain (plan, render, events, bmc, orchestrate, ...): it never depends on the boot services, the UI or the CLI"},
	{[]string{"boot/"}, []string{"webui", "cmd/", "provision/orchestrate"},
		"boot services report events and ask the orchestrator through their own small interfaces; they never import it, the UI or the CLI"},
	{[]string{"webui"}, []string{"boot/", "cmd/", "provision/orchestrate"},
		"the admin API talks to the orchestrator through its Control interface, never to its package or the boot services"},
	{[]string{"*"}, []string{"cmd/"}, "nothing imports a command"},
	{leaves, []string{"*"}, "leaves stay leaves: they import no racklift package"},
}

func match(pkg string, patterns []string) bool {
	for _, p := range patterns {
		if p == "*" || pkg == p || strings.HasPrefix(pkg, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// goBinary is the go command: on PATH, or where the Makefile puts it.
func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// imports returns racklift package -> the racklift packages it imports
// (non-test code), with and without the integration build tag.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tags := range []string{"", "integration"} {
		cmd := exec.Command(goBinary(), "list", "-tags", tags, "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"...")
		cmd.Dir = "../.."
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 || !strings.HasPrefix(f[0], module) {
				continue
			}
			from := strings.TrimPrefix(f[0], module)
			for _, imp := range f[1:] {
				if strings.HasPrefix(imp, module) {
					out[from] = append(out[from], strings.TrimPrefix(imp, module))
				}
			}
		}
	}
	return out
}

func TestImportsFlowOneWay(t *testing.T) {
	graph := imports(t)
	if len(graph) < 10 {
		t.Fatalf("only %d racklift packages listed: %v", len(graph), graph)
	}
	for from, tos := range graph {
		for _, to := range tos {
			for _, r := range rules {
				if match(from, r.from) && match(to, r.to) && from != to {
					t.Errorf("%s imports %s: %s", from, to, r.why)
				}
			}
		}
	}
}

// TestRulesCatchAViolation: each rule does reject the kind of import it is
// written for (so the test above can fail).
func TestRulesCatchAViolation(t *testing.T) {
	for _, c := range []struct{ from, to string }{
		{"provision/orchestrate", "boot/httpboot"},
		{"provision/orchestrate", "webui"},
		{"boot/dhcp", "webui"},
		{"webui", "provision/orchestrate"},
		{"hack/e2e", "cmd/racklift"},
		{"provision/events", "provision/plan"},
	} {
		broken := false
		for _, r := range rules {
			broken = broken || (match(c.from, r.from) && match(c.to, r.to))
		}
		if !broken {
			t.Errorf("no rule forbids %s -> %s", c.from, c.to)
		}
	}
}
