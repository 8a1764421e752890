package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/racklift/racklift/provision/image"
	"github.com/racklift/racklift/provision/nodeapi"
)

// Limits of what the agent reads from the server.
const (
	maxInstructions = 8 << 20
	maxManifest     = 64 << 20
)

// NewHTTPClient returns the agent's HTTP client: no proxy (the deploy
// environment has none), bounded connects and response headers; each
// request is bounded by its context.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

// Client talks to racklift (and blob peers) for the agent.
type Client struct {
	HTTP *http.Client
	Log  *slog.Logger
	// Backoff bounds: the first pause and the longest (defaults 1 s, 15 s).
	MinBackoff, MaxBackoff time.Duration
}

func (c *Client) backoff(attempt int) time.Duration {
	lo, hi := c.MinBackoff, c.MaxBackoff
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = 15 * time.Second
	}
	d := lo << min(attempt, 10)
	return min(d, hi)
}

// httpError is a non-2xx answer.
type httpError struct {
	url    string
	status int
	text   string
	body   string
}

func (e *httpError) Error() string {
	s := fmt.Sprintf("GET %s: %s", e.url, e.text)
	if e.body != "" {
		s += ": " + e.body
	}
	return s
}

func (c *Client) get(ctx context.Context, url string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, &httpError{url: url, status: resp.StatusCode, text: resp.Status, body: strings.TrimSpace(string(b))}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	return b, nil
}

// ErrInstructions: the agent could not get usable instructions.
var ErrInstructions = errors.New("instructions")

// Instructions fetches the node's instructions from
// nodeapi.AgentInstructionsURL(server, mac), retrying with backoff
// (every error, including 403 and 404: the server may not have seen the
// node's address yet) until bound has passed. It checks that they are
// for mac and complete.
func (c *Client) Instructions(ctx context.Context, server, mac string, bound time.Duration) (*nodeapi.Instructions, int, error) {
	url := nodeapi.AgentInstructionsURL(server, mac)
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		b, err := c.get(rctx, url, maxInstructions)
		rcancel()
		if err == nil {
			in, err := parseInstructions(b, mac)
			return in, attempt + 1, err
		}
		last = err
		if attempt == 0 || attempt%5 == 0 {
			c.Log.Warn("instructions not available yet, retrying", "url", url, "attempt", attempt+1, "err", err)
		}
		select {
		case <-ctx.Done():
			hint := ""
			var he *httpError
			if errors.As(last, &he) && he.status == http.StatusForbidden {
				hint = " (racklift serves instructions only to the address the node booted from: check that the DHCP server gives the agent the same address as the boot firmware)"
			}
			return nil, attempt + 1, fmt.Errorf("%w: no answer from %s after %d attempts in %v: %v%s", ErrInstructions, url, attempt+1, bound, last, hint)
		case <-time.After(c.backoff(attempt)):
		}
	}
}

func parseInstructions(b []byte, mac string) (*nodeapi.Instructions, error) {
	var in nodeapi.Instructions
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrInstructions, err)
	}
	hw, err := net.ParseMAC(in.MAC)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: mac %q: %v", ErrInstructions, in.MAC, err)
	case hw.String() != mac:
		return nil, fmt.Errorf("%w: they are for MAC %s (node %q), this node booted from %s", ErrInstructions, hw, in.Node, mac)
	}
	in.MAC = hw.String()
	var missing []string
	if in.Token == "" {
		missing = append(missing, "token")
	}
	if in.Image.ManifestURL == "" {
		missing = append(missing, "image.manifest_url")
	}
	if !image.ValidBlobName(in.Image.ManifestSHA256) {
		missing = append(missing, "image.manifest_sha256")
	}
	if len(in.Image.BlobURLs) == 0 {
		missing = append(missing, "image.blob_urls")
	}
	if in.OSDisk == (nodeapi.DiskMatch{}) {
		missing = append(missing, "os_disk")
	}
	if in.Seed.MetaData == "" {
		missing = append(missing, "seed.meta_data")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w for node %q lack %s", ErrInstructions, in.Node, strings.Join(missing, ", "))
	}
	return &in, nil
}

// ErrManifest: the manifest could not be fetched or is not the one the
// instructions name.
var ErrManifest = errors.New("image manifest")

// Manifest fetches ref's manifest (retrying within bound), checks its
// SHA-256 against the instructions' and validates it.
func (c *Client) Manifest(ctx context.Context, ref nodeapi.ImageRef, bound time.Duration) (*image.Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var b []byte
	var err error
	for attempt := 0; ; attempt++ {
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		b, err = c.get(rctx, ref.ManifestURL, maxManifest+1)
		rcancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w of %s: %v", ErrManifest, ref.Name, err)
		case <-time.After(c.backoff(attempt)):
		}
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("%w of %s: larger than %d bytes", ErrManifest, ref.Name, maxManifest)
	}
	if got := sha256Hex(b); got != ref.ManifestSHA256 {
		return nil, fmt.Errorf("%w of %s from %s: SHA-256 %s, the instructions say %s (not the imported manifest: another server, or the image was re-imported since the instructions were made)", ErrManifest, ref.Name, ref.ManifestURL, got, ref.ManifestSHA256)
	}
	var m image.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w of %s: %v", ErrManifest, ref.Name, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w of %s: %w", ErrManifest, ref.Name, err)
	}
	if m.Name != ref.Name {
		return nil, fmt.Errorf("%w: the manifest is for image %q, the instructions name %q", ErrManifest, m.Name, ref.Name)
	}
	return &m, nil
}

// FetchBlob implements BlobFetcher: GET base/blobs/NAME (nodeapi.BlobURL),
// bounded to 2 minutes.
func (c *Client) FetchBlob(ctx context.Context, base, name string, max int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return c.get(ctx, nodeapi.BlobURL(base, name), max)
}

// Reporter posts the agent's callbacks to PhoneHomeURL with the token.
type Reporter struct {
	Client *Client
	Server string
	MAC    string
	Token  string
	// Tries and Timeout bound one callback (defaults 5 and 10 s).
	Tries   int
	Timeout time.Duration

	mu      sync.Mutex
	pending *nodeapi.CallbackBody
	wake    chan struct{}
	done    chan struct{}
}

// Post sends one callback, retrying failures (transport errors and 5xx)
// with backoff. A 4xx answer is not retried.
func (r *Reporter) Post(ctx context.Context, phase string, body nodeapi.CallbackBody) error {
	tries := r.Tries
	if tries <= 0 {
		tries = 5
	}
	return r.send(ctx, phase, body, tries)
}

func (r *Reporter) send(ctx context.Context, phase string, body nodeapi.CallbackBody, tries int) error {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if len(body.Detail) > 480 {
		body.Detail = body.Detail[:477] + "..."
	}
	data, _ := json.Marshal(body)
	url := nodeapi.PhoneHomeURL(r.Server, r.MAC, phase)
	var last error
	for i := 0; i < tries; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(r.Client.backoff(i - 1)):
			}
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(data))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(nodeapi.TokenHeader, r.Token)
		resp, err := r.Client.HTTP.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
		}
		cancel()
		switch {
		case err != nil:
			last = err
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			return nil
		case resp.StatusCode >= 500:
			last = fmt.Errorf("POST %s: %s", url, resp.Status)
		default:
			return fmt.Errorf("POST %s: %s", url, resp.Status)
		}
	}
	return fmt.Errorf("callback %s not delivered after %d tries: %w", phase, tries, last)
}

// Start runs the background sender of progress callbacks (ProgressAsync)
// until ctx ends or Stop is called.
func (r *Reporter) Start(ctx context.Context) {
	r.wake = make(chan struct{}, 1)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			}
			r.mu.Lock()
			b := r.pending
			r.pending = nil
			r.mu.Unlock()
			if b == nil {
				return // Stop
			}
			if err := r.send(ctx, nodeapi.PhaseProgress, *b, 1); err != nil {
				r.Client.Log.Warn("progress callback failed (the install goes on)", "err", err)
			}
		}
	}()
}

// ProgressAsync queues a progress callback without waiting: if one is
// still being sent, the newest queued replaces any older queued one. Call
// it from one goroutine, between Start and Stop.
func (r *Reporter) ProgressAsync(b nodeapi.CallbackBody) {
	if r.wake == nil {
		return
	}
	r.mu.Lock()
	r.pending = &b
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Stop ends the background sender after the callback in flight.
func (r *Reporter) Stop() {
	if r.wake == nil {
		return
	}
	r.mu.Lock()
	r.pending = nil
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	<-r.done
	r.wake = nil
}
