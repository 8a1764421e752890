package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// bmcProgress shows nodes finishing on stderr: a redrawn bar on a terminal,
// otherwise one line per node.
type bmcProgress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	reason  func(*bmcResult) string
	total   int
	done    int
	ok      int
	failed  int
	skipped int
	start   time.Time
	quit    chan struct{}
	wg      sync.WaitGroup
	stopped bool
}

func newBMCProgress(w io.Writer, tty bool, total int, reason func(*bmcResult) string) *bmcProgress {
	p := &bmcProgress{w: w, tty: tty, total: total, reason: reason, start: time.Now(), quit: make(chan struct{})}
	if tty && total > 0 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(500 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-p.quit:
					return
				case <-tick.C:
					p.mu.Lock()
					p.draw()
					p.mu.Unlock()
				}
			}
		}()
	}
	return p
}

const bmcBarWidth = 30

// draw redraws the bar; p.mu is held.
func (p *bmcProgress) draw() {
	if p.stopped {
		return
	}
	filled := 0
	if p.total > 0 {
		filled = p.done * bmcBarWidth / p.total
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", bmcBarWidth-filled)
	fmt.Fprintf(p.w, "\r\x1b[K[%s] %d/%d nodes  %d ok  %d failed  %s", bar, p.done, p.total, p.ok, p.failed,
		time.Since(p.start).Round(100*time.Millisecond))
}

// finished records one node's end.
func (p *bmcProgress) finished(r *bmcResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	switch r.status() {
	case "ok":
		p.ok++
	case "failed":
		p.failed++
	default:
		p.skipped++
	}
	if p.tty {
		p.draw()
		return
	}
	in := " (not started)"
	if !r.started.IsZero() {
		in = " in " + bmcTook(r)
	}
	var msg string
	switch r.status() {
	case "ok":
		msg = "ok" + in
	case "failed":
		msg = fmt.Sprintf("failed (%s)%s: %s", r.kind, in, p.reason(r))
	default:
		msg = "skipped: " + p.reason(r)
	}
	fmt.Fprintf(p.w, "racklift bmc: [%d/%d] %s %s\n", p.done, p.total, r.node.Name, msg)
}

// stop ends the ticker and clears the bar.
func (p *bmcProgress) stop() {
	close(p.quit)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.total > 0 && !p.stopped {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	p.stopped = true
}
