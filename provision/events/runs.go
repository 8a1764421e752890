package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Run errors.
var (
	// ErrRunActive is returned by StartRun while another run is active.
	ErrRunActive = errors.New("events: a run is already active")
	// ErrNoRun is returned by EndRun for an unknown or already ended run.
	ErrNoRun = errors.New("events: no such active run")
)

// RunState is where a run stands.
type RunState string

// Run states. RunActive is the only non-final one.
const (
	RunActive    RunState = "active"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
	RunCancelled RunState = "cancelled"
)

// Run is one install run: the operator asked racklift to provision the
// nodes matched by Selector with Params. At most one run is active.
type Run struct {
	// ID is assigned by the store, increasing.
	ID int64 `json:"id"`
	// Started is when StartRun was called (UTC).
	Started time.Time `json:"started"`
	// Ended is when EndRun was called; zero while active.
	Ended time.Time `json:"ended"`
	// State is RunActive until EndRun.
	State RunState `json:"state"`
	// Selector is the JSON of the selector given to StartRun.
	Selector json.RawMessage `json:"selector"`
	// Params is the JSON of the params given to StartRun.
	Params json.RawMessage `json:"params"`
}

// runColumns are the runs columns in scanRun order.
const runColumns = `id, started, ended, state, selector, params`

// StartRun durably records a new active run. selector and params are
// stored as JSON (so they must marshal, and must not hold secrets). It
// returns ErrRunActive if a run is already active.
func (s *Store) StartRun(ctx context.Context, selector, params any) (Run, error) {
	if err := s.writable(); err != nil {
		return Run{}, err
	}
	sel, err := json.Marshal(selector)
	if err != nil {
		return Run{}, fmt.Errorf("start run: encode selector: %w", err)
	}
	par, err := json.Marshal(params)
	if err != nil {
		return Run{}, fmt.Errorf("start run: encode params: %w", err)
	}
	r := Run{Started: s.now(), State: RunActive, Selector: sel, Params: par}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Run{}, fmt.Errorf("start run: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var active int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE state = 'active'`).Scan(&active); err != nil {
		return Run{}, fmt.Errorf("start run: %w", err)
	}
	if active > 0 {
		return Run{}, ErrRunActive
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO runs (started, state, selector, params) VALUES (?, ?, ?, ?)`,
		toNanos(r.Started), string(r.State), string(sel), string(par))
	if err != nil {
		return Run{}, fmt.Errorf("start run: insert: %w", err)
	}
	if r.ID, err = res.LastInsertId(); err != nil {
		return Run{}, fmt.Errorf("start run: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Run{}, fmt.Errorf("start run: commit: %w", err)
	}
	s.log.Info("run started", "run", r.ID)
	return r, nil
}

// EndRun durably ends the active run id with a final state and returns it.
// It returns ErrNoRun if id is not the active run.
func (s *Store) EndRun(ctx context.Context, id int64, state RunState) (Run, error) {
	if err := s.writable(); err != nil {
		return Run{}, err
	}
	if state == RunActive || !knownRunState(state) {
		return Run{}, fmt.Errorf("end run %d: state %q is not final", id, state)
	}
	row := s.wdb.QueryRowContext(ctx, `UPDATE runs SET ended = ?, state = ? WHERE id = ? AND state = 'active' RETURNING `+runColumns,
		toNanos(s.now()), string(state), id)
	r, err := scanRun(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Run{}, fmt.Errorf("end run %d: %w", id, ErrNoRun)
	case err != nil:
		return Run{}, fmt.Errorf("end run %d: %w", id, err)
	}
	s.log.Info("run ended", "run", id, "state", state)
	return r, nil
}

// knownRunState reports whether st is one of the RunState constants.
func knownRunState(st RunState) bool {
	switch st {
	case RunActive, RunSucceeded, RunFailed, RunCancelled:
		return true
	default:
		return false
	}
}

// ActiveRun returns the active run; ok is false if there is none.
func (s *Store) ActiveRun(ctx context.Context) (r Run, ok bool, err error) {
	if s.closed() {
		return Run{}, false, ErrClosed
	}
	r, err = scanRun(s.rdb.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE state = 'active'`))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Run{}, false, nil
	case err != nil:
		return Run{}, false, fmt.Errorf("active run: %w", err)
	}
	return r, true, nil
}

// Runs returns up to limit runs, newest first (limit <= 0 means
// DefaultLimit; at most MaxLimit).
func (s *Store) Runs(ctx context.Context, limit int) ([]Run, error) {
	if s.closed() {
		return nil, ErrClosed
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+runColumns+` FROM runs ORDER BY id DESC LIMIT ?`, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("runs: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("runs: %w", err)
	}
	return runs, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanRun reads runColumns.
func scanRun(sc scanner) (Run, error) {
	var (
		r               Run
		started         int64
		ended           sql.NullInt64
		state, sel, par string
	)
	if err := sc.Scan(&r.ID, &started, &ended, &state, &sel, &par); err != nil {
		return Run{}, err
	}
	r.Started = fromNanos(started)
	if ended.Valid {
		r.Ended = fromNanos(ended.Int64)
	}
	r.State = RunState(state)
	r.Selector = json.RawMessage(sel)
	r.Params = json.RawMessage(par)
	return r, nil
}
