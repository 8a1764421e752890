package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/racklift/racklift/provision/events"
)

type slowRec struct {
	mu   sync.Mutex
	got  []string
	gate chan struct{}
}

func (s *slowRec) Record(_ context.Context, ev events.Event) (events.Event, error) {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, ev.Type)
	return ev, nil
}

func TestAsyncRecorderOrderFlushAndDrop(t *testing.T) {
	sr := &slowRec{gate: make(chan struct{})}
	a := newAsyncRecorder(sr, slog.New(slog.DiscardHandler), 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	start := time.Now()
	for _, ty := range []string{"a", "b", "c", "d", "e", "f"} {
		if ev, err := a.Record(ctx, events.Event{Type: ty}); err != nil || ev.At.IsZero() {
			t.Fatal("Record must return at once with the time stamped", err)
		}
	}
	if time.Since(start) > time.Second {
		t.Fatal("Record blocked on a slow store")
	}
	close(sr.gate) // the store catches up
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	// One event was taken by Run before the gate opened, three queued, the
	// rest dropped; whatever was kept is in order and was flushed on stop.
	if len(sr.got) < 3 || a.dropped.Load() == 0 || int(a.dropped.Load())+len(sr.got) != 6 {
		t.Fatalf("stored %v, dropped %d", sr.got, a.dropped.Load())
	}
	for i := 1; i < len(sr.got); i++ {
		if sr.got[i] <= sr.got[i-1] {
			t.Fatalf("out of order: %v", sr.got)
		}
	}
}
