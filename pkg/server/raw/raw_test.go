package raw_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/raw"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
)

// device is an endpoint of the raw exchange: it parses the command as a
// device would and answers with a DeviceLockResponse. Safe for concurrent use.
type device struct {
	*httptest.Server
	mu       sync.Mutex
	received map[string][][]byte // id from ?udid= or the last path segment
	seen     []seen
	answer   func(id string, cmd apple.ParsedCommand) apple.Response
}

type seen struct {
	method, uri, ctype, auth string
	body                     []byte
}

func startDevice(t *testing.T) *device {
	t.Helper()
	d := &device{received: map[string][][]byte{}}
	d.Server = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.Close)
	return d
}

func (d *device) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.URL.Query().Get("udid")
	if id == "" {
		id = r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	}
	d.mu.Lock()
	d.received[id] = append(d.received[id], body)
	d.seen = append(d.seen, seen{r.Method, r.RequestURI, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), body})
	answer := d.answer
	d.mu.Unlock()
	cmd, err := apple.ParseCommand(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := apple.Response{Status: apple.StatusAcknowledged, CommandUUID: cmd.CommandUUID, UDID: id, MessageResult: apple.MessageResultSuccess}
	if answer != nil {
		resp = answer(id, cmd)
	}
	out, err := resp.Encode()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.Write(out)
}

func (d *device) last() seen {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[len(d.seen)-1]
}

func lockRequest(t *testing.T, id string) server.Request {
	t.Helper()
	return server.Request{CommandUUID: apple.NewCommandUUID(), RequestType: apple.RequestTypeDeviceLock,
		Lock: apple.DeviceLock{PIN: "123456", Message: "Lock Message", PhoneNumber: "408-555-5555"}, IDs: []string{id}}
}

func client(url string) *raw.Client {
	return &raw.Client{URL: url, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

func TestAnswered(t *testing.T) {
	d := startDevice(t)
	req := lockRequest(t, "00008020-000915083C80012E")
	res, err := client(d.URL+"/mdm/{udid}").Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 1 {
		t.Fatalf("result %+v", res)
	}
	dr := res.Devices[0]
	if dr.ID != req.IDs[0] || dr.Outcome != server.Answered || dr.Response == nil ||
		dr.Response.Status != apple.StatusAcknowledged || dr.Response.MessageResult != apple.MessageResultSuccess ||
		dr.Response.CommandUUID != req.CommandUUID {
		t.Fatalf("device result %+v, response %+v", dr, dr.Response)
	}
	got := d.last()
	if got.method != http.MethodPut || got.ctype != raw.ContentType || got.uri != "/mdm/00008020-000915083C80012E" || got.auth != "" {
		t.Fatalf("request %+v", got)
	}
	if !bytes.Equal(got.body, servertest.Plist(t, req)) {
		t.Fatalf("body differs from the command sent:\n%s", got.body)
	}
}

// TestDeviceErrorIsAnAnswer: the adapter relays a refusal; judging it is
// the caller's job.
func TestDeviceErrorIsAnAnswer(t *testing.T) {
	d := startDevice(t)
	d.answer = func(id string, cmd apple.ParsedCommand) apple.Response {
		return apple.Response{Status: apple.StatusError, CommandUUID: cmd.CommandUUID, UDID: id,
			ErrorChain: []apple.ErrorChainItem{{ErrorCode: 12066, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "no"}}}
	}
	res, err := client(d.URL+"/{udid}").Enqueue(context.Background(), lockRequest(t, "MAC"))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Devices[0].Response
	if res.Devices[0].Outcome != server.Answered || r.Status != apple.StatusError || len(r.ErrorChain) != 1 || r.ErrorChain[0].ErrorCode != 12066 {
		t.Fatalf("result %+v", res.Devices[0])
	}
}

func TestTargetURL(t *testing.T) {
	tests := []struct {
		name, template, id, wantURI string
		idNotLast                   bool // the fake finds no ID there, so it answers without one
	}{
		{"path", "/raw/{udid}", "ABC-1", "/raw/ABC-1", false},
		{"prefix and suffix", "/api/v1/mdm/{udid}/lock", "ABC-1", "/api/v1/mdm/ABC-1/lock", true},
		{"path escaping", "/raw/{udid}", "a b&c=d+é", "/raw/a%20b&c=d+%C3%A9", false},
		{"query", "/lock?udid={udid}", "ABC-1", "/lock?udid=ABC-1", false},
		{"query escaping", "/lock?udid={udid}&x=1", "a b&c=d+é", "/lock?udid=a+b%26c%3Dd%2B%C3%A9&x=1", false},
		{"path and query", "/d/{udid}?udid={udid}", "a b&c", "/d/a%20b&c?udid=a+b%26c", false},
		{"no placeholder", "/one-device", "ABC-1", "/one-device", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDevice(t)
			if tt.idNotLast {
				d.answer = func(_ string, cmd apple.ParsedCommand) apple.Response {
					return apple.Response{Status: apple.StatusAcknowledged, CommandUUID: cmd.CommandUUID}
				}
			}
			req := lockRequest(t, tt.id)
			res, err := client(d.URL+tt.template).Enqueue(context.Background(), req)
			if err != nil {
				// The fake answers for the ID it decoded: a mismatch means mangled escaping.
				t.Fatal(err)
			}
			if got := d.last().uri; got != tt.wantURI {
				t.Fatalf("request URI %q, want %q", got, tt.wantURI)
			}
			if res.Devices[0].Outcome != server.Answered {
				t.Fatalf("outcome %q", res.Devices[0].Outcome)
			}
		})
	}
	// An ID that reaches the device in one piece is the one it answers for.
	d := startDevice(t)
	if _, err := client(d.URL+"/lock?udid={udid}").Enqueue(context.Background(), lockRequest(t, "a b&c")); err != nil {
		t.Fatal(err)
	}
	if n := len(d.received["a b&c"]); n != 1 {
		t.Fatalf("device got %d commands for the ID", n)
	}
}

func TestInvalidTemplate(t *testing.T) {
	for _, tmpl := range []string{"://nohost/{udid}", "ftp://h/{udid}", "http://u:secretpw@h:bad/{udid}", "/relative/{udid}"} {
		_, err := client(tmpl).Enqueue(context.Background(), lockRequest(t, "A"))
		if err == nil || strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%q: err = %v", tmpl, err)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	tests := []struct {
		name, user, key, want string
	}{
		{"none", "", "", ""},
		{"user and key", "nanomdm", "k", "nanomdm:k"},
		{"key only", "", "k", ":k"},
		{"user only", "u", "", "u:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDevice(t)
			c := client(d.URL + "/{udid}")
			c.User, c.APIKey = tt.user, tt.key
			if _, err := c.Enqueue(context.Background(), lockRequest(t, "A")); err != nil {
				t.Fatal(err)
			}
			auth := d.last().auth
			if tt.want == "" {
				if auth != "" {
					t.Fatalf("Authorization %q sent without credentials", auth)
				}
				return
			}
			r := &http.Request{Header: http.Header{"Authorization": {auth}}}
			u, p, ok := r.BasicAuth()
			if !ok || u+":"+p != tt.want {
				t.Fatalf("Authorization %q, want Basic %s", auth, tt.want)
			}
		})
	}
}

// TestReplies covers every way a reply can fail to be an answer.
func TestReplies(t *testing.T) {
	const uuid = "5E5E0000-0000-4000-8000-00000000C0DE"
	encode := func(r apple.Response, format int) string {
		out, err := plist.Marshal(r, format)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	ack := apple.Response{Status: apple.StatusAcknowledged, CommandUUID: uuid, UDID: "A"}
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		want     any // apple status string, or a pointer to the error type
		contains string
	}{
		{"binary aspen", 200, raw.ContentType, encode(ack, plist.BinaryFormat), apple.StatusAcknowledged, ""},
		{"binary octet-stream", 200, "application/octet-stream", encode(ack, plist.BinaryFormat), apple.StatusAcknowledged, ""},
		{"xml text/xml", 200, "text/xml", encode(ack, plist.XMLFormat), apple.StatusAcknowledged, ""},
		{"xml no content type", 200, "", encode(ack, plist.XMLFormat), apple.StatusAcknowledged, ""},
		{"lower-case udid", 200, "application/xml", encode(apple.Response{Status: "NotNow", UDID: "a"}, plist.XMLFormat), apple.StatusNotNow, ""},
		{"enrollment id", 200, "application/xml", encode(apple.Response{Status: "Acknowledged", EnrollmentID: "A"}, plist.XMLFormat), apple.StatusAcknowledged, ""},
		{"empty", 200, "application/xml", "", new(*server.ProtocolError), "empty"},
		{"blank 204", 204, "", " \n", new(*server.ProtocolError), "empty"},
		{"text", 200, "text/plain", "ok", new(*server.ProtocolError), `content type "text/plain"`},
		{"json", 200, "application/json", `{"status":"Acknowledged"}`, new(*server.ProtocolError), "application/json"},
		{"xml octet-stream", 200, "application/octet-stream", encode(ack, plist.XMLFormat), new(*server.ProtocolError), "octet-stream"},
		{"openstep", 200, "application/xml", encode(ack, plist.OpenStepFormat), new(*server.ProtocolError), "neither an XML nor a binary plist"},
		{"html as xml", 200, "application/xml", "<html><body>hello</body></html>", new(*server.ProtocolError), "not a DeviceLockResponse"},
		{"no Status", 200, "application/xml", encode(apple.Response{UDID: "A"}, plist.XMLFormat), new(*server.ProtocolError), "no Status"},
		{"other command", 200, "application/xml", encode(apple.Response{Status: "Acknowledged", CommandUUID: "X"}, plist.XMLFormat), new(*server.ProtocolError), `command "X"`},
		{"other device", 200, "application/xml", encode(apple.Response{Status: "Acknowledged", UDID: "B"}, plist.XMLFormat), new(*server.ProtocolError), `device "B"`},
		{"oversized", 200, "application/xml", "<plist>" + strings.Repeat(" ", 300<<10), new(*server.ProtocolError), "larger than"},
		{"401", 401, "text/plain", "Unauthorized", new(*server.HTTPError), "check the API key"},
		{"403", 403, "text/plain", "Forbidden", new(*server.HTTPError), "403"},
		{"404", 404, "text/plain", "no such device", new(*server.HTTPError), "no such device"},
		{"400", 400, "text/plain", "bad plist", new(*server.HTTPError), "bad plist"},
		{"304", 304, "", "", new(*server.HTTPError), "304"},
		{"429", 429, "", "", new(*server.UnavailableError), "429"},
		{"500", 500, "text/plain", "boom", new(*server.UnavailableError), "boom"},
		{"502", 502, "", "", new(*server.UnavailableError), "502"},
		{"503", 503, "", "", new(*server.UnavailableError), "503"},
		{"504", 504, "text/plain", "device did not answer", new(*server.UnavailableError), "device did not answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				} else {
					w.Header()["Content-Type"] = nil // no sniffing
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			req := lockRequest(t, "A")
			req.CommandUUID = uuid
			res, err := client(srv.URL+"/{udid}").Enqueue(context.Background(), req)
			switch want := tt.want.(type) {
			case string:
				if err != nil {
					t.Fatal(err)
				}
				if d := res.Devices[0]; d.Outcome != server.Answered || d.Response.Status != want {
					t.Fatalf("device %+v, want answered %s", d, want)
				}
			default:
				if err == nil {
					t.Fatalf("no error; result %+v", res.Devices[0])
				}
				if !errors.As(err, want) {
					t.Fatalf("err %T %v, want %T", err, err, want)
				}
				if !strings.Contains(err.Error(), tt.contains) || !strings.Contains(err.Error(), srv.URL) {
					t.Fatalf("err %q lacks %q or the server %s", err, tt.contains, srv.URL)
				}
				unauthorized := errors.Is(err, server.ErrUnauthorized)
				if unauthorized != (tt.status == 401 || tt.status == 403) {
					t.Fatalf("errors.Is(ErrUnauthorized) = %v for %d", unauthorized, tt.status)
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
	for _, tt := range []struct {
		req  server.Request
		want string
	}{{two, "got 2"}, {none, "got 0"}} {
		_, err := client(srv.URL+"/{udid}").Enqueue(context.Background(), tt.req)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
}

func TestRetry(t *testing.T) {
	d := startDevice(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		d.Config.Handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := client(srv.URL + "/{udid}")
	c.Retry = server.Retry{Max: 2, Sleep: func(context.Context, time.Duration) error { return nil }}
	req := lockRequest(t, "A")
	res, err := c.Enqueue(context.Background(), req)
	if err != nil || res.Devices[0].Outcome != server.Answered || hits.Load() != 2 {
		t.Fatalf("err %v, %d attempts", err, hits.Load())
	}
	if got := d.received["A"]; len(got) != 1 || !bytes.Equal(got[0], servertest.Plist(t, req)) {
		t.Fatalf("resent body differs: %q", got)
	}
}

// TestConcurrent: one client, many goroutines, many devices; run with -race.
func TestConcurrent(t *testing.T) {
	d := startDevice(t)
	c := client(d.URL + "/raw/{udid}")
	const devices, each = 10, 10
	var wg sync.WaitGroup
	for i := range devices * each {
		wg.Go(func() {
			id := fmt.Sprintf("DEV-%d", i%devices)
			res, err := c.Enqueue(context.Background(), lockRequest(t, id))
			if err != nil {
				t.Error(err)
				return
			}
			if r := res.Devices[0].Response; r.UDID != id {
				t.Errorf("answer for %s came from %s", id, r.UDID)
			}
		})
	}
	wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range devices {
		if n := len(d.received[fmt.Sprintf("DEV-%d", i)]); n != each {
			t.Errorf("DEV-%d got %d commands, want %d", i, n, each)
		}
	}
}
