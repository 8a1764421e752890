package webui_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/racklift/racklift/provision/events"
	"github.com/racklift/racklift/provision/handoff"
	"github.com/racklift/racklift/provision/nodeapi"
	"github.com/racklift/racklift/webui"
)

// phaseSource reports the same phase for every node and no facts.
type phaseSource struct{ phase map[string]events.Phase }

func (s phaseSource) Node(_ context.Context, name string) (events.NodeState, bool, error) {
	p, ok := s.phase[name]
	return events.NodeState{Name: name, Phase: p}, ok, nil
}
func (phaseSource) Facts(context.Context, string) (*nodeapi.Facts, bool, error) {
	return nil, false, nil
}

func TestHandoffAPI(t *testing.T) {
	p := testPlan(t, 4)
	key, err := handoff.LoadOrCreateDeployKey(t.TempDir(), "racklift-deploy@cs")
	if err != nil {
		t.Fatal(err)
	}
	src := phaseSource{phase: map[string]events.Phase{}}
	for _, n := range p.Nodes {
		src.phase[n.Name] = handoff.PhaseVerified
	}
	src.phase["cs-compute-0004"] = events.PhaseReady
	api := &webui.API{Plan: p, Store: openStore(t, t.TempDir()), Token: "s3cret",
		Handoff: &handoff.Service{Plan: p, Source: src, Key: key}}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	get := func(path string, auth bool) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer s3cret")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	if res := get("/api/v1/handoff/bundle.tar.gz?allow_unverified=true", false); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bundle without the admin token: %d", res.StatusCode)
	}
	res := get("/api/v1/handoff", true)
	var rd handoff.Readiness
	if err := json.NewDecoder(res.Body).Decode(&rd); err != nil || res.StatusCode != 200 {
		t.Fatalf("readiness: %d %v", res.StatusCode, err)
	}
	if rd.Ready || rd.Verified != len(p.Nodes)-1 || rd.Nodes[len(rd.Nodes)-1].Reason != "ready, not verified yet" {
		t.Errorf("readiness %+v", rd)
	}
	if res := get("/api/v1/handoff/bundle.tar.gz", true); res.StatusCode != http.StatusConflict {
		t.Errorf("bundle while not every node is verified: %d", res.StatusCode)
	}
	src.phase["cs-compute-0004"] = handoff.PhaseVerified
	res = get("/api/v1/handoff/bundle.tar.gz", true)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/gzip" || !strings.Contains(res.Header.Get("Content-Disposition"), `filename="racklift-handoff-cs.tar.gz"`) {
		t.Fatalf("bundle: %d %v", res.StatusCode, res.Header)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	for _, want := range []string{"racklift-handoff-cs/kolla/multinode", "racklift-handoff-cs/ceph/cluster.yaml", "racklift-handoff-cs/ssh/id_ed25519"} {
		if !strings.Contains(strings.Join(names, "\n"), want) {
			t.Errorf("%s not in the archive: %v", want, names)
		}
	}
	noHandoff := httptest.NewServer((&webui.API{Plan: p, Store: openStore(t, t.TempDir())}).Handler())
	defer noHandoff.Close()
	r2, err := http.Get(noHandoff.URL + "/api/v1/handoff")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without a Handoff: %d", r2.StatusCode)
	}
}
