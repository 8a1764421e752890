package render

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testRootHash is a fixed crypt hash so golden files are stable.
const testRootHash = "$6$racklifttest$Q0r8bH2oYh8l0m0xqVh2d7n3m1Ck0sVx3m6bq7mM2cKq1V1m9X0pZ0h1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuV"

func testEnv(n *plan.Node) Env {
	return Env{ServerURL: "http://10.99.0.1:8080", Token: "test-token-" + n.Name, RootHash: testRootHash}
}

func newTestRenderer(t testing.TB) *Renderer {
	t.Helper()
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(stableFacts{templates.FS()}, profs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testFactsScript stands for the facts script in rendered test files, so
// golden files do not change with every edit of the script (its SHA-256
// is in every first boot). TestRealFactsScript renders with the real one.
const testFactsScript = "#!/usr/bin/python3\n# racklift-facts stand-in for golden files\n"

// stableFacts is the templates FS with testFactsScript as the facts script.
type stableFacts struct{ fs.FS }

func (s stableFacts) Open(name string) (fs.File, error) {
	if name == factsScriptName {
		return fstest.MapFS{name: {Data: []byte(testFactsScript)}}.Open(name)
	}
	return s.FS.Open(name)
}

func loadExample(t testing.TB, name string) *plan.Plan {
	t.Helper()
	data, err := fs.ReadFile(plan.Examples(), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		t.Fatal(err)
	}
	p, ds := plan.Load(name+".yaml", data, plan.Options{Profiles: profs})
	if p == nil {
		t.Fatalf("example %s invalid: %v", name, ds)
	}
	return p
}

func exampleNames(t testing.TB) []string {
	t.Helper()
	names, err := fs.Glob(plan.Examples(), "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".yaml")
	}
	return names
}

// goldenNodes picks the nodes whose files are kept as golden files: all of
// a small plan, one per role combination of a large one.
func goldenNodes(p *plan.Plan) map[string]bool {
	keep := map[string]bool{}
	if len(p.Nodes) <= 20 {
		for _, n := range p.Nodes {
			keep[n.Name] = true
		}
		return keep
	}
	seen := map[string]bool{}
	for _, n := range p.Nodes {
		k := n.RoleNames(",") + "/" + n.Profile
		if !seen[k] {
			seen[k] = true
			keep[n.Name] = true
		}
	}
	return keep
}

// TestGolden renders every node of every example plan, checks each file,
// and compares the files of the golden nodes with testdata/golden.
func TestGolden(t *testing.T) {
	r := newTestRenderer(t)
	for _, ex := range exampleNames(t) {
		t.Run(ex, func(t *testing.T) {
			p := loadExample(t, ex)
			keep := goldenNodes(p)
			dir := filepath.Join("testdata", "golden", ex)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range p.Nodes {
				files, err := r.Files(p, n, testEnv(n))
				if err != nil {
					t.Fatalf("%s: %v", n.Name, err)
				}
				for _, f := range files {
					checkNoSecretLeak(t, n, f)
				}
				if !keep[n.Name] {
					continue
				}
				for _, f := range files {
					path := filepath.Join(dir, n.Name, f.Name)
					if *update {
						if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(path, f.Data, 0o644); err != nil {
							t.Fatal(err)
						}
						continue
					}
					want, err := os.ReadFile(path)
					if err != nil {
						t.Fatalf("%v (run go test ./provision/render -run TestGolden -update)", err)
					}
					if !bytes.Equal(f.Data, want) {
						t.Errorf("%s differs from the golden file; diff it after: go test ./provision/render -run TestGolden -update\n%s", path, firstDiff(want, f.Data))
					}
				}
			}
		})
	}
}

// checkNoSecretLeak fails if a file carries anything that looks like a BMC
// credential.
func checkNoSecretLeak(t *testing.T, n *plan.Node, f File) {
	t.Helper()
	if n.BMC != nil && n.BMC.PasswordSecret != "" && bytes.Contains(f.Data, []byte(n.BMC.PasswordSecret)) {
		t.Errorf("%s/%s mentions the BMC secret name %q", n.Name, f.Name, n.BMC.PasswordSecret)
	}
	if bytes.Contains(f.Data, []byte(testRootHash)) != f.Secret {
		t.Errorf("%s/%s: Secret=%v but root hash present=%v", n.Name, f.Name, f.Secret, !f.Secret)
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return ""
}
