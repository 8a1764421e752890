package events

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestRunLifecycle(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	s.now = func() time.Time { return t0 }
	if _, ok, err := s.ActiveRun(ctx); ok || err != nil {
		t.Fatalf("ActiveRun on empty store = %v, %v", ok, err)
	}
	sel := map[string][]string{"roles": {"compute"}}
	r1, err := s.StartRun(ctx, sel, struct{ Parallel int }{8})
	if err != nil {
		t.Fatal(err)
	}
	if r1.ID != 1 || r1.State != RunActive || !r1.Started.Equal(t0) || !r1.Ended.IsZero() ||
		string(r1.Selector) != `{"roles":["compute"]}` || string(r1.Params) != `{"Parallel":8}` {
		t.Errorf("StartRun = %+v", r1)
	}
	if _, err := s.StartRun(ctx, nil, nil); !errors.Is(err, ErrRunActive) {
		t.Errorf("second StartRun = %v, want ErrRunActive", err)
	}
	active, ok, err := s.ActiveRun(ctx)
	if err != nil || !ok || active.ID != r1.ID || string(active.Selector) != string(r1.Selector) {
		t.Errorf("ActiveRun = %+v, %v, %v", active, ok, err)
	}
	if _, err := s.EndRun(ctx, r1.ID, RunActive); err == nil {
		t.Error("EndRun with RunActive succeeded")
	}
	if _, err := s.EndRun(ctx, r1.ID, "exploded"); err == nil {
		t.Error("EndRun with unknown state succeeded")
	}
	s.now = func() time.Time { return t0.Add(time.Hour) }
	ended, err := s.EndRun(ctx, r1.ID, RunSucceeded)
	if err != nil || ended.State != RunSucceeded || !ended.Ended.Equal(t0.Add(time.Hour)) {
		t.Errorf("EndRun = %+v, %v", ended, err)
	}
	if _, err := s.EndRun(ctx, r1.ID, RunFailed); !errors.Is(err, ErrNoRun) {
		t.Errorf("EndRun of ended run = %v, want ErrNoRun", err)
	}
	if _, err := s.EndRun(ctx, 999, RunFailed); !errors.Is(err, ErrNoRun) {
		t.Errorf("EndRun of unknown run = %v, want ErrNoRun", err)
	}
	r2, err := s.StartRun(ctx, nil, nil)
	if err != nil || string(r2.Selector) != "null" {
		t.Fatalf("StartRun after end = %+v, %v", r2, err)
	}
	if _, err := s.StartRun(ctx, func() {}, nil); err == nil {
		t.Error("StartRun with an unmarshalable selector succeeded")
	}
	runs, err := s.Runs(ctx, 0)
	if err != nil || len(runs) != 2 || runs[0].ID != r2.ID || runs[1].ID != r1.ID || runs[1].State != RunSucceeded {
		t.Errorf("Runs = %+v, %v", runs, err)
	}
	var back map[string][]string
	if err := json.Unmarshal(runs[1].Selector, &back); err != nil || back["roles"][0] != "compute" {
		t.Errorf("selector round trip: %v, %v", back, err)
	}
}
