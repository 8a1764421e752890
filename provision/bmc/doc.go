// Package bmc drives servers' baseboard management controllers (IPMI and
// Redfish) for racklift: power, next-boot device, BIOS settings and
// inventory, one node at a time through Controller, or many nodes at once
// through Run (bounded, staggered, cancellable fan-out).
//
// The production Controller is an adapter over github.com/bmc-toolbox/bmclib/v2
// (NewBMCLib): one bmclib client per Controller, created by Open and dropped
// by Close, never shared between goroutines. Every failure is an *Error with
// an ErrorKind, so callers can act on it:
//
//   - KindUnreachable, KindTimeout, and KindBMC with Transient set (a busy
//     BMC) are retried with backoff inside the adapter (Options.Retry).
//   - KindAuth is never retried: BMCs lock accounts after a few bad logins.
//   - KindUnsupported is a result ("this BMC cannot do that"), not a crash.
//
// Use errors.Is(err, bmc.ErrAuth) (and the other sentinels) or Kind(err).
//
// Sessions: Close always ends the session, on a fresh bounded context when
// the caller's context is already done; Do and Run call it for you, also
// after errors, timeouts and panics.
//
// Secrets: Target.Password never appears in logs, in %v/%+v/%#v output or in
// error text produced by this package.
//
// Typical use (the CLI and the orchestrator):
//
//	results := bmc.Run(ctx, targets, bmc.FanOut[string]{Parallel: 8, Stagger: 2 * time.Second},
//		bmc.BMCLibFactory(bmc.Options{Log: log}),
//		func(ctx context.Context, c bmc.Controller) (string, error) {
//			if err := c.SetBootDevice(ctx, bmc.BootPXE, bmc.BootOptions{EFI: true}); err != nil {
//				return "", err
//			}
//			return "", c.Power(ctx, bmc.PowerOn)
//		})
//	for _, r := range results {
//		log.Info("bmc", "node", r.Node, "provider", r.Provider, "kind", r.Kind.String(), "err", r.Err)
//	}
package bmc
