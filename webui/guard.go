package webui

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// The admin API can power off, reinstall and install a whole site, and it
// runs on a laptop whose browser has other tabs open. guard keeps those
// other pages (and anyone who can make the browser send a request) out:
//
//   - Host: a request must name this server: the address and port it
//     reached (what the printed dashboard URL uses), localhost on
//     loopback, or a name in Hosts. A page on evil.example whose name is
//     rebound to 127.0.0.1 sends "Host: evil.example:8081" and gets 421,
//     so DNS rebinding can neither read the plan nor act.
//   - Every request that changes something (any method but GET and HEAD)
//     must have Content-Type application/json: an HTML form cannot send
//     that, and a cross-origin fetch that sets it needs a CORS preflight,
//     which this server never approves (it sends no CORS headers at all).
//   - It must come either from the dashboard itself (its Origin is this
//     server, or Sec-Fetch-Site says same-origin) or carry the admin
//     token (the CLI). A request whose Origin or Sec-Fetch-Site names
//     another site is refused even with a token. Origin only tells a
//     browser's pages apart; any program can forge it, so on loopback
//     (the default) local programs are trusted like any local service.
//   - With TokenRequired (the admin listener is reachable from other
//     machines) every request needs the token, reads and actions alike;
//     EventSource sends it as ?token=.
//   - No page may frame the dashboard (clickjacking its confirmations).
//
// hostGuard applies the Host rule to every route (the dashboard's files and
// /healthz included); guard applies the rest to /api/v1 and /metrics.
func (a *API) hostGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		if !a.hostAllowed(r) {
			a.Log.Warn("admin request for another host refused (DNS rebinding?)", "host", r.Host, "remote", r.RemoteAddr, "path", r.URL.Path)
			writeJSON(w, http.StatusMisdirectedRequest, errBody("this racklift does not answer as "+r.Host+": open the dashboard by the address racklift printed"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if a.TokenRequired && !a.validToken(r) {
				a.refuseToken(w, r)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			a.Log.Warn("admin request without a JSON body refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
				"content_type", r.Header.Get("Content-Type"), "origin", r.Header.Get("Origin"))
			writeJSON(w, http.StatusUnsupportedMediaType, errBody("state-changing requests need Content-Type: application/json"))
			return
		}
		sameOrigin, crossSite := a.origin(r)
		if crossSite {
			a.Log.Warn("cross-site admin request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			writeJSON(w, http.StatusForbidden, errBody("cross-site request refused: only the racklift dashboard and the racklift command may act"))
			return
		}
		if (a.TokenRequired || !sameOrigin) && !a.validToken(r) {
			a.refuseToken(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// secret guards reads that hand out secrets (the hand-off archive holds the
// site's private deployment key): even on loopback they need the admin
// token or the dashboard's own page (Sec-Fetch-Site: same-origin, which a
// browser sends on the dashboard's download link and never on another
// site's link or navigation).
func (a *API) secret(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sameOrigin, crossSite := a.origin(r)
		if crossSite {
			writeJSON(w, http.StatusForbidden, errBody("cross-site request refused"))
			return
		}
		if !sameOrigin && !a.validToken(r) {
			a.refuseToken(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the request's Host names this server: the
// address the connection arrived at (an IP literal and port: what the
// dashboard URL racklift prints uses), localhost on a loopback
// connection, or one of the extra names in Hosts. Anything else, e.g. an
// attacker's DNS name rebound to this address, is refused.
func (a *API) hostAllowed(r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if host == "" {
		return false
	}
	for _, ok := range a.Hosts {
		if host == strings.ToLower(ok) {
			return true
		}
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil {
		return false
	}
	name, port, err := net.SplitHostPort(host)
	if err != nil {
		name, port = host, "80"
	}
	if port != lport {
		return false
	}
	lip := net.ParseIP(lhost)
	if name == "localhost" {
		return lip != nil && lip.IsLoopback()
	}
	ip := net.ParseIP(strings.Trim(name, "[]"))
	return ip != nil && lip != nil && ip.Equal(lip)
}

// origin classifies a browser request: sameOrigin when the browser says it
// comes from this server's own pages, crossSite when it says it comes from
// anywhere else. A client that is not a browser (curl, racklift) sends
// neither header: both are false, and it needs the token.
func (a *API) origin(r *http.Request) (sameOrigin, crossSite bool) {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if o == "null" || err != nil || u.Scheme != "http" || !strings.EqualFold(u.Host, r.Host) {
			return false, true
		}
		sameOrigin = true
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "":
	case "same-origin":
		sameOrigin = true
	case "none": // typed into the address bar: no page involved
	default: // same-site, cross-site
		return false, true
	}
	return sameOrigin, false
}

// validToken reports whether the request carries the admin token (header
// "Authorization: Bearer TOKEN", or ?token= where EventSource cannot set
// headers). No token is valid when the API has none.
func (a *API) validToken(r *http.Request) bool {
	if a.Token == "" {
		return false
	}
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if got == "" {
		got = r.URL.Query().Get("token")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) == 1
}

func (a *API) refuseToken(w http.ResponseWriter, r *http.Request) {
	a.Log.Warn("admin API request without a valid token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	w.Header().Set("WWW-Authenticate", `Bearer realm="racklift"`)
	writeJSON(w, http.StatusUnauthorized, errBody("admin token required"))
}
