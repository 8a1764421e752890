package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/handoff"
	"github.com/racklift/racklift/provision/nodeapi"
)

// fakeNodes stands in for the event store until it has Facts (handoff's
// own tests cover the content; this covers the command).
type fakeNodes struct {
	phases map[string]events.Phase
	closed bool
}

func (f *fakeNodes) Node(_ context.Context, name string) (events.NodeState, bool, error) {
	ph, ok := f.phases[name]
	return events.NodeState{Name: name, Phase: ph}, ok, nil
}
func (f *fakeNodes) Facts(context.Context, string) (*nodeapi.Facts, bool, error) {
	return nil, false, nil
}
func (f *fakeNodes) Close() error { f.closed = true; return nil }

func runHandoffWith(t *testing.T, src *fakeNodes, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, lookupEnv: func(string) (string, bool) { return "", false }, log: slog.New(slog.DiscardHandler)}
	open := func(string, *slog.Logger) (handoffNodes, error) { return src, nil }
	if src == nil {
		open = openHandoffNodes
	}
	code := handoffCmd(context.Background(), args, e, open)
	return code, out.String(), errb.String()
}

func TestHandoffCommand(t *testing.T) {
	planFile := examplePlan(t, "hyperconverged")
	state := t.TempDir()
	out := filepath.Join(t.TempDir(), "handoff")
	src := &fakeNodes{phases: map[string]events.Phase{}}
	for _, n := range []string{"hci-controller-01", "hci-controller-02", "hci-controller-03", "hci-compute-01", "hci-compute-02", "hci-compute-03", "hci-compute-04", "hci-compute-05"} {
		src.phases[n] = handoff.PhaseVerified
	}
	src.phases["hci-compute-06"] = events.PhaseInstalling

	code, stdout, stderr := runHandoffWith(t, src, "--plan", planFile, "--state-dir", state, "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !src.closed {
		t.Error("node source not closed")
	}
	if !strings.Contains(stdout, "for 8 of 9 nodes into "+out+" (1 not verified, left out)") {
		t.Errorf("stdout %q", stdout)
	}
	inv, err := os.ReadFile(filepath.Join(out, "kolla", "multinode"))
	if err != nil || bytes.Contains(inv, []byte("hci-compute-06")) {
		t.Errorf("inventory: %v, holds the unverified node: %v", err, bytes.Contains(inv, []byte("hci-compute-06")))
	}
	key, err := os.ReadFile(filepath.Join(state, "ssh", "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(out, "ssh", "id_ed25519"))
	if !bytes.Equal(key, got) {
		t.Error("the bundle's key is not the state dir's deployment key")
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o700 {
		t.Errorf("output dir mode %o", st.Mode().Perm())
	}

	// With --allow-unverified the last node is written, marked.
	code, _, stderr = runHandoffWith(t, src, "--plan", planFile, "--state-dir", state, "-o", out, "--allow-unverified")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	inv, _ = os.ReadFile(filepath.Join(out, "kolla", "multinode"))
	if !bytes.Contains(inv, []byte("# UNVERIFIED (phase installing)")) {
		t.Error("unverified node not marked")
	}

	// Nothing verified: exit 1, nothing written.
	empty := filepath.Join(t.TempDir(), "none")
	code, _, stderr = runHandoffWith(t, &fakeNodes{}, "--plan", planFile, "--state-dir", state, "-o", empty)
	if code != exitFailed || !strings.Contains(stderr, "no node is verified yet (9 in the plan)") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Error("a failed hand-off wrote its directory")
	}

	// Usage errors.
	if code, _, _ := runHandoffWith(t, src, "-o", out); code != exitUsage {
		t.Errorf("no --plan: exit %d", code)
	}
	// The real command until the store can be read: nodes count as not verified.
	code, _, stderr = runHandoffWith(t, nil, "--plan", planFile, "--state-dir", state, "-o", empty, "--allow-unverified")
	if code != exitOK || !strings.Contains(stderr, "cannot read node states") {
		t.Errorf("without a store: exit %d: %s", code, stderr)
	}
	if code, _, _ := runCmd(t, nil, "handoff", "-h"); code != exitOK {
		t.Errorf("handoff -h: exit %d", code)
	}
}
