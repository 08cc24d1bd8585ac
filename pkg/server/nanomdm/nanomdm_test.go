package nanomdm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
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
		{"pgsql duplicate, first attempt", 500, `{"command_error":"pq: duplicate key value violates unique constraint \"commands_pkey\""}`, false, []server.Outcome{server.Failed, server.Failed, server.Failed}},
		{"pgsql duplicate after a landed attempt", 500, `{"command_error":"pq: duplicate key value violates unique constraint \"commands_pkey\""}`, true, []server.Outcome{server.Queued, server.Queued, server.Queued}},
		{"mysql duplicate after a landed attempt", 500, `{"command_error":"Error 1062 (23000): Duplicate entry 'U' for key 'commands.PRIMARY'"}`, true, []server.Outcome{server.Queued, server.Queued, server.Queued}},
		{"older mysql duplicate after a landed attempt", 500, `{"command_error":"Error 1062 (23000): Duplicate entry 'U' for key 'PRIMARY'"}`, true, []server.Outcome{server.Queued, server.Queued, server.Queued}},
		{"mysql duplicate of another UUID", 500, `{"command_error":"Error 1062 (23000): Duplicate entry 'V' for key 'commands.PRIMARY'"}`, true, []server.Outcome{server.Failed, server.Failed, server.Failed}},
		{"pgsql duplicate of a queue row is no command duplicate", 500, `{"command_error":"pq: duplicate key value violates unique constraint \"enrollment_queue_pkey\""}`, true, []server.Outcome{server.Failed, server.Failed, server.Failed}},
		{"207 naming IDs not requested", 207, `{"status":{"a":{"command_error":"x"},"B":{"push_result":"p"}}}`, false, []server.Outcome{server.Unknown, server.Queued, server.Unknown}},
		{"500 naming IDs not requested", 500, `{"status":{"x":{"command_error":"e"},"y":{"command_error":"e"},"z":{"command_error":"e"}}}`, false, []server.Outcome{server.Unknown, server.Unknown, server.Unknown}},
		{"207 naming no failing requested ID", 207, `{"status":{"A":{"push_result":"p"}}}`, false, []server.Outcome{server.Queued, server.Unknown, server.Unknown}},
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

// TestBackendErrors: the answers of NanoMDM v0.9.0's storage backends, as
// lib/pq and go-sql-driver/mysql word them.
func TestBackendErrors(t *testing.T) {
	const uuid = "5C8A3B1E-0000-4000-8000-000000000001"
	mysqlFK := "Error 1452 (23000): Cannot add or update a child row: a foreign key constraint fails (`nanomdm`.`enrollment_queue`, CONSTRAINT `enrollment_queue_ibfk_1` FOREIGN KEY (`id`) REFERENCES `enrollments` (`id`) ON DELETE CASCADE ON UPDATE CASCADE)"
	for _, tt := range []struct {
		text                   string
		notEnrolled, duplicate bool
	}{
		{`pq: insert or update on table "enrollment_queue" violates foreign key constraint "enrollment_queue_id_fkey"`, true, false},
		{mysqlFK, true, false},
		{"Error 1452 (23000): Cannot add or update a child row: a foreign key constraint fails (`nanomdm`.`enrollment_queue`, CONSTRAINT `enrollment_queue_ibfk_2` FOREIGN KEY (`command_uuid`) REFERENCES `commands` (`command_uuid`))", false, false},
		{"command already exists: " + uuid, false, true},
		{`pq: duplicate key value violates unique constraint "commands_pkey"`, false, true},
		{"Error 1062 (23000): Duplicate entry '" + uuid + "' for key 'commands.PRIMARY'", false, true},
		{"Error 1062 (23000): Duplicate entry '" + uuid + "' for key 'PRIMARY'", false, true},
		{"Error 1062 (23000): Duplicate entry 'DEV1-" + uuid + "' for key 'enrollment_queue.PRIMARY'", false, false},
		{"writing command: storage unavailable", false, false},
	} {
		if got := notEnrolled(tt.text); got != tt.notEnrolled {
			t.Errorf("notEnrolled(%q) = %t", tt.text, got)
		}
		if got := isDuplicate(tt.text, uuid); got != tt.duplicate {
			t.Errorf("isDuplicate(%q) = %t", tt.text, got)
		}
	}
}

// TestNotEnrolledIsAnError: the foreign-key answer queued nothing for
// anyone, whatever the status says; Enqueue returns it as such.
func TestNotEnrolledIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"command_error":"pq: insert or update on table \"enrollment_queue\" violates foreign key constraint \"enrollment_queue_id_fkey\"","no_push":true}`))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	_, err := (&Client{BaseURL: u, APIKey: "k", HTTP: srv.Client()}).Enqueue(context.Background(), server.Request{CommandUUID: "U", IDs: []string{"A", "STALE"}, NoPush: true})
	var ne *server.NotEnrolledError
	if !errors.As(err, &ne) || server.MayBeQueued(err) {
		t.Fatalf("err = %v, want a NotEnrolledError", err)
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
	req := server.Request{CommandUUID: "U", Lock: apple.DeviceLock{Message: "Return to IT"}, IDs: []string{"A"}, NoPush: true}
	want, _ := req.Plist()
	res, err := c.Enqueue(context.Background(), req)
	if err != nil || res.Devices[0].Outcome != server.Queued {
		t.Fatalf("%+v, %v", res, err)
	}
	user, pass, ok := got.BasicAuth()
	if got.Method != http.MethodPut || got.URL.Path != "/prefix/v1/enqueue/A" || got.URL.RawQuery != "nopush=1" || !ok || user != "nanomdm" || pass != "k" || body != string(want) {
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

func TestCheckIDRefusesWhatThePathCannotCarry(t *testing.T) {
	for _, id := range []string{"00008020-000915083C80012E", "enrollment.id_1:x", "DEV00001"} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"a,b", "a/b", "a?b", "a#b", "a%b"} {
		if err := CheckID(id); err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("CheckID(%q) = %v, want an error naming it", id, err)
		}
	}
}
