package events

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestUnplanned(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	rec := func(at time.Time, node, mac string, src Source, typ string, attrs map[string]string) {
		t.Helper()
		if _, err := s.Record(ctx, Event{At: at, Node: node, MAC: mac, Source: src, Type: typ, Percent: -1, Attrs: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	pxe := map[string]string{"firmware": "efi-x64", "arch": "7", "reason": "MAC not in plan"}
	plain := map[string]string{"reason": "MAC not in plan"}
	// A PXE machine not in the plan, three times.
	rec(base, "", "52:54:00:00:00:99", SourceDHCP, "dhcp.ignore", pxe)
	rec(base.Add(time.Minute), "", "52:54:00:00:00:99", SourceDHCP, "dhcp.ignore", pxe)
	rec(base.Add(2*time.Minute), "", "52:54:00:00:00:99", SourceDHCP, "dhcp.ignore",
		map[string]string{"firmware": "bios", "arch": "0", "reason": "MAC not in plan"})
	// Another, later, once.
	rec(base.Add(3*time.Minute), "", "aa:bb:cc:00:00:01", SourceDHCP, "dhcp.ignore", pxe)
	// A laptop on the customer LAN: no firmware, not listed.
	rec(base.Add(time.Minute), "", "aa:bb:cc:dd:ee:ff", SourceDHCP, "dhcp.ignore", plain)
	// A plan node and a TFTP event without node: not listed.
	rec(base.Add(time.Minute), "n-01", "52:54:00:00:00:01", SourceDHCP, "dhcp.offer", pxe)
	rec(base.Add(time.Minute), "", "52:54:00:00:00:77", SourceTFTP, "tftp.done", pxe)
	// Seen only before the window.
	rec(base.Add(-2*time.Hour), "", "52:54:00:00:00:55", SourceDHCP, "dhcp.ignore", pxe)

	got, err := s.Unplanned(ctx, base.Add(-time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d sightings, want 2: %+v", len(got), got)
	}
	a, b := got[0], got[1]
	if a.MAC != "aa:bb:cc:00:00:01" || a.Count != 1 || !a.Last.Equal(base.Add(3*time.Minute)) {
		t.Errorf("first (most recent) = %+v", a)
	}
	if b.MAC != "52:54:00:00:00:99" || b.Count != 3 || !b.First.Equal(base) || !b.Last.Equal(base.Add(2*time.Minute)) {
		t.Errorf("second = %+v", b)
	}
	if b.Latest.Attrs["firmware"] != "bios" || b.Latest.Type != "dhcp.ignore" {
		t.Errorf("latest event of %s = %+v, want the bios one", b.MAC, b.Latest)
	}
	if got, err := s.Unplanned(ctx, base.Add(-time.Hour), 1); err != nil || len(got) != 1 || got[0].MAC != "aa:bb:cc:00:00:01" {
		t.Errorf("limit 1: %+v, %v", got, err)
	}
	if got, err := s.Unplanned(ctx, base.Add(time.Hour), 0); err != nil || len(got) != 0 {
		t.Errorf("nothing since a later time: %+v, %v", got, err)
	}
}

// The query must use the partial index, not scan every event.
func TestUnplannedUsesIndex(t *testing.T) {
	s := newStore(t)
	rows, err := s.rdb.Query(`EXPLAIN QUERY PLAN `+unplannedQuery, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	plan := ""
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "\n"
	}
	if !strings.Contains(plan, "events_unplanned") {
		t.Errorf("query plan does not use events_unplanned:\n%s", plan)
	}
}
