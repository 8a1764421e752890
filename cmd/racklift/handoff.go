package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/handoff"
)

const handoffUsage = `Usage:
  racklift handoff --plan FILE -o DIR [--secrets FILE] [--state-dir DIR] [--allow-unverified]
      Write what kolla-ansible and cephadm need to build the cloud on the
      verified nodes: DIR/kolla/multinode, kolla/globals.yml,
      kolla/config/nova/NODE/nova.conf, ceph/cluster.yaml, ceph/bootstrap.sh,
      ssh/ (the site's deployment key and the nodes' known_hosts), hosts and
      README.txt with the next commands. Node states and facts come from the
      state dir (it may be in use by 'racklift serve'). Nodes not verified are
      left out unless --allow-unverified, which writes them marked in comments.
      Exit 0 when written, 1 when the plan or the nodes do not allow a
      hand-off (the message says what to fix), 2 on usage errors, 3 on I/O errors.
`

// handoffNodes is the state dir's event store as the hand-off reads it.
type handoffNodes interface {
	handoff.NodeSource
	io.Closer
}

// errNoNodeStore says the event store cannot be read for the hand-off.
var errNoNodeStore = errors.New("cannot read node states and facts from the state dir")

// openHandoffNodes opens the state dir's event store read-only, beside a
// running 'racklift serve'.
func openHandoffNodes(stateDir string, log *slog.Logger) (handoffNodes, error) {
	st, err := events.OpenReadOnly(stateDir, log)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoNodeStore, err)
	}
	return storeNodes{StoreSource: handoff.StoreSource{Store: st}, Closer: st}, nil
}

// storeNodes is the read-only event store as a handoffNodes.
type storeNodes struct {
	handoff.StoreSource
	io.Closer
}

func runHandoff(ctx context.Context, args []string, e *env) int {
	return handoffCmd(ctx, args, e, openHandoffNodes)
}

// handoffCmd implements 'racklift handoff'; open opens the node source.
func handoffCmd(ctx context.Context, args []string, e *env, open func(string, *slog.Logger) (handoffNodes, error)) int {
	fs := newFlags("handoff", e)
	var pf planFlags
	pf.register(fs)
	planPath := fs.String("plan", "", "the cluster plan (required)")
	out := fs.String("o", "", "output directory (written whole or not at all, mode 0700; required)")
	stateDir := fs.String("state-dir", defaultStateDir(e.lookupEnv), "racklift's state dir: node states, facts and the deployment key")
	allow := fs.Bool("allow-unverified", false, "also write nodes that are not verified, marked in comments")
	fs.Usage = func() { fmt.Fprint(e.stderr, handoffUsage) }
	pos, code, ok := parseFlags(fs, args, e)
	if !ok {
		return code
	}
	if len(pos) != 0 || *planPath == "" || *out == "" {
		fmt.Fprint(e.stderr, "racklift handoff: --plan FILE and -o DIR are required\n\n"+handoffUsage)
		return exitUsage
	}
	p, ds, _, _, code, ok := pf.load(ctx, *planPath, e)
	if !ok {
		return code
	}
	if p == nil {
		_ = ds.WriteText(e.stderr)
		fmt.Fprintf(e.stderr, "racklift handoff: %s is not usable; nothing written\n", *planPath)
		return exitFailed
	}
	key, err := handoff.LoadOrCreateDeployKey(*stateDir, "racklift-deploy@"+p.Cluster.Name)
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift handoff: %v\n", err)
		return exitRuntime
	}
	svc := &handoff.Service{Plan: p, Key: key}
	src, err := open(*stateDir, e.log)
	switch {
	case errors.Is(err, errNoNodeStore):
		fmt.Fprintf(e.stderr, "racklift handoff: warning: %v: every node counts as not verified\n", err)
	case err != nil:
		fmt.Fprintf(e.stderr, "racklift handoff: state dir %s: %v\n", *stateDir, err)
		return exitRuntime
	default:
		defer src.Close()
		svc.Source = src
	}
	b, err := svc.Bundle(ctx, *allow)
	if err != nil {
		fmt.Fprintf(e.stderr, "racklift handoff: %v\n", err)
		return exitFailed
	}
	for _, w := range b.Warnings {
		fmt.Fprintf(e.stderr, "racklift handoff: warning: %s\n", w)
	}
	if err := b.WriteDir(*out); err != nil {
		fmt.Fprintf(e.stderr, "racklift handoff: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintf(e.stdout, "wrote %d files for %d of %d nodes into %s", len(b.Files), len(b.Included), len(p.Nodes), *out)
	if len(b.Skipped) > 0 {
		fmt.Fprintf(e.stdout, " (%d not verified, left out)", len(b.Skipped))
	}
	fmt.Fprintf(e.stdout, "; read %s/README.txt next\n", *out)
	return exitOK
}
