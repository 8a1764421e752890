package webui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/racklift/racklift/webui"
)

// TestGuardRefusesOtherPages replays the outside probe of issue 21 against
// the admin API on its default loopback listener: every request another
// web page (or a DNS-rebound name) could make the laptop's browser send is
// refused and never reaches the orchestrator; the dashboard's own requests
// and the CLI's (with the token) still work.
func TestGuardRefusesOtherPages(t *testing.T) {
	e := newEnv(t, func(a *webui.API) { a.Token = "admin-tok-123" })
	own := e.srv.URL
	host := strings.TrimPrefix(own, "http://")
	const reinstall = "/api/v1/nodes/cs-compute-0001/reinstall"
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		want                     int
		acts                     bool // the request reaches the orchestrator
	}{
		// The probe's findings: each was 2xx and acted before.
		{"evil Origin, JSON", "POST", reinstall, "{}", []string{"Origin", "http://evil.example"}, http.StatusForbidden, false},
		{"text/plain body (CORS simple request)", "POST", "/api/v1/runs", `{"nodes":["cs-compute-0002"]}`,
			[]string{"Content-Type", "text/plain", "Origin", "http://evil.example"}, http.StatusUnsupportedMediaType, false},
		{"<form enctype=text/plain> body", "POST", "/api/v1/runs", `{"all":true,"role":"=x"}`,
			[]string{"Content-Type", "text/plain", "Origin", "http://evil.example"}, http.StatusUnsupportedMediaType, false},
		{"form-encoded stop", "POST", "/api/v1/runs/stop", "x=1",
			[]string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://evil.example"}, http.StatusUnsupportedMediaType, false},
		{"DNS rebinding: Host evil.example, power off", "POST", "/api/v1/nodes/cs-compute-0001/power/off", "{}",
			[]string{"Host", "evil.example:8081", "Origin", "http://evil.example:8081"}, http.StatusMisdirectedRequest, false},
		{"DNS rebinding: Host evil.example, read the plan", "GET", "/api/v1/cluster", "", []string{"Host", "evil.example:8081"}, http.StatusMisdirectedRequest, false},
		{"DNS rebinding: the dashboard page itself", "GET", "/", "", []string{"Host", "evil.example:8081"}, http.StatusMisdirectedRequest, false},
		// Other ways to come from another site.
		{"Sec-Fetch-Site cross-site", "POST", reinstall, "{}", []string{"Origin", "", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, false},
		{"Sec-Fetch-Site same-site (another port)", "POST", reinstall, "{}", []string{"Origin", "", "Sec-Fetch-Site", "same-site"}, http.StatusForbidden, false},
		{"Origin null (sandboxed frame, file:)", "POST", reinstall, "{}", []string{"Origin", "null"}, http.StatusForbidden, false},
		{"evil Origin even with the token", "POST", reinstall, "{}", []string{"Origin", "http://evil.example", "Authorization", "Bearer admin-tok-123"}, http.StatusForbidden, false},
		{"no Origin, no token (curl)", "POST", reinstall, "{}", []string{"Origin", ""}, http.StatusUnauthorized, false},
		{"no Origin, wrong token", "POST", reinstall, "{}", []string{"Origin", "", "Authorization", "Bearer nope"}, http.StatusUnauthorized, false},
		// What must keep working.
		{"the dashboard (same Origin)", "POST", reinstall, "{}", nil, http.StatusAccepted, true},
		{"the dashboard (Sec-Fetch-Site same-origin)", "POST", reinstall, "{}", []string{"Origin", "", "Sec-Fetch-Site", "same-origin"}, http.StatusAccepted, true},
		{"the CLI (token, no Origin)", "POST", reinstall, "{}", []string{"Origin", "", "Authorization", "Bearer admin-tok-123"}, http.StatusAccepted, true},
		{"JSON with a charset", "POST", reinstall, "{}", []string{"Content-Type", "application/json; charset=utf-8"}, http.StatusAccepted, true},
		{"reads from loopback need no token", "GET", "/api/v1/nodes", "", nil, http.StatusOK, false},
		{"localhost is this server", "GET", "/api/v1/nodes", "", []string{"Host", "localhost:" + host[strings.LastIndex(host, ":")+1:]}, http.StatusOK, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.ctl.Calls())
			code, hdr, b := e.do(c.method, c.path, c.body, c.hdr...)
			if code != c.want {
				t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, b, c.want)
			}
			if acted := len(e.ctl.Calls()) > before; acted != c.acts {
				t.Errorf("reached the orchestrator: %v, want %v", acted, c.acts)
			}
			if hdr.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("CORS opened: %q", hdr.Get("Access-Control-Allow-Origin"))
			}
			if hdr.Get("X-Frame-Options") != "DENY" {
				t.Errorf("X-Frame-Options %q, want DENY", hdr.Get("X-Frame-Options"))
			}
		})
	}
	// A CORS preflight is never approved.
	code, hdr, _ := e.do("OPTIONS", reinstall, "", "Origin", "http://evil.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type", "Content-Type", "")
	if code < 400 || hdr.Get("Access-Control-Allow-Origin") != "" || hdr.Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("preflight: %d %v", code, hdr)
	}
}

// TestGuardHosts: the address a request arrived at, localhost on
// loopback, and the extra names in Hosts are answered; nothing else.
func TestGuardHosts(t *testing.T) {
	e := newEnv(t, func(a *webui.API) { a.Hosts = []string{"racklift.site.example:8081"} })
	hostport := strings.TrimPrefix(e.srv.URL, "http://")
	port := hostport[strings.LastIndex(hostport, ":")+1:]
	for host, want := range map[string]int{
		hostport:                     http.StatusOK,
		"localhost:" + port:          http.StatusOK,
		"racklift.site.example:8081": http.StatusOK,
		"RACKLIFT.site.example:8081": http.StatusOK,
		"127.0.0.1:1":                http.StatusMisdirectedRequest, // another port
		"127.0.0.2:" + port:          http.StatusMisdirectedRequest, // another address
		"10.0.0.5:" + port:           http.StatusMisdirectedRequest,
		"evil.example:" + port:       http.StatusMisdirectedRequest,
		"racklift.site.example:8082": http.StatusMisdirectedRequest,
	} {
		if code, _, b := e.do("GET", "/api/v1/nodes", "", "Host", host); code != want {
			t.Errorf("Host %s: %d %s, want %d", host, code, b, want)
		}
	}
}
