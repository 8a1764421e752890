package events

import (
	"context"
	"reflect"
	"testing"
)

func TestBrokerDropsOldest(t *testing.T) {
	b := NewBroker(4, nil)
	defer b.Close()
	ch := b.Subscribe(t.Context())
	for id := int64(1); id <= 10; id++ {
		b.Publish(Event{ID: id}) // nobody reads: must not block
	}
	var got []int64
	for range 4 {
		got = append(got, (<-ch).ID)
	}
	if want := []int64{7, 8, 9, 10}; !reflect.DeepEqual(got, want) {
		t.Errorf("slow subscriber got %v, want the newest %v", got, want)
	}
	select {
	case ev := <-ch:
		t.Errorf("unexpected extra event %d", ev.ID)
	default:
	}
}

func TestBrokerNeverBlocksPublisher(t *testing.T) {
	b := NewBroker(2, nil)
	defer b.Close()
	stuck := b.Subscribe(t.Context()) // never read
	fast := b.Subscribe(t.Context())
	for id := int64(1); id <= 10000; id++ {
		b.Publish(Event{ID: id})
		if ev := <-fast; ev.ID != id {
			t.Fatalf("fast subscriber got %d, want %d", ev.ID, id)
		}
	}
	if len(stuck) != 2 {
		t.Errorf("stuck subscriber buffers %d events, want 2", len(stuck))
	}
}

func TestBrokerClosesOnContextDone(t *testing.T) {
	b := NewBroker(8, nil)
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	ch := b.Subscribe(ctx)
	keep := b.Subscribe(t.Context())
	b.Publish(Event{ID: 1})
	cancel()
	// Buffered events are still delivered, then the channel closes.
	if ev, ok := <-ch; !ok || ev.ID != 1 {
		t.Errorf("got %+v, %v; want event 1", ev, ok)
	}
	if _, ok := <-ch; ok {
		t.Error("channel still open after cancel")
	}
	b.Publish(Event{ID: 2}) // must not panic on the closed subscriber
	if ev := <-keep; ev.ID != 1 {
		t.Errorf("other subscriber got %d, want 1", ev.ID)
	}
	if ev := <-keep; ev.ID != 2 {
		t.Errorf("other subscriber got %d, want 2", ev.ID)
	}
}

func TestBrokerClose(t *testing.T) {
	b := NewBroker(0, nil) // clamped to 1
	ch := b.Subscribe(t.Context())
	b.Close()
	if _, ok := <-ch; ok {
		t.Error("channel open after Close")
	}
	if _, ok := <-b.Subscribe(t.Context()); ok {
		t.Error("Subscribe after Close returned an open channel")
	}
	b.Publish(Event{ID: 1})
	b.Close() // idempotent
}

func TestBrokerAlreadyCancelled(t *testing.T) {
	b := NewBroker(1, nil)
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, ok := <-b.Subscribe(ctx); ok {
		t.Error("Subscribe with a done ctx returned an open channel")
	}
}

func TestBrokerCopiesAttrs(t *testing.T) {
	b := NewBroker(1, nil)
	defer b.Close()
	c1, c2 := b.Subscribe(t.Context()), b.Subscribe(t.Context())
	b.Publish(Event{ID: 1, Attrs: map[string]string{"k": "v"}})
	e1, e2 := <-c1, <-c2
	e1.Attrs["k"] = "mutated"
	if e2.Attrs["k"] != "v" {
		t.Error("subscribers share one Attrs map")
	}
}
