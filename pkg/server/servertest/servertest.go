// Package servertest holds what the stand-ins for servers that cannot run
// here (MicroMDM, Fleet, Jamf Pro, Kandji, SimpleMDM, Intune) share.
package servertest

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// WriteJSON answers with indented JSON, as both MicroMDM's httputil and
// Fleet's encodeResponse do.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Plist is req's property list, what a plist kind's adapter sends for it.
func Plist(t testing.TB, req server.Request) []byte {
	t.Helper()
	b, err := req.Plist()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// CloseWithoutReply closes the connection of w's request with no reply, as
// a crash or a proxy timeout after the server acted does. false: w cannot
// be taken over, and the caller answers as usual.
func CloseWithoutReply(w http.ResponseWriter) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Sleeps records a client's retry waits instead of sleeping them (its
// Sleep goes in server.Retry.Sleep).
type Sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

// Sleep records d.
func (s *Sleeps) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

// Waits are the recorded waits, in order.
func (s *Sleeps) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}
