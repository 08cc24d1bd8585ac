package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"
)

// Retry says which failures to send again and how long to wait. Only
// failures that cannot have been an answer are retried: no response at all,
// or 429/502/503/504; never a name that does not resolve, a certificate, or
// a server that speaks plain HTTP. A retry sends the same bytes, so the same
// CommandUUID, and Do tells the adapter whether an earlier attempt may have
// reached the server: only then does "this CommandUUID already exists" mean
// the command was queued by that attempt.
type Retry struct {
	// Max is the number of retries after the first attempt.
	Max int
	// Base is the first backoff; each retry doubles it, up to MaxDelay.
	Base     time.Duration
	MaxDelay time.Duration
	// Timeout bounds one request with all its attempts and waits (0: only
	// the context's deadline does).
	Timeout time.Duration
	// OnlyUnlanded resends only while no attempt may have reached the
	// server, for servers that would queue a resent command twice.
	OnlyUnlanded bool
	// Sleep waits d or until ctx ends; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultRetry is what --retries 3 means.
var DefaultRetry = Retry{Max: 3, Base: 500 * time.Millisecond, MaxDelay: 30 * time.Second}

// NewRequest builds the request of one attempt under ctx. landed reports
// that an earlier attempt may have reached the server.
type NewRequest func(ctx context.Context, landed bool) (*http.Request, error)

// Sent is what Do tells the adapter about the attempts behind its reply.
type Sent struct {
	Attempts int
	// Landed: an attempt before the one whose reply Do returned may have
	// reached the server (its request was written and no reply turned it
	// away with 429 or 503). With an error from Do it covers every attempt.
	Landed bool
	// Status is the status of the reply Do returned, 0 for none.
	Status int
}

// Unanswered marks err, why the request got no per-device answer, as
// "may be queued" when an earlier attempt, or the reply itself when it is
// no answer (a 5xx other than 503, from a gateway or a crash), may have
// come after the command was queued. A nil err stays nil.
func (s Sent) Unanswered(err error) error {
	var (
		notEnrolled *NotEnrolledError
		unavailable *UnavailableError
	)
	switch {
	case err == nil, MayBeQueued(err), errors.As(err, &notEnrolled):
		// The foreign-key refusal rolls back any attempt's transaction.
		return err
	case s.Landed, errors.As(err, &unavailable) && s.Status >= 500 && s.Status != http.StatusServiceUnavailable:
		return &MaybeQueuedError{Err: err}
	}
	return err
}

// turnedAway reports whether a reply status proves the server did not
// take the request: a proxy or the server refusing it for load.
func turnedAway(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// retryable reports whether a reply status may be sent again.
func retryable(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// permanent reports a transport failure no retry can fix.
func permanent(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

// Do sends the requests newReq builds, retrying per the policy, and returns
// the final reply, its bounded body and what the attempts did.
//
// ctx ending (the first Ctrl-C) cancels any wait and starts no attempt
// after it, but an attempt in flight runs on to its reply, bounded by ctx's
// deadline and Timeout, so an answer that is on its way is not lost.
func (p Retry) Do(ctx context.Context, c *http.Client, newReq NewRequest, limit int64) (*http.Response, []byte, Sent, error) {
	start := time.Now()
	deadline, bounded := ctx.Deadline()
	if p.Timeout > 0 && (!bounded || start.Add(p.Timeout).Before(deadline)) {
		deadline, bounded = start.Add(p.Timeout), true
	}
	var (
		sent   Sent
		origin string // of the latest request, for the error of a cut one
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, nil, sent, cut(sent, start, origin, err)
		}
		sent.Attempts++
		resp, body, wrote, err := p.attempt(ctx, c, newReq, sent.Landed, deadline, bounded, limit, &origin)
		var unavailable *UnavailableError
		if errors.As(err, &unavailable) {
			unavailable.Attempts, unavailable.Elapsed = sent.Attempts, time.Since(start)
		}
		mayHaveLanded := wrote && (resp == nil || !turnedAway(resp.StatusCode))
		switch {
		case err == nil && !retryable(resp.StatusCode), sent.Attempts > p.Max:
		case err != nil && (unavailable == nil || permanent(err)):
			// A protocol error is an answer, however broken; an unknown
			// name stays unknown. Never resend either.
		case p.OnlyUnlanded && mayHaveLanded:
		default:
			delay := p.backoff(sent.Attempts)
			if resp != nil {
				if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
					delay = min(ra, p.MaxDelay)
				}
			}
			if bounded && time.Now().Add(delay).After(deadline) {
				if err == nil {
					err = &UnavailableError{Server: origin, Attempts: sent.Attempts, Elapsed: time.Since(start), Err: fmt.Errorf(
						"HTTP %d, and the next attempt, due in %s, would start after the request's time limit (--timeout)", resp.StatusCode, delay.Round(time.Millisecond))}
					sent.Status = resp.StatusCode
					return resp, body, sent, sent.Unanswered(err)
				}
				break // no time left for another attempt
			}
			sent.Landed = sent.Landed || mayHaveLanded
			if err := p.sleep(ctx, delay); err != nil {
				return nil, nil, sent, cut(sent, start, origin, err)
			}
			continue
		}
		if err != nil {
			// A reply that is no answer (lost, timed out) may follow a
			// landed request; a protocol error is the server's refusal.
			sent.Landed = sent.Landed || (mayHaveLanded && unavailable != nil)
			return resp, body, sent, sent.Unanswered(err)
		}
		sent.Status = resp.StatusCode
		return resp, body, sent, nil
	}
}

// attempt makes one exchange under a context that ctx's cancellation does
// not reach, and reports whether the whole request was written.
func (p Retry) attempt(ctx context.Context, c *http.Client, newReq NewRequest, landed bool, deadline time.Time, bounded bool, limit int64, origin *string) (*http.Response, []byte, bool, error) {
	actx := context.WithoutCancel(ctx)
	if bounded {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(actx, deadline)
		defer cancel()
	}
	var wrote atomic.Bool // set on the transport's writer goroutine
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	req, err := newReq(actx, landed)
	if err != nil {
		return nil, nil, false, err
	}
	*origin = Origin(req.URL)
	resp, body, err := Exchange(c, req, limit)
	return resp, body, wrote.Load(), err
}

// cut is the error of a request whose retries ctx stopped.
func cut(sent Sent, start time.Time, origin string, cause error) error {
	err := &UnavailableError{Server: origin, Attempts: sent.Attempts, Elapsed: time.Since(start),
		Err: fmt.Errorf("stopped before attempt %d: %w", sent.Attempts+1, cause)}
	return sent.Unanswered(err)
}

func (p Retry) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	return sleepCtx(ctx, d)
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
