package events

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// AsyncRecorder lets the DHCP server reply before its event is stored. A
// DHCP reply does not acknowledge anything to anyone, and the lease comes
// from the plan, so a crash between reply and store loses only that one
// event line, never state. Waiting for the store's fsync before each
// offer/ack halved the DORA rate in the benchmarks (hack/bench/RESULTS.md).
// Events are stored in order by one goroutine; when the bounded queue is
// full (a DHCP storm against a slow disk), events are dropped and counted,
// never the replies.
type AsyncRecorder struct {
	rec     Recorder
	log     *slog.Logger
	queue   chan Event
	dropped atomic.Int64
}

// NewAsyncRecorder queues up to size events for rec; run it with Run. A nil
// log discards its messages.
func NewAsyncRecorder(rec Recorder, log *slog.Logger, size int) *AsyncRecorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AsyncRecorder{rec: rec, log: log, queue: make(chan Event, size)}
}

// Dropped is how many events were dropped because the queue was full.
func (a *AsyncRecorder) Dropped() int64 { return a.dropped.Load() }

// Record queues ev and returns at once.
func (a *AsyncRecorder) Record(_ context.Context, ev Event) (Event, error) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC() // when it was seen, not when it was stored
	}
	select {
	case a.queue <- ev:
	default:
		if a.dropped.Add(1)%1000 == 1 {
			a.log.Warn("event queue full: DHCP events dropped (replies are not affected)", "dropped", a.dropped.Load())
		}
	}
	return ev, nil
}

// Run stores queued events until ctx is done, then stores what is left
// (bounded by a few seconds).
func (a *AsyncRecorder) Run(ctx context.Context) error {
	store := func(ctx context.Context, ev Event) {
		if _, err := a.rec.Record(ctx, ev); err != nil && ctx.Err() == nil {
			a.log.Error("store DHCP event", "type", ev.Type, "err", err)
		}
	}
	for {
		select {
		case ev := <-a.queue:
			store(ctx, ev)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			for {
				select {
				case ev := <-a.queue:
					store(fctx, ev)
				default:
					return nil
				}
			}
		}
	}
}
