package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
)

// pgsqlNanoMDM answers the enqueue API as NanoMDM v0.9.0 on PostgreSQL
// does (storage/pgsql/queue.go): one transaction inserts the command, then
// every queue row; a known CommandUUID or one unenrolled ID rolls it all
// back with lib/pq's words in a top-level command_error at HTTP 500.
type pgsqlNanoMDM struct {
	mu       sync.Mutex
	enrolled map[string]bool
	commands map[string]bool
	queue    map[string][]string // id -> command UUIDs
	requests int
	// dropReply, when set, is asked after each commit whether to close the
	// connection instead of answering: the command landed, the reply is lost.
	dropReply func(committed int) bool
	committed int
}

func newPGSQLNanoMDM(enrolled []string) *pgsqlNanoMDM {
	f := &pgsqlNanoMDM{enrolled: map[string]bool{}, commands: map[string]bool{}, queue: map[string][]string{}}
	for _, id := range enrolled {
		f.enrolled[id] = true
	}
	return f
}

func (f *pgsqlNanoMDM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	cmd, err := apple.ParseCommand(body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	ids := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/enqueue/"), ",")
	f.mu.Lock()
	f.requests++
	commandError := ""
	switch {
	case f.commands[cmd.CommandUUID]:
		commandError = `pq: duplicate key value violates unique constraint "commands_pkey"`
	default:
		for _, id := range ids {
			if !f.enrolled[id] {
				commandError = `pq: insert or update on table "enrollment_queue" violates foreign key constraint "enrollment_queue_id_fkey"`
			}
		}
	}
	drop := false
	if commandError == "" {
		f.commands[cmd.CommandUUID] = true
		for _, id := range ids {
			f.queue[id] = append(f.queue[id], cmd.CommandUUID)
		}
		f.committed++
		drop = f.dropReply != nil && f.dropReply(f.committed)
	}
	f.mu.Unlock()
	if drop {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	status := 200
	if commandError != "" {
		status = 500
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"no_push":true,"command_error":%q,"command_uuid":%q,"request_type":"DeviceLock"}`, commandError, cmd.CommandUUID)
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

// sendTo sends one command for ids to f through the real NanoMDM adapter
// and returns each device's report, keyed by ID, and the BeforeSend count.
func sendTo(t *testing.T, f *pgsqlNanoMDM, all []string, newUUID func() string, fixedUUID string) (map[string]report.Device, int) {
	t.Helper()
	srv := httptest.NewServer(f)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	client := &nanomdm.Client{BaseURL: u, APIKey: "k", HTTP: srv.Client(),
		Retry: server.Retry{Max: 2, Sleep: func(context.Context, time.Duration) error { return nil }}}
	lock := &apple.DeviceLock{Message: "m"}
	ts := make([]*Target, len(all))
	for i, id := range all {
		ts[i] = &Target{ID: id, Lock: lock, Facts: &apple.Device{}}
	}
	Assess(ts)
	cmds, err := Plan(ts, server.Limits{MaxIDs: 1000, MaxIDBytes: 1 << 20}, newUUID, fixedUUID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]report.Device{}
	var befores atomic.Int64
	opts := Options{NoPush: true, Concurrency: 2, BeforeSend: func(Command) error { befores.Add(1); return nil }}
	if fixedUUID == "" {
		opts.NewUUID = newUUID
	}
	_ = Send(context.Background(), client, cmds, opts, func(d report.Device) {
		if _, twice := got[d.ID]; twice {
			t.Errorf("%s reported twice", d.ID)
		}
		got[d.ID] = d
	})
	if len(got) != len(all) {
		t.Errorf("%d devices reported, want %d", len(got), len(all))
	}
	return got, int(befores.Load())
}

func safeCounter() func() string {
	var n atomic.Int64
	return func() string { return fmt.Sprintf("UUID-%d", n.Add(1)) }
}

// TestStaleIDsSplit: on PostgreSQL one unenrolled ID refuses the whole
// request; the halves go again under fresh UUIDs until the stale IDs stand
// alone. Every other device is queued exactly once, within the request bound.
func TestStaleIDsSplit(t *testing.T) {
	tests := []struct {
		name         string
		n            int
		stale        []int // indexes of IDs never enrolled
		dropFirstAck bool  // the reply of the first commit is lost: the retry meets "duplicate"
	}{
		{"clean", 8, nil, false},
		{"1 stale of 8", 8, []int{5}, false},
		{"3 stale of 1000", 1000, []int{0, 499, 998}, false},
		{"all stale", 8, []int{0, 1, 2, 3, 4, 5, 6, 7}, false},
		{"stale, and a retry meets its own landed command", 8, []int{2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			all := ids("DEV", tt.n)
			isStale := map[string]bool{}
			var enrolled []string
			for _, i := range tt.stale {
				isStale[all[i]] = true
			}
			for _, id := range all {
				if !isStale[id] {
					enrolled = append(enrolled, id)
				}
			}
			f := newPGSQLNanoMDM(enrolled)
			if tt.dropFirstAck {
				f.dropReply = func(committed int) bool { return committed == 1 }
			}
			got, befores := sendTo(t, f, all, safeCounter(), "")
			for _, id := range all {
				d := got[id]
				switch {
				case isStale[id]:
					if d.Outcome != report.Failed || !strings.Contains(d.Error, "not enrolled on this server") {
						t.Errorf("stale %s: %s %q", id, d.Outcome, d.Error)
					}
				case d.Outcome != report.Queued || len(f.queue[id]) != 1 || f.queue[id][0] != d.CommandUUID:
					t.Errorf("%s: %s %q, queue %v", id, d.Outcome, d.Error, f.queue[id])
				}
			}
			k := len(tt.stale)
			bound := 1 + 2*k*int(math.Ceil(math.Log2(float64(tt.n))))
			if tt.dropFirstAck {
				bound++ // the retry
			}
			if f.requests > bound {
				t.Errorf("%d requests for %d stale of %d, bound %d", f.requests, k, tt.n, bound)
			}
			sends := f.requests
			if tt.dropFirstAck {
				sends-- // a retry is the same request, escrowed and journaled once
			}
			if befores != sends {
				t.Errorf("BeforeSend ran %d times for %d requests", befores, sends)
			}
		})
	}
}

// TestStaleIDWithFixedUUID: a fixed CommandUUID cannot be split; every
// device fails, saying why and what to do, and nothing is queued.
func TestStaleIDWithFixedUUID(t *testing.T) {
	f := newPGSQLNanoMDM([]string{"A", "C"})
	got, _ := sendTo(t, f, []string{"A", "B", "C"}, safeCounter(), "FIXED")
	for _, id := range []string{"A", "B", "C"} {
		if d := got[id]; d.Outcome != report.Failed || !strings.Contains(d.Error, "drop --command-uuid") {
			t.Errorf("%s: %s %q", id, d.Outcome, d.Error)
		}
	}
	if f.requests != 1 || len(f.queue) != 0 {
		t.Errorf("%d requests, queue %v", f.requests, f.queue)
	}
	// One device alone: the answer names it.
	got, _ = sendTo(t, newPGSQLNanoMDM(nil), []string{"B"}, safeCounter(), "FIXED")
	if d := got["B"]; d.Outcome != report.Failed || !strings.Contains(d.Error, "not enrolled on this server") {
		t.Errorf("B alone: %s %q", d.Outcome, d.Error)
	}
}

// stubServer answers every request with res and err.
type stubServer struct {
	res func(server.Request) *server.Result
	err error
}

func (s stubServer) Enqueue(_ context.Context, req server.Request) (*server.Result, error) {
	if s.err != nil {
		return nil, s.err
	}
	return s.res(req), nil
}

// TestSendReports: what a request without a full answer leaves each device.
func TestSendReports(t *testing.T) {
	unavailable := &server.UnavailableError{Server: "https://mdm", Err: errors.New("EOF")}
	tests := []struct {
		name    string
		srv     stubServer
		want    report.Outcome
		reached bool // want NotReached false
	}{
		{"may have landed", stubServer{err: &server.MaybeQueuedError{Err: unavailable}}, report.Unknown, true},
		{"never reached", stubServer{err: unavailable}, report.Failed, false},
		{"credentials", stubServer{err: &server.HTTPError{Status: 401}}, report.Failed, true},
		{"an answer short of devices", stubServer{res: func(req server.Request) *server.Result {
			return &server.Result{Devices: []server.DeviceResult{{ID: req.IDs[0], Outcome: server.Queued}}}
		}}, report.Unknown, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := targets(3, &apple.DeviceLock{}, &apple.Device{})
			cmds, _ := Plan(ts, nanomdm.Limits, counter(), "")
			got := map[string]report.Device{}
			_ = Send(context.Background(), tt.srv, cmds, Options{NewUUID: counter()}, func(d report.Device) { got[d.ID] = d })
			if len(got) != 3 {
				t.Fatalf("%d devices reported", len(got))
			}
			d := got["DEV00002"] // never the first: the short answer covers that one
			if d.Outcome != tt.want || d.NotReached == tt.reached || d.Error == "" {
				t.Errorf("%+v, want %s (reached %t)", d, tt.want, tt.reached)
			}
		})
	}
}
