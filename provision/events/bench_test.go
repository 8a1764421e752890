package events

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// benchEvent is a typical DHCP event.
func benchEvent(i int64) Event {
	return Event{
		Node:    fmt.Sprintf("cs-compute-%04d", i%512),
		MAC:     "52:54:00:12:34:56",
		Source:  SourceDHCP,
		Type:    "dhcp.offer",
		Phase:   PhaseDHCP,
		Percent: -1,
		Detail:  "offer 10.0.0.5",
		Attrs:   map[string]string{"ip": "10.0.0.5", "xid": "0x1234abcd"},
	}
}

// BenchmarkRecordSerial records from one goroutine: one fsync per event.
func BenchmarkRecordSerial(b *testing.B) {
	s := newStore(b)
	var i int64
	for b.Loop() {
		i++
		if _, err := s.Record(b.Context(), benchEvent(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRecordParallel records from many goroutines (a DHCP storm):
// group commit shares each fsync among the waiting callers.
func BenchmarkRecordParallel(b *testing.B) {
	for _, par := range []int{16, 128} {
		b.Run(fmt.Sprintf("goroutines=%dxGOMAXPROCS", par), func(b *testing.B) {
			s := newStore(b)
			var n atomic.Int64
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Record(b.Context(), benchEvent(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(s.committed.Load())/float64(max(s.batches.Load(), 1)), "events/batch")
		})
	}
}
