//go:build linux

package testbed

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// boundNotListening creates a unix socket file at path that is bound but
// not yet listening, as QEMU's QMP socket is for a moment after start, and
// returns a function that starts listening and accepts one connection.
func boundNotListening(t *testing.T, path string) (listen func() error) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return func() error {
		if err := syscall.Listen(fd, 1); err != nil {
			return err
		}
		go func() {
			nfd, _, err := syscall.Accept(fd)
			if err == nil {
				syscall.Close(nfd)
			}
		}()
		return nil
	}
}

// TestDialUnixReadyWaitsForListen is the regression test of the QMP race
// (issue 14): the socket file exists before QEMU listens on it, so a
// single connect can be refused. dialUnixReady retries until it listens.
func TestDialUnixReadyWaitsForListen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "qmp.sock")
	listen := boundNotListening(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("socket file should exist before listen: %v", err)
	}
	// The old wait ("the file exists, so connect") fails here.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		t.Fatal("connect to a bound, not listening socket succeeded; the test does not reproduce the race")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect before listen: %v, want ECONNREFUSED", err)
	}
	listened := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() { listened <- listen() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	c, err := dialUnixReady(ctx, path, nil)
	if err != nil {
		t.Fatalf("dialUnixReady: %v", err)
	}
	c.Close()
	if err := <-listened; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("connected after %v, before the listener existed", d)
	}
}

func TestDialUnixReadyMissingFileThenAppears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "late.sock")
	time.AfterFunc(200*time.Millisecond, func() {
		ln, err := net.Listen("unix", path)
		if err != nil {
			return
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := dialUnixReady(ctx, path, nil)
	if err != nil {
		t.Fatalf("dialUnixReady: %v", err)
	}
	c.Close()
}

func TestDialUnixReadyBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "never.sock")
	_ = boundNotListening(t, path)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := dialUnixReady(ctx, path, nil); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dialUnixReady on a socket that never listens: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about the 300 ms deadline", d)
	}
	// A server process that exits ends the wait at once.
	gone := make(chan struct{})
	close(gone)
	if _, err := dialUnixReady(t.Context(), path, gone); err == nil {
		t.Fatal("dialUnixReady after the process exited: no error")
	}
}
