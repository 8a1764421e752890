package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/racklift/racklift/provision/events"
)

// events streams stored and live events as Server-Sent Events. A client
// resumes with the Last-Event-ID header (EventSource does this itself after
// a dropped connection) or ?after=ID (?after=now: only new events), and misses nothing: racklift replays
// everything after that ID from the store, then streams live events,
// filling any gap (a slow client's dropped live events) from the store.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var after int64
	switch v := r.URL.Query().Get("after"); {
	case r.Header.Get("Last-Event-ID") != "":
		// A reconnecting EventSource sends the last ID it saw; it wins over
		// the ?after= of the URL it was first opened with.
		after, _ = strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	case v == "now": // only events from now on (status --watch)
		id, err := a.Store.LastID(ctx)
		if err != nil {
			a.fail(w, "last event id", err)
			return
		}
		after = id
	case v != "":
		after, _ = strconv.ParseInt(v, 10, 64)
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // long-lived stream
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	live := a.Store.Subscribe(ctx) // subscribe before replay so nothing falls between
	last := after
	if err := a.replay(ctx, w, &last); err != nil {
		return
	}
	_, _ = fmt.Fprintf(w, "event: synced\ndata: {\"last_id\":%d}\n\n", last)
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(a.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, "event: ping\ndata: {}\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev, ok := <-live:
			if !ok {
				return
			}
			if ev.ID <= last {
				continue
			}
			if ev.ID > last+1 { // dropped live events: fill from the store
				if err := a.replay(ctx, w, &last); err != nil {
					return
				}
				if ev.ID <= last {
					continue
				}
			}
			if writeEvent(w, ev) != nil || rc.Flush() != nil {
				return
			}
			last = ev.ID
		}
	}
}

// replay writes every stored event after *last, advancing *last.
func (a *API) replay(ctx context.Context, w http.ResponseWriter, last *int64) error {
	for range 10_000 { // bounded: 10,000 pages of up to MaxLimit events
		evs, err := a.Store.Since(ctx, *last, events.MaxLimit)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := writeEvent(w, ev); err != nil {
				return err
			}
			*last = ev.ID
		}
		if len(evs) < events.MaxLimit {
			return nil
		}
	}
	return nil
}

func writeEvent(w http.ResponseWriter, ev events.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %d\nevent: event\ndata: %s\n\n", ev.ID, b)
	return err
}
