package bmc

import (
	"context"
	"time"
)

// WithDeadline bounds every call of c but Close (sessions are always
// ended) by one deadline for the whole node operation, which starts at the
// first call: `racklift bmc --timeout` is a time limit per node, however
// many calls its operation makes. A timeout of zero leaves c as it is.
func WithDeadline(c Controller, timeout time.Duration) Controller {
	if timeout <= 0 {
		return c
	}
	return &deadlineController{Controller: c, timeout: timeout}
}

type deadlineController struct {
	Controller
	timeout  time.Duration
	deadline time.Time
}

func (c *deadlineController) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.deadline.IsZero() {
		c.deadline = time.Now().Add(c.timeout)
	}
	return context.WithDeadline(ctx, c.deadline)
}

func (c *deadlineController) Open(ctx context.Context) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.Open(ctx)
}

func (c *deadlineController) PowerState(ctx context.Context) (string, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.PowerState(ctx)
}

func (c *deadlineController) Power(ctx context.Context, a PowerAction) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.Power(ctx, a)
}

func (c *deadlineController) SetBootDevice(ctx context.Context, d BootDevice, o BootOptions) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.SetBootDevice(ctx, d, o)
}

func (c *deadlineController) BIOS(ctx context.Context) (map[string]string, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.BIOS(ctx)
}

func (c *deadlineController) SetBIOS(ctx context.Context, attrs map[string]string) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.SetBIOS(ctx, attrs)
}

func (c *deadlineController) Inventory(ctx context.Context) (Inventory, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	return c.Controller.Inventory(ctx)
}
