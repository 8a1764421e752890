package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/racklift/racklift/boot/httpboot"
	"github.com/racklift/racklift/boot/media"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/webui"
)

// openMedia opens every --media NAME=PATH.
func openMedia(specs []string) (map[string]fs.FS, map[string]string, []io.Closer, error) {
	fsys, isos := map[string]fs.FS{}, map[string]string{}
	var closers []io.Closer
	for _, spec := range specs {
		name, f, cl, err := media.Open(spec)
		if err != nil {
			return nil, nil, closers, fmt.Errorf("--media %s: %w", spec, err)
		}
		if cl != nil {
			closers = append(closers, cl)
		}
		if _, dup := fsys[name]; dup {
			return nil, nil, closers, fmt.Errorf("--media %s: %q given twice", spec, name)
		}
		fsys[name] = f
		if _, path, _ := strings.Cut(spec, "="); strings.HasSuffix(strings.ToLower(path), ".iso") {
			isos[name] = path
		}
	}
	return fsys, isos, closers, nil
}

// adminTokenFor returns the admin token, created on first start (0600 in
// the state dir) and kept there; the CLI reads it from there. It is printed
// once when the admin listener is not loopback (someone has to type it into
// a dashboard on another machine), and required on every request then
// (required reports that).
func adminTokenFor(stateDir string, addr net.Addr, e *env) (token string, required bool, err error) {
	required = true
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		required = false
	}
	path := filepath.Join(stateDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 20 {
		if required {
			fmt.Fprintf(e.stdout, "  admin token: in %s\n", path)
		}
		return strings.TrimSpace(string(b)), required, nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(buf)
	if err := writeSynced(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if required {
		fmt.Fprintf(e.stdout, "  admin token (shown once, kept in %s): %s\n", path, tok)
	}
	return tok, required, nil
}

// writeSynced writes a file and syncs it, so it survives an abrupt power off.
func writeSynced(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// nodeOf names the plan node of a MAC.
func nodeOf(p *plan.Plan) func(string) (string, bool) {
	return func(mac string) (string, bool) {
		n, ok := p.NodeByMAC(mac)
		if !ok {
			return "", false
		}
		return n.Name, true
	}
}

// webuiStatic returns the dashboard files.
func webuiStatic() fs.FS { return webui.Static() }

// serveSafe serves only the dashboard and admin API, with the plan if one
// was given and loads, or an empty one. Nothing is sent on the network
// besides the admin listener: the state of a site is never changed.
func serveSafe(ctx context.Context, c *serveConfig, e *env) error {
	log := e.log
	p := &plan.Plan{}
	var ds plan.Diagnostics
	if c.plan != "" {
		if lp, lds, _, _, _, ok := c.load(ctx, c.plan, e); ok && lp != nil {
			p, ds = lp, lds
		} else {
			ds = append(ds, lds...)
		}
	}
	if len(p.Nodes) == 0 {
		ds = append(ds, plan.Diagnostic{Severity: plan.Warning, Path: "plan", Rule: "safe-mode",
			Msg: "safe mode: no usable plan is loaded; DHCP, TFTP and boot HTTP are off", Hint: "put the plan (and secrets) in place and restart racklift"})
	}
	store, err := events.Open(c.stateDir, log.With("svc", "store"))
	if err != nil {
		return fmt.Errorf("state dir %s: %w", c.stateDir, err)
	}
	defer store.Close()
	adminLn, err := net.Listen("tcp", c.adminListen)
	if err != nil {
		return fmt.Errorf("admin listen on %s: %w", c.adminListen, err)
	}
	defer adminLn.Close()
	adminToken, tokenRequired, err := adminTokenFor(c.stateDir, adminLn.Addr(), e)
	if err != nil {
		return err
	}
	api := &webui.API{Plan: p, Diags: ds, Store: store, Log: log.With("svc", "admin"), Version: version,
		Token: adminToken, TokenRequired: tokenRequired, Hosts: c.adminHosts, Static: webuiStatic(), Started: time.Now().UTC(), SafeMode: true}
	fmt.Fprintf(e.stdout, "racklift %s in SAFE MODE (no DHCP, TFTP or boot HTTP)\n  dashboard: http://%s/\n  state: %s\n", version, adminLn.Addr(), c.stateDir)
	log.Info("serving in safe mode", "admin", adminLn.Addr().String(), "plan_nodes", len(p.Nodes))
	return httpboot.Serve(ctx, httpboot.NewHTTPServer(api.Handler(), log), adminLn)
}
