package events

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is a fixed base time for deterministic events.
var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// newStore opens a store in a fresh temp dir, closed at cleanup.
func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// record records ev and fails the test on error.
func record(t testing.TB, s *Store, ev Event) Event {
	t.Helper()
	got, err := s.Record(t.Context(), ev)
	if err != nil {
		t.Fatalf("Record(%+v): %v", ev, err)
	}
	return got
}

// syncBuffer is a bytes.Buffer safe for a slog handler used from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestOpenCreatesFilesAndSchema(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	assertMode(t, dir, 0o700|fs.ModeDir)
	assertMode(t, filepath.Join(dir, DBFile), 0o600)
	if s.Path() != filepath.Join(dir, DBFile) {
		t.Errorf("Path() = %q", s.Path())
	}
	var version int
	if err := s.rdb.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if want := len(migrations()); version != want {
		t.Errorf("user_version = %d, want %d", version, want)
	}
	for _, table := range []string{"events", "nodes", "phase_times", "runs", "tokens"} {
		var n int
		err := s.rdb.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("table %s: count %d, err %v", table, n, err)
		}
	}
	var fk int
	if err := s.wdb.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
	}
}

func TestOpenNarrowsExistingFileMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DBFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	assertMode(t, filepath.Join(dir, DBFile), 0o600)
}

func TestOpenEmptyDir(t *testing.T) {
	if _, err := Open("", nil); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := record(t, s, Event{At: t0, Node: "cs-compute-0001", Source: SourceDHCP, Type: "dhcp.offer",
		Phase: PhaseDHCP, Percent: -1, Attrs: map[string]string{"ip": "10.0.0.5"}})
	tok, err := s.Token(t.Context(), "cs-compute-0001")
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.StartRun(t.Context(), []string{"cs-compute-0001"}, map[string]int{"parallel": 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	evs, err := s2.Since(t.Context(), 0, 0)
	if err != nil || len(evs) != 1 || !reflect.DeepEqual(evs[0], ev) {
		t.Errorf("Since after reopen = %+v, %v; want [%+v]", evs, err, ev)
	}
	n, ok, err := s2.Node(t.Context(), "cs-compute-0001")
	if err != nil || !ok || n.Phase != PhaseDHCP || n.LastEvent.ID != ev.ID {
		t.Errorf("Node after reopen = %+v, %v, %v", n, ok, err)
	}
	tok2, err := s2.Token(t.Context(), "cs-compute-0001")
	if err != nil || tok2 != tok {
		t.Errorf("token changed across reopen (err %v)", err)
	}
	active, ok, err := s2.ActiveRun(t.Context())
	if err != nil || !ok || active.ID != run.ID {
		t.Errorf("ActiveRun after reopen = %+v, %v, %v", active, ok, err)
	}
	next := record(t, s2, Event{Source: SourceHTTP, Type: "http.fetch"})
	if next.ID != ev.ID+1 {
		t.Errorf("ID after reopen = %d, want %d", next.ID, ev.ID+1)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	base := migrations()
	bad := append(append([]string{}, base...), `CREATE TABLE extra (x INTEGER); THIS IS NOT SQL;`)
	if _, _, err := migrate(ctx, s.wdb, bad); err == nil {
		t.Fatal("migrate with a bad step succeeded")
	}
	var version, n int
	if err := s.wdb.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != len(base) {
		t.Errorf("user_version = %d after failed step, want %d", version, len(base))
	}
	if err := s.wdb.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name = 'extra'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("failed step left table extra behind (n=%d, err=%v)", n, err)
	}
	good := append(append([]string{}, base...), `CREATE TABLE extra (x INTEGER);`)
	from, to, err := migrate(ctx, s.wdb, good)
	if err != nil || from != len(base) || to != len(good) {
		t.Errorf("migrate = %d, %d, %v; want %d, %d, nil", from, to, err, len(base), len(good))
	}
}

func TestOpenSchemaTooNew(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.wdb.Exec(`PRAGMA user_version = 999`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	tests := map[string]Event{
		"full": {At: t0.Add(1500 * time.Nanosecond), Node: "cs-controller-01", MAC: "52:54:00:12:34:56",
			Source: SourceTFTP, Type: "tftp.done", Percent: -1, Detail: "ipxe.efi sent",
			Attrs: map[string]string{"file": "ipxe.efi", "bytes": "1048576", "client": "10.0.0.9:2070"}},
		"unknown machine": {At: t0, MAC: "52:54:00:ff:ff:ff", Source: SourceDHCP, Type: "dhcp.ignore",
			Percent: -1, Detail: "not in plan"},
		"phase with percent": {At: t0, Node: "cs-db-02", Source: SourceInstaller, Type: "install.progress",
			Phase: PhaseInstalling, Percent: 42},
		"unicode and quotes": {At: t0, Node: "n", Source: SourceSecurity, Type: "x.y",
			Detail: `Grüße "quoted" 'single' ✓`, Attrs: map[string]string{"k\"ey": "<v&>"}},
		"non-UTC time": {At: t0.In(time.FixedZone("CET", 3600)), Source: SourceBMC, Type: "bmc.power"},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			got := record(t, s, in)
			want := in
			want.ID = got.ID
			want.At = in.At.UTC()
			if got.ID != 1 || !reflect.DeepEqual(got, want) {
				t.Errorf("Record returned %+v, want %+v", got, want)
			}
			stored, err := s.Since(t.Context(), 0, 10)
			if err != nil || len(stored) != 1 || !reflect.DeepEqual(stored[0], want) {
				t.Errorf("Since = %+v, %v; want [%+v]", stored, err, want)
			}
		})
	}
}

func TestRecordFillsTimeAndDetachesAttrs(t *testing.T) {
	s := newStore(t)
	s.now = func() time.Time { return t0 }
	attrs := map[string]string{"a": "1"}
	got := record(t, s, Event{ID: 99, Source: SourceHTTP, Type: "http.fetch", Attrs: attrs})
	attrs["a"] = "changed"
	if !got.At.Equal(t0) || got.ID != 1 || got.Attrs["a"] != "1" {
		t.Errorf("Record = %+v", got)
	}
}

func TestRecordInvalid(t *testing.T) {
	tests := map[string]Event{
		"no source":     {Type: "x"},
		"no type":       {Source: SourceDHCP},
		"percent high":  {Source: SourceDHCP, Type: "x", Percent: 101},
		"percent low":   {Source: SourceDHCP, Type: "x", Percent: -2},
		"unknown phase": {Source: SourceDHCP, Type: "x", Phase: "exploded"},
		"ancient":       {Source: SourceDHCP, Type: "x", At: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	s := newStore(t)
	for name, ev := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Record(t.Context(), ev); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("Record = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if id, err := s.LastID(t.Context()); err != nil || id != 0 {
		t.Errorf("LastID = %d, %v; want 0", id, err)
	}
}

func TestRecordTruncatesDetail(t *testing.T) {
	s := newStore(t)
	long := strings.Repeat("é", maxDetailBytes) // 2 bytes each
	got := record(t, s, Event{Source: SourceHTTP, Type: "x", Detail: long})
	if len(got.Detail) > maxDetailBytes || !strings.HasPrefix(long, got.Detail) || len(got.Detail)%2 != 0 {
		t.Errorf("Detail has %d bytes, want <= %d on a rune boundary", len(got.Detail), maxDetailBytes)
	}
}

func TestRecordCancelledContext(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Record(ctx, Event{Source: SourceDHCP, Type: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record = %v, want context.Canceled", err)
	}
	// The writer skips requests whose context is already done; prove it
	// is idle by committing one more event and checking it got ID 1.
	if got := record(t, s, Event{Source: SourceDHCP, Type: "y"}); got.ID != 1 {
		t.Errorf("next ID = %d, want 1 (cancelled event must not be stored)", got.ID)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ch := s.Subscribe(t.Context())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := <-ch; ok {
		t.Error("subscriber channel still open after Close")
	}
	ctx := t.Context()
	checks := map[string]error{}
	_, checks["Record"] = s.Record(ctx, Event{Source: SourceDHCP, Type: "x"})
	_, checks["Since"] = s.Since(ctx, 0, 1)
	_, checks["NodeEvents"] = s.NodeEvents(ctx, "n", 1)
	_, checks["Nodes"] = s.Nodes(ctx)
	_, _, checks["Node"] = s.Node(ctx, "n")
	_, checks["LastID"] = s.LastID(ctx)
	_, checks["Token"] = s.Token(ctx, "n")
	_, checks["RotateToken"] = s.RotateToken(ctx, "n")
	_, _, checks["NodeForToken"] = s.NodeForToken(ctx, "t")
	_, checks["StartRun"] = s.StartRun(ctx, nil, nil)
	_, checks["EndRun"] = s.EndRun(ctx, 1, RunFailed)
	_, checks["Runs"] = s.Runs(ctx, 1)
	_, _, checks["ActiveRun"] = s.ActiveRun(ctx)
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestConcurrentRecordsAreUniqueAndContiguous(t *testing.T) {
	s := newStore(t)
	workers, each := 40, 25
	if raceEnabled {
		workers = 16
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ev := Event{Node: nodeName(w % 5), Source: SourceDHCP, Type: "dhcp.offer", Phase: PhaseDHCP, Percent: i}
				if _, err := s.Record(t.Context(), ev); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs := allEvents(t, s)
	if len(evs) != workers*each {
		t.Fatalf("stored %d events, want %d", len(evs), workers*each)
	}
	for i, ev := range evs {
		if ev.ID != int64(i+1) {
			t.Fatalf("event %d has ID %d: IDs not contiguous", i, ev.ID)
		}
	}
	assertNodesConsistent(t, s)
}

func nodeName(i int) string { return "cs-compute-" + string(rune('a'+i)) }

// allEvents pages through Since with a small page size.
func allEvents(t testing.TB, s *Store) []Event {
	t.Helper()
	var out []Event
	var last int64
	for range 100000 {
		page, err := s.Since(t.Context(), last, 97)
		if err != nil {
			t.Fatalf("Since(%d): %v", last, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		last = page[len(page)-1].ID
	}
	t.Fatal("Since pagination did not end")
	return nil
}

// assertNodesConsistent checks each node row against its newest event.
func assertNodesConsistent(t testing.TB, s *Store) {
	t.Helper()
	nodes, err := s.Nodes(t.Context())
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	for _, n := range nodes {
		last, err := s.NodeEvents(t.Context(), n.Name, 1)
		if err != nil || len(last) != 1 {
			t.Fatalf("NodeEvents(%s): %v, %v", n.Name, last, err)
		}
		if !reflect.DeepEqual(n.LastEvent, last[0]) {
			t.Errorf("node %s: LastEvent %+v, newest event %+v", n.Name, n.LastEvent, last[0])
		}
	}
}

func TestSincePagination(t *testing.T) {
	s := newStore(t)
	for i := range 25 {
		record(t, s, Event{Source: SourceHTTP, Type: "http.fetch", Percent: i})
	}
	tests := map[string]struct {
		after   int64
		limit   int
		wantIDs []int64
	}{
		"first page":    {after: 0, limit: 3, wantIDs: []int64{1, 2, 3}},
		"middle":        {after: 10, limit: 2, wantIDs: []int64{11, 12}},
		"short tail":    {after: 23, limit: 10, wantIDs: []int64{24, 25}},
		"up to date":    {after: 25, limit: 10, wantIDs: nil},
		"beyond":        {after: 1000, limit: 10, wantIDs: nil},
		"default limit": {after: 20, limit: 0, wantIDs: []int64{21, 22, 23, 24, 25}},
		"negative":      {after: 22, limit: -5, wantIDs: []int64{23, 24, 25}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			evs, err := s.Since(t.Context(), tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, ev := range evs {
				ids = append(ids, ev.ID)
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Errorf("IDs = %v, want %v", ids, tc.wantIDs)
			}
		})
	}
	if got := len(allEvents(t, s)); got != 25 {
		t.Errorf("paged %d events, want 25", got)
	}
	if clampLimit(MaxLimit+1) != MaxLimit {
		t.Error("limit not capped")
	}
}

func TestNodeEvents(t *testing.T) {
	s := newStore(t)
	for i := range 10 {
		record(t, s, Event{Node: "a", Source: SourceHTTP, Type: "http.fetch", Percent: i})
		record(t, s, Event{Node: "b", Source: SourceHTTP, Type: "http.fetch", Percent: i})
		record(t, s, Event{Source: SourceDHCP, Type: "dhcp.ignore"}) // no node
	}
	evs, err := s.NodeEvents(t.Context(), "a", 3)
	if err != nil {
		t.Fatal(err)
	}
	var pct []int
	for _, ev := range evs {
		if ev.Node != "a" {
			t.Errorf("event of node %q", ev.Node)
		}
		pct = append(pct, ev.Percent)
	}
	if !reflect.DeepEqual(pct, []int{7, 8, 9}) {
		t.Errorf("latest 3 of a, oldest first: percents %v, want [7 8 9]", pct)
	}
	if evs, err := s.NodeEvents(t.Context(), "", 100); err != nil || len(evs) != 0 {
		t.Errorf("NodeEvents(\"\") = %d events, %v; want none", len(evs), err)
	}
	if _, ok, err := s.Node(t.Context(), "nobody"); ok || err != nil {
		t.Errorf("Node(nobody) = %v, %v", ok, err)
	}
}

func TestStoreSubscribe(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := s.Subscribe(ctx)
	var want []Event
	for i := range 3 {
		want = append(want, record(t, s, Event{Node: "n", Source: SourceTFTP, Type: "tftp.done", Percent: i,
			Attrs: map[string]string{"i": "x"}}))
	}
	for i := range want {
		got := <-ch // Record publishes before it acknowledges
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("event %d = %+v, want %+v", i, got, want[i])
		}
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel open after ctx cancel")
	}
}

func TestLogsNeverHoldTokens(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Token(t.Context(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	rot, err := s.RotateToken(t.Context(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.NodeForToken(t.Context(), rot); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "callback token rotated") {
		t.Errorf("expected token events in the log, got:\n%s", out)
	}
	if strings.Contains(out, tok) || strings.Contains(out, rot) {
		t.Error("a token appears in the log")
	}
}

// rawDB opens the database file directly, for assertions on stored rows.
func rawDB(t *testing.T, s *Store) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(s.Path(), true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestEventsAreAppendOnly(t *testing.T) {
	s := newStore(t)
	record(t, s, Event{Source: SourceDHCP, Type: "x"})
	for _, q := range []string{`UPDATE events SET detail = 'forged'`, `DELETE FROM events`} {
		if _, err := s.wdb.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err %v, want append-only refusal", q, err)
		}
	}
}

func TestCloseWhileRecording(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const workers = 16
	acked := make(chan Event, workers*10000)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 10000 { // bounded; Close stops it long before
				ev, err := s.Record(t.Context(), Event{Node: nodeName(w), Source: SourceHTTP, Type: "x", Percent: i % 100})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				acked <- ev
			}
		})
	}
	for range 50 { // let some events through before closing
		<-acked
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // every Record returned: nothing hangs on a closed store
	close(acked)

	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	last, err := s2.LastID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 50
	for ev := range acked {
		n++
		if ev.ID > last {
			t.Fatalf("acknowledged event %d missing after Close (last stored %d)", ev.ID, last)
		}
	}
	if int64(n) != last {
		t.Errorf("%d acknowledged, %d stored: every stored event must have been acknowledged", n, last)
	}
}

func TestStoreIsRecorder(t *testing.T) {
	var _ Recorder = (*Store)(nil) // compile-time check
}

// One process per state directory: a second Open fails while the first
// store is open (it would drive the same run twice), and works after Close.
func TestOpenLocksStateDir(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, nil)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("racklift process %d", os.Getpid())) {
		t.Fatalf("second Open: %v, want ErrInUse naming pid %d", err, os.Getpid())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}
