package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	pintftp "github.com/pin/tftp/v3"

	"github.com/racklift/racklift/boot/ipxe"
	boottftp "github.com/racklift/racklift/boot/tftp"
	"github.com/racklift/racklift/provision/events"
)

// tftpFetch fetches file from server with pin/tftp's client: blksize 1468,
// 1 s per packet, 5 attempts, no random backoff ("strict retries": a lost
// packet costs exactly one timeout, the same for every server).
func tftpFetch(server, file string) (int64, error) {
	c, err := pintftp.NewClient(server)
	if err != nil {
		return 0, err
	}
	c.SetBlockSize(1468)
	c.SetTimeout(time.Second)
	c.SetRetries(5)
	c.SetBackoff(func(int) time.Duration { return 0 })
	wt, err := c.Receive(file, "octet")
	if err != nil {
		return 0, err
	}
	return wt.WriteTo(io.Discard)
}

type tftpLoadResult struct {
	Clients   int      `json:"clients"`
	Completed int      `json:"completed"`
	WallSec   float64  `json:"wall_s"`
	P50s      float64  `json:"p50_s"`
	MaxS      float64  `json:"max_s"`
	FirstErrs []string `json:"first_errors,omitempty"`
}

// cmdTFTPClient starts n fetches at once and waits for all (bounded by
// the pin/tftp timeouts and by limit).
func cmdTFTPClient(args []string) error {
	fs := flag.NewFlagSet("tftp-client", flag.ExitOnError)
	n := fs.Int("n", 512, "concurrent clients")
	server := fs.String("server", serverIP+":69", "server")
	file := fs.String("file", "bench-1m.bin", "file to fetch")
	size := fs.Int64("size", 1<<20, "expected size")
	limit := fs.Duration("limit", 120*time.Second, "overall limit")
	_ = fs.Parse(args)

	type res struct {
		d   time.Duration
		err error
	}
	out := make(chan res, *n)
	startGate := make(chan struct{})
	for range *n {
		go func() {
			<-startGate
			t := time.Now()
			got, err := tftpFetch(*server, *file)
			if err == nil && got != *size {
				err = fmt.Errorf("got %d bytes, want %d", got, *size)
			}
			out <- res{time.Since(t), err}
		}()
	}
	t0 := time.Now()
	close(startGate)
	r := tftpLoadResult{Clients: *n}
	var ds []time.Duration
	timeout := time.After(*limit)
collect:
	for range *n {
		select {
		case x := <-out:
			if x.err == nil {
				r.Completed++
				ds = append(ds, x.d)
			} else if len(r.FirstErrs) < 3 {
				r.FirstErrs = append(r.FirstErrs, x.err.Error())
			}
		case <-timeout:
			r.FirstErrs = append(r.FirstErrs, "overall limit reached")
			break collect
		}
	}
	r.WallSec = time.Since(t0).Seconds()
	slices.Sort(ds)
	r.P50s = pct(ds, 50).Seconds()
	if len(ds) > 0 {
		r.MaxS = ds[len(ds)-1].Seconds()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// cmdTFTPServer runs racklift's TFTP server (boot/tftp) exactly as
// `racklift serve` configures it (embedded iPXE binaries, events recorded
// in the SQLite store, info logs), plus Extra = -dir for the test file:
// serve has no flag for an extra TFTP directory, so this is the only way
// to make racklift's TFTP code serve a 1 MiB file.
func cmdTFTPServer(args []string) error {
	fl := flag.NewFlagSet("tftp-server", flag.ExitOnError)
	addr := fl.String("addr", serverIP+":69", "listen address")
	dir := fl.String("dir", "", "extra directory")
	state := fl.String("state-dir", "", "events store directory")
	cpuprofile := fl.String("cpuprofile", "", "write a CPU profile of this server here")
	_ = fl.Parse(args)
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

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root, err := os.OpenRoot(*dir)
	if err != nil {
		return err
	}
	store, err := events.Open(*state, log.With("svc", "store"))
	if err != nil {
		return err
	}
	defer store.Close()
	conn, err := net.ListenPacket("udp4", *addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Fprintln(os.Stderr, "bench tftp-server ready")
	return (&boottftp.Server{Files: ipxe.FS(), Extra: root.FS(), Rec: store, Log: log.With("svc", "tftp")}).Serve(ctx, conn)
}
