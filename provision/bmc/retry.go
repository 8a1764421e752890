package bmc

import (
	"context"
	"math/rand/v2"
	"time"
)

// Retry is a bounded exponential backoff for transient failures
// (unreachable, timeout, busy BMC). Auth failures are never retried.
type Retry struct {
	// Attempts is the total number of tries, first one included.
	// Zero means DefaultRetryAttempts; 1 disables retries.
	Attempts int
	// Base is the wait before the second try; it doubles every try.
	// Zero means DefaultRetryBase.
	Base time.Duration
	// Max caps a single wait. Zero means DefaultRetryMax.
	Max time.Duration
}

// Retry defaults.
const (
	DefaultRetryAttempts = 3
	DefaultRetryBase     = 500 * time.Millisecond
	DefaultRetryMax      = 5 * time.Second
)

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultRetryAttempts
	}
	if r.Base <= 0 {
		r.Base = DefaultRetryBase
	}
	if r.Max <= 0 {
		r.Max = DefaultRetryMax
	}
	return r
}

// backoff is the wait after try n (1-based): Base*2^(n-1) capped at Max,
// with "equal jitter" (half fixed, half random) so that a rack of BMCs
// failing together does not retry in lock step.
func (r Retry) backoff(n int) time.Duration {
	d := r.Base
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// do runs f up to r.Attempts times while it fails with an error for which
// again returns true, waiting between tries; it stops early when ctx is
// done. It returns f's last error.
func (r Retry) do(ctx context.Context, again func(error) bool, f func() error) error {
	r = r.withDefaults()
	var err error
	for n := 1; ; n++ {
		err = f()
		if err == nil || n >= r.Attempts || !again(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(r.backoff(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
