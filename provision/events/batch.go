package events

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A batch is written with a few multi-row statements, not a few
// statements per event: modernc.org/sqlite parses a statement on every
// execution (a prepared *sql.Stmt only keeps the text), so per-event
// statements would spend most of the writer's time in the SQL parser. Its
// binding of anonymous "?" parameters is quadratic in their number, so
// multi-row statements are cut into chunks of rowsPerStmt rows.
const rowsPerStmt = 64

// writeBatch stores the events of reqs and their node updates in one
// transaction and returns the events with IDs assigned.
func (s *Store) writeBatch(reqs []*request) ([]Event, error) {
	ctx := context.Background() // a batch is never cut short by one caller's ctx
	evs := make([]Event, len(reqs))
	for i, r := range reqs {
		evs[i] = r.ev
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := insertEvents(ctx, tx, evs); err != nil {
		return nil, err
	}
	if err := applyNodes(ctx, tx, evs); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return evs, nil
}

// placeholders returns "(?, ?), (?, ?)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// execChunks executes head + "(?, ...), ..." + tail for args, which hold
// cols values per row, rowsPerStmt rows per statement. each, if not nil, is
// called after each statement with its result, the index of its first row
// and its row count.
func execChunks(ctx context.Context, tx *sql.Tx, head, tail string, cols int, args []any,
	each func(res sql.Result, first, n int) error) error {
	rows := len(args) / cols
	for first := 0; first < rows; first += rowsPerStmt {
		n := min(rowsPerStmt, rows-first)
		res, err := tx.ExecContext(ctx, head+placeholders(n, cols)+tail, args[first*cols:(first+n)*cols]...)
		if err != nil {
			return err
		}
		if each != nil {
			if err := each(res, first, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// insertEvents inserts evs and fills in their IDs.
func insertEvents(ctx context.Context, tx *sql.Tx, evs []Event) error {
	const cols = 9
	args := make([]any, 0, cols*len(evs))
	for _, ev := range evs {
		var attrs any // NULL when empty
		if len(ev.Attrs) > 0 {
			b, err := json.Marshal(ev.Attrs)
			if err != nil {
				return fmt.Errorf("encode attrs: %w", err)
			}
			attrs = string(b)
		}
		args = append(args, toNanos(ev.At), ev.Node, ev.MAC, string(ev.Source), ev.Type,
			string(ev.Phase), ev.Percent, ev.Detail, attrs)
	}
	err := execChunks(ctx, tx, `INSERT INTO events (at, node, mac, source, type, phase, percent, detail, attrs) VALUES `,
		``, cols, args, func(res sql.Result, first, n int) error {
			last, err := res.LastInsertId()
			if err != nil {
				return err
			}
			// A multi-row INSERT with AUTOINCREMENT gives its rows
			// consecutive IDs in VALUES order, the last one being last.
			for i := range n {
				evs[first+i].ID = last - int64(n-1-i)
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// interval is a phase interval to insert into phase_times.
type interval struct {
	phase   Phase
	started time.Time
	ended   time.Time // zero while open
}

// nodePlan is what one batch does to one node.
type nodePlan struct {
	row         nodeRow
	lastID      int64
	lastDetail  string
	closeStored bool      // end the node's stored open interval...
	closeAt     time.Time // ...at this time
	intervals   []interval
}

// planNodes applies evs, in order, to the stored rows cur (nodes missing
// from cur are new) and returns per-node plans and the nodes in first-seen
// order. It is pure.
func planNodes(cur map[string]nodeRow, evs []Event) (map[string]*nodePlan, []string) {
	plans := map[string]*nodePlan{}
	var order []string
	for _, ev := range evs {
		if ev.Node == "" {
			continue
		}
		p := plans[ev.Node]
		if p == nil {
			row, ok := cur[ev.Node]
			if !ok {
				row = nodeRow{percent: -1}
			}
			p = &nodePlan{row: row}
			plans[ev.Node] = p
			order = append(order, ev.Node)
		}
		p.apply(ev)
	}
	return plans, order
}

// apply advances the plan by one event.
func (p *nodePlan) apply(ev Event) {
	next, changed := advance(p.row, ev)
	if changed {
		if n := len(p.intervals); n > 0 {
			p.intervals[n-1].ended = next.since
		} else if p.row.phase != PhaseNone {
			p.closeStored, p.closeAt = true, next.since
		}
		p.intervals = append(p.intervals, interval{phase: next.phase, started: next.since})
	}
	p.row = next
	p.lastID = ev.ID
	p.lastDetail = ev.Detail
}

// applyNodes updates the nodes and phase_times tables for evs.
func applyNodes(ctx context.Context, tx *sql.Tx, evs []Event) error {
	seen := map[string]bool{}
	var names []string
	for _, ev := range evs {
		if ev.Node != "" && !seen[ev.Node] {
			seen[ev.Node] = true
			names = append(names, ev.Node)
		}
	}
	if len(names) == 0 {
		return nil
	}
	cur, err := loadNodes(ctx, tx, names)
	if err != nil {
		return err
	}
	plans, order := planNodes(cur, evs)
	if err := saveNodes(ctx, tx, plans, order); err != nil {
		return err
	}
	if err := closeIntervals(ctx, tx, plans, order); err != nil {
		return err
	}
	return insertIntervals(ctx, tx, plans, order)
}

// loadNodes reads the stored rows of the distinct names.
func loadNodes(ctx context.Context, tx *sql.Tx, names []string) (map[string]nodeRow, error) {
	out := map[string]nodeRow{}
	for first := 0; first < len(names); first += rowsPerStmt {
		chunk := names[first:min(first+rowsPerStmt, len(names))]
		if err := loadNodeChunk(ctx, tx, chunk, out); err != nil {
			return nil, fmt.Errorf("load nodes: %w", err)
		}
	}
	return out, nil
}

// loadNodeChunk reads the rows of names into out.
func loadNodeChunk(ctx context.Context, tx *sql.Tx, names []string, out map[string]nodeRow) error {
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, phase, percent, phase_since, failed_reason, attempts
		FROM nodes WHERE name IN `+placeholders(1, len(names)), args...)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			name, phase string
			since       int64
			r           = nodeRow{exists: true}
		)
		if err := rows.Scan(&name, &phase, &r.percent, &since, &r.failed, &r.attempts); err != nil {
			return err
		}
		r.phase, r.since = Phase(phase), fromNanos(since)
		out[name] = r
	}
	return rows.Err()
}

// saveNodes upserts the planned rows.
func saveNodes(ctx context.Context, tx *sql.Tx, plans map[string]*nodePlan, order []string) error {
	const cols = 8
	args := make([]any, 0, cols*len(order))
	for _, name := range order {
		p := plans[name]
		args = append(args, name, string(p.row.phase), p.row.percent, toNanos(p.row.since),
			p.lastID, p.lastDetail, p.row.failed, p.row.attempts)
	}
	err := execChunks(ctx, tx, `INSERT INTO nodes
		(name, phase, percent, phase_since, last_event_id, last_detail, failed_reason, attempts) VALUES `, `
		ON CONFLICT (name) DO UPDATE SET phase = excluded.phase, percent = excluded.percent,
			phase_since = excluded.phase_since, last_event_id = excluded.last_event_id,
			last_detail = excluded.last_detail, failed_reason = excluded.failed_reason,
			attempts = excluded.attempts`, cols, args, nil)
	if err != nil {
		return fmt.Errorf("save nodes: %w", err)
	}
	return nil
}

// closeIntervals ends the stored open interval of every node whose phase
// changed.
func closeIntervals(ctx context.Context, tx *sql.Tx, plans map[string]*nodePlan, order []string) error {
	var args []any
	for _, name := range order {
		if p := plans[name]; p.closeStored {
			args = append(args, name, toNanos(p.closeAt))
		}
	}
	if len(args) == 0 {
		return nil
	}
	err := execChunks(ctx, tx, `UPDATE phase_times SET ended = v.column2 FROM (VALUES `,
		`) AS v WHERE phase_times.node = v.column1 AND phase_times.ended IS NULL`, 2, args, nil)
	if err != nil {
		return fmt.Errorf("end phase intervals: %w", err)
	}
	return nil
}

// insertIntervals inserts the intervals the batch started.
func insertIntervals(ctx context.Context, tx *sql.Tx, plans map[string]*nodePlan, order []string) error {
	const cols = 4
	var args []any
	for _, name := range order {
		for _, iv := range plans[name].intervals {
			var ended any // NULL while open
			if !iv.ended.IsZero() {
				ended = toNanos(iv.ended)
			}
			args = append(args, name, string(iv.phase), toNanos(iv.started), ended)
		}
	}
	if len(args) == 0 {
		return nil
	}
	err := execChunks(ctx, tx, `INSERT INTO phase_times (node, phase, started, ended) VALUES `, ``, cols, args, nil)
	if err != nil {
		return fmt.Errorf("start phase intervals: %w", err)
	}
	return nil
}
