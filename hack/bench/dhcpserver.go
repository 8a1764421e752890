package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/racklift/racklift/boot/dhcp"
	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/plan"
)

// cmdDHCPServer is racklift's authoritative DHCP wired as `racklift serve`
// wires it (same Responder, Server, events store and info-level text
// log), for profiling only: `racklift serve` has no profiling hook, and
// pprof must not go into the product. -no-events and -log-level show what
// event recording and logging cost. The published numbers come from the
// real `racklift serve`, not from this.
func cmdDHCPServer(args []string) error {
	fs := flag.NewFlagSet("dhcp-server", flag.ExitOnError)
	planPath := fs.String("plan", "", "plan file")
	state := fs.String("state-dir", "", "events store directory")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here")
	noEvents := fs.Bool("no-events", false, "do not record events (experiment)")
	asyncEvents := fs.Bool("async-events", false, "record events after the reply is sent, off the reply path (experiment)")
	level := fs.String("log-level", "info", "info or warn (experiment)")
	_ = fs.Parse(args)

	lvl := slog.LevelInfo
	if *level == "warn" {
		lvl = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	p, ds, err := plan.LoadFile(*planPath, plan.Options{})
	if err != nil {
		return err
	}
	if p == nil {
		_ = ds.WriteText(os.Stderr)
		return fmt.Errorf("plan has errors")
	}
	store, err := events.Open(*state, log.With("svc", "store"))
	if err != nil {
		return err
	}
	defer store.Close()
	var rec dhcp.Recorder = store
	if *noEvents {
		rec = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *asyncEvents {
		// The recorder racklift serve uses for DHCP (events after the reply).
		a := events.NewAsyncRecorder(store, log.With("svc", "dhcp"), 8192)
		done := make(chan struct{})
		go func() { _ = a.Run(ctx); close(done) }()
		defer func() { stop(); <-done }()
		rec = a
	}
	resp, err := dhcp.NewResponder(dhcp.Config{Mode: dhcp.Authoritative,
		Boot: dhcp.BootConfig{ServerIP: net.ParseIP(serverIP), HTTPBase: "http://" + serverIP + ":8080"}},
		dhcp.PlanHosts{Plan: p}, rec, log.With("svc", "dhcp"))
	if err != nil {
		return err
	}
	conn, err := server4.NewIPv4UDPConn(serverIf, &net.UDPAddr{Port: dhcpv4.ServerPort})
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	fmt.Fprintln(os.Stderr, "bench dhcp-server ready")
	return (&dhcp.Server{Conn: conn, Handler: resp, Log: log.With("svc", "dhcp")}).Serve(ctx)
}
