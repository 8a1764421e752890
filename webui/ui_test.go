package webui_test

import (
	"encoding/json"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(webui.Static(), name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStaticFiles(t *testing.T) {
	for _, name := range []string{"index.html", "app.js", "style.css", "i18n.json", "i18n.js", "dom.js", "phases.js", "favicon.svg"} {
		if st, err := fs.Stat(webui.Static(), name); err != nil || st.Size() == 0 {
			t.Errorf("Static() lacks %s (%v)", name, err)
		}
	}
}

// svgNS is the one http:// string allowed: an XML namespace name, never fetched.
const svgNS = "http://www.w3.org/2000/svg"

// TestOnlyLocalAssets keeps the dashboard offline: no URL with a scheme or a
// protocol-relative URL anywhere, and every local reference resolves to an
// embedded file.
func TestOnlyLocalAssets(t *testing.T) {
	remote := regexp.MustCompile(`(?i)\b(https?|ftp|wss?):|["'(=]\s*//[a-z0-9]|@import|@font-face`)
	err := fs.WalkDir(webui.Static(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		text := strings.ReplaceAll(readStatic(t, path), svgNS, "")
		for _, m := range remote.FindAllString(text, -1) {
			t.Errorf("%s: external reference %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	html := readStatic(t, "index.html")
	refs := regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html has %d src/href references, want the stylesheet, script and icon", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "#") {
			continue
		}
		if _, err := fs.Stat(webui.Static(), ref); err != nil {
			t.Errorf("index.html references %q, which is not embedded", ref)
		}
	}
	for _, name := range []string{"app.js", "i18n.js", "dom.js", "phases.js"} {
		for _, m := range regexp.MustCompile(`(?m)^import .* from '([^']+)';`).FindAllStringSubmatch(readStatic(t, name), -1) {
			if !strings.HasPrefix(m[1], "./") {
				t.Errorf("%s imports %q: only ./local modules", name, m[1])
			} else if _, err := fs.Stat(webui.Static(), m[1][2:]); err != nil {
				t.Errorf("%s imports %q, which is not embedded", name, m[1])
			}
		}
	}
	// The Content-Security-Policy forbids inline script and style: the
	// page must have none.
	for _, bad := range []string{"<script>", "<style", " style=\"", " onclick=", " onload="} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q, which the CSP blocks", bad)
		}
	}
}

// TestNoHTMLInjection: the dashboard inserts text, never HTML.
func TestNoHTMLInjection(t *testing.T) {
	sink := regexp.MustCompile(`\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function`)
	for _, name := range []string{"app.js", "i18n.js", "dom.js", "phases.js"} {
		for _, m := range sink.FindAllString(readStatic(t, name), -1) {
			t.Errorf("%s uses %s", name, m)
		}
	}
}

func loadDict(t *testing.T) map[string]map[string]string {
	t.Helper()
	var dict map[string]map[string]string
	if err := json.Unmarshal([]byte(readStatic(t, "i18n.json")), &dict); err != nil {
		t.Fatalf("i18n.json: %v", err)
	}
	return dict
}

// placeholders lists the {names} in a translation.
func placeholders(s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestI18nComplete: English and Simplified Chinese have the same keys, no
// empty strings, and the same {placeholders}.
func TestI18nComplete(t *testing.T) {
	dict := loadDict(t)
	if got := slices.Sorted(maps.Keys(dict)); !slices.Equal(got, []string{"en", "zh-CN"}) {
		t.Fatalf("languages %v, want [en zh-CN]", got)
	}
	en, zh := dict["en"], dict["zh-CN"]
	if len(en) < 100 {
		t.Fatalf("only %d English strings", len(en))
	}
	for k, v := range en {
		z, ok := zh[k]
		switch {
		case !ok:
			t.Errorf("zh-CN lacks %q", k)
		case strings.TrimSpace(v) == "" || strings.TrimSpace(z) == "":
			t.Errorf("%q is empty in a language", k)
		case !slices.Equal(placeholders(v), placeholders(z)):
			t.Errorf("%q: placeholders en %v, zh-CN %v", k, placeholders(v), placeholders(z))
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
}

// TestI18nKeysUsed: every key the page and the scripts use is in the
// dictionary, including the families built at run time (phase.X, role.X...).
func TestI18nKeysUsed(t *testing.T) {
	en := loadDict(t)["en"]
	var used []string
	html := readStatic(t, "index.html")
	for _, m := range regexp.MustCompile(`data-i18n(?:-[a-z-]+)?="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		used = append(used, m[1])
	}
	nHTML := len(used)
	for _, name := range []string{"app.js", "i18n.js"} {
		for _, m := range regexp.MustCompile(`\bt\('([\w-]+(?:\.[\w-]+)+)'`).FindAllStringSubmatch(readStatic(t, name), -1) {
			used = append(used, m[1])
		}
		// keys in tables such as ['plan.domain', c.domain] and ternaries
		for _, m := range regexp.MustCompile(`'((?:conn|plan|col|detail|unplanned)\.[a-zA-Z]+)'`).FindAllStringSubmatch(readStatic(t, name), -1) {
			used = append(used, m[1])
		}
	}
	if nHTML < 50 || len(used)-nHTML < 30 {
		t.Fatalf("found %d keys in index.html and %d in scripts: the patterns no longer match", nHTML, len(used)-nHTML)
	}
	family := func(prefix string, vals ...string) {
		for _, v := range vals {
			used = append(used, prefix+"."+v)
		}
	}
	for _, p := range events.Phases() {
		family("phase", string(p))
	}
	for _, r := range plan.AllRoles() {
		family("role", string(r))
	}
	for _, p := range []plan.Purpose{plan.PurposeManagement, plan.PurposeBMC, plan.PurposeStorage, plan.PurposeStorageCluster,
		plan.PurposeTenant, plan.PurposeExternal, plan.PurposeMigration, plan.PurposeOther} {
		family("purpose", string(p))
	}
	for _, s := range []events.RunState{events.RunActive, events.RunSucceeded, events.RunFailed, events.RunCancelled} {
		family("run", string(s))
	}
	family("ha", "ok", "warning", "error") // plan.HACheck.Status
	family("group", "bmc", "boot", "install", "firstboot")
	for _, kind := range []string{"reinstall", "power", "retry"} { // nodeAction
		family("confirm."+kind, "title", "text", "ok")
		family("toast", kind)
	}
	for _, k := range used {
		if _, ok := en[k]; !ok {
			t.Errorf("key %q is used but not in i18n.json", k)
		}
	}

	// phases.js groups every phase of the store's table (the order and
	// spans it loads from GET /api/v1/phases); each has its label.
	js := readStatic(t, "phases.js")
	for _, p := range events.Phases() {
		if !strings.Contains(js, "'"+string(p)+"'") {
			t.Errorf("phases.js does not group phase %s", p)
		}
		if _, ok := en["phase."+string(p)]; !ok {
			t.Errorf("no label phase.%s in i18n.json", p)
		}
	}
}
