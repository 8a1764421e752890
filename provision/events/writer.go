package events

import (
	"context"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"
)

// maxDetailBytes bounds Event.Detail; longer details are cut at a rune
// boundary (Detail is one line for humans, not a log dump).
const maxDetailBytes = 2048

// maxDrainBatches bounds how many batches Close still commits for callers
// that were already waiting when it was called.
const maxDrainBatches = 64

// request is one Record call waiting for the writer.
type request struct {
	ctx  context.Context
	ev   Event
	done chan result // buffered (1): the writer never blocks on an ack
}

// result is the writer's answer to one request.
type result struct {
	ev  Event
	err error
}

// Record stores ev and returns it with ID (and At, if it was zero) filled.
// It returns only after the transaction holding ev is committed with
// synchronous=FULL, i.e. fsynced: an acknowledged event survives a crash or
// power loss. It implements Recorder.
//
// Group commit: all Record calls go to one writer goroutine, which takes
// every request already waiting (up to 256) and writes them in one
// transaction, so concurrent callers share one fsync. An event with a Phase
// also moves its node to that phase (see NodeState) in the same
// transaction; an event with PhaseNone only updates the node's last event.
//
// If ctx is done before the write, Record returns ctx's error and the event
// is not stored. If ctx is done while the commit is under way, Record
// returns ctx's error although the event may still be stored (it is then
// also published). Record returns ErrInvalidEvent for a malformed event and
// ErrClosed after Close.
func (s *Store) Record(ctx context.Context, ev Event) (Event, error) {
	if err := s.writable(); err != nil {
		return Event{}, err
	}
	ev, err := s.normalize(ev)
	if err != nil {
		return Event{}, err
	}
	r := &request{ctx: ctx, ev: ev, done: make(chan result, 1)}
	select {
	case s.reqs <- r:
	case <-s.quit:
		return Event{}, ErrClosed
	case <-ctx.Done():
		return Event{}, fmt.Errorf("record event: %w", context.Cause(ctx))
	}
	select {
	case res := <-r.done:
		return res.ev, res.err
	case <-ctx.Done():
		return Event{}, fmt.Errorf("record event: %w", context.Cause(ctx))
	}
}

// normalize validates ev and returns the copy that will be stored: ID
// cleared, At in UTC (now if zero), Detail bounded, Attrs detached from the
// caller's map.
func (s *Store) normalize(ev Event) (Event, error) {
	ev.ID = 0
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	ev.At = ev.At.UTC() // also drops the monotonic reading
	if err := validate(ev); err != nil {
		return Event{}, err
	}
	ev.Detail = truncate(ev.Detail, maxDetailBytes)
	if len(ev.Attrs) == 0 {
		ev.Attrs = nil
	} else {
		ev.Attrs = maps.Clone(ev.Attrs)
	}
	return ev, nil
}

// validate reports why the store refuses ev, wrapping ErrInvalidEvent.
func validate(ev Event) error {
	switch {
	case ev.Source == "":
		return fmt.Errorf("%w: empty source", ErrInvalidEvent)
	case ev.Type == "":
		return fmt.Errorf("%w: empty type", ErrInvalidEvent)
	case ev.Percent < -1 || ev.Percent > 100:
		return fmt.Errorf("%w: percent %d not in -1..100", ErrInvalidEvent, ev.Percent)
	case !knownPhase(ev.Phase):
		return fmt.Errorf("%w: unknown phase %q", ErrInvalidEvent, ev.Phase)
	case ev.At.Year() < 1970 || ev.At.Year() > 2200:
		return fmt.Errorf("%w: time %s out of range", ErrInvalidEvent, ev.At.Format(time.RFC3339))
	}
	return nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// writer is the single goroutine that writes events. It returns after Close.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*request, 0, s.maxBatch)
	for {
		select {
		case r := <-s.reqs:
			batch = s.collect(append(batch[:0], r))
			s.commit(batch)
		case <-s.quit:
			s.drain(batch[:0])
			return
		}
	}
}

// collect appends to batch every request already waiting, up to maxBatch.
func (s *Store) collect(batch []*request) []*request {
	for len(batch) < s.maxBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// drain commits requests of callers that were waiting when Close was called.
func (s *Store) drain(batch []*request) {
	for range maxDrainBatches {
		batch = s.collect(batch[:0])
		if len(batch) == 0 {
			return
		}
		s.commit(batch)
	}
}

// commit writes a batch, then publishes and acknowledges its events. If the
// batch transaction fails, each event is retried alone so one bad event
// cannot fail its neighbours.
func (s *Store) commit(batch []*request) {
	live := make([]*request, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: fmt.Errorf("record event: %w", context.Cause(r.ctx))}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	evs, err := s.writeBatch(live)
	if err == nil {
		s.batches.Add(1)
		s.committed.Add(int64(len(evs)))
		s.ack(live, evs)
		return
	}
	s.log.Error("commit event batch", "events", len(live), "err", err)
	if len(live) == 1 {
		live[0].done <- result{err: fmt.Errorf("record event: %w", err)}
		return
	}
	for _, r := range live {
		s.commit([]*request{r})
	}
}

// ack publishes committed events in ID order and answers their callers.
func (s *Store) ack(reqs []*request, evs []Event) {
	for i, r := range reqs {
		s.broker.Publish(evs[i])
		r.done <- result{ev: evs[i]}
	}
}
