package jamf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimitClient: however many requests a session makes at once, at most
// MaxConnections are in flight.
func TestLimitClient(t *testing.T) {
	var now, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		now.Add(-1)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	hc := limitClient(srv.Client(), MaxConnections)
	var wg sync.WaitGroup
	for range 4 * MaxConnections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > MaxConnections || p < 2 {
		t.Fatalf("peak %d requests in flight, want 2 to %d", p, MaxConnections)
	}
}
