package render

import (
	"bytes"
	"testing"

	"github.com/racklift/racklift/profiles"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/provision/plan"
)

// site5000 generates and loads a 5,000-compute plan.
func site5000(b *testing.B) *plan.Plan {
	b.Helper()
	var buf bytes.Buffer
	if err := plan.WriteSite(&buf, "cs", plan.LargeSite(5000)); err != nil {
		b.Fatal(err)
	}
	profs, err := profiles.Load(profiles.Builtin())
	if err != nil {
		b.Fatal(err)
	}
	p, ds := plan.Load("cs.yaml", buf.Bytes(), plan.Options{Profiles: profs})
	if p == nil {
		b.Fatalf("generated plan invalid: %v", ds)
	}
	return p
}

// BenchmarkRenderAll5000 renders every file of every node of a site with
// 5,000 compute nodes (5,023 nodes): one op is the whole site.
func BenchmarkRenderAll5000(b *testing.B) {
	p := site5000(b)
	r := newTestRenderer(b)
	b.ReportAllocs()
	b.ResetTimer()
	var files, bytes int
	for b.Loop() {
		files, bytes = 0, 0
		for _, n := range p.Nodes {
			fs, err := r.Files(p, n, testEnv(n))
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range fs {
				files++
				bytes += len(f.Data)
			}
		}
	}
	b.ReportMetric(float64(files), "files/op")
	b.ReportMetric(float64(bytes)/1e6, "MB/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(p.Nodes)), "ns/node")
}

// BenchmarkFile5000 renders one node's kickstart and first-boot user-data
// in the 5,000-node site: the HTTP server's per-request cost.
func BenchmarkFile5000(b *testing.B) {
	p := site5000(b)
	r := newTestRenderer(b)
	n := p.Nodes[len(p.Nodes)-1]
	for _, name := range []string{nodeapi.FileIPXE, nodeapi.FileKickstart, nodeapi.FileUserData} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.File(p, n, name, testEnv(n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
