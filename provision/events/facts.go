package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// MaxFacts bounds the JSON facts kept for one node.
const MaxFacts = 1 << 20

// SaveFacts durably keeps what node last reported about itself (the JSON of
// a nodeapi.Facts; the store does not look inside), replacing what it
// reported before. Save them before recording the event that announces
// them, so whoever reacts to that event finds them.
func (s *Store) SaveFacts(ctx context.Context, node string, facts []byte) error {
	if err := s.writable(); err != nil {
		return err
	}
	switch {
	case node == "":
		return fmt.Errorf("save facts: empty node name: %w", ErrInvalidEvent)
	case len(facts) > MaxFacts:
		return fmt.Errorf("save facts of %s: %d bytes, more than %d: %w", node, len(facts), MaxFacts, ErrInvalidEvent)
	case !json.Valid(facts):
		return fmt.Errorf("save facts of %s: not JSON: %w", node, ErrInvalidEvent)
	}
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO facts (node, at, facts) VALUES (?, ?, ?)
		ON CONFLICT (node) DO UPDATE SET at = excluded.at, facts = excluded.facts`, node, toNanos(s.now()), string(facts))
	if err != nil {
		return fmt.Errorf("save facts of %s: %w", node, err)
	}
	return nil
}

// Facts returns what node last reported about itself and when; ok is false
// when it never did.
func (s *Store) Facts(ctx context.Context, node string) (facts []byte, at time.Time, ok bool, err error) {
	if s.closed() {
		return nil, time.Time{}, false, ErrClosed
	}
	var (
		body string
		ns   int64
	)
	err = s.rdb.QueryRowContext(ctx, `SELECT facts, at FROM facts WHERE node = ?`, node).Scan(&body, &ns)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, time.Time{}, false, nil
	case err != nil:
		return nil, time.Time{}, false, fmt.Errorf("facts of %s: %w", node, err)
	}
	return []byte(body), fromNanos(ns), true, nil
}
