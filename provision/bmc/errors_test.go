package bmc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"
	pkgerrors "github.com/pkg/errors"
	gofishcommon "github.com/stmcginnis/gofish/common"
)

func TestClassify(t *testing.T) {
	tests := map[string]struct {
		err       error
		want      ErrorKind
		transient bool
	}{
		"nil": {err: nil, want: KindNone},
		"ipmitool session, plain": {
			err:  errors.New("exit status 1: Error: Unable to establish IPMI v2 / RMCP+ session"),
			want: KindUnreachable,
		},
		"ipmitool RAKP hmac": {
			err:  errors.New("exit status 1: RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session"),
			want: KindAuth,
		},
		"ipmitool RAKP unauthorized name": {
			err:  errors.New("RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish IPMI v2 / RMCP+ session"),
			want: KindAuth,
		},
		"redfish 401 typed": {
			err:  pkgerrors.WithMessage(gofishcommon.ConstructError(401, []byte(`{"error":{"code":"Base.1.0.NoValidSession","message":"nope"}}`)), "provider: gofish"),
			want: KindAuth,
		},
		"redfish 403 text": {
			err:  errors.New("provider: gofish: 403: forbidden"),
			want: KindAuth,
		},
		"redfish 503 busy": {
			err:       gofishcommon.ConstructError(503, []byte("busy")),
			want:      KindBMC,
			transient: true,
		},
		"redfish 501": {
			err:  gofishcommon.ConstructError(501, []byte("")),
			want: KindUnsupported,
		},
		"redfish 404": {
			err:  gofishcommon.ConstructError(404, []byte("")),
			want: KindUnsupported,
		},
		"redfish 500": {
			err:  gofishcommon.ConstructError(500, []byte("boom")),
			want: KindBMC,
		},
		"connection refused errno": {
			err:  &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
			want: KindUnreachable,
		},
		"connection refused text": {
			err:  errors.New(`Post "https://10.0.0.1/redfish/v1/SessionService/Sessions": dial tcp 10.0.0.1:443: connect: connection refused`),
			want: KindUnreachable,
		},
		"no route": {
			err:  errors.New("dial tcp 10.9.9.9:443: connect: no route to host"),
			want: KindUnreachable,
		},
		"i/o timeout": {
			err:  errors.New("dial tcp 10.9.9.9:443: i/o timeout"),
			want: KindTimeout,
		},
		"deadline": {
			err:  fmt.Errorf("open: %w", context.DeadlineExceeded),
			want: KindTimeout,
		},
		"deadline in multierror": {
			err:  multierror.Append(nil, context.DeadlineExceeded, errors.New("no Opener implementations found")),
			want: KindTimeout,
		},
		"http client timeout": {
			err:  errors.New(`Get "https://x/redfish/v1/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`),
			want: KindTimeout,
		},
		"canceled": {
			err:  fmt.Errorf("x: %w", context.Canceled),
			want: KindCanceled,
		},
		"no implementation": {
			err: multierror.Append(nil,
				errors.New("not a BiosConfigurationGetter implementation: *ipmitool.Conn"),
				errors.New("no BiosConfigurationGetter implementations found")),
			want: KindUnsupported,
		},
		"hasn't been implemented": {
			err:  errors.New("this feature hasn't been implemented yet"),
			want: KindUnsupported,
		},
		"not implemented (Redfish 501 text)": {
			err:  errors.New("501: Not Implemented: ComputerSystem.Reset ResetType ForceRestart"),
			want: KindUnsupported,
		},
		"auth wins over unreachable (auto mode)": {
			err: multierror.Append(nil,
				errors.New("provider: ipmitool: Unable to establish IPMI v2 / RMCP+ session"),
				errors.New("provider: gofish: 401: {}")),
			want: KindAuth,
		},
		"state error is not unsupported": {
			err:  errors.New("power cycle failed: Command not supported in present state: Off"),
			want: KindBMC,
		},
		"ipmi node busy": {
			err:  errors.New("Set Chassis Power Control to Up/On failed: Node busy"),
			want: KindBMC, transient: true,
		},
		"other": {
			err:  errors.New("something odd"),
			want: KindBMC,
		},
		"sentinel wrapped": {
			err:  fmt.Errorf("baseline: %w", ErrUnsupported),
			want: KindUnsupported,
		},
		"typed error": {
			err:  &Error{Kind: KindAuth, Err: errors.New("x")},
			want: KindAuth,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Kind(tc.err); got != tc.want {
				t.Errorf("Kind(%q) = %v, want %v", tc.err, got, tc.want)
			}
			w := wrap(context.Background(), "n1", "op", "", tc.err)
			if tc.err == nil {
				if w != nil {
					t.Fatalf("wrap(nil) = %v", w)
				}
				return
			}
			if got := Kind(w); got != tc.want {
				t.Errorf("Kind(wrap) = %v, want %v", got, tc.want)
			}
			if s := tc.want.sentinel(); s != nil && !errors.Is(w, s) {
				t.Errorf("errors.Is(wrap, %v) = false", s)
			}
			if !errors.Is(w, tc.err) {
				t.Errorf("wrap lost the cause chain")
			}
			wantRetry := tc.want == KindUnreachable || tc.want == KindTimeout || (tc.want == KindBMC && tc.transient)
			if got := Retryable(w); got != wantRetry {
				t.Errorf("Retryable = %v, want %v", got, wantRetry)
			}
		})
	}
}

func TestWrapContextWins(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if k := Kind(wrap(ctx, "n", "op", "", errors.New("signal: killed"))); k != KindCanceled {
		t.Errorf("cancelled ctx: kind %v, want canceled", k)
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	if k := Kind(wrap(dctx, "n", "op", "", errors.New("signal: killed"))); k != KindTimeout {
		t.Errorf("expired ctx: kind %v, want timeout", k)
	}
	// An auth failure stays an auth failure even if the deadline passed meanwhile.
	if k := Kind(wrap(dctx, "n", "op", "", errors.New("401: no"))); k != KindAuth {
		t.Errorf("expired ctx with 401: kind %v, want auth", k)
	}
}

func TestRedaction(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	tg := Target{Node: "n1", Address: "10.0.0.5", Driver: DriverIPMI, User: "admin", Password: secret}
	for _, s := range []string{
		fmt.Sprintf("%v", tg), fmt.Sprintf("%+v", tg), fmt.Sprintf("%#v", tg), fmt.Sprint(tg), tg.String(),
		fmt.Sprintf("%v", []Target{tg}), fmt.Sprintf("%+v", struct{ T Target }{tg}),
	} {
		if strings.Contains(s, secret) {
			t.Errorf("password leaked in %q", s)
		}
		if !strings.Contains(s, "n1") {
			t.Errorf("node missing from %q", s)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "target", tg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "target", tg)
	if strings.Contains(buf.String(), secret) {
		t.Errorf("password leaked in log: %s", buf.String())
	}
	err := wrap(context.Background(), "n1", "open", secret, fmt.Errorf("login as admin:%s failed: 401: x", secret))
	if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
		t.Errorf("password leaked in error %q", err)
	}
	if Kind(err) != KindAuth {
		t.Errorf("kind %v", Kind(err))
	}
}

func TestTargetValidate(t *testing.T) {
	ok := Target{Node: "n", Address: "10.0.0.1", User: "u"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid target: %v", err)
	}
	bad := Target{Driver: "snmp", Port: 70000}
	err := bad.Validate()
	if err == nil || !errors.Is(err, ErrInvalid) || Kind(err) != KindInvalid {
		t.Fatalf("want invalid, got %v", err)
	}
	for _, want := range []string{"address", "snmp", "70000", "user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := (Target{Address: "a", User: "u", Port: 623}).Validate(); err == nil {
		t.Error("auto driver with a port must be rejected")
	}
}

func TestRetry(t *testing.T) {
	r := Retry{Attempts: 4, Base: time.Millisecond, Max: 2 * time.Millisecond}
	count := func(err error) int {
		n := 0
		_ = r.do(context.Background(), Retryable, func() error { n++; return err })
		return n
	}
	if n := count(&Error{Kind: KindAuth, Err: errors.New("x")}); n != 1 {
		t.Errorf("auth retried: %d calls", n)
	}
	if n := count(&Error{Kind: KindUnreachable, Err: errors.New("x")}); n != 4 {
		t.Errorf("unreachable: %d calls, want 4", n)
	}
	if n := count(&Error{Kind: KindBMC, Transient: true, Err: errors.New("busy")}); n != 4 {
		t.Errorf("busy: %d calls, want 4", n)
	}
	if n := count(&Error{Kind: KindBMC, Err: errors.New("500")}); n != 1 {
		t.Errorf("bmc error retried: %d calls", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_ = Retry{Attempts: 10, Base: time.Hour}.do(ctx, Retryable, func() error {
		n++
		cancel()
		return &Error{Kind: KindTimeout, Err: errors.New("x")}
	})
	if n != 1 {
		t.Errorf("retried after cancel: %d", n)
	}
	for i := 1; i < 10; i++ {
		if d := (Retry{Base: 100 * time.Millisecond, Max: time.Second}).withDefaults().backoff(i); d > time.Second || d < 50*time.Millisecond {
			t.Errorf("backoff(%d) = %v out of bounds", i, d)
		}
	}
}
