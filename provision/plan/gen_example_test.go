package plan

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files and generated examples")

// TestLargeSiteExampleUpToDate keeps examples/large-site.yaml equal to the
// generator's output; run with -update to rewrite it.
func TestLargeSiteExampleUpToDate(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSite(&b, "cs", LargeSite(512)); err != nil {
		t.Fatal(err)
	}
	const file = "examples/large-site.yaml"
	if *update {
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b.Bytes()) {
		t.Fatalf("%s is stale; run: go test ./provision/plan -run TestLargeSiteExampleUpToDate -update", file)
	}
}
