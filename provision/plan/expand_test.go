package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// mergeBomb is a small plan whose chained merge keys multiply by 9 per level.
func mergeBomb() []byte {
	var b strings.Builder
	b.WriteString("cluster: {name: bomb, domain: x.example.com}\nanchors:\n")
	b.WriteString("  m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}\n")
	for i := 1; i <= 9; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 9), ", ")
		fmt.Fprintf(&b, "  m%d: &m%d {<<: [%s]}\n", i, i, refs)
	}
	b.WriteString("defaults: {<<: *m9}\nnodes: []\n")
	return []byte(b.String())
}

func TestMergeKeyBombFailsFastWithLine(t *testing.T) {
	data := mergeBomb()
	start := time.Now()
	p, ds := Load("plan.yaml", data, Options{})
	took := time.Since(start)
	if took > time.Second {
		t.Fatalf("load took %s, want well under 1s", took)
	}
	if p != nil {
		t.Fatal("plan loaded")
	}
	var found *Diagnostic
	for i := range ds {
		if ds[i].Rule == "yaml-size" && strings.Contains(ds[i].Msg, "merge keys expand to more than") {
			found = &ds[i]
		}
	}
	if found == nil {
		t.Fatalf("no expansion error in %v", ds)
	}
	// The chain passes a million nodes inside m6's definition (line 9).
	if found.Line < 3 || found.Line > 12 || found.Col < 2 {
		t.Fatalf("position %d:%d, want the alias inside the anchors", found.Line, found.Col)
	}
	if !strings.HasPrefix(found.String(), fmt.Sprintf("plan.yaml:%d:%d: error:", found.Line, found.Col)) {
		t.Fatalf("message %q does not start with file:line:col", found)
	}
	t.Logf("%s in %s", found, took)
}

func TestModestAliasesStillLoad(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSite(&b, "big", LargeSite(5000)); err != nil {
		t.Fatal(err)
	}
	p, ds := Load("big.yaml", b.Bytes(), Options{})
	if p == nil {
		t.Fatalf("5,000-node plan rejected: %v", ds.Err())
	}
}

func TestLoadStopsOnCancelledContext(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSite(&b, "big", LargeSite(2000)); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("test stop")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(stop)
	p, ds, err := LoadContext(ctx, "big.yaml", b.Bytes(), Options{})
	if p != nil || ds != nil || !errors.Is(err, stop) {
		t.Fatalf("got plan %v, %d diagnostics, err %v; want the cancel cause", p != nil, len(ds), err)
	}
}
