package events

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

type slowRec struct {
	mu   sync.Mutex
	got  []string
	gate chan struct{}
}

func (s *slowRec) Record(_ context.Context, ev Event) (Event, error) {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, ev.Type)
	return ev, nil
}

func TestAsyncRecorderOrderFlushAndDrop(t *testing.T) {
	sr := &slowRec{gate: make(chan struct{})}
	a := NewAsyncRecorder(sr, slog.New(slog.DiscardHandler), 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	start := time.Now()
	for _, ty := range []string{"a", "b", "c", "d", "e", "f"} {
		if ev, err := a.Record(ctx, Event{Type: ty}); err != nil || ev.At.IsZero() {
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
	if len(sr.got) < 3 || a.Dropped() == 0 || int(a.Dropped())+len(sr.got) != 6 {
		t.Fatalf("stored %v, dropped %d", sr.got, a.Dropped())
	}
	for i := 1; i < len(sr.got); i++ {
		if sr.got[i] <= sr.got[i-1] {
			t.Fatalf("out of order: %v", sr.got)
		}
	}
}
