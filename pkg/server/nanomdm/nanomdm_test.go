package nanomdm

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/server"
)

func TestEnqueueURL(t *testing.T) {
	for base, want := range map[string]string{
		"http://127.0.0.1:9000":                   "http://127.0.0.1:9000/v1/enqueue/A,B%C3%A9?nopush=1",
		"https://hub.example.com/api/v1/nanomdm":  "https://hub.example.com/api/v1/nanomdm/v1/enqueue/A,B%C3%A9?nopush=1",
		"https://hub.example.com/api/v1/nanomdm/": "https://hub.example.com/api/v1/nanomdm/v1/enqueue/A,B%C3%A9?nopush=1",
	} {
		u, _ := url.Parse(base)
		if got := (&Client{BaseURL: u}).EnqueueURL([]string{"A", "Bé"}, true); got.String() != want {
			t.Errorf("%s: %v; want %s", base, got, want)
		}
	}
}

func TestInterpret(t *testing.T) {
	req := server.Request{CommandUUID: "U", RequestType: "DeviceLock", IDs: []string{"A", "B", "C"}}
	tests := []struct {
		name    string
		status  int
		body    string
		retried bool
		want    []server.Outcome
	}{
		{"all queued, no push", 200, `{"no_push":true,"command_uuid":"U"}`, false, []server.Outcome{server.Queued, server.Queued, server.Queued}},
		{"pushed", 200, `{"status":{"A":{"push_result":"p1"},"B":{"push_result":"p2"},"C":{"push_result":"p3"}}}`, false, []server.Outcome{server.Queued, server.Queued, server.Queued}},
		{"no push certificate", 500, `{"push_error":"retrieving push cert"}`, false, []server.Outcome{server.QueuedNotPushed, server.QueuedNotPushed, server.QueuedNotPushed}},
		{"unknown device", 207, `{"status":{"C":{"push_error":"push data missing for id"}}}`, false, []server.Outcome{server.Queued, server.Queued, server.QueuedNotPushed}},
		{"per-device command error", 207, `{"status":{"B":{"command_error":"x","push_error":"y"}},"no_push":true}`, false, []server.Outcome{server.Queued, server.Failed, server.Queued}},
		{"top-level command error", 500, `{"command_error":"command already exists: U"}`, false, []server.Outcome{server.Failed, server.Failed, server.Failed}},
		{"duplicate on a retry", 500, `{"command_error":"command already exists: U"}`, true, []server.Outcome{server.Queued, server.Queued, server.Queued}},
		{"another UUID's duplicate on a retry", 500, `{"command_error":"command already exists: OTHER"}`, true, []server.Outcome{server.Failed, server.Failed, server.Failed}},
	}
	for _, tt := range tests {
		var r apiResult
		if err := json.Unmarshal([]byte(tt.body), &r); err != nil {
			t.Fatal(err)
		}
		res := interpret(req, tt.status, r, tt.retried)
		for i, d := range res.Devices {
			if d.ID != req.IDs[i] || d.Outcome != tt.want[i] {
				t.Errorf("%s: device %d = %s %s (%s), want %s", tt.name, i, d.ID, d.Outcome, d.Error, tt.want[i])
			}
		}
	}
}

func TestEnqueueSendsCredentialsAndPlist(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b := new(strings.Builder)
		_, _ = io.Copy(b, r.Body)
		body = b.String()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"no_push":true}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/prefix")
	c := &Client{BaseURL: u, APIKey: "k", HTTP: srv.Client()}
	res, err := c.Enqueue(context.Background(), server.Request{CommandUUID: "U", Payload: []byte("<plist/>"), IDs: []string{"A"}, NoPush: true})
	if err != nil || res.Devices[0].Outcome != server.Queued {
		t.Fatalf("%+v, %v", res, err)
	}
	user, pass, ok := got.BasicAuth()
	if got.Method != http.MethodPut || got.URL.Path != "/prefix/v1/enqueue/A" || got.URL.RawQuery != "nopush=1" || !ok || user != "nanomdm" || pass != "k" || body != "<plist/>" {
		t.Errorf("request %s %s auth %s:%s body %q", got.Method, got.URL, user, pass, body)
	}
}

func FuzzInterpret(f *testing.F) {
	f.Add(200, `{"no_push":true}`, false)
	f.Add(207, `{"status":{"A":{"command_error":"x"}}}`, true)
	f.Fuzz(func(t *testing.T, status int, body string, retried bool) {
		var r apiResult
		if json.Unmarshal([]byte(body), &r) != nil {
			return
		}
		req := server.Request{CommandUUID: "U", IDs: []string{"A", "B"}}
		res := interpret(req, status, r, retried)
		if len(res.Devices) != 2 || res.Devices[0].ID != "A" || res.Devices[1].ID != "B" {
			t.Fatalf("every requested device must appear once, in order: %+v", res.Devices)
		}
	})
}
