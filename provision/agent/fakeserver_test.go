package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/racklift/racklift/provision/nodeapi"
)

// fakeRacklift is a TEST DOUBLE of racklift's node-facing server (the
// real routes are wired by boot/httpboot): it serves one node's
// instructions, one image's manifest and blobs, and records the
// callbacks it receives. It checks the token like the real server does.
type fakeRacklift struct {
	mu           sync.Mutex
	instructions []byte
	mac, token   string
	manifest     []byte
	blobs        map[string][]byte
	// refuseInstructions answers the first N instruction requests 403,
	// as racklift does before it has seen the node's address.
	refuseInstructions int
	instrRequests      int
	callbacks          []callback
	notify             chan callback
}

type callback struct {
	Phase string
	Body  nodeapi.CallbackBody
	At    time.Time
}

func newFakeRacklift(in nodeapi.Instructions, manifest []byte, blobs map[string][]byte) *fakeRacklift {
	b, _ := json.Marshal(in)
	return &fakeRacklift{instructions: b, mac: in.MAC, token: in.Token, manifest: manifest, blobs: blobs, notify: make(chan callback, 1000)}
}

func (f *fakeRacklift) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+nodeapi.PathAgentInstructions, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.instrRequests++
		refuse := f.instrRequests <= f.refuseInstructions
		f.mu.Unlock()
		if refuse || r.PathValue("mac") != f.mac {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.instructions)
	})
	mux.HandleFunc("GET "+nodeapi.PathImageManifest, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(f.manifest)
	})
	mux.HandleFunc("GET "+nodeapi.PathBlob, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		b, ok := f.blobs[r.PathValue("sha256")]
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST "+nodeapi.PathPhoneHome, func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("mac") != f.mac || r.Header.Get(nodeapi.TokenHeader) != f.token {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		var cb callback
		cb.Phase, cb.At = r.PathValue("phase"), time.Now()
		data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		_ = json.Unmarshal(data, &cb.Body)
		f.mu.Lock()
		f.callbacks = append(f.callbacks, cb)
		f.mu.Unlock()
		select {
		case f.notify <- cb:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (f *fakeRacklift) Callbacks() []callback {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]callback(nil), f.callbacks...)
}

func (f *fakeRacklift) phases() []string {
	var p []string
	for _, c := range f.Callbacks() {
		if c.Phase != nodeapi.PhaseProgress {
			p = append(p, c.Phase)
		}
	}
	return p
}
