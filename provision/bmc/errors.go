package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	gofishcommon "github.com/stmcginnis/gofish/common"
)

// ErrorKind says what a caller can do about a failed BMC call.
type ErrorKind int

// Error kinds. KindNone is the kind of a nil error.
const (
	KindNone ErrorKind = iota
	// KindUnreachable: nothing answered (connection refused, no route, no
	// IPMI session could be set up and no credential problem was reported).
	// Retryable.
	KindUnreachable
	// KindAuth: the BMC rejected the credentials (HTTP 401/403, IPMI RAKP
	// errors). Never retried: repeated bad logins lock BMC accounts out.
	KindAuth
	// KindUnsupported: the BMC or the chosen provider cannot do this
	// (no provider implements it, HTTP 404/405/501 on the resource). A
	// result to record, not a crash.
	KindUnsupported
	// KindTimeout: the call's deadline passed. Retryable.
	KindTimeout
	// KindBMC: the BMC answered with an error. Retryable only when the BMC
	// said it was busy (Error.Transient).
	KindBMC
	// KindCanceled: the caller's context was cancelled.
	KindCanceled
	// KindInvalid: a bad target or argument, found before talking to the BMC.
	KindInvalid
)

// Sentinel errors, one per kind. Every *Error matches the sentinel of its
// kind with errors.Is.
var (
	ErrUnreachable = errors.New("bmc unreachable")
	ErrAuth        = errors.New("bmc rejected credentials")
	ErrUnsupported = errors.New("not supported by this bmc")
	ErrTimeout     = errors.New("bmc call timed out")
	ErrBMC         = errors.New("bmc error")
	ErrCanceled    = errors.New("bmc call canceled")
	ErrInvalid     = errors.New("invalid bmc request")
)

// String returns the kind's short name ("auth", "timeout", ...).
func (k ErrorKind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindUnreachable:
		return "unreachable"
	case KindAuth:
		return "auth"
	case KindUnsupported:
		return "unsupported"
	case KindTimeout:
		return "timeout"
	case KindBMC:
		return "bmc"
	case KindCanceled:
		return "canceled"
	case KindInvalid:
		return "invalid"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// sentinel returns the sentinel error of k.
func (k ErrorKind) sentinel() error {
	switch k {
	case KindUnreachable:
		return ErrUnreachable
	case KindAuth:
		return ErrAuth
	case KindUnsupported:
		return ErrUnsupported
	case KindTimeout:
		return ErrTimeout
	case KindBMC:
		return ErrBMC
	case KindCanceled:
		return ErrCanceled
	case KindInvalid:
		return ErrInvalid
	}
	return nil
}

// Error is a classified BMC failure.
type Error struct {
	// Node is the target's node name.
	Node string
	// Op is the operation that failed ("open", "power on", "set boot device", ...).
	Op string
	// Kind classifies the failure.
	Kind ErrorKind
	// Transient is set for KindBMC errors where the BMC said it was busy.
	Transient bool
	// Err is the underlying error (already free of the password).
	Err error
}

// Error implements error: "bmc n1: power on: auth: <cause>", on one line
// (bmclib's multi-provider errors span several).
func (e *Error) Error() string {
	msg := fmt.Sprint(e.Err)
	if strings.ContainsAny(msg, "\n\t") {
		msg = strings.Join(strings.Fields(msg), " ")
	}
	return fmt.Sprintf("bmc %s: %s: %s: %s", e.Node, e.Op, e.Kind, msg)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's kind (errors.Is(err, bmc.ErrAuth)).
func (e *Error) Is(target error) bool {
	s := e.Kind.sentinel()
	return s != nil && target == s
}

// Kind returns the kind of err: the Kind of an *Error in its chain, or the
// kind of a sentinel it wraps, or, for foreign errors (bmclib, ipmitool,
// gofish, net), the result of classifying them. Kind(nil) is KindNone.
func Kind(err error) ErrorKind {
	if err == nil {
		return KindNone
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	for _, k := range []ErrorKind{KindCanceled, KindInvalid, KindAuth, KindTimeout, KindUnreachable, KindUnsupported, KindBMC} {
		if errors.Is(err, k.sentinel()) {
			return k
		}
	}
	k, _ := classify(err)
	return k
}

// Retryable reports whether err is worth retrying: unreachable, timeout, or
// a BMC that said it was busy. Never auth errors.
func Retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind == KindUnreachable || e.Kind == KindTimeout || (e.Kind == KindBMC && e.Transient)
	}
	k, transient := classify(err)
	return k == KindUnreachable || k == KindTimeout || (k == KindBMC && transient)
}

// Markers in error text, lower case. bmclib flattens most causes into
// strings (ipmitool's output, multierror lists), so text is all we have for
// many of them.
var (
	authMarkers = []string{
		"rakp",                  // ipmitool: "RAKP 2 HMAC is invalid", "RAKP 2 message indicates an error : unauthorized name"
		"unauthorized name",     // ipmitool
		"invalid user name",     // ipmitool
		"hmac is invalid",       // ipmitool
		"401 unauthorized",      // plain HTTP
		"403 forbidden",         // plain HTTP
		"authentication failed", // vendor APIs
		"invalid credentials",   // vendor APIs
		"failed to login",       // bmclib vendor providers (errors.ErrLoginFailed)
		"unauthorized",          // generic
	}
	timeoutMarkers = []string{
		"context deadline exceeded",
		"i/o timeout",
		"client.timeout exceeded",
		"timeout awaiting response headers",
		"tls handshake timeout",
	}
	unreachableMarkers = []string{
		"connection refused",
		"no route to host",
		"network is unreachable",
		"host is down",
		"no such host",
		"connection reset by peer",
		"unable to establish ipmi v2 / rmcp+ session", // with no auth marker: nothing answered
		"unable to establish lan session",
		"get session challenge command failed",
		"eof",
	}
	unsupportedMarkers = []string{
		"implementations found", // bmclib: "no BiosConfigurationGetter implementations found"
		"hasn't been implemented",
		"not implemented",
		"not supported",
		"no bios attributes",
		"no compatible system odata",
		"ipmitool binary not found",
	}
	busyMarkers = []string{
		"node busy",
		"busy",
		"temporarily unavailable",
		"try again",
		"insufficient resources for session", // IPMI: all session slots taken
	}
)

// classify maps a foreign error onto a kind. transient is set for busy BMCs.
// Order matters: cancellation first (the caller asked for it), then auth
// (never retried, and bmclib's multierror may hold an auth error next to an
// unreachable one from another provider), then timeouts, then the rest.
func classify(err error) (kind ErrorKind, transient bool) {
	if err == nil {
		return KindNone, false
	}
	if errors.Is(err, context.Canceled) {
		return KindCanceled, false
	}
	msg := strings.ToLower(err.Error())

	// Redfish status codes, typed by gofish.
	status := 0
	var rf *gofishcommon.Error
	if errors.As(err, &rf) {
		status = rf.HTTPReturnedStatusCode
	}
	switch {
	case status == 401 || status == 403 || hasHTTPStatus(msg, 401) || hasHTTPStatus(msg, 403):
		return KindAuth, false
	case containsAny(msg, authMarkers) && !strings.Contains(msg, "not supported in present state"):
		return KindAuth, false
	}

	var nerr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout, false
	case errors.As(err, &nerr) && nerr.Timeout():
		return KindTimeout, false
	case containsAny(msg, timeoutMarkers):
		return KindTimeout, false
	}

	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET):
		return KindUnreachable, false
	case containsAny(msg, unreachableMarkers):
		return KindUnreachable, false
	}

	switch {
	case status == 503 || status == 429 || hasHTTPStatus(msg, 503) || hasHTTPStatus(msg, 429):
		return KindBMC, true
	case status == 404 || status == 405 || status == 501 || hasHTTPStatus(msg, 405) || hasHTTPStatus(msg, 501):
		return KindUnsupported, false
	case strings.Contains(msg, "not supported in present state"):
		return KindBMC, false
	case containsAny(msg, unsupportedMarkers):
		return KindUnsupported, false
	case containsAny(msg, busyMarkers):
		return KindBMC, true
	}
	return KindBMC, false
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// hasHTTPStatus finds gofish's "<code>: <body>" error text or a Go
// "<code> <reason>" status line in msg.
func hasHTTPStatus(msg string, code int) bool {
	c := fmt.Sprint(code)
	return strings.HasPrefix(msg, c+": ") || strings.Contains(msg, " "+c+": ") ||
		strings.Contains(msg, ": "+c+": ") || strings.Contains(msg, "status "+c) ||
		strings.Contains(msg, "status code "+c)
}

// redactError hides a secret in an error's text while keeping its chain.
type redactError struct {
	err    error
	secret string
}

func (r *redactError) Error() string {
	return strings.ReplaceAll(r.err.Error(), r.secret, redacted)
}

func (r *redactError) Unwrap() error { return r.err }

// wrap classifies err and returns it as an *Error for node/op, with secret
// removed from its text. A nil err stays nil. If ctx is done, the context's
// state wins over whatever the provider made of it.
func wrap(ctx context.Context, node, op, secret string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	kind, transient := classify(err)
	if ctx != nil && kind != KindAuth {
		switch ctx.Err() {
		case context.Canceled:
			kind, transient = KindCanceled, false
		case context.DeadlineExceeded:
			kind, transient = KindTimeout, false
		}
	}
	if secret != "" && strings.Contains(err.Error(), secret) {
		err = &redactError{err: err, secret: secret}
	}
	return &Error{Node: node, Op: op, Kind: kind, Transient: transient, Err: err}
}
