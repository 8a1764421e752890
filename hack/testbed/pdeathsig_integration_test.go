//go:build integration

package testbed

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestChildSurvivesDo is the regression test of the demo's dying racklift
// serve (issue 14): children get Pdeathsig, which the kernel sends when
// the *thread* that forked them exits, and Go/Do used to end their locked
// thread. A Do from the goroutine that started a child runs on that same
// thread (the new goroutine takes the thread the caller blocks on), so
// the child was SIGKILLed. Go/Do now return their thread to the host
// namespace and to the scheduler instead of ending it.
func TestChildSurvivesDo(t *testing.T) {
	// Ordinary threads are in the host's namespace (/proc/self/ns/net is
	// the main thread's, which a Do may have used).
	host, err := threadNetnsInode()
	if err != nil {
		t.Fatal(err)
	}
	ns := NewNetns(t, "pdeath", "10.99.7.1/24")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := ns.Run(ctx, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for i := range 50 {
		if err := ns.Do(func() error { return nil }); err != nil {
			t.Fatalf("Do %d: %v", i, err)
		}
	}
	select {
	case err := <-exited:
		t.Fatalf("the child died while the test called Do: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := syscall.Kill(cmd.Process.Pid, 0); err != nil {
		t.Fatalf("the child is gone: %v", err)
	}
	// Every Do also left its thread in the host namespace.
	for i := range 20 {
		got := make(chan uint64, 1)
		go func() { ino, _ := threadNetnsInode(); got <- ino }()
		if ino := <-got; ino != host {
			t.Fatalf("goroutine %d runs on a thread in netns inode %d, host is %d", i, ino, host)
		}
	}
}
