package micromdm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/micromdm"
	"github.com/mdmctl/mdmctl/pkg/server/micromdm/micromdmtest"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
)

const key = "s3cr3t-api-key"

func lockRequest(t *testing.T, id string) server.Request {
	t.Helper()
	return server.Request{CommandUUID: apple.NewCommandUUID(), RequestType: apple.RequestTypeDeviceLock,
		Lock: apple.DeviceLock{PIN: "123456", Message: "Return to IT"}, IDs: []string{id}}
}

func client(t *testing.T, base string) *micromdm.Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &micromdm.Client{BaseURL: u, APIKey: key, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

func TestEnqueueQueuesExactBytes(t *testing.T) {
	fake := micromdmtest.Start(key)
	defer fake.Close()
	req := lockRequest(t, "00008020-000915083C80012E")

	res, err := client(t, fake.URL).Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := server.DeviceResult{ID: req.IDs[0], Outcome: server.Queued}
	if len(res.Devices) != 1 || res.Devices[0] != want {
		t.Fatalf("result = %+v", res)
	}
	got := fake.Received()
	if len(got) != 1 || got[0].Method != http.MethodPut || got[0].CommandUUID != req.CommandUUID ||
		got[0].RequestType != apple.RequestTypeDeviceLock || !bytes.Equal(got[0].Raw, servertest.Plist(t, req)) {
		t.Fatalf("server received %+v", got)
	}
	if cmds := fake.Commands(req.IDs[0]); len(cmds) != 1 || !bytes.Equal(cmds[0], servertest.Plist(t, req)) {
		t.Fatalf("Commands = %q", cmds)
	}
}

// TestRequestShape checks what goes on the wire: method, escaped path under
// any prefix, credentials, body.
func TestRequestShape(t *testing.T) {
	tests := []struct {
		name, base, user, id string
		wantURI, wantUser    string
	}{
		{"plain", "", "", "ABC-1", "/v1/commands/ABC-1", "micromdm"},
		{"prefix", "/mdm/micromdm", "", "ABC-1", "/mdm/micromdm/v1/commands/ABC-1", "micromdm"},
		{"prefix with slash", "/mdm/", "", "ABC-1", "/mdm/v1/commands/ABC-1", "micromdm"},
		{"custom user", "", "admin", "ABC-1", "/v1/commands/ABC-1", "admin"},
		{"escaped", "", "", "a b?c#d%e+é", "/v1/commands/a%20b%3Fc%23d%25e+%C3%A9", "micromdm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := lockRequest(t, tt.id)
			var got struct {
				method, uri, user, pass, ctype string
				body                           []byte
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.method, got.uri, got.ctype = r.Method, r.RequestURI, r.Header.Get("Content-Type")
				got.user, got.pass, _ = r.BasicAuth()
				got.body, _ = io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				fmt.Fprintf(w, `{"payload":{"udid":%q,"command_uuid":%q,"command":{"request_type":"DeviceLock"}}}`, tt.id, req.CommandUUID)
			}))
			defer srv.Close()
			c := client(t, srv.URL+tt.base)
			c.User = tt.user
			res, err := c.Enqueue(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Devices[0].Outcome != server.Queued {
				t.Errorf("outcome %q", res.Devices[0].Outcome)
			}
			if got.method != http.MethodPut || got.uri != tt.wantURI || got.user != tt.wantUser || got.pass != key {
				t.Errorf("got %s %s as %s:%s, want PUT %s as %s:%s", got.method, got.uri, got.user, got.pass, tt.wantURI, tt.wantUser, key)
			}
			if !strings.HasPrefix(got.ctype, "application/xml") || !bytes.Equal(got.body, servertest.Plist(t, req)) {
				t.Errorf("content type %q, body %q", got.ctype, got.body)
			}
		})
	}
}

// TestFakeSeesUnescapedUDID runs an escaped ID through the fake, which
// decodes the path as MicroMDM's router does.
func TestFakeSeesUnescapedUDID(t *testing.T) {
	fake := micromdmtest.Start(key)
	defer fake.Close()
	id := "odd id+é"
	if _, err := client(t, fake.URL).Enqueue(context.Background(), lockRequest(t, id)); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Commands(id)); n != 1 {
		t.Fatalf("%d commands for %q, want 1", n, id)
	}
}

func TestPerDeviceFailures(t *testing.T) {
	fake := micromdmtest.Start(key)
	defer fake.Close()
	fake.RejectUnknown("KNOWN")
	c := client(t, fake.URL)

	tests := []struct {
		name string
		req  server.Request
		want string
	}{
		{"unknown device", lockRequest(t, "STRANGER"), "unknown device STRANGER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Enqueue(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			d := res.Devices[0]
			if d.Outcome != server.Failed || !strings.Contains(d.Error, tt.want) || d.ID != tt.req.IDs[0] {
				t.Fatalf("result %+v, device %+v; want failed with %q", res, d, tt.want)
			}
		})
	}
	if n := len(fake.Received()); n != 0 {
		t.Fatalf("fake stored %d refused commands", n)
	}
}

func TestAuthentication(t *testing.T) {
	fake := micromdmtest.Start(key)
	defer fake.Close()
	tests := []struct{ name, user, key string }{
		{"wrong key", "", "wrong"},
		{"wrong user", "nanomdm", key},
		{"no key", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, fake.URL)
			c.User, c.APIKey = tt.user, tt.key
			_, err := c.Enqueue(context.Background(), lockRequest(t, "A"))
			var he *server.HTTPError
			if !errors.Is(err, server.ErrUnauthorized) || !errors.As(err, &he) || he.Status != 401 {
				t.Fatalf("err = %v, want a 401 HTTPError", err)
			}
			if strings.Contains(err.Error(), key) || he.Server != fake.URL {
				t.Fatalf("error %q leaks the key or misnames the server", err)
			}
		})
	}
}

// TestReplies covers the replies MicroMDM does not send but a proxy, a
// crash or another server can.
func TestReplies(t *testing.T) {
	const uuid = "5E5E0000-0000-4000-8000-00000000C0DE"
	payload := func(udid, cmdUUID, extra string) string {
		return fmt.Sprintf(`{"payload":{"udid":%q,"command_uuid":%q,"command":{"request_type":"DeviceLock"}%s}}`, udid, cmdUUID, extra)
	}
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		want     any // server.Outcome, or a pointer to the error type
		contains string
	}{
		{"201 without content type", 201, "", payload("A", uuid, ""), server.Queued, ""},
		{"201 html", 201, "text/html", "<html>ok</html>", new(*server.ProtocolError), "not MicroMDM's JSON"},
		{"201 no payload", 201, "application/json", `{}`, new(*server.ProtocolError), "no payload"},
		{"201 other command", 201, "application/json", payload("A", "OTHER", ""), new(*server.ProtocolError), `queued command "OTHER"`},
		{"201 other device", 201, "application/json", payload("B", uuid, ""), new(*server.ProtocolError), `for "B"`},
		{"201 other echo", 201, "application/json", payload("A", uuid, `,"payload":"b3RoZXI="`), new(*server.ProtocolError), "differs"},
		{"200", 200, "application/json", payload("A", uuid, ""), new(*server.ProtocolError), "answers 201"},
		{"400 json error", 400, "application/json", `{"error":"bad command"}`, server.Failed, "bad command"},
		{"404 json error", 404, "application/json", `{"error":"no such device"}`, server.Failed, "no such device"},
		{"404 text", 404, "text/plain", "404 page not found\n", new(*server.HTTPError), "404 page not found"},
		{"403", 403, "application/json", `{"error":"Forbidden"}`, new(*server.HTTPError), "check the API key"},
		{"405", 405, "application/json", `{"error":"nope"}`, new(*server.HTTPError), "405"},
		{"500 json no text", 500, "application/json", `{"error":""}`, new(*server.UnavailableError), "500"},
		{"500 text", 500, "text/plain", "panic", new(*server.UnavailableError), "panic"},
		{"502", 502, "text/html", "<html>bad gateway</html>", new(*server.UnavailableError), "502"},
		{"503 json", 503, "application/json", `{"error":"busy"}`, new(*server.UnavailableError), "503"},
		{"504", 504, "", "", new(*server.UnavailableError), "504"},
		{"429", 429, "application/json", `{"error":"slow down"}`, new(*server.UnavailableError), "429"},
		{"oversized", 201, "application/json", `{"payload":{"x":"` + strings.Repeat("x", 200<<10) + `"}}`, new(*server.ProtocolError), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			req := lockRequest(t, "A")
			req.CommandUUID = uuid
			res, err := client(t, srv.URL).Enqueue(context.Background(), req)
			switch want := tt.want.(type) {
			case server.Outcome:
				if err != nil {
					t.Fatal(err)
				}
				if d := res.Devices[0]; d.Outcome != want || !strings.Contains(d.Error, tt.contains) {
					t.Fatalf("result %+v %+v, want %s %q", res, d, want, tt.contains)
				}
			default:
				if err == nil {
					t.Fatalf("no error; result %+v", res)
				}
				if !errors.As(err, want) {
					t.Fatalf("err %T %v, want %T", err, err, want)
				}
				if !strings.Contains(err.Error(), tt.contains) || !strings.Contains(err.Error(), srv.URL) {
					t.Fatalf("err %q lacks %q or the server %s", err, tt.contains, srv.URL)
				}
			}
		})
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	two := lockRequest(t, "A")
	two.IDs = []string{"A", "B"}
	none := lockRequest(t, "A")
	none.IDs = nil
	tests := []struct {
		name string
		req  server.Request
		want string
	}{
		{"two IDs", two, "one device per request, got 2"},
		{"no ID", none, "got 0"},
		{"empty ID", lockRequest(t, ""), "cannot address"},
		{"slash", lockRequest(t, "a/b"), "cannot address"},
		{"dot dot", lockRequest(t, ".."), "cannot address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client(t, srv.URL).Enqueue(context.Background(), tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
}

// TestRetry: resent only when MicroMDM cannot have taken the command.
func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		first     func(w http.ResponseWriter)
		wantHits  int32
		wantError string // "" means queued by the second attempt
	}{
		{"503 is resent", func(w http.ResponseWriter) { w.WriteHeader(503) }, 2, ""},
		{"429 is resent", func(w http.ResponseWriter) { w.WriteHeader(429) }, 2, ""},
		{"502 is not", func(w http.ResponseWriter) { w.WriteHeader(502) }, 1, "HTTP 502"},
		{"504 is not", func(w http.ResponseWriter) { w.WriteHeader(504) }, 1, "HTTP 504"},
		{"lost reply is not", func(w http.ResponseWriter) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}, 1, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := micromdmtest.Start(key)
			defer fake.Close()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) == 1 {
					io.Copy(io.Discard, r.Body)
					tt.first(w)
					return
				}
				fake.Config.Handler.ServeHTTP(w, r)
			}))
			defer srv.Close()
			c := client(t, srv.URL)
			c.Retry = server.Retry{Max: 3, Sleep: func(context.Context, time.Duration) error { return nil }}
			res, err := c.Enqueue(context.Background(), lockRequest(t, "A"))
			if hits.Load() != tt.wantHits {
				t.Errorf("%d attempts, want %d", hits.Load(), tt.wantHits)
			}
			if tt.wantError == "" {
				if err != nil || res.Devices[0].Outcome != server.Queued || len(fake.Commands("A")) != 1 {
					t.Fatalf("err %v, result %+v", err, res)
				}
				return
			}
			var ue *server.UnavailableError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantError) || !server.MayBeQueued(err) {
				t.Fatalf("err = %v, want UnavailableError with %q that may have queued the command", err, tt.wantError)
			}
		})
	}
}

func TestRetryWhenUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // connection refused: nothing was sent, so resending is safe
	var sleeps int
	c := client(t, base)
	c.Retry = server.Retry{Max: 2, Sleep: func(context.Context, time.Duration) error { sleeps++; return nil }}
	_, err := c.Enqueue(context.Background(), lockRequest(t, "A"))
	var ue *server.UnavailableError
	if !errors.As(err, &ue) || sleeps != 2 {
		t.Fatalf("err = %v after %d retries, want UnavailableError after 2", err, sleeps)
	}
}

func TestAPIOff(t *testing.T) {
	fake := micromdmtest.Start("")
	defer fake.Close()
	_, err := client(t, fake.URL).Enqueue(context.Background(), lockRequest(t, "A"))
	var he *server.HTTPError
	if !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("err = %v, want HTTP 404", err)
	}
}

// TestConcurrent sends from many goroutines through one client to one
// fake; run with -race.
func TestConcurrent(t *testing.T) {
	fake := micromdmtest.Start(key)
	defer fake.Close()
	fake.RejectUnknown("D0", "D1", "D2", "D3")
	c := client(t, fake.URL)
	const perDevice = 25
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 5 * perDevice {
		wg.Go(func() {
			id := fmt.Sprintf("D%d", i%5) // D4 is refused
			res, err := c.Enqueue(context.Background(), lockRequest(t, id))
			if err != nil {
				t.Error(err)
				return
			}
			if res.Devices[0].Outcome == server.Failed {
				failed.Add(1)
			}
			_ = fake.Commands(id)
			_ = fake.Received()
		})
	}
	wg.Wait()
	for i := range 4 {
		if n := len(fake.Commands(fmt.Sprintf("D%d", i))); n != perDevice {
			t.Errorf("D%d got %d commands, want %d", i, n, perDevice)
		}
	}
	if failed.Load() != perDevice || len(fake.Received()) != 4*perDevice {
		t.Errorf("%d failed, %d received", failed.Load(), len(fake.Received()))
	}
}
