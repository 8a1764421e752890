package bmc

import (
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func redfishOptions(t *testing.T) Options {
	return Options{
		PerCallTimeout: 3 * time.Second,
		CloseTimeout:   2 * time.Second,
		Retry:          Retry{Attempts: 2, Base: 10 * time.Millisecond, Max: 20 * time.Millisecond},
		Log:            slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// testLogWriter sends log lines to t.Log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// assertNoSessions fails if the fake still holds sessions.
func assertNoSessions(t *testing.T, f *fakeRedfish, wantMade int) {
	t.Helper()
	live, made, ended := f.liveSessions()
	if live != 0 || made != ended {
		t.Errorf("sessions: %d live, %d made, %d deleted", live, made, ended)
	}
	if wantMade >= 0 && made != wantMade {
		t.Errorf("sessions made %d, want %d", made, wantMade)
	}
}

func TestRedfishPowerBootBIOSInventory(t *testing.T) {
	f, srv := newFakeRedfish(t)
	ctx := t.Context()
	c := NewBMCLib(f.target(t, srv, "rf1", f.pass), redfishOptions(t))
	if err := c.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	if p := c.Provider(); p != "gofish" {
		t.Errorf("provider %q", p)
	}
	if st, err := c.PowerState(ctx); err != nil || st != "off" {
		t.Fatalf("state %q %v", st, err)
	}
	for _, a := range []PowerAction{PowerOn, PowerSoft, PowerOn, PowerOff, PowerOn, PowerCycle} {
		if err := c.Power(ctx, a); err != nil {
			t.Fatalf("power %s: %v", a, err)
		}
	}
	if st, err := c.PowerState(ctx); err != nil || st != "on" {
		t.Fatalf("state after cycle %q %v", st, err)
	}
	if err := c.SetBootDevice(ctx, BootPXE, BootOptions{EFI: true}); err != nil {
		t.Fatalf("boot pxe: %v", err)
	}
	if err := c.SetBootDevice(ctx, BootDisk, BootOptions{Persistent: true}); err != nil {
		t.Fatalf("boot disk: %v", err)
	}
	bios, err := c.BIOS(ctx)
	if err != nil || bios["BootMode"] != "Bios" {
		t.Fatalf("bios %v %v", bios, err)
	}
	if err := c.SetBIOS(ctx, map[string]string{"BootMode": "Uefi"}); err != nil {
		t.Fatalf("set bios: %v", err)
	}
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := c.Close(ctx); err != nil { // idempotent
		t.Fatalf("second close: %v", err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{"On", "GracefulShutdown", "On", "ForceOff", "On", "ForceRestart"}; !slices.Equal(f.resets, want) {
		t.Errorf("resets %v, want %v", f.resets, want)
	}
	wantBoot := []map[string]string{
		{"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI"},
		{"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "Legacy"},
	}
	if len(f.bootPatches) != len(wantBoot) {
		t.Fatalf("boot patches %v", f.bootPatches)
	}
	for i, want := range wantBoot {
		for k, v := range want {
			if got := f.bootPatches[i][k]; got != v {
				t.Errorf("boot patch %d: %s = %v, want %s (body %v)", i, k, got, v, f.bootPatches[i])
			}
		}
	}
	if len(f.biosPatches) != 1 || f.pending["BootMode"] != "Uefi" {
		t.Errorf("bios patches %v pending %v", f.biosPatches, f.pending)
	}
	want := Inventory{Vendor: "Racklift", Model: "RL-1", Serial: rfFakeSerial, BMCFirmware: "2.71", BIOSVersion: "1.2.3", MACs: []string{strings.ToLower(rfFakeMAC)}}
	if inv.Vendor != want.Vendor || inv.Model != want.Model || inv.Serial != want.Serial ||
		inv.BMCFirmware != want.BMCFirmware || inv.BIOSVersion != want.BIOSVersion || !slices.Equal(inv.MACs, want.MACs) {
		t.Errorf("inventory %+v, want %+v", inv, want)
	}
	if live := len(f.sessions); live != 0 || f.sessionsMade != 1 || f.sessionsEnded != 1 {
		t.Errorf("sessions live %d made %d ended %d", live, f.sessionsMade, f.sessionsEnded)
	}
}

func TestRedfishBadPassword(t *testing.T) {
	f, srv := newFakeRedfish(t)
	c := NewBMCLib(f.target(t, srv, "rf-bad", "wrong-password-123"), redfishOptions(t))
	err := c.Open(t.Context())
	if !errors.Is(err, ErrAuth) || Kind(err) != KindAuth {
		t.Fatalf("open with bad password: %v (kind %v), want ErrAuth", err, Kind(err))
	}
	if strings.Contains(err.Error(), "wrong-password-123") {
		t.Errorf("password in error: %v", err)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Errorf("close after failed open: %v", err)
	}
	f.mu.Lock()
	fails := f.loginFailures
	f.mu.Unlock()
	if fails != 1 {
		t.Errorf("%d login attempts with a bad password, want exactly 1 (no retries)", fails)
	}
	assertNoSessions(t, f, 0)
}

func TestRedfishTimeoutStillClosesSession(t *testing.T) {
	f, srv := newFakeRedfish(t)
	opts := redfishOptions(t)
	opts.PerCallTimeout = 400 * time.Millisecond
	opts.Retry = Retry{Attempts: 1}
	c := NewBMCLib(f.target(t, srv, "rf-slow", f.pass), opts)
	if err := c.Open(t.Context()); err != nil {
		t.Fatalf("open: %v", err)
	}
	f.mu.Lock()
	f.hang = "/Systems"
	f.mu.Unlock()
	start := time.Now()
	_, err := c.PowerState(t.Context())
	if Kind(err) != KindTimeout || !errors.Is(err, ErrTimeout) {
		t.Fatalf("power state on a hung BMC: %v (kind %v), want timeout", err, Kind(err))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v", d)
	}
	// The caller's context is gone too: Close must still end the session.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	assertNoSessions(t, f, 1)
}

// TestRedfishCancelDuringHang cancels the caller's context while the BMC
// hangs: the call must return promptly (gofish itself ignores contexts) and
// Close, on the dead context, must still delete the session.
func TestRedfishCancelDuringHang(t *testing.T) {
	f, srv := newFakeRedfish(t)
	opts := redfishOptions(t)
	opts.PerCallTimeout = 20 * time.Second
	c := NewBMCLib(f.target(t, srv, "rf-cancel", f.pass), opts)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := c.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	f.mu.Lock()
	f.hang = "/Systems"
	f.mu.Unlock()
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.PowerState(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancelled call took %v", d)
	}
	if Kind(err) != KindCanceled || !errors.Is(err, ErrCanceled) {
		t.Errorf("err %v (kind %v), want canceled", err, Kind(err))
	}
	start = time.Now()
	if err := c.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("close took %v", d)
	}
	assertNoSessions(t, f, 1)
}

func TestRedfishErrorsAndUnsupported(t *testing.T) {
	f, srv := newFakeRedfish(t)
	f.noBios = true
	f.failReset = 500
	f.power = "On"
	c := NewBMCLib(f.target(t, srv, "rf-err", f.pass), redfishOptions(t))
	ctx := t.Context()
	if err := c.Open(ctx); err != nil {
		t.Fatalf("open: %v", err)
	}
	if err := c.Power(ctx, PowerOff); Kind(err) != KindBMC {
		t.Errorf("reset answering 500: %v (kind %v), want bmc", err, Kind(err))
	}
	if err := c.Power(ctx, PowerSoft); Kind(err) != KindBMC {
		t.Errorf("soft off answering 500: %v (kind %v), want bmc (not the bmclib quirk)", err, Kind(err))
	}
	if _, err := c.BIOS(ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("BIOS without Bios resource: %v (kind %v), want unsupported", err, Kind(err))
	}
	if err := c.SetBootDevice(ctx, "floppy", BootOptions{}); Kind(err) != KindInvalid {
		t.Errorf("bad device: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	assertNoSessions(t, f, 1)
}

func TestRedfishTLSVerify(t *testing.T) {
	f, srv := newFakeRedfish(t)
	tg := f.target(t, srv, "rf-tls", f.pass)
	tg.TLSVerify = true
	tg.CACert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c := NewBMCLib(tg, redfishOptions(t))
	if err := c.Open(t.Context()); err != nil {
		t.Fatalf("open with the right CA: %v", err)
	}
	if err := c.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	tg.CACert = nil // system roots do not know httptest's CA
	c = NewBMCLib(tg, redfishOptions(t))
	err := c.Open(t.Context())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("open with unknown CA: %v", err)
	}
	_ = c.Close(t.Context())
	assertNoSessions(t, f, 1)
}

func TestRedfishFanOutAllSessionsClosed(t *testing.T) {
	const n = 6
	fakes := make([]*fakeRedfish, n)
	ts := make([]Target, n)
	for i := range fakes {
		f, srv := newFakeRedfish(t)
		fakes[i] = f
		ts[i] = f.target(t, srv, "rf-"+string(rune('a'+i)), f.pass)
	}
	base := runtime.NumGoroutine()
	defer waitGoroutines(t, base)
	ts[2].Password = "nope"  // auth failure
	fakes[4].failReset = 503 // busy BMC: retried, then reported
	opts := redfishOptions(t)
	opts.Log = nil
	res := Run(t.Context(), ts, FanOut[string]{Parallel: 3, Stagger: 5 * time.Millisecond},
		func(tg Target) Controller { return NewBMCLib(tg, opts) },
		func(ctx context.Context, c Controller) (string, error) {
			if err := c.SetBootDevice(ctx, BootPXE, BootOptions{EFI: true}); err != nil {
				return "", err
			}
			if err := c.Power(ctx, PowerOn); err != nil {
				return "", err
			}
			return c.PowerState(ctx)
		})
	for i, r := range res {
		switch i {
		case 2:
			if r.Kind != KindAuth {
				t.Errorf("%s: %v, want auth", r.Node, r.Err)
			}
		case 4:
			var e *Error
			if r.Kind != KindBMC || !errors.As(r.Err, &e) || !e.Transient {
				t.Errorf("%s: %v, want transient bmc error", r.Node, r.Err)
			}
		default:
			if r.Err != nil || r.Value != "on" || r.Provider != "gofish" {
				t.Errorf("%s: %q %q %v", r.Node, r.Provider, r.Value, r.Err)
			}
		}
		if r.CloseErr != nil {
			t.Errorf("%s: close: %v", r.Node, r.CloseErr)
		}
	}
	for i, f := range fakes {
		want := 1
		if i == 2 {
			want = 0
		}
		assertNoSessions(t, f, want)
	}
	f := fakes[4]
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.resets) != 0 {
		t.Errorf("busy fake recorded resets %v", f.resets)
	}
}
