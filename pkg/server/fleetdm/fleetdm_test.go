package fleetdm_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/fleetdm"
	"github.com/mdmctl/mdmctl/pkg/server/fleetdm/fleetdmtest"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

const token = "fleet-api-token"

func lockRequest(t *testing.T, ids ...string) server.Request {
	t.Helper()
	return server.Request{CommandUUID: apple.NewCommandUUID(), RequestType: apple.RequestTypeDeviceLock,
		Lock: apple.DeviceLock{Message: "Return to IT"}, IDs: ids}
}

func client(t *testing.T, base string) *fleetdm.Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	noSleep := func(context.Context, time.Duration) error { return nil }
	return &fleetdm.Client{BaseURL: u, Token: token, HTTP: &http.Client{Timeout: 5 * time.Second},
		Retry: server.Retry{Max: 3, Sleep: noSleep}}
}

func outcomes(res *server.Result) string {
	var b strings.Builder
	for _, d := range res.Devices {
		b.WriteString(d.ID + "=" + string(d.Outcome) + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestEnqueueSendsTheExactPlistToAllHosts(t *testing.T) {
	fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1"}, fleetdmtest.Host{UUID: "H2", PushFails: true})
	defer fake.Close()
	req := lockRequest(t, "H1", "H2")

	res, err := client(t, fake.URL).Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "H1=queued H2=queued-not-pushed" {
		t.Fatalf("outcomes = %s", got)
	}
	if raw, ok := fake.Command(req.CommandUUID); !ok || !bytes.Equal(raw, servertest.Plist(t, req)) {
		t.Fatalf("Fleet holds %q, want the plist sent", raw)
	}
	for _, h := range []string{"H1", "H2"} {
		if q := fake.Queue(h); len(q) != 1 || q[0] != req.CommandUUID {
			t.Fatalf("queue of %s = %v", h, q)
		}
	}
}

// TestRequestShape checks the wire: method, path under a prefix, Bearer
// token, JSON body with the plist in standard base64.
func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = readAll(r)
		w.Header().Set("Content-Type", "application/json")
		var in struct{ Command string }
		_ = json.Unmarshal(body, &in)
		raw, _ := base64.StdEncoding.DecodeString(in.Command)
		c, _ := apple.ParseCommand(raw)
		_ = json.NewEncoder(w).Encode(map[string]any{"command_uuid": c.CommandUUID, "request_type": c.RequestType})
	}))
	defer srv.Close()
	req := lockRequest(t, "H1", "H2")
	if _, err := client(t, srv.URL+"/fleet/").Enqueue(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/fleet/api/v1/fleet/commands/run" ||
		got.Header.Get("Authorization") != "Bearer "+token || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("request %s %s %v", got.Method, got.URL.Path, got.Header)
	}
	var in struct {
		Command   string   `json:"command"`
		HostUUIDs []string `json:"host_uuids"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(in.Command)
	if err != nil || !bytes.Equal(raw, servertest.Plist(t, req)) || strings.Join(in.HostUUIDs, ",") != "H1,H2" {
		t.Fatalf("body %s", body)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// TestFleetRefusals: Fleet takes all hosts of a request or none, so each
// refusal fails every device with Fleet's reason, and nothing is queued.
func TestFleetRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*fleetdmtest.Server)
		ids   []string
		want  string
	}{
		{"no known host", nil, []string{"NOPE"}, "No hosts targeted"},
		{"MDM off", nil, []string{"OFF"}, "MDM turned off"},
		{"no Premium", func(s *fleetdmtest.Server) { s.SetPremium(false) }, []string{"H1"}, "DeviceLock needs Fleet Premium"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1"}, fleetdmtest.Host{UUID: "OFF", MDMOff: true})
			defer fake.Close()
			if tt.setup != nil {
				tt.setup(fake)
			}
			res, err := client(t, fake.URL).Enqueue(context.Background(), lockRequest(t, tt.ids...))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range res.Devices {
				if d.Outcome != server.Failed || !strings.Contains(d.Error, "not queued") || !strings.Contains(d.Error, tt.want) {
					t.Fatalf("%s: %+v, want failed with %q", d.ID, d, tt.want)
				}
			}
			if len(res.Devices) != len(tt.ids) || fake.Runs() != 0 {
				t.Fatalf("devices %d, runs %d", len(res.Devices), fake.Runs())
			}
		})
	}
}

// TestIsolatesRefusedHosts: Fleet refuses a whole request for one host it
// does not know or whose MDM is off; those fail alone, the rest are queued
// under the same CommandUUID in a second request.
func TestIsolatesRefusedHosts(t *testing.T) {
	fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1"}, fleetdmtest.Host{UUID: "H2"}, fleetdmtest.Host{UUID: "OFF", MDMOff: true})
	defer fake.Close()
	for _, ids := range [][]string{{"H1", "NOPE", "H2"}, {"OFF", "H1", "H2"}, {"H1", "OFF", "NOPE"}} {
		req := lockRequest(t, ids...)
		res, err := client(t, fake.URL).Enqueue(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range res.Devices {
			bad := d.ID == "NOPE" || d.ID == "OFF"
			switch {
			case d.ID != ids[i]:
				t.Fatalf("%v: device %d is %s", ids, i, d.ID)
			case bad && (d.Outcome != server.Failed || !strings.Contains(d.Error, map[string]string{"NOPE": "does not know this host", "OFF": "MDM is off"}[d.ID])):
				t.Fatalf("%v: %+v", ids, d)
			case !bad && d.Outcome != server.Queued:
				t.Fatalf("%v: %+v", ids, d)
			}
			if q := fake.Queue(d.ID); slices.Contains(q, req.CommandUUID) == bad {
				t.Fatalf("%v: queue of %s = %v", ids, d.ID, q)
			}
		}
	}
}

func TestReusedUUIDIsNotQueuedAgain(t *testing.T) {
	fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1"})
	defer fake.Close()
	req := lockRequest(t, "H1")
	c := client(t, fake.URL)
	if _, err := c.Enqueue(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	res, err := c.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Devices[0]; d.Outcome != server.Failed || !strings.Contains(d.Error, "already holds another command with this UUID") {
		t.Fatalf("%+v", d)
	}
}

func TestWrongToken(t *testing.T) {
	fake := fleetdmtest.Start("other-token", fleetdmtest.Host{UUID: "H1"})
	defer fake.Close()
	_, err := client(t, fake.URL).Enqueue(context.Background(), lockRequest(t, "H1"))
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "Authentication required") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Fatal("the token leaked into the error")
	}
}

// TestLostReplyIsNotResent: Fleet queued the command, then the connection
// died. The retry asks Fleet first, finds the command and does not resend.
func TestLostReplyIsNotResent(t *testing.T) {
	fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1"}, fleetdmtest.Host{UUID: "H2"})
	defer fake.Close()
	fake.DropReplies(1)
	req := lockRequest(t, "H1", "H2")
	res, err := client(t, fake.URL).Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := outcomes(res); got != "H1=queued-not-pushed H2=queued-not-pushed" || !strings.Contains(res.Devices[0].Error, "push is unconfirmed") {
		t.Fatalf("outcomes = %s (%s)", got, res.Devices[0].Error)
	}
	if fake.Runs() != 1 || len(fake.Queue("H1")) != 1 {
		t.Fatalf("runs %d, queue %v: the command went in twice", fake.Runs(), fake.Queue("H1"))
	}
}

// TestPushFailedForAll: Fleet answers 502 but holds the command.
func TestPushFailedForAll(t *testing.T) {
	fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1", PushFails: true})
	defer fake.Close()
	res, err := client(t, fake.URL).Enqueue(context.Background(), lockRequest(t, "H1"))
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Devices[0]; d.Outcome != server.QueuedNotPushed || fake.Runs() != 1 {
		t.Fatalf("%+v, runs %d", d, fake.Runs())
	}
}

// TestRetryAfterRefusal: a 503 from a proxy in front of Fleet: Fleet does
// not hold the command, so it is sent again, once.
func TestRetryAfterRefusal(t *testing.T) {
	fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1"})
	defer fake.Close()
	var runs atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && runs.Add(1) == 1 {
			http.Error(w, "upstream busy", http.StatusServiceUnavailable)
			return
		}
		forward(t, fake.URL, w, r)
	}))
	defer proxy.Close()
	res, err := client(t, proxy.URL).Enqueue(context.Background(), lockRequest(t, "H1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Devices[0].Outcome != server.Queued || runs.Load() != 2 || fake.Runs() != 1 {
		t.Fatalf("%+v after %d posts, %d runs", res.Devices[0], runs.Load(), fake.Runs())
	}
}

func forward(t *testing.T, target string, w http.ResponseWriter, r *http.Request) {
	out, err := http.NewRequest(r.Method, target+r.URL.RequestURI(), r.Body)
	if err != nil {
		t.Error(err)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	_, _ = w.Write(b.Bytes())
}

// TestUnverifiableIsNotResent: no reply, and Fleet cannot be asked either:
// the command may be queued, so it is not sent again.
func TestUnverifiableIsNotResent(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := client(t, srv.URL).Enqueue(context.Background(), lockRequest(t, "H1"))
	var unavailable *server.UnavailableError
	if !errors.As(err, &unavailable) || !strings.Contains(err.Error(), "not resent") || posts.Load() != 1 {
		t.Fatalf("err = %v after %d posts", err, posts.Load())
	}
}

func TestOddReplies(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
	}{
		{"html 200", 200, "text/html", "<html>", "content type"},
		{"not JSON", 200, "application/json", "{", "not Fleet's command result"},
		{"other UUID", 200, "application/json", `{"command_uuid":"X"}`, `names command "X"`},
		{"404 from a proxy", 404, "text/plain", "no route", "HTTP 404"},
		{"401 without JSON", 401, "text/plain", "", "HTTP 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			_, err := client(t, srv.URL).Enqueue(context.Background(), lockRequest(t, "H1"))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("err = %v, want %q naming the server", err, tt.want)
			}
		})
	}
}

// TestWatchDeliversEachAnswer polls Fleet's results while simulated
// devices answer: final answers once, NotNow counted once per time.
func TestWatchDeliversEachAnswer(t *testing.T) {
	fake := fleetdmtest.Start(token,
		fleetdmtest.Host{UUID: "ACK", Behavior: simdevice.Acknowledge},
		fleetdmtest.Host{UUID: "BUSY", Behavior: simdevice.NotNowOnce},
		fleetdmtest.Host{UUID: "PIN", Behavior: simdevice.RequirePIN},
		fleetdmtest.Host{UUID: "OFF", Behavior: simdevice.Offline})
	defer fake.Close()
	c := client(t, fake.URL)
	req := lockRequest(t, "ACK", "BUSY", "PIN", "OFF")
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, req.IDs...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Watch(ctx, col, func(err error) { t.Errorf("poll: %v", err) })
	if _, err := c.Enqueue(ctx, req); err != nil {
		t.Fatal(err)
	}
	waitCtx, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	_ = col.Wait(waitCtx) // OFF never answers
	got := map[string]webhook.Result{}
	for _, r := range col.Results() {
		got[r.ID] = r
	}
	switch {
	case !got["ACK"].Answered() || got["ACK"].Response.MessageResult != apple.MessageResultSuccess || got["ACK"].Response.UDID != "ACK":
		t.Fatalf("ACK: %+v", got["ACK"])
	case !got["BUSY"].Answered() || got["BUSY"].Response.Status != apple.StatusAcknowledged:
		t.Fatalf("BUSY: %+v", got["BUSY"])
	case !got["PIN"].Answered() || got["PIN"].Response.Status != apple.StatusError || got["PIN"].Response.ErrorChain[0].ErrorCode != simdevice.ErrorCodePINRequired:
		t.Fatalf("PIN: %+v", got["PIN"])
	case got["OFF"].Answered():
		t.Fatalf("OFF answered: %+v", got["OFF"])
	}
}

// TestWatchManyCommands: a command per device (a PIN per Mac), all polled
// and each answer matched to its own command.
func TestWatchManyCommands(t *testing.T) {
	var hosts []fleetdmtest.Host
	for i := range 40 {
		hosts = append(hosts, fleetdmtest.Host{UUID: fmt.Sprintf("MAC-%02d", i), Behavior: simdevice.RequirePIN})
	}
	fake := fleetdmtest.Start(token, hosts...)
	defer fake.Close()
	c := client(t, fake.URL)
	col := webhook.NewCollector()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reqs []server.Request
	for i, h := range hosts {
		uuid := apple.NewCommandUUID()
		req := server.Request{CommandUUID: uuid, RequestType: apple.RequestTypeDeviceLock, Lock: apple.DeviceLock{PIN: fmt.Sprintf("%06d", i)}, IDs: []string{h.UUID}}
		col.Expect(uuid, h.UUID)
		reqs = append(reqs, req)
	}
	go c.Watch(ctx, col, func(err error) { t.Errorf("poll: %v", err) })
	for _, req := range reqs {
		if _, err := c.Enqueue(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	waitCtx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	if err := col.Wait(waitCtx); err != nil {
		t.Fatalf("not all answered: %v pending", col.Pending())
	}
	for i, r := range col.Results() {
		if r.CommandUUID != reqs[i].CommandUUID || r.ID != reqs[i].IDs[0] || r.Response.Status != apple.StatusAcknowledged {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
}

// TestDuplicateMeansQueuedOnlyAfterLanding: Fleet's "Duplicate entry" for
// our UUID is our own landed attempt only when one may have reached Fleet.
func TestDuplicateMeansQueuedOnlyAfterLanding(t *testing.T) {
	tests := []struct {
		name  string
		first string // what the proxy does to the first POST
		reuse bool   // the UUID is already held by an earlier command
		want  server.Outcome
	}{
		{"503, then another command's UUID", "503", true, server.Failed},
		{"landed, reply lost, then duplicate", "drop", false, server.QueuedNotPushed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := fleetdmtest.Start(token, fleetdmtest.Host{UUID: "H1"})
			defer fake.Close()
			req := lockRequest(t, "H1")
			if tt.reuse {
				if _, err := client(t, fake.URL).Enqueue(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}
			var posts atomic.Int32
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodGet:
					// Fleet not yet showing the first attempt's command (it
					// is still being written): the check says "not held".
					servertest.WriteJSON(w, http.StatusNotFound, map[string]any{"message": "Resource Not Found",
						"errors": []map[string]string{{"name": "base", "reason": "command not found"}}})
				case posts.Add(1) > 1:
					forward(t, fake.URL, w, r)
				case tt.first == "503":
					http.Error(w, "busy", http.StatusServiceUnavailable)
				default:
					forward(t, fake.URL, httptest.NewRecorder(), r)
					conn, _, _ := w.(http.Hijacker).Hijack()
					conn.Close()
				}
			}))
			defer proxy.Close()
			res, err := client(t, proxy.URL).Enqueue(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if d := res.Devices[0]; d.Outcome != tt.want || posts.Load() != 2 || len(fake.Queue("H1")) != 1 {
				t.Fatalf("%+v after %d posts, queue %v", d, posts.Load(), fake.Queue("H1"))
			}
		})
	}
}
