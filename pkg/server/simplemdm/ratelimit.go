package simplemdm

import (
	"net/http"
	"strconv"
	"time"
)

// rateLimitReset turns a 429's X-RateLimit-Reset (an epoch time in seconds,
// as a public SimpleMDM client reads it; not in SimpleMDM's reference) into
// the Retry-After that server.Retry honours, when the reply has none.
type rateLimitReset struct {
	next http.RoundTripper
	now  func() time.Time
}

func (t *rateLimitReset) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "" {
		return resp, err
	}
	if wait, ok := resetWait(resp.Header.Get("X-RateLimit-Reset"), t.now()); ok {
		resp.Header.Set("Retry-After", strconv.Itoa(wait))
	}
	return resp, nil
}

// resetWait reads X-RateLimit-Reset as seconds to wait: an epoch time, or,
// for a small number, a count of seconds.
func resetWait(v string, now time.Time) (int, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if n > 1_000_000_000 { // an epoch time
		n -= now.Unix()
	}
	return int(max(n, 0)), true
}

// withRateLimitReset is hc with its transport wrapped; hc is not changed.
func withRateLimitReset(hc *http.Client) *http.Client {
	c := *hc
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = &rateLimitReset{next: next, now: time.Now}
	return &c
}
