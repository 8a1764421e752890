package bmc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	"github.com/bmc-toolbox/bmclib/v2/providers/ipmitool"
	"github.com/bmc-toolbox/bmclib/v2/providers/redfish"
	"github.com/go-logr/logr"
)

// Options tune the bmclib adapter. The zero value is usable.
type Options struct {
	// PerCallTimeout bounds one attempt of one BMC call (Open included).
	// Zero means DefaultPerCallTimeout.
	PerCallTimeout time.Duration
	// CloseTimeout bounds Close, which runs on a fresh context so a session
	// is ended even when the caller's context is done. Zero means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Retry is the backoff for transient failures; see Retry.
	Retry Retry
	// IPMICipherSuite is the IPMI v2 cipher suite ipmitool uses (-C).
	// Empty means "3" (HMAC-SHA1, AES-CBC-128), which every IPMI v2 BMC
	// supports; without it ipmitool spends ~10 s per call probing.
	IPMICipherSuite string
	// IpmitoolPath is the ipmitool binary; empty means $PATH lookup.
	IpmitoolPath string
	// Log receives debug records of each call (never the password) and
	// bmclib's own logs (bridged to logr). Nil discards.
	Log *slog.Logger
}

// Adapter defaults.
const (
	DefaultPerCallTimeout  = 30 * time.Second
	DefaultCloseTimeout    = 10 * time.Second
	DefaultIPMICipherSuite = "3"
)

func (o Options) withDefaults() Options {
	if o.PerCallTimeout <= 0 {
		o.PerCallTimeout = DefaultPerCallTimeout
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.IPMICipherSuite == "" {
		o.IPMICipherSuite = DefaultIPMICipherSuite
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Retry = o.Retry.withDefaults()
	return o
}

// bmclibController is the Controller over one bmclib client. The client is
// created by Open and dropped by Close; it is never shared.
type bmclibController struct {
	t        Target
	opts     Options
	log      *slog.Logger
	cl       *bmclib.Client
	provider string // last provider that served a call
	opened   string // providers that opened, comma separated
	scope    callScope
}

// NewBMCLib returns a Controller for t backed by bmclib/v2. Nothing is
// contacted until Open.
//
// Driver ipmi uses only bmclib's ipmitool provider (needs the ipmitool
// binary; every call runs one ipmitool process, so "sessions" are
// per command). Driver redfish uses only the gofish provider, which always
// logs in with a Redfish session (SessionService) and deletes it on Close.
// Driver auto lets bmclib try every provider it has, keeping those that
// connect; calls go to the first one that succeeds.
//
// Known bmclib v2.3.0 limits: the ipmitool provider has no BIOS support
// (KindUnsupported) and no inventory (this adapter asks ipmitool itself);
// the gofish provider's "soft" power-off reports failure even when the BMC
// accepted it (recognised and treated as success with driver redfish);
// gofish ignores contexts, so this adapter closes a call's HTTP
// connections when the call's context ends (see httpscope.go), making
// cancellation and PerCallTimeout apply to Redfish calls too.
func NewBMCLib(t Target, opts Options) Controller {
	opts = opts.withDefaults()
	return &bmclibController{
		t:    t,
		opts: opts,
		log:  opts.Log.With("svc", "bmc", "node", t.Node),
	}
}

// BMCLibFactory returns a function making bmclib Controllers with opts, in
// the shape Run wants.
func BMCLibFactory(opts Options) func(Target) Controller {
	return func(t Target) Controller { return NewBMCLib(t, opts) }
}

// newClient builds the bmclib client for the target's driver.
func (c *bmclibController) newClient() (*bmclib.Client, error) {
	t := c.t
	o := []bmclib.Option{
		bmclib.WithLogger(logr.FromSlogHandler(c.log.Handler())),
		bmclib.WithPerProviderTimeout(c.opts.PerCallTimeout),
		bmclib.WithIpmitoolCipherSuite(c.opts.IPMICipherSuite),
	}
	if c.opts.IpmitoolPath != "" {
		o = append(o, bmclib.WithIpmitoolPath(c.opts.IpmitoolPath))
	}
	switch t.driver() {
	case DriverIPMI:
		o = append(o, bmclib.WithIpmitoolPort(strconv.Itoa(t.port())))
	case DriverRedfish:
		o = append(o, bmclib.WithRedfishPort(strconv.Itoa(t.port())))
	}
	var pool *x509.CertPool // nil: system roots
	if t.TLSVerify && len(t.CACert) > 0 {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.CACert) {
			return nil, fmt.Errorf("no PEM certificate in CA bundle: %w", ErrInvalid)
		}
	}
	o = append(o, bmclib.WithHTTPClient(newHTTPClient(&c.scope, t.TLSVerify, pool)))
	cl := bmclib.NewClient(t.Address, t.User, t.Password, o...)
	switch t.driver() {
	case DriverIPMI:
		cl.Registry.Drivers = cl.Registry.For(ipmitool.ProviderName)
		if len(cl.Registry.Drivers) == 0 {
			return nil, fmt.Errorf("ipmitool binary not found (install ipmitool or set Options.IpmitoolPath): %w", ErrUnsupported)
		}
	case DriverRedfish:
		cl.Registry.Drivers = cl.Registry.For(redfish.ProviderName)
	}
	if len(cl.Registry.Drivers) == 0 {
		return nil, fmt.Errorf("no bmclib provider for driver %s: %w", t.driver(), ErrUnsupported)
	}
	return cl, nil
}

// fail builds an *Error of a known kind.
func (c *bmclibController) fail(op string, kind ErrorKind, err error) error {
	return &Error{Node: c.t.Node, Op: op, Kind: kind, Err: err}
}

// Open implements Controller.
func (c *bmclibController) Open(ctx context.Context) error {
	const op = "open"
	if c.cl != nil {
		return nil
	}
	if err := c.t.Validate(); err != nil {
		return c.fail(op, KindInvalid, err)
	}
	cl, err := c.newClient()
	if err != nil {
		return c.fail(op, Kind(err), err)
	}
	start := time.Now()
	err = c.opts.Retry.do(ctx, Retryable, func() error {
		if err := c.probe(ctx, op); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, c.opts.PerCallTimeout)
		defer cancel()
		defer c.scope.enter(cctx)()
		return c.refine(ctx, wrap(cctx, c.t.Node, op, c.t.Password, cl.Open(cctx)))
	})
	c.logCall(op, start, err)
	if err != nil {
		// bmclib's Open fails only when no provider connected, so there is
		// no session to end.
		return err
	}
	c.cl = cl
	c.opened = strings.Join(cl.GetMetadata().SuccessfulOpenConns, ",")
	c.provider = c.opened
	return nil
}

// call runs f with a per-attempt timeout and retries; retryIf decides which
// failures are retried (Retryable when nil).
func (c *bmclibController) call(ctx context.Context, op string, retryIf func(error) bool, f func(ctx context.Context) error) error {
	if c.cl == nil {
		return c.fail(op, KindInvalid, errors.New("controller is not open"))
	}
	if retryIf == nil {
		retryIf = Retryable
	}
	start := time.Now()
	err := c.opts.Retry.do(ctx, retryIf, func() error {
		cctx, cancel := context.WithTimeout(ctx, c.opts.PerCallTimeout)
		defer cancel()
		defer c.scope.enter(cctx)()
		return c.refine(ctx, wrap(cctx, c.t.Node, op, c.t.Password, f(cctx)))
	})
	if p := c.cl.GetMetadata().SuccessfulProvider; err == nil && p != "" {
		c.provider = p
	}
	c.logCall(op, start, err)
	return err
}

// probe checks, for driver ipmi, that the BMC answers an unauthenticated
// IPMI request before ipmitool is run: a dead BMC then fails in at most
// ipmiProbeTimeout as KindUnreachable, instead of using up the whole
// PerCallTimeout on ipmitool's own retries. ipmitool sends the same request
// first, so a BMC that ignores the probe would not work with ipmitool either.
func (c *bmclibController) probe(ctx context.Context, op string) error {
	if c.t.driver() != DriverIPMI {
		return nil
	}
	addr := c.ipmiAddr()
	if ipmiAnswers(ctx, addr, min(ipmiProbeTimeout, c.opts.PerCallTimeout)) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return wrap(ctx, c.t.Node, op, "", err)
	}
	return &Error{Node: c.t.Node, Op: op, Kind: KindUnreachable,
		Err: fmt.Errorf("no answer to an IPMI RMCP request on %s/udp", addr)}
}

// ipmiProbeTimeout bounds probe and refine's reachability check.
const ipmiProbeTimeout = 2 * time.Second

// refine asks an IPMI BMC whether it is there when ipmitool could not set
// up a session, so bad credentials are reported as KindAuth (and not
// retried) rather than as KindUnreachable.
func (c *bmclibController) refine(ctx context.Context, err error) error {
	if err == nil || c.t.driver() == DriverRedfish || ctx.Err() != nil {
		return err
	}
	return refineIPMI(ctx, c.ipmiAddr(), ipmiProbeTimeout, err)
}

func (c *bmclibController) logCall(op string, start time.Time, err error) {
	if err != nil {
		c.log.Debug("bmc call failed", "op", op, "target", c.t, "took", time.Since(start), "kind", Kind(err).String(), "err", err)
		return
	}
	c.log.Debug("bmc call", "op", op, "target", c.t, "took", time.Since(start))
}

// PowerState implements Controller.
func (c *bmclibController) PowerState(ctx context.Context) (string, error) {
	var state string
	err := c.call(ctx, "power status", nil, func(ctx context.Context) error {
		s, err := c.cl.GetPowerState(ctx)
		state = s
		return err
	})
	if err != nil {
		return "", err
	}
	return normalizePowerState(state), nil
}

// normalizePowerState maps "Chassis Power is on\n" (ipmitool) and "On"
// (Redfish) to "on"; unknown words are returned lower case.
func normalizePowerState(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "chassis power is ")
	return s
}

// Power implements Controller. Cycle and reset are retried only when the
// BMC was unreachable (the command cannot have been executed).
func (c *bmclibController) Power(ctx context.Context, action PowerAction) error {
	op := "power " + string(action)
	if err := action.Validate(); err != nil {
		return c.fail(op, KindInvalid, err)
	}
	var retryIf func(error) bool
	if !action.idempotent() {
		retryIf = func(err error) bool { return Kind(err) == KindUnreachable }
	}
	return c.call(ctx, op, retryIf, func(ctx context.Context) error {
		ok, err := c.cl.SetPowerState(ctx, string(action))
		if action == PowerSoft && c.t.driver() == DriverRedfish && gofishSoftOffQuirk(err) {
			return nil
		}
		if err == nil && !ok {
			err = errors.New("bmc did not confirm the power action")
		}
		return err
	})
}

// gofishSoftOffQuirk recognises bmclib v2.3.0's gofish "soft" power-off,
// which returns ok=false with no error after the BMC accepted
// GracefulShutdown (or the system was already off); bmclib turns that into
// "provider: gofish, failed to set power state". A real failure carries the
// provider's own error ("provider: gofish: ...") and is not matched.
func gofishSoftOffQuirk(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "provider: gofish, failed to set power state") && !strings.Contains(msg, "provider: gofish:")
}

// SetBootDevice implements Controller.
func (c *bmclibController) SetBootDevice(ctx context.Context, dev BootDevice, opts BootOptions) error {
	const op = "set boot device"
	if err := dev.Validate(); err != nil {
		return c.fail(op, KindInvalid, err)
	}
	return c.call(ctx, op, nil, func(ctx context.Context) error {
		ok, err := c.cl.SetBootDevice(ctx, string(dev), opts.Persistent, opts.EFI)
		if err == nil && !ok {
			err = errors.New("bmc did not confirm the boot device")
		}
		return err
	})
}

// BIOS implements Controller.
func (c *bmclibController) BIOS(ctx context.Context) (map[string]string, error) {
	var attrs map[string]string
	err := c.call(ctx, "get bios", nil, func(ctx context.Context) error {
		a, err := c.cl.GetBiosConfiguration(ctx)
		attrs = a
		return err
	})
	if err != nil {
		return nil, err
	}
	return attrs, nil
}

// SetBIOS implements Controller. An empty map is a no-op.
func (c *bmclibController) SetBIOS(ctx context.Context, attrs map[string]string) error {
	if len(attrs) == 0 {
		return nil
	}
	return c.call(ctx, "set bios", nil, func(ctx context.Context) error {
		return c.cl.SetBiosConfiguration(ctx, attrs)
	})
}

// Inventory implements Controller. IPMI BMCs are asked through ipmitool
// directly (bmclib's ipmitool provider has no inventory); with driver auto
// that is the fallback when no provider implements inventory.
func (c *bmclibController) Inventory(ctx context.Context) (Inventory, error) {
	const op = "inventory"
	var inv Inventory
	ipmiInv := func(ctx context.Context) error {
		i, err := c.ipmiInventory(ctx)
		inv = i
		return err
	}
	if c.t.driver() == DriverIPMI {
		return inv, c.call(ctx, op, nil, ipmiInv)
	}
	err := c.call(ctx, op, nil, func(ctx context.Context) error {
		d, err := c.cl.Inventory(ctx)
		if err != nil {
			return err
		}
		if d == nil {
			return errors.New("bmc returned no inventory")
		}
		inv = Inventory{Vendor: d.Vendor, Model: d.Model, Serial: d.Serial}
		if d.BMC != nil && d.BMC.Firmware != nil {
			inv.BMCFirmware = d.BMC.Firmware.Installed
		}
		if d.BIOS != nil && d.BIOS.Firmware != nil {
			inv.BIOSVersion = d.BIOS.Firmware.Installed
		}
		for _, n := range d.NICs {
			if n == nil {
				continue
			}
			for _, p := range n.NICPorts {
				if p == nil || p.MacAddress == "" {
					continue
				}
				mac := strings.ToLower(p.MacAddress)
				if !slices.Contains(inv.MACs, mac) {
					inv.MACs = append(inv.MACs, mac)
				}
			}
		}
		return nil
	})
	if Kind(err) == KindUnsupported && c.cl != nil && c.canIPMI() {
		return inv, c.call(ctx, op, nil, ipmiInv)
	}
	return inv, err
}

// Provider implements Controller.
func (c *bmclibController) Provider() string { return c.provider }

// Close implements Controller. It always runs on a fresh context bounded by
// CloseTimeout, so a cancelled or expired ctx still lets the session end.
func (c *bmclibController) Close(ctx context.Context) error {
	if c.cl == nil {
		return nil
	}
	cl := c.cl
	c.cl = nil
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.CloseTimeout)
	defer cancel()
	defer c.scope.enter(cctx)()
	start := time.Now()
	err := wrap(cctx, c.t.Node, "close", c.t.Password, cl.Close(cctx))
	c.logCall("close", start, err)
	return err
}
