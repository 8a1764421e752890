package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"path"
	"strconv"
	"sync"
	"time"

	pintftp "github.com/pin/tftp/v3"

	"github.com/racklift/racklift/boot/ipxe"
	"github.com/racklift/racklift/provision/events"
)

// Defaults applied by Server.Serve to zero fields.
const (
	// DefaultTimeout is how long the server waits for one ACK before it
	// resends a block (pin/tftp's own default).
	DefaultTimeout = 5 * time.Second
	// DefaultRetries is how often a block is sent before the transfer is
	// given up (pin/tftp's own default).
	DefaultRetries = 5
	// DefaultBlockSize caps the negotiated blksize: a 1500-byte Ethernet MTU
	// minus IPv4 (20), UDP (8) and TFTP (4) headers, so no block fragments.
	DefaultBlockSize = 1468
)

const (
	// minBlockSize and maxBlockSize bound Server.BlockSize: pin/tftp
	// v3.1.0 ignores caps outside 513..65464 and cannot turn blksize
	// negotiation off (v3.2.0 can).
	minBlockSize = 513
	maxBlockSize = 65464
	// recordTimeout bounds one Recorder.Record call.
	recordTimeout = 5 * time.Second
	// readBuffer is the receive buffer Serve asks for on the request
	// socket. pin/tftp reads requests one at a time and does a netlink
	// lookup and a bind for each, so a rack powering on at once overflows
	// Linux's default 208 KiB and clients wait seconds to retry: on
	// loopback, 512 simultaneous 1 MiB fetches took 10-20 s with the
	// default and 5-7 s with 4 MiB. Linux caps the request at
	// net.core.rmem_max, which is also 208 KiB on a stock install: the
	// appliance should set sysctl net.core.rmem_max=4194304.
	readBuffer = 4 << 20
)

// errShutdown aborts transfers still running when the server stops.
var errShutdown = errors.New("server shutting down")

// Recorder receives one event per transfer start and outcome. Record is
// called synchronously from the transfer's goroutine (so a slow Record
// delays that transfer, not others), possibly from many transfers at once,
// and with a context that outlives the Serve context by up to a few seconds
// so that outcomes of transfers cut short by shutdown are still recorded.
// Errors are logged; the transfer goes on. It matches events.Recorder, so
// the events store satisfies it.
type Recorder interface {
	Record(ctx context.Context, ev events.Event) (events.Event, error)
}

// NodeFiles makes a node's files on request (boot/httpboot implements
// it): what it answers depends on the node's state, so they are not files
// in Server.Files.
type NodeFiles interface {
	// TFTPFile returns the content of name for the node of mac (lower-case
	// colon form), asked by client; ok is false when it makes no such file.
	TFTPFile(ctx context.Context, mac string, client netip.Addr, name string) (data []byte, ok bool)
}

// Server is a read-only TFTP server. The zero value serves the embedded iPXE
// binaries with the defaults below; set fields before calling Serve and do
// not change them while it runs.
type Server struct {
	// Files is the root served to clients. Default: ipxe.FS(), the embedded
	// iPXE binaries.
	Files fs.FS
	// Extra, if set, is consulted for names Files does not have, e.g. an
	// operator's --tftp-dir. It cannot shadow a file in Files. Use
	// os.OpenRoot(dir) and Root.FS() rather than os.DirFS: DirFS follows
	// symlinks out of the directory.
	Extra fs.FS
	// Nodes, if set, makes the files a client asks for as MAC/NAME that
	// depend on the node's state (its GRUB config) before Files and Extra
	// are looked at. Default: none.
	Nodes NodeFiles
	// Rec receives the transfer events. Default: none are recorded.
	Rec Recorder
	// NodeOf names the plan node of a MAC (the MAC the client put in the
	// file name), so transfer events land in that node's timeline.
	// Default: events carry the MAC only.
	NodeOf func(mac string) (node string, ok bool)
	// Log receives one line per transfer outcome and details of refused
	// requests. Default: discard.
	Log *slog.Logger
	// Timeout is how long to wait for each ACK before resending.
	// Default: DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a block is sent before giving up.
	// Default: DefaultRetries.
	Retries int
	// BlockSize caps the blksize a client may negotiate; pin/tftp also
	// caps it at the interface MTU minus 28. Default: DefaultBlockSize.
	// Values outside 513..65464 are clamped into that range.
	BlockSize int
}

// withDefaults returns a copy of s with every zero field set to its default.
func (s *Server) withDefaults() Server {
	c := *s
	if c.Files == nil {
		c.Files = ipxe.FS()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries <= 0 {
		c.Retries = DefaultRetries
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	c.BlockSize = min(max(c.BlockSize, minBlockSize), maxBlockSize)
	return c
}

// Serve answers TFTP read requests on conn until ctx is done, then closes
// conn, aborts transfers still running (each stops at its next block, or
// after Timeout*Retries if its client has gone), waits for them and returns
// nil. It returns an error only if it cannot serve at all. conn is normally
// a *net.UDPConn from net.ListenPacket("udp4", ...); pin/tftp then reads the
// request's local address and interface MTU from control messages, and
// Serve raises its receive buffer to 4 MiB (see readBuffer). Do not close
// conn yourself: cancel ctx (pin/tftp v3.1.0 spins on a closed conn until
// it is shut down).
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if conn == nil {
		return errors.New("tftp: serve: nil conn")
	}
	cfg := s.withDefaults()
	h := newHandler(ctx, cfg)

	ts := pintftp.NewServer(h.read, nil) // nil write handler: writes refused
	ts.SetTimeout(cfg.Timeout)
	ts.SetRetries(cfg.Retries)
	ts.SetBlockSize(cfg.BlockSize)
	ts.SetHook(h)

	if uc, ok := conn.(*net.UDPConn); ok {
		// Best effort; Linux caps it at net.core.rmem_max.
		if err := uc.SetReadBuffer(readBuffer); err != nil {
			cfg.Log.Debug("tftp set read buffer", "err", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- ts.Serve(conn) }()
	cfg.Log.Info("tftp serving", "addr", conn.LocalAddr().String(), "blksize_cap", cfg.BlockSize)

	select {
	case <-ctx.Done():
	case err := <-done:
		// pin/tftp's Serve returns before Shutdown only if it cannot start.
		_ = conn.Close()
		ts.Shutdown()
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		return fmt.Errorf("tftp: serve on %s: %w", conn.LocalAddr(), err)
	}
	// Close first so no new request is read, then Shutdown, which cancels
	// pin's loop and waits for in-flight transfers. In v3.1.0 closing alone
	// makes the loop spin and Shutdown alone is not enough in single-port
	// mode. Never call Shutdown from a handler or hook: it would deadlock.
	_ = conn.Close()
	ts.Shutdown()
	<-done // returns nil once it sees the cancelled server context
	cfg.Log.Info("tftp stopped")
	return nil
}

// handler implements the read handler and pin/tftp's Hook for one Serve.
type handler struct {
	ctx       context.Context // cancelled when Serve should stop
	cfg       Server
	log       *slog.Logger
	ipxeNames map[string]bool

	mu sync.Mutex
	// active maps a client's (IP, port) to its transfers not yet reported
	// by the hook; a retransmitted request can start a second one.
	active map[clientKey][]*transfer
}

// clientKey identifies a transfer's client; pin/tftp's TransferStats carries
// the same pair as (RemoteAddr, Tid).
type clientKey struct {
	ip   string
	port int
}

// transfer is what the handler knows about one read request.
type transfer struct {
	name   string // as requested, to match TransferStats.Filename
	client net.UDPAddr
	req    request
	// bytes counts what the file reader returned. Written and read only on
	// the transfer's goroutine (pin/tftp calls the hook there too).
	bytes int64
}

func newHandler(ctx context.Context, cfg Server) *handler {
	h := &handler{
		ctx:       ctx,
		cfg:       cfg,
		log:       cfg.Log,
		ipxeNames: map[string]bool{},
		active:    map[clientKey][]*transfer{},
	}
	if entries, err := fs.ReadDir(ipxe.FS(), "."); err == nil {
		for _, e := range entries {
			h.ipxeNames[e.Name()] = true
		}
	}
	return h
}

// read is pin/tftp's read handler: it runs on its own goroutine per request.
// Its error is sent to the client, so it names only the requested file.
func (h *handler) read(name string, rf io.ReaderFrom) error {
	ot, ok := rf.(pintftp.OutgoingTransfer) // always true for pin/tftp's sender
	if !ok {
		return errors.New("unsupported transfer")
	}
	t := &transfer{name: name, client: ot.RemoteAddr()}
	req, perr := parseRequest(name)
	t.req = req
	h.track(t)
	log := h.log.With("client", t.client.String(), "file", displayName(t), "mac", req.MAC)

	var (
		f    fs.File
		size int64 = -1
		err        = perr
	)
	if err == nil {
		f, size, err = h.open(req, t.client)
		if err != nil {
			log.Info("tftp open failed", "err", err) // may hold host paths: log only
			err = fmt.Errorf("%s: %w", req.File, fs.ErrNotExist)
		}
	} else {
		log.Info("tftp refused file name", "name", name, "err", err)
	}
	if f != nil {
		defer func() { _ = f.Close() }() // read-only: nothing to flush
	}
	h.record(startEvent(t, size))
	if err != nil {
		return err // the hook reports tftp.failed when pin/tftp aborts with it
	}
	if h.ctx.Err() != nil {
		return errShutdown
	}
	if size >= 0 {
		ot.SetSize(size) // fs.File need not be an io.Seeker; pin only sends it if asked
	}
	_, err = rf.ReadFrom(&fileReader{ctx: h.ctx, f: f, t: t, log: log})
	// The hook has run inside ReadFrom. A transfer still tracked here was
	// not reported; drop it so active cannot grow.
	if h.untrackTransfer(t) {
		log.Warn("tftp transfer ended without a hook call", "err", err)
	}
	return err
}

// open makes req's file with Nodes, else looks it up in Files, then
// Extra, and returns it with its size.
func (h *handler) open(req request, client net.UDPAddr) (fs.File, int64, error) {
	file := req.File
	if req.MAC != "" && h.cfg.Nodes != nil {
		ip, _ := netip.AddrFromSlice(client.IP)
		if data, ok := h.cfg.Nodes.TFTPFile(h.ctx, req.MAC, ip.Unmap(), file); ok {
			return &bytesFile{Reader: bytes.NewReader(data), name: path.Base(file), size: int64(len(data))}, int64(len(data)), nil
		}
	}
	f, err := h.cfg.Files.Open(file)
	if errors.Is(err, fs.ErrNotExist) && h.cfg.Extra != nil {
		f, err = h.cfg.Extra.Open(file)
	}
	if err != nil {
		return nil, -1, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, -1, err
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, -1, fmt.Errorf("%s is not a regular file (%v)", file, st.Mode())
	}
	return f, st.Size(), nil
}

// fileReader counts bytes, hides read errors (which may hold host paths)
// from the client, and stops the transfer when the server shuts down.
type fileReader struct {
	ctx context.Context
	f   io.Reader
	t   *transfer
	log *slog.Logger
}

func (r *fileReader) Read(p []byte) (int, error) {
	if r.ctx.Err() != nil {
		return 0, errShutdown
	}
	n, err := r.f.Read(p)
	r.t.bytes += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		r.log.Warn("tftp read failed", "err", err)
		return n, fmt.Errorf("%s: read error", r.t.req.File)
	}
	return n, err
}

// OnSuccess implements pintftp.Hook. pin/tftp calls it on the transfer's
// goroutine after the client acknowledged the last block.
func (h *handler) OnSuccess(st pintftp.TransferStats) {
	t := h.untrack(st)
	if t == nil {
		h.log.Warn("tftp success for an unknown transfer", "client", st.RemoteAddr.String(), "port", st.Tid)
		return
	}
	log := h.log.With("client", t.client.String(), "file", displayName(t), "mac", t.req.MAC)
	log.Info("tftp sent", "bytes", t.bytes, "duration", st.Duration, "blksize", blksize(st))
	h.record(doneEvent(t, st, h.ipxeNames[t.req.File]))
}

// OnFailure implements pintftp.Hook. pin/tftp calls it with an empty
// TransferStats for packets it could not even parse as a request.
func (h *handler) OnFailure(st pintftp.TransferStats, err error) {
	if st.Filename == "" {
		if h.ctx.Err() == nil {
			h.log.Debug("tftp bad request packet", "err", err)
		}
		return
	}
	t := h.untrack(st)
	if t == nil {
		// No read handler ran: a write request (refused by pin/tftp
		// itself), which gets no events.
		h.log.Info("tftp request refused", "client", st.RemoteAddr.String(), "port", st.Tid,
			"name", strconv.QuoteToASCII(st.Filename), "err", err)
		return
	}
	log := h.log.With("client", t.client.String(), "file", displayName(t), "mac", t.req.MAC)
	log.Info("tftp transfer failed", "err", err, "bytes", t.bytes, "duration", st.Duration)
	h.record(failedEvent(t, st, err))
}

func keyOf(ip net.IP, port int) clientKey { return clientKey{ip: ip.String(), port: port} }

func (h *handler) track(t *transfer) {
	k := keyOf(t.client.IP, t.client.Port)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active[k] = append(h.active[k], t)
}

// untrack removes and returns the oldest tracked transfer matching the
// hook's stats, or nil.
func (h *handler) untrack(st pintftp.TransferStats) *transfer {
	k := keyOf(st.RemoteAddr, st.Tid)
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.active[k]
	for i, t := range ts {
		if t.name == st.Filename {
			h.remove(k, i)
			return t
		}
	}
	return nil
}

// untrackTransfer removes t if it is still tracked and reports whether it was.
func (h *handler) untrackTransfer(t *transfer) bool {
	k := keyOf(t.client.IP, t.client.Port)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.active[k] {
		if x == t {
			h.remove(k, i)
			return true
		}
	}
	return false
}

// remove deletes entry i of active[k]; h.mu must be held.
func (h *handler) remove(k clientKey, i int) {
	ts := append(h.active[k][:i:i], h.active[k][i+1:]...)
	if len(ts) == 0 {
		delete(h.active, k)
		return
	}
	h.active[k] = ts
}

// record hands ev to the Recorder, if any, bounded by recordTimeout. It uses
// a context detached from Serve's so that outcomes of transfers cut short by
// shutdown are recorded too.
func (h *handler) record(ev events.Event) {
	if h.cfg.Rec == nil {
		return
	}
	if ev.Node == "" && ev.MAC != "" && h.cfg.NodeOf != nil {
		if node, ok := h.cfg.NodeOf(ev.MAC); ok {
			ev.Node = node
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(h.ctx), recordTimeout)
	defer cancel()
	if _, err := h.cfg.Rec.Record(ctx, ev); err != nil {
		h.log.Warn("tftp record event", "type", ev.Type, "mac", ev.MAC, "err", err)
	}
}

// displayName is the file name for logs and events: the confined name, or
// the raw request quoted (and shortened) when it was refused.
func displayName(t *transfer) string {
	if t.req.File != "" {
		return t.req.File
	}
	const maxLen = 128
	n := t.name
	if len(n) > maxLen {
		n = n[:maxLen] + "..."
	}
	return strconv.QuoteToASCII(n)
}

func baseEvent(t *transfer, typ string) events.Event {
	return events.Event{
		At:      time.Now().UTC(),
		MAC:     t.req.MAC,
		Source:  events.SourceTFTP,
		Type:    typ,
		Phase:   events.PhaseNone,
		Percent: -1,
		Attrs: map[string]string{
			"client_ip": t.client.IP.String(),
			"file":      displayName(t),
		},
	}
}

// startEvent is "tftp.start"; size is -1 when unknown.
func startEvent(t *transfer, size int64) events.Event {
	ev := baseEvent(t, "tftp.start")
	ev.Detail = fmt.Sprintf("read request for %s from %s", displayName(t), t.client.IP)
	if size >= 0 {
		ev.Attrs["size"] = strconv.FormatInt(size, 10)
	}
	return ev
}

// doneEvent is "tftp.done". A finished iPXE binary for a known MAC moves the
// node to PhaseIPXE: its firmware runs iPXE next.
func doneEvent(t *transfer, st pintftp.TransferStats, isIPXE bool) events.Event {
	ev := baseEvent(t, "tftp.done")
	ms := st.Duration.Milliseconds()
	ev.Detail = fmt.Sprintf("sent %s to %s: %d bytes in %d ms", t.req.File, t.client.IP, t.bytes, ms)
	ev.Attrs["bytes"] = strconv.FormatInt(t.bytes, 10)
	ev.Attrs["duration_ms"] = strconv.FormatInt(ms, 10)
	ev.Attrs["blksize"] = blksize(st)
	if isIPXE && t.req.MAC != "" {
		ev.Phase = events.PhaseIPXE
	}
	return ev
}

// blksize is the block size a transfer used: the negotiated one, or
// RFC 1350's 512.
func blksize(st pintftp.TransferStats) string {
	if b := st.Opts["blksize"]; b != "" {
		return b
	}
	return "512"
}

// failedEvent is "tftp.failed"; reason is what the client was told or the
// protocol error (never a host path).
func failedEvent(t *transfer, st pintftp.TransferStats, err error) events.Event {
	ev := baseEvent(t, "tftp.failed")
	reason := "unknown"
	if err != nil {
		reason = err.Error()
	}
	ms := st.Duration.Milliseconds()
	ev.Detail = fmt.Sprintf("transfer of %s to %s failed: %s", displayName(t), t.client.IP, reason)
	ev.Attrs["reason"] = reason
	ev.Attrs["bytes"] = strconv.FormatInt(t.bytes, 10)
	ev.Attrs["duration_ms"] = strconv.FormatInt(ms, 10)
	return ev
}

// bytesFile is a made file (NodeFiles) as an fs.File.
type bytesFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *bytesFile) Stat() (fs.FileInfo, error) { return bytesInfo{f.name, f.size}, nil }
func (f *bytesFile) Close() error               { return nil }

type bytesInfo struct {
	name string
	size int64
}

func (i bytesInfo) Name() string       { return i.name }
func (i bytesInfo) Size() int64        { return i.size }
func (i bytesInfo) Mode() fs.FileMode  { return 0o444 }
func (i bytesInfo) ModTime() time.Time { return time.Time{} }
func (i bytesInfo) IsDir() bool        { return false }
func (i bytesInfo) Sys() any           { return nil }
