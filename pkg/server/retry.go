package server

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Retry says which failures to send again and how long to wait. Only
// failures that cannot have been an answer are retried: no response at all,
// or 429/502/503/504. A retry sends the same bytes, so the same CommandUUID:
// NanoMDM refuses a UUID it holds, so a retry never queues twice there (the
// adapter reads that refusal as "queued"). MicroMDM has no such check; its
// adapter retries only what cannot have reached the queue.
type Retry struct {
	// Max is the number of retries after the first attempt.
	Max int
	// Base is the first backoff; each retry doubles it, up to MaxDelay.
	Base     time.Duration
	MaxDelay time.Duration
	// Sleep waits d or until ctx ends; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultRetry is what --retries 3 means.
var DefaultRetry = Retry{Max: 3, Base: 500 * time.Millisecond, MaxDelay: 30 * time.Second}

// retryable reports whether a reply status may be sent again.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Do sends the request newReq builds, retrying per the policy, and returns
// the final reply, its bounded body and how many attempts were made.
func (p Retry) Do(c *http.Client, newReq func() (*http.Request, error), limit int64) (*http.Response, []byte, int, error) {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		req, err := newReq()
		if err != nil {
			return nil, nil, attempt, err
		}
		resp, body, err := Exchange(c, req, limit)
		last := attempt > p.Max
		var unavailable *UnavailableError
		if errors.As(err, &unavailable) {
			unavailable.Attempts, unavailable.Elapsed = attempt, time.Since(start)
		}
		switch {
		case err == nil && !retryable(resp.StatusCode), last, req.Context().Err() != nil:
			return resp, body, attempt, err
		case err != nil && unavailable == nil:
			// A protocol error is an answer, however broken: never resend.
			return resp, body, attempt, err
		}
		delay := p.backoff(attempt)
		if resp != nil {
			if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				delay = min(ra, p.MaxDelay)
			}
		}
		sleep := p.Sleep
		if sleep == nil {
			sleep = sleepCtx
		}
		if err := sleep(req.Context(), delay); err != nil {
			return resp, body, attempt, &UnavailableError{Server: Origin(req.URL), Err: err}
		}
	}
}

// backoff is exponential with full jitter, so many mdmctl runs retrying at
// once do not arrive together.
func (p Retry) backoff(attempt int) time.Duration {
	d := p.Base << (attempt - 1)
	if d <= 0 || d > p.MaxDelay {
		d = p.MaxDelay
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses Retry-After as seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
