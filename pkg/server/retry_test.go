package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryDo(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int // answered in turn; the last repeats
		max        int
		attempts   int
		final      int
		slept      []time.Duration
		retryAfter string
	}{
		{"ok at once", []int{200}, 3, 1, 200, nil, ""},
		{"503 then ok", []int{503, 200}, 3, 2, 200, []time.Duration{-1}, ""},
		{"429 honors Retry-After", []int{429, 200}, 3, 2, 200, []time.Duration{2 * time.Second}, "2"},
		{"gives up after max", []int{502}, 2, 3, 502, []time.Duration{-1, -1}, ""},
		{"400 is never retried", []int{400}, 3, 1, 400, nil, ""},
		{"500 is an answer", []int{500}, 3, 1, 500, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.statuses[min(i, len(tt.statuses)-1)])
			}))
			defer srv.Close()
			var slept []time.Duration
			p := Retry{Max: tt.max, Base: 100 * time.Millisecond, MaxDelay: 10 * time.Second,
				Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
			resp, _, sent, err := p.Do(context.Background(), srv.Client(), put(srv.URL), 1024)
			if err != nil || sent.Attempts != tt.attempts || resp.StatusCode != tt.final {
				t.Fatalf("attempts %d status %v err %v; want %d %d", sent.Attempts, resp, err, tt.attempts, tt.final)
			}
			if len(slept) != len(tt.slept) {
				t.Fatalf("slept %v, want %d sleeps", slept, len(tt.slept))
			}
			for i, want := range tt.slept {
				if want >= 0 && slept[i] != want {
					t.Errorf("sleep %d = %s, want %s", i, slept[i], want)
				}
				if want < 0 && (slept[i] <= 0 || slept[i] > p.MaxDelay) {
					t.Errorf("backoff %d = %s out of bounds", i, slept[i])
				}
			}
		})
	}
}

func TestRetryConnectionFailureCarriesAttempts(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	p := Retry{Max: 2, Sleep: func(context.Context, time.Duration) error { return nil }}
	_, _, sent, err := p.Do(context.Background(), http.DefaultClient, put(url), 1024)
	var u *UnavailableError
	if sent.Attempts != 3 || !errors.As(err, &u) || u.Attempts != 3 {
		t.Fatalf("attempts %d, err %v", sent.Attempts, err)
	}
	// Refused before connecting: nothing can have reached the server.
	if sent.Landed || MayBeQueued(err) || !NotReached(err) {
		t.Errorf("a refused connection may have landed? %+v %v", sent, err)
	}
}

func put(url string) NewRequest {
	return func(ctx context.Context, _ bool) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader("<plist/>"))
	}
}

// TestRetryLanded: Do tells the adapter whether an earlier attempt may
// have reached the server: written and not turned away with 429 or 503.
func TestRetryLanded(t *testing.T) {
	tests := []struct {
		name    string
		replies []string // per attempt: a status, or "drop" (the connection closes after the request)
		landed  bool     // Sent.Landed
		queued  bool     // MayBeQueued(err), when the last reply is no answer
	}{
		{"first attempt", []string{"200"}, false, false},
		{"after 503", []string{"503", "200"}, false, false},
		{"after 429", []string{"429", "200"}, false, false},
		{"after 502", []string{"502", "200"}, true, false},
		{"after 504", []string{"504", "200"}, true, false},
		{"after a dropped reply", []string{"drop", "200"}, true, false},
		{"503s only", []string{"503", "503"}, false, false},
		{"dropped, then 503", []string{"drop", "503"}, true, true},
		{"dropped every time", []string{"drop", "drop"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				reply := tt.replies[min(int(n.Add(1))-1, len(tt.replies)-1)]
				if reply == "drop" {
					conn, _, _ := w.(http.Hijacker).Hijack()
					conn.Close()
					return
				}
				code, _ := strconv.Atoi(reply)
				w.WriteHeader(code)
			}))
			defer srv.Close()
			p := Retry{Max: len(tt.replies) - 1, Sleep: func(context.Context, time.Duration) error { return nil }}
			landedSeen := []bool{}
			newReq := func(ctx context.Context, landed bool) (*http.Request, error) {
				landedSeen = append(landedSeen, landed)
				return put(srv.URL)(ctx, landed)
			}
			resp, _, sent, err := p.Do(context.Background(), srv.Client(), newReq, 1024)
			if err == nil {
				err = sent.Unanswered(CheckStatus(Origin(resp.Request.URL), resp.StatusCode, nil, 200))
			}
			if sent.Attempts != len(tt.replies) || sent.Landed != tt.landed || MayBeQueued(err) != tt.queued {
				t.Fatalf("sent %+v, err %v (may be queued %t); want landed %t, may be queued %t", sent, err, MayBeQueued(err), tt.landed, tt.queued)
			}
			if last := landedSeen[len(landedSeen)-1]; last != tt.landed {
				t.Errorf("newReq was told landed=%t, want %t", last, tt.landed)
			}
		})
	}
}

// TestRetryNeverFixes: failures no retry can fix fail at once, with the reason.
func TestRetryNeverFixes(t *testing.T) {
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	defer untrusted.Close()
	noSuchHost := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "mdm.example.invalid", IsNotFound: true}}
	}}}
	tests := []struct {
		name   string
		client *http.Client
		url    string
		want   string
	}{
		{"plain HTTP server", http.DefaultClient, strings.Replace(plain.URL, "http:", "https:", 1), "gave an HTTP response to an HTTPS request"},
		{"untrusted certificate", http.DefaultClient, untrusted.URL, "TLS certificate not trusted"},
		{"name does not resolve", noSuchHost, "https://mdm.example.invalid", "no such host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slept := 0
			p := Retry{Max: 3, Sleep: func(context.Context, time.Duration) error { slept++; return nil }}
			_, _, sent, err := p.Do(context.Background(), tt.client, put(tt.url), 1024)
			if err == nil || !strings.Contains(err.Error(), tt.want) || sent.Attempts != 1 || slept != 0 {
				t.Fatalf("attempts %d, slept %d, err %v; want one attempt failing with %q", sent.Attempts, slept, err, tt.want)
			}
			if MayBeQueued(err) {
				t.Errorf("%v: nothing can have reached the server", err)
			}
		})
	}
}

// TestRetryStops: ctx ending cancels a Retry-After wait and starts no
// attempt after it; Timeout bounds the attempts and waits together.
func TestRetryStops(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	p := Retry{Max: 3, MaxDelay: time.Minute}
	start := time.Now()
	_, _, sent, err := p.Do(ctx, srv.Client(), put(srv.URL), 1024)
	if !errors.Is(err, context.Canceled) || sent.Attempts != 1 || n.Load() != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("after cancel: attempts %d, requests %d, err %v", sent.Attempts, n.Load(), err)
	}
	if !NotReached(err) {
		t.Errorf("a 503 cut by ctx reached nothing: %v", err)
	}

	// A wait that would end after the time limit is not begun.
	p = Retry{Max: 3, MaxDelay: time.Minute, Timeout: 2 * time.Second}
	_, _, sent, err = p.Do(context.Background(), srv.Client(), put(srv.URL), 1024)
	if err == nil || !strings.Contains(err.Error(), "HTTP 503, and the next attempt, due in 30s, would start after") || sent.Attempts != 1 || !NotReached(err) {
		t.Fatalf("with a 2s limit and Retry-After 30: %+v, %v", sent, err)
	}
}

// TestRetryAttemptOutlivesStop: an attempt in flight when ctx ends runs on
// to its reply, so an answer on its way is not lost.
func TestRetryAttemptOutlivesStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	resp, _, _, err := Retry{Max: 3}.Do(ctx, srv.Client(), put(srv.URL), 1024)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("in-flight attempt: %v, %v", resp, err)
	}
}

func TestBackoffBounds(t *testing.T) {
	p := Retry{Base: 500 * time.Millisecond, MaxDelay: 4 * time.Second}
	for attempt := 1; attempt < 70; attempt++ {
		d := p.backoff(attempt)
		if d <= 0 || d > p.MaxDelay {
			t.Fatalf("backoff(%d) = %s", attempt, d)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"3":                             3 * time.Second,
		"0":                             0,
		"Sat, 28 Nov 2026 06:00:10 GMT": 10 * time.Second,
		"Sat, 28 Nov 2026 05:00:00 GMT": 0,
	} {
		got, ok := retryAfter(in, now)
		if !ok || got != want {
			t.Errorf("retryAfter(%q) = %s, %t; want %s", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "-1", "soon"} {
		if _, ok := retryAfter(bad, now); ok {
			t.Errorf("retryAfter(%q) accepted", bad)
		}
	}
}
