package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
)

// Limits on how many events one read returns.
const (
	// DefaultLimit is used when a read is given limit <= 0.
	DefaultLimit = 500
	// MaxLimit caps every read's limit.
	MaxLimit = 10000
)

// eventColumns are the events columns, in eventScan.dest order.
const eventColumns = `id, at, node, mac, source, type, phase, percent, detail, attrs`

// prefixedEventColumns is eventColumns for the events table aliased "e".
const prefixedEventColumns = `e.id, e.at, e.node, e.mac, e.source, e.type, e.phase, e.percent, e.detail, e.attrs`

// eventScan receives one events row.
type eventScan struct {
	id, at                                int64
	node, mac, source, typ, phase, detail string
	percent                               int
	attrs                                 sql.NullString
}

// dest returns Scan destinations in eventColumns order.
func (e *eventScan) dest() []any {
	return []any{&e.id, &e.at, &e.node, &e.mac, &e.source, &e.typ, &e.phase, &e.percent, &e.detail, &e.attrs}
}

// event converts the scanned row.
func (e *eventScan) event() (Event, error) {
	ev := Event{
		ID:      e.id,
		At:      fromNanos(e.at),
		Node:    e.node,
		MAC:     e.mac,
		Source:  Source(e.source),
		Type:    e.typ,
		Phase:   Phase(e.phase),
		Percent: e.percent,
		Detail:  e.detail,
	}
	if e.attrs.Valid {
		if err := json.Unmarshal([]byte(e.attrs.String), &ev.Attrs); err != nil {
			return Event{}, fmt.Errorf("event %d: decode attrs: %w", e.id, err)
		}
	}
	return ev, nil
}

// clampLimit applies DefaultLimit and MaxLimit.
func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	default:
		return limit
	}
}

// Since returns up to limit events with ID > afterID in ID order (limit <= 0
// means DefaultLimit; at most MaxLimit). Page with the last returned ID; an
// empty result means the caller is up to date. Since(0, n) starts at the
// first event.
//
// IDs are contiguous, so a live subscriber that sees an ID jump has missed
// events and fills the gap with Since(lastSeenID, ...).
func (s *Store) Since(ctx context.Context, afterID int64, limit int) ([]Event, error) {
	evs, err := s.queryEvents(ctx, `SELECT `+eventColumns+` FROM events WHERE id > ? ORDER BY id LIMIT ?`,
		afterID, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("events since %d: %w", afterID, err)
	}
	return evs, nil
}

// NodeEvents returns the node's latest limit events (limit <= 0 means
// DefaultLimit; at most MaxLimit), oldest first.
func (s *Store) NodeEvents(ctx context.Context, node string, limit int) ([]Event, error) {
	evs, err := s.queryEvents(ctx, `SELECT * FROM (SELECT `+eventColumns+
		` FROM events WHERE node = ? AND node <> '' ORDER BY id DESC LIMIT ?) ORDER BY id`,
		node, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("events of node %q: %w", node, err)
	}
	return evs, nil
}

// LastID returns the ID of the newest stored event, 0 if there is none.
func (s *Store) LastID(ctx context.Context) (int64, error) {
	if s.closed() {
		return 0, ErrClosed
	}
	var id int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last event id: %w", err)
	}
	return id, nil
}

// queryEvents runs a query returning eventColumns.
func (s *Store) queryEvents(ctx context.Context, query string, args ...any) ([]Event, error) {
	if s.closed() {
		return nil, ErrClosed
	}
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var evs []Event
	for rows.Next() {
		var sc eventScan
		if err := rows.Scan(sc.dest()...); err != nil {
			return nil, err
		}
		ev, err := sc.event()
		if err != nil {
			return nil, err
		}
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}
