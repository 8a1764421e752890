package events

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Sighting is a machine not in the plan that asked for a network boot: a
// DHCP request with PXE or a client architecture from a MAC no plan node
// has. It is how a mistyped MAC in the plan shows itself.
type Sighting struct {
	// MAC is the client's hardware address.
	MAC string `json:"mac"`
	// First and Last are its first and latest recorded requests.
	First time.Time `json:"first_seen"`
	Last  time.Time `json:"last_seen"`
	// Count is how many requests were recorded. The DHCP server
	// rate-limits ignore events per MAC (one per 30 s by default), so it
	// measures how long the machine has been trying rather than packets.
	Count int `json:"count"`
	// Latest is the latest recorded event (its Attrs hold firmware, arch,
	// user class, relay).
	Latest Event `json:"latest"`
}

// unplannedQuery groups the DHCP events of MACs not in the plan that
// named a firmware; its WHERE implies index events_unplanned's.
const unplannedQuery = `SELECT mac, MIN(at), MAX(at), COUNT(*), MAX(id) FROM events
	WHERE node = '' AND source = 'dhcp' AND mac <> '' AND at >= ?
	  AND json_extract(attrs, '$.firmware') IS NOT NULL
	GROUP BY mac ORDER BY MAX(at) DESC, mac LIMIT ?`

// Unplanned returns the machines not in the plan that asked for a network
// boot since the given time, most recent first, at most limit (<= 0 means
// DefaultLimit; at most MaxLimit). Plain DHCP clients (laptops, phones on
// a customer LAN) are left out: only requests that named a firmware (PXE
// or a client architecture) count.
func (s *Store) Unplanned(ctx context.Context, since time.Time, limit int) ([]Sighting, error) {
	if s.closed() {
		return nil, ErrClosed
	}
	rows, err := s.rdb.QueryContext(ctx, unplannedQuery, toNanos(since), clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("unplanned machines: %w", err)
	}
	var (
		out  []Sighting
		ids  []any
		byID = map[int64]int{}
	)
	for rows.Next() {
		var (
			sg          Sighting
			first, last int64
			id          int64
		)
		if err := rows.Scan(&sg.MAC, &first, &last, &sg.Count, &id); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("unplanned machines: %w", err)
		}
		sg.First, sg.Last = fromNanos(first), fromNanos(last)
		byID[id] = len(out)
		ids = append(ids, id)
		out = append(out, sg)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("unplanned machines: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unplanned machines: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	evs, err := s.queryEvents(ctx, `SELECT `+eventColumns+` FROM events WHERE id IN (?`+
		strings.Repeat(",?", len(ids)-1)+`)`, ids...)
	if err != nil {
		return nil, fmt.Errorf("unplanned machines: latest events: %w", err)
	}
	for _, ev := range evs {
		out[byID[ev.ID]].Latest = ev
	}
	return out, nil
}
