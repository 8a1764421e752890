package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"text/template"

	"github.com/racklift/racklift/provision/nodeapi"
)

// funcs are the template helpers. They are pure and cheap.
func funcs() template.FuncMap {
	return template.FuncMap{
		// q quotes a string for YAML (a JSON string is a YAML
		// double-quoted scalar).
		"q": yamlQuote,
		// sh quotes a string for POSIX sh.
		"sh": shellQuote,
		// join joins strings with a separator.
		"join": func(sep string, xs []string) string { return strings.Join(xs, sep) },
		// indent prefixes every non-empty line with n spaces.
		"indent": indent,
		// body builds a nodeapi.CallbackBody JSON document.
		"body": callbackJSON,
		// callback returns a shell command that POSTs progress to url
		// with the token header; it never fails the caller.
		"callback": callbackCmd,
		// callbackFile is callback with the token header read from a
		// root-only file (curl -H @FILE), so the token is in no process's
		// arguments on the installed system.
		"callbackFile": callbackFileCmd,
		// tokenHeader is the name of the token header.
		"tokenHeader": func() string { return nodeapi.TokenHeader },
	}
}

func yamlQuote(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	var b strings.Builder
	b.Grow(len(s) + n*strings.Count(s, "\n") + n)
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) != "" {
			b.WriteString(pad)
		}
		b.WriteString(line)
	}
	return b.String()
}

// callbackJSON returns {"percent":P,"detail":D}.
func callbackJSON(percent int, detail string) string {
	p := percent
	b, _ := json.Marshal(nodeapi.CallbackBody{Percent: &p, Detail: detail})
	return string(b)
}

// callbackFileCmd returns a sh command posting {percent, detail} to url
// with the header line in headerFile ("X-Racklift-Token: ..."); it ends in
// "|| true".
func callbackFileCmd(url, headerFile string, percent int, detail string) string {
	return "curl -fsS -m 15 --retry 3 --retry-delay 2 -X POST -H " + shellQuote("@"+headerFile) +
		" -H 'Content-Type: application/json' -d " + shellQuote(callbackJSON(percent, detail)) +
		" " + shellQuote(url) + " >/dev/null 2>&1 || true"
}

// callbackCmd returns a sh command posting {percent, detail} to url with the
// token in the nodeapi.TokenHeader header. It ends in "|| true": a lost callback
// must never fail an install.
func callbackCmd(url, token string, percent int, detail string) string {
	return "curl -fsS -m 15 --retry 3 --retry-delay 2 -X POST -H " + shellQuote(nodeapi.TokenHeader+": "+token) +
		" -H 'Content-Type: application/json' -d " + shellQuote(callbackJSON(percent, detail)) +
		" " + shellQuote(url) + " >/dev/null 2>&1 || true"
}
