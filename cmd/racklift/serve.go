package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sync/errgroup"

	"github.com/racklift/racklift/boot/dhcp"
	"github.com/racklift/racklift/boot/httpboot"
	"github.com/racklift/racklift/boot/ipxe"
	"github.com/racklift/racklift/boot/media"
	boottftp "github.com/racklift/racklift/boot/tftp"
	"github.com/racklift/racklift/provision/agent/bundle"
	"github.com/racklift/racklift/provision/bmc"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/handoff"
	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/orchestrate"
	"github.com/racklift/racklift/provision/plan"
	"github.com/racklift/racklift/provision/render"
	"github.com/racklift/racklift/templates"
	"github.com/racklift/racklift/webui"
)

const serveUsage = `Usage:
  racklift serve --plan FILE --interface IFACE [flags]

Serves DHCP (proxy by default), TFTP and HTTP boot on IFACE for the plan's
nodes, drives their BMCs when an install run is started, and serves the
dashboard and admin API on --admin-listen.

Flags:
`

// serveConfig is every serve setting, validated before anything is bound.
type serveConfig struct {
	planFlags
	plan        string
	iface       string
	stateDir    string
	dhcpMode    string
	httpListen  string
	adminListen string
	serverURL   string
	media       multiFlag
	adminHosts  multiFlag
	agentDir    string
	force       bool
	noRA        bool
	noTFTP      bool
	probeWait   time.Duration
	safeMode    bool
}

func defaultStateDir(lookup func(string) (string, bool)) string {
	if os.Geteuid() == 0 {
		return "/var/lib/racklift"
	}
	if v, ok := lookup("XDG_STATE_HOME"); ok && v != "" {
		return filepath.Join(v, "racklift")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "racklift")
	}
	return "racklift-state"
}

func parseServe(args []string, e *env) (*serveConfig, int, bool) {
	fs := newFlags("serve", e)
	fs.Usage = func() { fmt.Fprint(e.stderr, serveUsage); fs.PrintDefaults() }
	c := &serveConfig{}
	c.register(fs)
	fs.StringVar(&c.plan, "plan", "", "cluster plan file (or example:lab)")
	fs.StringVar(&c.iface, "interface", "", "NIC on the provisioning network (required)")
	fs.StringVar(&c.stateDir, "state-dir", defaultStateDir(e.lookupEnv), "where events, runs and tokens are kept")
	fs.StringVar(&c.dhcpMode, "dhcp-mode", "proxy", "proxy (answer PXE only, safe beside the site's DHCP), authoritative (lease plan MACs), or off")
	fs.StringVar(&c.httpListen, "http-listen", "", "node-facing HTTP address (default INTERFACE-IP:8080)")
	fs.StringVar(&c.adminListen, "admin-listen", "127.0.0.1:8081", "dashboard and admin API address; a token is required when it is not loopback")
	fs.StringVar(&c.serverURL, "server-url", "", "URL nodes use to reach racklift (default http://INTERFACE-IP:PORT)")
	fs.Var(&c.media, "media", "OS media NAME=PATH (an ISO file or a directory); repeatable")
	fs.StringVar(&c.agentDir, "agent-dir", "", "racklift's deploy agent and the Secure Boot loaders (make agent); default /usr/lib/racklift/agent or STATE/agent")
	fs.Var(&c.adminHosts, "admin-host", "a DNS name the dashboard is opened by, besides its address (NAME:PORT); repeatable")
	fs.BoolVar(&c.force, "force", false, "serve authoritative DHCP even though another DHCP server answers (dangerous)")
	fs.BoolVar(&c.noRA, "no-ra", false, "do not send IPv6 router advertisements (iPXE then waits ~13 s for them)")
	fs.BoolVar(&c.noTFTP, "no-tftp", false, "do not serve TFTP")
	fs.BoolVar(&c.safeMode, "safe-mode", false, "serve only the dashboard and admin API: no DHCP, TFTP, boot HTTP or BMC work (--plan and --interface optional)")
	fs.DurationVar(&c.probeWait, "probe-wait", 6*time.Second, "how long to listen for other DHCP servers before serving authoritative DHCP")
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return nil, code, false
	}
	var problems []string
	if len(pos) > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	if c.plan == "" && !c.safeMode {
		problems = append(problems, "--plan is required")
	}
	if c.iface == "" && !c.safeMode {
		problems = append(problems, "--interface is required (the NIC on the provisioning network; see: ip -br addr)")
	}
	switch c.dhcpMode {
	case "proxy", "authoritative", "off":
	default:
		problems = append(problems, fmt.Sprintf("--dhcp-mode %q: want proxy, authoritative or off", c.dhcpMode))
	}
	for _, m := range c.media {
		name, path, ok := strings.Cut(m, "=")
		if !ok || media.ValidateName(name) != nil || path == "" {
			problems = append(problems, fmt.Sprintf("--media %q: want NAME=PATH with NAME in lower-case letters, digits, '.', '-'", m))
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(e.stderr, "racklift serve: %s\n", p)
		}
		return nil, exitUsage, false
	}
	return c, 0, true
}

func runServe(ctx context.Context, args []string, e *env) int {
	c, code, ok := parseServe(args, e)
	if !ok {
		return code
	}
	err := serve(ctx, c, e)
	// The last line serve writes says why it stopped: a field engineer
	// (or the demo) reading the log must never have to guess.
	switch {
	case err != nil:
		e.log.Error("racklift serve stopped", "reason", "fatal error", "err", err)
		fmt.Fprintf(e.stderr, "racklift serve: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitFailed
		}
		return exitRuntime
	case context.Cause(ctx) != nil:
		e.log.Info("racklift serve stopped", "reason", context.Cause(ctx).Error())
	default:
		e.log.Info("racklift serve stopped", "reason", "all services ended")
	}
	return exitOK
}

// usageError marks a problem with the plan or secrets (exit 1), as opposed
// to a runtime problem such as a port in use (exit 3).
type usageError struct{ error }

// serve validates everything, binds every socket, then runs every service
// until ctx is done.
func serve(ctx context.Context, c *serveConfig, e *env) error {
	log := e.log
	if c.safeMode {
		return serveSafe(ctx, c, e)
	}
	images, err := image.Open(c.stateDir)
	if err != nil {
		return fmt.Errorf("state dir %s: %w", c.stateDir, err)
	}
	c.images = images // the plan's image nodes must have their images
	p, ds, profs, secrets, _, ok := c.load(ctx, c.plan, e)
	if !ok {
		return usageError{errors.New("cannot load the plan's inputs")}
	}
	if p == nil {
		_ = ds.WriteText(e.stderr)
		return usageError{errors.New("the plan has errors; fix them first (racklift plan validate)")}
	}
	var agent *bundle.Bundle
	imageNodes, sbNodes := needsAgent(p, profs)
	if sbNodes && c.dhcpMode == "proxy" {
		// GRUB 2.06 (Debian 12's signed netboot GRUB) reads only the
		// firmware's DHCP ACK, never the proxyDHCP answer: it asks the
		// site's DHCP server for its config and stops at "grub>".
		log.Warn("Secure Boot nodes need --dhcp-mode authoritative: in proxy mode the signed GRUB ignores racklift's answer and stops at its prompt (its config comes from the site DHCP server's next-server)")
	}
	if imageNodes || sbNodes {
		if agent, err = loadAgent(c.agentDir, c.stateDir); err != nil {
			return err
		}
		log.Info("deploy agent loaded", "dir", agent.Dir(), "kernel", agent.Info().KernelRelease, "image_nodes", imageNodes, "secure_boot_nodes", sbNodes)
	}
	ifi, ipn, err := interfaceIPv4(c.iface)
	if err != nil {
		return err
	}
	if err := checkPrivileges(c.dhcpMode != "off" || !c.noTFTP, c.dhcpMode != "off"); err != nil {
		return err
	}
	if prov := p.ProvisioningNetwork(); prov != nil {
		if a, ok := netip.AddrFromSlice(ipn.IP); ok && !prov.Prefix.Contains(a) {
			log.Warn("the interface address is outside the provisioning network", "interface", c.iface, "address", ipn.IP, "network", prov.Prefix)
		}
	}
	httpAddr := c.httpListen
	if httpAddr == "" {
		httpAddr = net.JoinHostPort(ipn.IP.String(), "8080")
	}
	rnd, err := render.New(templates.FS(), profs)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	mediaFS, mediaISO, closers, err := openMedia(c.media)
	defer func() {
		for _, cl := range closers {
			_ = cl.Close()
		}
	}()
	if err != nil {
		return err
	}
	if rh := p.Cluster.RootPasswordSecret; rh != "" {
		if _, ok := secrets.Lookup(rh); !ok {
			return usageError{fmt.Errorf("root password secret %q is not set: pass --secrets or set %s", rh, plan.EnvName(rh))}
		}
	}
	store, err := events.Open(c.stateDir, log.With("svc", "store"))
	if err != nil {
		return fmt.Errorf("state dir %s: %w", c.stateDir, err)
	}
	defer store.Close()
	// The site's deployment key (STATE/ssh): every node's first boot
	// authorizes it, the hand-off gives it to kolla-ansible and cephadm.
	deployKey, err := handoff.LoadOrCreateDeployKey(c.stateDir, "racklift-deploy@"+p.Cluster.Name)
	if err != nil {
		return err
	}

	if c.dhcpMode == "authoritative" {
		log.Info("probing for other DHCP servers", "interface", c.iface, "wait", c.probeWait)
		others, err := dhcp.Probe(ctx, c.iface, c.probeWait)
		if err != nil {
			return fmt.Errorf("probe for other DHCP servers: %w", err)
		}
		if len(others) > 0 && !c.force {
			return fmt.Errorf("another DHCP server answers on %s (%v): authoritative DHCP would fight it; use --dhcp-mode proxy, or --force if you are sure", c.iface, others)
		}
		if len(others) > 0 {
			log.Warn("SERVING AUTHORITATIVE DHCP BESIDE ANOTHER DHCP SERVER (--force)", "others", fmt.Sprint(others))
		}
	}

	// Bind every socket before serving anything: a clash fails startup.
	var conns []io.Closer
	defer func() {
		for _, cl := range conns {
			_ = cl.Close()
		}
	}()
	var dhcpConn, pxeConn net.PacketConn
	if c.dhcpMode != "off" {
		uc, err := server4.NewIPv4UDPConn(c.iface, &net.UDPAddr{Port: dhcpv4.ServerPort})
		if err != nil {
			return fmt.Errorf("DHCP listen on %s:67: %w", c.iface, err)
		}
		dhcpConn = uc
		conns = append(conns, uc)
		{ // port 4011 (PXE boot server discovery): needed by proxy mode, and a
			// fallback for firmware that asks for discovery in authoritative mode
			pc, err := server4.NewIPv4UDPConn(c.iface, &net.UDPAddr{Port: 4011})
			if err != nil {
				return fmt.Errorf("proxyDHCP listen on %s:4011: %w", c.iface, err)
			}
			pxeConn = pc
			conns = append(conns, pc)
		}
	}
	var tftpConn net.PacketConn
	if !c.noTFTP {
		tc, err := net.ListenPacket("udp4", net.JoinHostPort(ipn.IP.String(), "69"))
		if err != nil {
			return fmt.Errorf("TFTP listen on %s:69: %w", ipn.IP, err)
		}
		tftpConn = tc
		conns = append(conns, tc)
	}
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("HTTP listen on %s: %w", httpAddr, err)
	}
	conns = append(conns, httpLn)
	adminLn, err := net.Listen("tcp", c.adminListen)
	if err != nil {
		return fmt.Errorf("admin listen on %s: %w", c.adminListen, err)
	}
	conns = append(conns, adminLn)

	serverURL := c.serverURL
	if serverURL == "" {
		serverURL = "http://" + httpLn.Addr().String()
	}
	adminToken, tokenRequired, err := adminTokenFor(c.stateDir, adminLn.Addr(), e)
	if err != nil {
		return err
	}

	boot := &render.Service{Plan: p, Renderer: rnd, Tokens: store, ServerURL: serverURL, Secrets: secrets, SSHKeys: []string{deployKey.Public},
		Images: imageEnv(images, serverURL)}
	// Secure Boot nodes get Debian's signed shim and GRUB by TFTP, and the
	// GRUB bootstrap config where that GRUB reads it.
	var tftpExtra fs.FS
	if agent != nil {
		bootstrap, err := boot.GRUBBootstrap()
		if err != nil {
			return fmt.Errorf("GRUB bootstrap config: %w", err)
		}
		sb, err := agent.SecureBootFS(bootstrap)
		if err != nil {
			return err
		}
		// The signed GRUB loads the agent (and an installer's kernel from
		// the media) by TFTP too: it has no HTTP.
		mounts := map[string]fs.FS{"agent": agent.FS()}
		for name, m := range mediaFS {
			mounts["media/"+name] = m
		}
		tftpExtra = boottftp.Mount(sb, mounts)
	}
	orch := orchestrate.New(p, store, bmc.BMCLibFactory(bmc.Options{Log: log.With("svc", "bmc")}), secrets, orchestrate.Config{}, log.With("svc", "orch"))
	hb := &httpboot.Server{Plan: p, Render: boot, Policy: orch, Tokens: store, Rec: store, Media: mediaFS, MediaISO: mediaISO,
		IPXE: ipxe.FS(), Images: images, Facts: store, Log: log.With("svc", "http"), Version: version}
	if agent != nil {
		hb.Agent = agent
	}
	api := &webui.API{Plan: p, Diags: ds, Store: store, Control: orch, Files: boot, Log: log.With("svc", "admin"),
		Version: version, Token: adminToken, TokenRequired: tokenRequired, Hosts: c.adminHosts,
		Static: webuiStatic(), Started: time.Now().UTC(),
		Handoff: &handoff.Service{Plan: p, Source: handoff.StoreSource{Store: store}, Key: deployKey}}
	bootSrv := httpboot.NewHTTPServer(hb.Handler(), log)
	adminSrv := httpboot.NewHTTPServer(api.Handler(), log)

	g, gctx := errgroup.WithContext(ctx)
	if dhcpConn != nil {
		mode := dhcp.Proxy
		if c.dhcpMode == "authoritative" {
			mode = dhcp.Authoritative
		}
		dhcpRec := events.NewAsyncRecorder(store, log.With("svc", "dhcp"), 8192)
		g.Go(func() error { return dhcpRec.Run(gctx) })
		resp, err := dhcp.NewResponder(dhcp.Config{Mode: mode, Boot: dhcp.BootConfig{ServerIP: ipn.IP, HTTPBase: serverURL}},
			dhcp.PlanHosts{Plan: p}, dhcpRec, log.With("svc", "dhcp"))
		if err != nil {
			return fmt.Errorf("dhcp: %w", err)
		}
		g.Go(func() error {
			return (&dhcp.Server{Conn: dhcpConn, Handler: resp, Log: log.With("svc", "dhcp")}).Serve(gctx)
		})
		if pxeConn != nil {
			g.Go(func() error {
				return (&dhcp.Server{Conn: pxeConn, Handler: resp.ProxyPXE(), Log: log.With("svc", "pxe4011")}).Serve(gctx)
			})
		}
	}
	if tftpConn != nil {
		g.Go(func() error {
			return (&boottftp.Server{Files: ipxe.FS(), Extra: tftpExtra, Nodes: hb, Rec: store, NodeOf: nodeOf(p), Log: log.With("svc", "tftp")}).Serve(gctx, tftpConn)
		})
	}
	if !c.noRA {
		g.Go(func() error {
			err := (&dhcp.RouterAdvertiser{Iface: ifi.Name, Log: log.With("svc", "ra")}).Run(gctx)
			if err != nil && gctx.Err() == nil {
				// Not fatal: boots are slower without it, nothing more.
				log.Warn("router advertisements off", "err", err)
			}
			return nil
		})
	}
	g.Go(func() error { return httpboot.Serve(gctx, bootSrv, httpLn) })
	g.Go(func() error { return httpboot.Serve(gctx, adminSrv, adminLn) })
	g.Go(func() error { return orch.Run(gctx) })

	dash := "http://" + adminLn.Addr().String() + "/"
	fmt.Fprintf(e.stdout, "racklift %s serving plan %q (%d nodes) on %s (%s)\n", version, p.Cluster.Name, len(p.Nodes), c.iface, ipn.IP)
	fmt.Fprintf(e.stdout, "  DHCP: %s   TFTP: %v   node HTTP: %s\n", c.dhcpMode, !c.noTFTP, serverURL)
	fmt.Fprintf(e.stdout, "  dashboard: %s\n", dash)
	fmt.Fprintf(e.stdout, "  state: %s\n", c.stateDir)
	log.Info("serving", "plan", p.Cluster.Name, "interface", c.iface, "dhcp", c.dhcpMode, "http", serverURL, "admin", dash)
	return g.Wait()
}
