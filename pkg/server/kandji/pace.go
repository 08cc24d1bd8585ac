package kandji

import (
	"context"
	"sync"
	"time"
)

// Kandji allows 10,000 requests per hour per customer. A session spends at
// most HourlyBudget of them in any hour: a burst of PaceBurst, then one
// request per PaceEvery, leaving the rest to the tenant's other clients.
const (
	HourlyBudget = 10000
	PaceBurst    = 1000
	PaceEvery    = time.Hour / (HourlyBudget - PaceBurst)
)

// Pacer is a token bucket spacing requests. A nil Pacer never waits.
type Pacer struct {
	Burst int
	Every time.Duration

	mu     sync.Mutex
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewPacer is Kandji's pacing: PaceBurst at once, then one per PaceEvery.
func NewPacer() *Pacer { return &Pacer{Burst: PaceBurst, Every: PaceEvery} }

// Wait takes a token, waiting for one if the bucket is empty, or returns
// ctx's error.
func (p *Pacer) Wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	d := p.reserve()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// reserve takes a token and says how long to wait before using it.
func (p *Pacer) reserve() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.now != nil {
		now = p.now()
	}
	if p.last.IsZero() {
		p.tokens, p.last = float64(p.Burst), now
	}
	if p.Every > 0 {
		p.tokens = min(float64(p.Burst), p.tokens+float64(now.Sub(p.last))/float64(p.Every))
	}
	p.last = now
	p.tokens--
	if p.tokens >= 0 || p.Every <= 0 {
		return 0
	}
	return time.Duration(-p.tokens * float64(p.Every))
}
