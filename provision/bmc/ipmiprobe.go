package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ipmitool prints the same "Error: Unable to establish IPMI v2 / RMCP+
// session" whether nothing answered or the BMC refused the user or password
// (bmclib runs it without -v, so the RAKP detail is not shown). To tell the
// two apart we ask the BMC something that needs no session: an IPMI v1.5
// "Get Channel Authentication Capabilities" request over RMCP (what ipmitool
// itself sends first). Any answer proves the BMC is there, so the session
// failure was a credentials (or cipher suite) rejection.

// getChannelAuthCaps is RMCP + IPMI v1.5 session header (no auth) + the
// request: netfn App (0x06), cmd 0x38, channel 0x0e (this one) with the
// IPMI v2 extended-data bit, privilege Administrator.
var getChannelAuthCaps = [...]byte{
	0x06, 0x00, 0xff, 0x07, // RMCP: version 1.0, reserved, no ack, class IPMI
	0x00,                   // auth type none
	0x00, 0x00, 0x00, 0x00, // session sequence
	0x00, 0x00, 0x00, 0x00, // session id
	0x09,       // message length
	0x20, 0x18, // rsAddr BMC, netFn App << 2
	0xc8,       // checksum of the two bytes above
	0x81, 0x00, // rqAddr, rqSeq/rqLUN
	0x38,       // Get Channel Authentication Capabilities
	0x8e, 0x04, // channel 0x0e | 0x80, privilege admin
	0xb5, // checksum of rqAddr..data
}

// ipmiAnswers reports whether something answers IPMI over RMCP at addr
// (host:port) within timeout (tried twice: UDP may drop one).
func ipmiAnswers(ctx context.Context, addr string, timeout time.Duration) bool {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	buf := make([]byte, 512)
	for try := 0; try < 2; try++ {
		deadline := time.Now().Add(timeout / 2)
		if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
			deadline = dl
		}
		if err := conn.SetDeadline(deadline); err != nil {
			return false
		}
		if _, err := conn.Write(getChannelAuthCaps[:]); err != nil {
			return false
		}
		n, err := conn.Read(buf)
		if err == nil && n >= 4 && buf[0] == 0x06 {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return false // e.g. ICMP port unreachable: connection refused
		}
	}
	return false
}

// ipmiSessionFailure matches ipmitool's session set-up failures.
func ipmiSessionFailure(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "unable to establish ipmi v2 / rmcp+ session") ||
		strings.Contains(msg, "unable to establish lan session")
}

// refineIPMI turns an "unreachable" IPMI session failure into KindAuth when
// the BMC answers an unauthenticated probe at addr.
func refineIPMI(ctx context.Context, addr string, timeout time.Duration, err error) error {
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnreachable || !ipmiSessionFailure(err) {
		return err
	}
	if !ipmiAnswers(ctx, addr, timeout) {
		return err
	}
	return &Error{Node: e.Node, Op: e.Op, Kind: KindAuth,
		Err: fmt.Errorf("bmc answers IPMI but refused the session (wrong user or password, or cipher suite not allowed): %w", e.Err)}
}
