package events

import (
	"context"
	"errors"
	"testing"
)

// TestOpenReadOnlyBesideTheWriter: a second process (racklift handoff, a
// test) reads a state directory racklift serve holds open; it sees every
// committed event and the facts, and cannot write.
func TestOpenReadOnlyBesideTheWriter(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	w, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Open(dir, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("second writer: %v, want ErrInUse", err)
	}
	if err := w.SaveFacts(ctx, "n-01", []byte(`{"version":1,"hostname":"n-01"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Record(ctx, Event{Node: "n-01", Source: SourceInstaller, Type: "install.ready", Phase: PhaseReady, Percent: -1}); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(dir, nil)
	if err != nil {
		t.Fatalf("read-only beside the writer: %v", err)
	}
	defer r.Close()
	st, ok, err := r.Node(ctx, "n-01")
	if err != nil || !ok || st.Phase != PhaseReady {
		t.Fatalf("node through the reader: %+v %v %v", st, ok, err)
	}
	f, _, ok, err := r.Facts(ctx, "n-01")
	if err != nil || !ok || string(f) != `{"version":1,"hostname":"n-01"}` {
		t.Fatalf("facts: %s %v %v", f, ok, err)
	}
	if _, _, ok, _ := r.Facts(ctx, "n-02"); ok {
		t.Error("facts of a node that reported none")
	}
	// New events of the writer show up in the reader.
	if _, err := w.Record(ctx, Event{Node: "n-01", Source: SourceOrchestrator, Type: "verify.ok", Phase: PhaseVerified, Percent: -1}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := r.Node(ctx, "n-01"); st.Phase != PhaseVerified {
		t.Errorf("reader sees %s after the writer's verify", st.Phase)
	}
	for what, err := range map[string]error{
		"Record": func() error {
			_, err := r.Record(ctx, Event{Node: "x", Source: SourceHTTP, Type: "t", Percent: -1})
			return err
		}(),
		"SaveFacts": r.SaveFacts(ctx, "n-01", []byte(`{}`)),
		"Rotate":    func() error { _, err := r.RotateToken(ctx, "n-01"); return err }(),
		"Token":     func() error { _, err := r.Token(ctx, "n-09"); return err }(),
		"StartRun":  func() error { _, err := r.StartRun(ctx, map[string]int{}, map[string]int{}); return err }(),
	} {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly", what, err)
		}
	}
	if err := w.SaveFacts(ctx, "n-01", []byte(`not json`)); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("non-JSON facts: %v", err)
	}
	if _, err := OpenReadOnly(t.TempDir(), nil); err == nil {
		t.Error("read-only open of an empty directory succeeded")
	}
}
