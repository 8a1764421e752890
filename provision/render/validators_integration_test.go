//go:build integration

package render

// Real validators: Debian's cloud-init (`cloud-init schema --config-file`)
// for every cloud-config, and Subiquity's published autoinstall JSON
// schema (checked with python3-jsonschema) for every autoinstall section.
//
//	apt-get install cloud-init python3-jsonschema
//	touch /etc/cloud/cloud-init.disabled   # never let cloud-init configure the test host
//	go test -tags integration ./provision/render/
//
// The autoinstall schema is ../shared/autoinstall-schema.json relative to
// the repository root (CI checks out shared/ beside the clone).

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// validatedFile is one rendered file to check.
type validatedFile struct {
	name string // plan/node/file, for messages
	data []byte
	kind outputKind
}

// filesToValidate renders every node of the small examples and the disk
// test plan, and the golden nodes (one per role set) of the large site:
// the large site's other nodes differ only in addresses and names.
func filesToValidate(t *testing.T) []validatedFile {
	t.Helper()
	r := newTestRenderer(t)
	plans := map[string]*plan.Plan{"disks": loadPlan(t, diskPlan)}
	for _, ex := range exampleNames(t) {
		plans[ex] = loadExample(t, ex)
	}
	var out []validatedFile
	for name, p := range plans {
		keep := goldenNodes(p)
		for _, n := range p.Nodes {
			if !keep[n.Name] && name != "disks" {
				continue
			}
			prof, err := r.Profile(n)
			if err != nil {
				t.Fatal(err)
			}
			files, err := r.Files(p, n, testEnv(n))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				var kind outputKind
				switch {
				case f.Name == nodeapi.FileUserData && prof.Installer == "autoinstall":
					kind = kindAutoinstall
				case f.Name == nodeapi.FileUserData || f.Name == nodeapi.FileVendorData:
					kind = kindCloudConfig
				default:
					continue
				}
				out = append(out, validatedFile{name + "/" + n.Name + "/" + f.Name, f.Data, kind})
			}
		}
	}
	return out
}

func TestCloudInitSchema(t *testing.T) {
	ci, err := exec.LookPath("cloud-init")
	if err != nil {
		testbed.SkipOrFail(t, "cloud-init is not installed (apt-get install cloud-init; touch /etc/cloud/cloud-init.disabled)")
	}
	if _, err := os.Stat("/etc/cloud/cloud-init.disabled"); err != nil {
		t.Log("note: /etc/cloud/cloud-init.disabled is missing; create it so cloud-init never configures this host")
	}
	dir := t.TempDir()
	files := filesToValidate(t)
	// Each cloud-config, plus the installed system's config nested in each
	// autoinstall (cloud-init does not look inside autoinstall:).
	type job struct{ name, path string }
	var jobs []job
	for _, f := range files {
		p := filepath.Join(dir, strings.ReplaceAll(f.name, "/", "_"))
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job{f.name, p})
		if f.kind != kindAutoinstall {
			continue
		}
		ai := autoinstallSection(t, f)
		inner, ok := ai["user-data"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no autoinstall.user-data", f.name)
		}
		b, err := yaml.Marshal(inner)
		if err != nil {
			t.Fatal(err)
		}
		ip := filepath.Join(dir, strings.ReplaceAll(f.name, "/", "_")+".inner")
		if err := os.WriteFile(ip, append([]byte("#cloud-config\n"), b...), 0o600); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job{f.name + " (autoinstall.user-data)", ip})
	}
	// The validator must be able to fail.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("#cloud-config\nruncmd: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ci, "schema", "--config-file", bad).CombinedOutput(); err == nil {
		t.Fatalf("cloud-init schema accepted a bad config: %s", out)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := exec.Command(ci, "schema", "--config-file", j.path).CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("Valid cloud-config")) {
				t.Errorf("%s: cloud-init schema: %v\n%s", j.name, err, out)
			}
		}()
	}
	wg.Wait()
	t.Logf("cloud-init schema: %d configs valid", len(jobs))
}

// autoinstallSection returns the autoinstall: mapping of a user-data.
func autoinstallSection(t *testing.T, f validatedFile) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(f.data, &doc); err != nil {
		t.Fatalf("%s: %v", f.name, err)
	}
	ai, ok := doc["autoinstall"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no autoinstall section", f.name)
	}
	return ai
}

// repoRoot finds the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

const jsonschemaCheck = `
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
bad = 0
for path in sys.argv[2:]:
    doc = json.load(open(path))
    for e in sorted(v.iter_errors(doc), key=lambda e: list(e.path)):
        bad += 1
        print("%s: %s: %s" % (path, "/".join(str(p) for p in e.path), e.message))
sys.exit(1 if bad else 0)
`

func TestAutoinstallSchema(t *testing.T) {
	schema := filepath.Join(repoRoot(t), "..", "shared", "autoinstall-schema.json")
	if _, err := os.Stat(schema); errors.Is(err, os.ErrNotExist) {
		t.Skipf("Subiquity's autoinstall schema is not at %s (CI checks out shared/ beside the repository); skipping", schema)
	}
	// Debian's interpreter, where python3-jsonschema (make deps) installs;
	// a python3 earlier on PATH (pyenv) may not have the module.
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if py, err = exec.LookPath("python3"); err != nil {
			testbed.SkipOrFail(t, "python3 is not installed")
		}
	}
	if err := exec.Command(py, "-c", "import jsonschema").Run(); err != nil {
		testbed.SkipOrFail(t, "%s has no jsonschema module (apt-get install python3-jsonschema)", py)
	}
	dir := t.TempDir()
	var paths, names []string
	for _, f := range filesToValidate(t) {
		if f.kind != kindAutoinstall {
			continue
		}
		b, err := json.Marshal(autoinstallSection(t, f))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, strings.ReplaceAll(f.name, "/", "_")+".json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		paths, names = append(paths, p), append(names, f.name)
	}
	if len(paths) == 0 {
		t.Fatal("no autoinstall user-data rendered")
	}
	// The check must be able to fail: version 2 and an unknown key.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version": 2, "storage": {}, "bogus": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(py, "-c", jsonschemaCheck, schema, bad).CombinedOutput(); err == nil {
		t.Fatalf("the schema accepted a bad autoinstall: %s", out)
	}
	out, err := exec.Command(py, append([]string{"-c", jsonschemaCheck, schema}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("autoinstall schema: %v\n%s", err, out)
	}
	t.Logf("autoinstall schema: %d sections valid: %s", len(paths), strings.Join(names, ", "))
}
