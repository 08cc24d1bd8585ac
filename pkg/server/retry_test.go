package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
			resp, _, attempts, err := p.Do(srv.Client(), func() (*http.Request, error) {
				return http.NewRequest(http.MethodPut, srv.URL, nil)
			}, 1024)
			if err != nil || attempts != tt.attempts || resp.StatusCode != tt.final {
				t.Fatalf("attempts %d status %v err %v; want %d %d", attempts, resp, err, tt.attempts, tt.final)
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
	_, _, attempts, err := p.Do(http.DefaultClient, func() (*http.Request, error) { return http.NewRequest(http.MethodPut, url, nil) }, 1024)
	var u *UnavailableError
	if attempts != 3 || !errors.As(err, &u) || u.Attempts != 3 {
		t.Fatalf("attempts %d, err %v", attempts, err)
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
