package templates_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/racklift/racklift/hack/testbed"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/templates"
)

// systemPython is Debian's interpreter, the one installed nodes have (the
// python3 first on PATH may be another, e.g. pyenv's).
const systemPython = "/usr/bin/python3"

// runFactsScript runs the embedded facts script with python (in the
// current network namespace, or through prefix such as "ip netns exec NS")
// and decodes its output as the server does: a CallbackBody, unknown
// fields refused.
func runFactsScript(t *testing.T, prefix ...string) nodeapi.CallbackBody {
	t.Helper()
	if _, err := os.Stat(systemPython); err != nil {
		testbed.SkipOrFail(t, "%s is missing", systemPython)
	}
	script := filepath.Join(t.TempDir(), templates.FactsScriptName)
	if err := os.WriteFile(script, templates.FactsScript(), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append(slices.Clone(prefix), systemPython, script)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("facts script: %v\n%s", err, stderr.String())
	}
	if len(out) > nodeapi.MaxFactsBody {
		t.Fatalf("facts body is %d bytes, more than %d", len(out), nodeapi.MaxFactsBody)
	}
	var body nodeapi.CallbackBody
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if body.Facts == nil || body.Percent == nil || *body.Percent != 100 || body.Detail == "" {
		t.Fatalf("body: %s", out)
	}
	// Every Facts field is in the output, even when empty.
	var raw struct {
		Facts map[string]json.RawMessage `json:"facts"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "collected_at", "hostname", "fqdn", "interfaces", "routes", "dns", "disks", "os", "kernel", "uefi", "secure_boot", "ssh_host_keys"} {
		if _, ok := raw.Facts[k]; !ok {
			t.Errorf("facts lack %q", k)
		}
	}
	return body
}

// TestFactsScriptOnThisHost runs the script on the test machine and checks
// the facts are plausible against what Go sees.
func TestFactsScriptOnThisHost(t *testing.T) {
	f := runFactsScript(t).Facts
	host, _ := os.Hostname()
	if f.Version != nodeapi.FactsVersion || f.Hostname != host {
		t.Errorf("version %d, hostname %q (want %q)", f.Version, f.Hostname, host)
	}
	if d := time.Since(f.CollectedAt); d < -time.Minute || d > time.Minute {
		t.Errorf("collected_at %v", f.CollectedAt)
	}
	if len(f.Disks) == 0 {
		t.Error("no disks")
	}
	for _, d := range f.Disks {
		if d.Type != "disk" || d.Name == "" || !strings.HasPrefix(d.Path, "/dev/") {
			t.Errorf("disk %+v", d)
		}
	}
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, e := range ents {
		if e.Name() != "lo" {
			want = append(want, e.Name())
		}
	}
	for _, x := range f.Interfaces {
		got = append(got, x.Name)
		if x.MTU <= 0 || x.State == "" {
			t.Errorf("interface %+v", x)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("interfaces %v, want %v (all but lo)", got, want)
	}
	uname, err := exec.Command("uname", "-r").Output()
	if err != nil || f.Kernel != strings.TrimSpace(string(uname)) {
		t.Errorf("kernel %q, uname -r %q", f.Kernel, uname)
	}
	osr, _ := os.ReadFile("/etc/os-release")
	if f.OS.ID == "" || !strings.Contains(string(osr), f.OS.PrettyName) {
		t.Errorf("os %+v", f.OS)
	}
	_, err = os.Stat("/sys/firmware/efi")
	if f.UEFI != (err == nil) || (!f.UEFI && f.SecureBoot != nil) {
		t.Errorf("uefi %v, secure boot %v", f.UEFI, f.SecureBoot)
	}
	for _, k := range f.SSHHostKeys {
		if len(strings.Fields(k)) != 2 {
			t.Errorf("host key %q", k)
		}
	}
}

// TestFactsScriptPythonVersions: the script only uses what Python 3.9
// (Rocky 9) has; if other interpreters are on this machine (pyenv), it
// runs there too and says the same.
func TestFactsScriptPythonVersions(t *testing.T) {
	home, _ := os.UserHomeDir()
	pys, _ := filepath.Glob(filepath.Join(home, ".pyenv/versions/3.*/bin/python3"))
	if len(pys) == 0 {
		t.Skip("no other Python 3 interpreters here (pyenv); the script is checked with /usr/bin/python3")
	}
	script := filepath.Join(t.TempDir(), templates.FactsScriptName)
	if err := os.WriteFile(script, templates.FactsScript(), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, py := range pys {
		v, _ := exec.Command(py, "-c", "import sys; print(sys.version_info[1])").Output()
		if minor, err := strconv.Atoi(strings.TrimSpace(string(v))); err != nil || minor < 9 {
			continue // before 3.9: not a target
		}
		out, err := exec.Command(py, script).Output()
		var body nodeapi.CallbackBody
		if err != nil || json.Unmarshal(out, &body) != nil || body.Facts == nil {
			t.Errorf("%s: %v\n%s", py, err, out)
		}
	}
}
