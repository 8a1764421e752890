package agent

import (
	"fmt"
	"time"

	"github.com/racklift/racklift/provision/nodeapi"
)

// Progress turns the stream's byte counts into progress callbacks: one
// at the first update, then at most one per Interval, and one when the
// last byte is written.
type Progress struct {
	// Interval between callbacks (default 5 s).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Send delivers a callback body; it must not block (Reporter's
	// ProgressAsync).
	Send func(nodeapi.CallbackBody)
	// From and To map the bytes written onto the install's percent
	// (default 10 to 85).
	From, To int

	start, last time.Time
	started     bool
	sent        int
}

// Update reports written of total bytes.
func (p *Progress) Update(written, total int64) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	t := now()
	first := !p.started
	if first {
		p.start, p.last, p.started = t, t, true
		if p.Interval <= 0 {
			p.Interval = 5 * time.Second
		}
		if p.From == 0 && p.To == 0 {
			p.From, p.To = 10, 85
		}
	}
	done := written >= total
	if !first && !done && t.Sub(p.last) < p.Interval {
		return
	}
	p.last = t
	rate := 0.0
	if el := t.Sub(p.start).Seconds(); el > 0 {
		rate = float64(written) / 1e6 / el
	}
	pct := p.From
	if total > 0 {
		pct = p.From + int(int64(p.To-p.From)*written/total)
	}
	p.sent++
	p.Send(nodeapi.CallbackBody{
		Percent:  &pct,
		Step:     StepImage,
		Bytes:    written,
		Total:    total,
		RateMBps: float64(int(rate*10)) / 10,
		Detail:   fmt.Sprintf("writing the image: %s of %s at %.1f MB/s", HumanBytes(written), HumanBytes(total), rate),
	})
}

// Sent is the number of callbacks sent so far.
func (p *Progress) Sent() int { return p.sent }
