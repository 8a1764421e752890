//go:build integration

package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the tokens table, read-only
)

// secretsOf returns the site's secrets by name: what the test planted (the
// BMC password, the root hash) and what racklift made (the admin token,
// every node's current callback token).
func (st *site) secretsOf(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{
		"BMC password":       BMCPassword,
		"root password hash": strings.Trim(strings.TrimPrefix(strings.SplitN(Secrets, "\n", 2)[0], "root-hash: "), `"`),
	}
	if b, err := os.ReadFile(filepath.Join(st.state, "admin-token")); err == nil {
		out["admin token"] = strings.TrimSpace(string(b))
	}
	// The deployment key's private part: every base64 line of its body
	// (each one long enough not to appear by chance).
	if b, err := os.ReadFile(filepath.Join(st.state, "ssh", "id_ed25519")); err == nil {
		for i, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); len(l) >= 40 && !strings.HasPrefix(l, "-----") {
				out[fmt.Sprintf("deployment key line %d", i)] = l
			}
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(st.state, "racklift.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT node, token FROM tokens`)
	if err != nil {
		t.Fatalf("read tokens: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var node, tok string
		if err := rows.Scan(&node, &tok); err != nil {
			t.Fatal(err)
		}
		out["callback token of "+node] = tok
	}
	if len(out) < 3+len(st.nodes) {
		t.Fatalf("only %d secrets found: %v", len(out), keys(out))
	}
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

// tokenLike finds what looks like a racklift token (32 random bytes,
// unpadded base64url) after a token header or query parameter.
var tokenLike = regexp.MustCompile(`(?i)(x-racklift-token:\s*|token=|bearer\s+)([A-Za-z0-9_-]{40,})`)

// findSecrets names what of secrets (or what looks like a token) text holds.
func findSecrets(text string, secrets map[string]string) []string {
	var found []string
	for name, secret := range secrets {
		if secret != "" && strings.Contains(text, secret) {
			found = append(found, "the "+name)
		}
	}
	for _, m := range tokenLike.FindAllStringSubmatch(text, -1) {
		found = append(found, fmt.Sprintf("something like a token: %q", m[0][:min(len(m[0]), 40)]+"..."))
	}
	return found
}

// assertNoSecrets reads everything racklift shows or serves after a whole
// install (its log, every admin API answer, the metrics, the event stream,
// the dashboard's files, the reviewed install files, `racklift status
// --json`, every public boot script, a node's files asked for from another
// address) and fails if any holds one of the site's secrets (issue 21).
func (st *site) assertNoSecrets(ctx context.Context, t *testing.T) {
	t.Helper()
	secrets := st.secretsOf(t)
	outputs := map[string]string{"serve.log": readTrim(st.serveLog)}
	get := func(url string, args ...string) string {
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		b, _ := st.ns.Run(c, "curl", append(append([]string{"-s"}, args...), url)...).Output()
		return string(b)
	}
	admin := "http://127.0.0.1:8081"
	for _, p := range []string{"/", "/app.js", "/i18n.json", "/style.css", "/healthz", "/metrics",
		"/api/v1/cluster", "/api/v1/nodes", "/api/v1/runs", "/api/v1/unplanned", "/api/v1/handoff"} {
		outputs["admin "+p] = get(admin + p)
	}
	outputs["admin /api/v1/events (replay)"] = get(admin+"/api/v1/events?after=0", "--max-time", "3")
	for _, n := range st.nodes {
		outputs["admin node "+n.Name] = get(admin + "/api/v1/nodes/" + n.Name + "?limit=10000")
		for _, f := range []string{"boot.ipxe", "ks.cfg", "user-data", "meta-data", "grub.cfg", "instructions", "network-config"} {
			outputs["review "+n.Name+" "+f] = get(admin + "/api/v1/nodes/" + n.Name + "/files/" + f)
		}
		boot := "http://10.99.0.1:8080"
		outputs["public boot script "+n.Name] = get(boot + "/ipxe/" + n.MAC + "/boot.ipxe")
		// From the server's own address, which is not the node's.
		for _, u := range []string{"/ks/" + n.MAC, "/ci/" + n.MAC + "/user-data"} {
			outputs["node file "+u+" from another address"] = get(boot + u)
		}
	}
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	status, err := st.ns.Run(c, st.bin, "status", "--json", "--server", admin, "--state-dir", st.state).CombinedOutput()
	// Exit 1 says a node failed or differs from the plan: still a report.
	if ee := (*exec.ExitError)(nil); err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Errorf("racklift status --json: %v\n%s", err, status)
	}
	outputs["racklift status --json"] = string(status)

	// The detector finds each secret where it could leak (so this check
	// can fail), then finds none in what racklift put out.
	for name, secret := range secrets {
		if len(findSecrets("level=INFO msg=x detail=\""+secret+"\"", secrets)) == 0 {
			t.Fatalf("the detector misses the %s", name)
		}
	}
	bytes := 0
	for where, text := range outputs {
		bytes += len(text)
		for _, f := range findSecrets(text, secrets) {
			t.Errorf("%s holds %s", where, f)
		}
	}
	t.Logf("no secret (%d of them) in %d outputs, %d KiB read", len(secrets), len(outputs), bytes>>10)
	// The review copy of the first node's secret-bearing file (kickstart,
	// or an image node's instructions) is the masked one.
	masked := false
	for _, f := range []string{"ks.cfg", "instructions"} {
		masked = masked || strings.Contains(outputs["review "+st.nodes[0].Name+" "+f], "hidden-by-racklift")
	}
	if !masked {
		t.Errorf("the reviewed kickstart or instructions of %s are not the masked ones:\n%s\n%s", st.nodes[0].Name,
			outputs["review "+st.nodes[0].Name+" ks.cfg"], outputs["review "+st.nodes[0].Name+" instructions"])
	}
	if !strings.Contains(fmt.Sprint(outputs["racklift status --json"]), `"nodes"`) {
		t.Errorf("status --json: %s", outputs["racklift status --json"])
	}
}
