package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver
)

// DBFile is the name of the SQLite database inside the state directory.
const DBFile = "racklift.db"

// Sentinel errors. Test them with errors.Is.
var (
	// ErrClosed is returned by every Store method called after Close.
	ErrClosed = errors.New("events: store closed")
	// ErrInvalidEvent is returned by Record for an event the store refuses
	// (no Source or Type, Percent outside -1..100, unknown Phase, At out of range).
	ErrInvalidEvent = errors.New("events: invalid event")
	// ErrSchemaTooNew is returned by Open when the database was written by a
	// newer racklift whose schema this binary does not know.
	ErrSchemaTooNew = errors.New("events: database schema newer than this binary")
	// ErrInUse is returned by Open when another process has the state
	// directory open.
	ErrInUse = errors.New("events: state directory in use")
	// ErrReadOnly is returned by every write of a Store from OpenReadOnly.
	ErrReadOnly = errors.New("events: store opened read-only")
)

// Defaults, in one place.
const (
	// defaultBusyTimeout bounds how long a connection waits for a lock held
	// by another connection (another process, or the reader pool during a
	// checkpoint) before failing with SQLITE_BUSY.
	defaultBusyTimeout = 5 * time.Second
	// defaultMaxBatch is the most events written in one group-commit
	// transaction.
	defaultMaxBatch = 256
	// defaultSubscriberBuffer is the channel buffer of each Subscribe call.
	defaultSubscriberBuffer = 256
	// readerConns is the size of the read-only connection pool. WAL lets
	// readers run beside the single writer.
	readerConns = 4
)

// Store is racklift's durable record of everything it saw: an append-only
// event log, the current state of every node derived from it, install runs
// and per-node callback tokens, in one embedded SQLite database
// (modernc.org/sqlite, pure Go, WAL mode, synchronous=FULL).
//
// Writes of events go through one writer goroutine that commits them in
// groups (see Record). Every committed event is then published, in ID
// order, to the Store's Broker (see Subscribe). Event IDs are contiguous,
// so a live reader that sees a jump fills it with Since; an SSE handler
// subscribes first, replays Since(Last-Event-ID), then streams (see Broker).
//
// A Store is safe for concurrent use. Close it when the program stops.
type Store struct {
	log    *slog.Logger
	path   string
	lock   *os.File // holds the state directory's flock; nil where unsupported
	wdb    *sql.DB  // exactly one connection; every write goes through it
	rdb    *sql.DB  // read-only pool
	broker *Broker
	now    func() time.Time

	maxBatch int
	reqs     chan *request // unbuffered: senders wait while the writer commits, then join the next batch
	quit     chan struct{} // closed by Close
	done     chan struct{} // closed when the writer goroutine has returned

	// batches and committed count group commits and their events (for
	// benchmarks and tests).
	batches, committed atomic.Int64

	closeOnce sync.Once
	closeErr  error
	// readOnly: opened by OpenReadOnly (wdb is nil, no writer runs).
	readOnly bool
}

// Open opens (creating if needed) the store in dir: it creates dir with mode
// 0700, the database file <dir>/racklift.db with mode 0600, applies pending
// schema migrations and starts the writer goroutine. A nil log discards
// log output. Node state, runs and tokens persisted by an earlier run are
// available at once; nothing is replayed in memory.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path, err := prepareFile(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("state directory is accessible by other users; it holds callback tokens",
			"dir", dir, "mode", st.Mode().Perm().String())
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	unlock := func() {
		if lock != nil {
			_ = lock.Close()
		}
	}
	wdb, rdb, err := openPools(path)
	if err != nil {
		unlock()
		return nil, err
	}
	s := &Store{
		log:      log,
		path:     path,
		lock:     lock,
		wdb:      wdb,
		rdb:      rdb,
		broker:   NewBroker(defaultSubscriberBuffer, log),
		now:      func() time.Time { return time.Now().UTC() },
		maxBatch: defaultMaxBatch,
		reqs:     make(chan *request),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if err := s.init(context.Background()); err != nil {
		_ = wdb.Close()
		_ = rdb.Close()
		unlock()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// OpenReadOnly opens the store in dir for reading only, beside the racklift
// serve that may have it open (SQLite's WAL lets readers run beside its
// writer; the state directory's lock is not taken). Every write returns
// ErrReadOnly; Subscribe gets nothing. The schema must be this binary's:
// an older one is an error telling to start racklift serve once (which
// migrates it), a newer one ErrSchemaTooNew.
func OpenReadOnly(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dir, DBFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("events: open %s read-only: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("events: open reader: %w", err)
	}
	rdb.SetMaxOpenConns(readerConns)
	rdb.SetMaxIdleConns(readerConns)
	var version int
	if err := rdb.QueryRowContext(context.Background(), `PRAGMA user_version`).Scan(&version); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("events: open %s read-only: %w", path, err)
	}
	switch n := len(migrations()); {
	case version > n:
		_ = rdb.Close()
		return nil, fmt.Errorf("events: %s has schema version %d, this binary knows %d: %w", path, version, n, ErrSchemaTooNew)
	case version < n:
		_ = rdb.Close()
		return nil, fmt.Errorf("events: %s was written by an older racklift (schema %d of %d): start racklift serve on it once to update it", path, version, n)
	}
	s := &Store{log: log, path: path, rdb: rdb, broker: NewBroker(defaultSubscriberBuffer, log),
		now: func() time.Time { return time.Now().UTC() }, quit: make(chan struct{}), done: make(chan struct{}), readOnly: true}
	close(s.done)
	return s, nil
}

// writable returns ErrClosed after Close and ErrReadOnly for a read-only
// store, nil when writes may go ahead.
func (s *Store) writable() error {
	switch {
	case s.closed():
		return ErrClosed
	case s.readOnly:
		return ErrReadOnly
	}
	return nil
}

// init checks the connection settings and migrates the schema.
func (s *Store) init(ctx context.Context) error {
	if err := checkPragmas(ctx, s.wdb); err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	from, to, err := migrate(ctx, s.wdb, migrations())
	if err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	var last int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&last); err != nil {
		return fmt.Errorf("open %s: read last event id: %w", s.path, err)
	}
	s.log.Info("event store open", "path", s.path, "schema_from", from, "schema", to, "last_event_id", last)
	return nil
}

// prepareFile creates dir (0700) and the database file (0600) and returns
// the file's path. An existing file is narrowed to 0600: it holds tokens.
func prepareFile(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("events: open: empty state directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("events: create state directory: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("events: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("events: create database file: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return "", fmt.Errorf("events: restrict database file mode: %w", err)
	}
	return path, nil
}

// dsn builds a modernc.org/sqlite DSN. The pragmas run on every new
// connection, so they hold for the whole pool.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", defaultBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// openPools opens the single-connection writer pool and the reader pool.
func openPools(path string) (wdb, rdb *sql.DB, err error) {
	wdb, err = sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, nil, fmt.Errorf("events: open writer: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	// Open the writer connection first so it sets WAL mode before any
	// reader connects.
	if err := wdb.PingContext(context.Background()); err != nil {
		_ = wdb.Close()
		return nil, nil, fmt.Errorf("events: open writer %s: %w", path, err)
	}
	rdb, err = sql.Open("sqlite", dsn(path, true))
	if err != nil {
		_ = wdb.Close()
		return nil, nil, fmt.Errorf("events: open reader: %w", err)
	}
	rdb.SetMaxOpenConns(readerConns)
	rdb.SetMaxIdleConns(readerConns)
	return wdb, rdb, nil
}

// checkPragmas verifies that the settings durability depends on are in force.
func checkPragmas(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var syncMode int
	if err := db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&syncMode); err != nil {
		return fmt.Errorf("read synchronous: %w", err)
	}
	if syncMode != 2 { // 2 = FULL
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", syncMode)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Subscribe returns a channel of every event committed from now on; see
// Broker.Subscribe for buffering, drop-oldest and gap filling with Since.
// The channel is closed when ctx is done or the Store is closed.
func (s *Store) Subscribe(ctx context.Context) <-chan Event {
	return s.broker.Subscribe(ctx)
}

// Close stops accepting events, commits those already handed to the writer,
// closes every subscriber channel and closes the database. Close is safe to
// call more than once; later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.done
		s.broker.Close()
		if s.wdb != nil {
			s.closeErr = s.wdb.Close()
		}
		s.closeErr = errors.Join(s.closeErr, s.rdb.Close())
		if s.lock != nil {
			_ = s.lock.Close() // after the database: the next owner finds it closed
		}
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("events: close: %w", s.closeErr)
		}
		s.log.Info("event store closed", "path", s.path)
	})
	return s.closeErr
}

// closed reports whether Close has been called.
func (s *Store) closed() bool {
	select {
	case <-s.quit:
		return true
	default:
		return false
	}
}
