package events

import (
	"context"
	"log/slog"
	"maps"
	"sync"
)

// Broker fans events out to live subscribers (the web UI's SSE streams, the
// orchestrator). Publish never blocks: each subscriber has a bounded
// buffer, and when a slow subscriber's buffer is full the OLDEST buffered
// event is dropped to make room for the new one.
//
// Gap filling: the Store publishes events in ID order after they are
// committed, and IDs are contiguous. A subscriber that receives an ID
// greater than lastSeen+1 has lost events to drop-oldest and fetches them
// with Store.Since(lastSeen, ...). An SSE handler therefore:
//
//  1. subscribes first,
//  2. replays Since(Last-Event-ID) page by page,
//  3. then streams the channel, skipping IDs it already sent and calling
//     Since again whenever it sees a gap.
//
// Subscribing before the replay guarantees nothing falls between the two.
type Broker struct {
	log    *slog.Logger
	buffer int

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

// subscriber is one Subscribe call.
type subscriber struct {
	ch      chan Event
	dropped int
	stop    func() bool // unregisters the ctx callback
}

// NewBroker returns a Broker whose subscribers each buffer up to buffer
// events (at least 1). A nil log discards log output.
func NewBroker(buffer int, log *slog.Logger) *Broker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Broker{log: log, buffer: max(buffer, 1), subs: map[*subscriber]struct{}{}}
}

// Subscribe returns a channel receiving every event published from now on,
// in publish order, minus those dropped because the receiver fell behind
// (see Broker). The channel is closed when ctx is done or the Broker is
// closed; a Subscribe after Close returns a closed channel. Receivers must
// treat events as read-only.
func (b *Broker) Subscribe(ctx context.Context) <-chan Event {
	s := &subscriber{ch: make(chan Event, b.buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s.ch
	}
	b.subs[s] = struct{}{}
	// The callback takes b.mu, so it cannot run before this returns.
	s.stop = context.AfterFunc(ctx, func() { b.remove(s) })
	return s.ch
}

// remove unsubscribes s and closes its channel, once.
func (b *Broker) remove(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	close(s.ch)
	if s.dropped > 0 {
		b.log.Info("subscriber gone", "dropped_events", s.dropped)
	}
}

// Publish hands ev to every subscriber without blocking.
func (b *Broker) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		b.deliver(s, ev)
	}
}

// deliver puts ev in s's buffer, dropping the oldest buffered event if the
// buffer is full. b.mu is held, so Publish is the only sender.
func (b *Broker) deliver(s *subscriber, ev Event) {
	if ev.Attrs != nil {
		ev.Attrs = maps.Clone(ev.Attrs) // each receiver gets its own map
	}
	select {
	case s.ch <- ev:
		return
	default:
	}
	select {
	case <-s.ch:
		s.dropped++
		if s.dropped == 1 {
			b.log.Warn("slow event subscriber: dropping oldest events", "buffer", b.buffer)
		}
	default: // the receiver just made room
	}
	select {
	case s.ch <- ev:
	default: // unreachable: we are the only sender and made room
		s.dropped++
	}
}

// Close closes every subscriber channel; later Subscribe calls get a closed
// channel and Publish does nothing.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.stop()
		delete(b.subs, s)
		close(s.ch)
	}
}
