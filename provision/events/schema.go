package events

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations returns the schema steps in order. Step i (0-based) takes the
// database from PRAGMA user_version i to i+1; each runs in its own
// transaction together with the user_version bump. Never edit a step that
// has shipped: append a new one.
//
// Times are INTEGER Unix nanoseconds, UTC. JSON columns are TEXT checked
// with json_valid.
func migrations() []string {
	return []string{
		// 1: initial schema.
		`
CREATE TABLE events (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	node    TEXT    NOT NULL DEFAULT '',
	mac     TEXT    NOT NULL DEFAULT '',
	source  TEXT    NOT NULL,
	type    TEXT    NOT NULL,
	phase   TEXT    NOT NULL DEFAULT '',
	percent INTEGER NOT NULL DEFAULT -1 CHECK (percent BETWEEN -1 AND 100),
	detail  TEXT    NOT NULL DEFAULT '',
	attrs   TEXT    CHECK (attrs IS NULL OR json_valid(attrs))
);
CREATE INDEX events_node_id ON events (node, id) WHERE node <> '';
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
	BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
	BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

CREATE TABLE nodes (
	name          TEXT    PRIMARY KEY,
	phase         TEXT    NOT NULL DEFAULT '',
	percent       INTEGER NOT NULL DEFAULT -1,
	phase_since   INTEGER NOT NULL DEFAULT 0,
	last_event_id INTEGER NOT NULL REFERENCES events (id),
	last_detail   TEXT    NOT NULL DEFAULT '',
	failed_reason TEXT    NOT NULL DEFAULT '',
	attempts      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE phase_times (
	id      INTEGER PRIMARY KEY,
	node    TEXT    NOT NULL REFERENCES nodes (name),
	phase   TEXT    NOT NULL,
	started INTEGER NOT NULL,
	ended   INTEGER CHECK (ended IS NULL OR ended >= started)
);
CREATE INDEX phase_times_node ON phase_times (node, ended);

CREATE TABLE runs (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	started  INTEGER NOT NULL,
	ended    INTEGER,
	state    TEXT    NOT NULL CHECK (state IN ('active', 'succeeded', 'failed', 'cancelled')),
	selector TEXT    NOT NULL CHECK (json_valid(selector)),
	params   TEXT    NOT NULL CHECK (json_valid(params)),
	CHECK ((state = 'active') = (ended IS NULL))
);
CREATE UNIQUE INDEX runs_one_active ON runs (state) WHERE state = 'active';

CREATE TABLE tokens (
	node       TEXT    PRIMARY KEY,
	token      TEXT    NOT NULL,
	token_hash BLOB    NOT NULL UNIQUE,
	created    INTEGER NOT NULL
) WITHOUT ROWID;
`,
		// 2: DHCP events of machines not in the plan, by time (Unplanned).
		`CREATE INDEX events_unplanned ON events (at) WHERE node = '' AND source = 'dhcp' AND mac <> '';`,
		// 3: what each node last reported about itself (verification facts).
		`
CREATE TABLE facts (
	node  TEXT    PRIMARY KEY,
	at    INTEGER NOT NULL,
	facts TEXT    NOT NULL CHECK (json_valid(facts))
) WITHOUT ROWID;
`,
	}
}

// migrate brings the schema up to date and returns the versions before and
// after.
func migrate(ctx context.Context, db *sql.DB, steps []string) (from, to int, err error) {
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	if from > len(steps) {
		return from, from, fmt.Errorf("schema version %d, this binary knows %d: %w", from, len(steps), ErrSchemaTooNew)
	}
	for v := from; v < len(steps); v++ {
		if err := applyStep(ctx, db, v+1, steps[v]); err != nil {
			return from, v, err
		}
	}
	return from, len(steps), nil
}

// applyStep runs one migration and sets user_version to version, atomically.
func applyStep(ctx context.Context, db *sql.DB, version int, step string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate to %d: begin: %w", version, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, step); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	// PRAGMA takes no bound parameters; version is an int we own.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		return fmt.Errorf("migrate to %d: set user_version: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate to %d: commit: %w", version, err)
	}
	return nil
}
