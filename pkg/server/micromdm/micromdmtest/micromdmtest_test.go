package micromdmtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"howett.net/plist"
)

const key = "k"

var lockPlist = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>Command</key><dict><key>RequestType</key><string>DeviceLock</string></dict>
<key>CommandUUID</key><string>0001_DeviceLock</string>
</dict></plist>`)

type reply struct {
	status int
	header http.Header
	json   map[string]any
	text   string
}

func call(t *testing.T, s *Server, method, path, user, pass string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, text: string(data)}
	_ = json.Unmarshal(data, &r.json)
	return r
}

// TestShapes pins the fake to the replies read in MicroMDM's sources.
func TestShapes(t *testing.T) {
	s := Start(key)
	defer s.Close()
	binary, err := plist.Marshal(map[string]any{"CommandUUID": "U", "Command": map[string]any{"RequestType": "DeviceLock"}}, plist.BinaryFormat)
	if err != nil {
		t.Fatal(err)
	}
	noUUID := []byte(`<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>X</string></dict></dict></plist>`)
	tests := []struct {
		name, method, path, user, pass string
		body                           []byte
		status                         int
		errText                        string // the JSON "error", if any
	}{
		{"put", "PUT", "/v1/commands/UDID-1", User, key, lockPlist, 201, ""},
		{"post", "POST", "/v1/commands/UDID-2", User, key, lockPlist, 201, ""},
		{"wrong key", "PUT", "/v1/commands/UDID-1", User, "nope", lockPlist, 401, "Unauthorized"},
		{"wrong user", "PUT", "/v1/commands/UDID-1", "admin", key, lockPlist, 401, "Unauthorized"},
		{"no auth", "PUT", "/v1/commands/UDID-1", "", "", lockPlist, 401, "Unauthorized"},
		{"decoded before auth", "PUT", "/v1/commands/UDID-1", "", "", []byte("junk"), 500, "parse payload as plist"},
		{"binary plist", "PUT", "/v1/commands/UDID-1", User, key, binary, 500, "parse payload as plist"},
		{"no CommandUUID", "PUT", "/v1/commands/UDID-1", User, key, noUUID, 500, "request is malformed"},
		{"patch", "PATCH", "/v1/commands/UDID-1", User, key, lockPlist, 405, ""},
		{"no udid", "PUT", "/v1/commands/", User, key, lockPlist, 404, ""},
		{"slash in udid", "PUT", "/v1/commands/a%2Fb", User, key, lockPlist, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, tt.method, tt.path, tt.user, tt.pass, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.text)
			}
			if tt.errText != "" {
				if msg, _ := r.json["error"].(string); !strings.Contains(msg, tt.errText) {
					t.Fatalf("error %q, want %q", msg, tt.errText)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Fatalf("content type %q", ct)
				}
			}
			if tt.status == 401 && r.header.Get("WWW-Authenticate") != `Basic realm="micromdm"` {
				t.Fatalf("challenge %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	got := s.Received()
	if len(got) != 2 || got[0].UDID != "UDID-1" || got[1].Method != "POST" || !bytes.Equal(got[0].Raw, lockPlist) {
		t.Fatalf("received %+v", got)
	}
}

func TestCreatedReply(t *testing.T) {
	s := Start(key)
	defer s.Close()
	r := call(t, s, "PUT", "/v1/commands/UDID%201", User, key, lockPlist)
	var body struct {
		Payload struct {
			UDID        string `json:"udid"`
			CommandUUID string `json:"command_uuid"`
			Command     struct {
				RequestType string `json:"request_type"`
			} `json:"command"`
			Raw []byte `json:"payload"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(r.text), &body); err != nil {
		t.Fatal(err)
	}
	p := body.Payload
	if p.UDID != "UDID 1" || p.CommandUUID != "0001_DeviceLock" || p.Command.RequestType != "DeviceLock" || !bytes.Equal(p.Raw, lockPlist) {
		t.Fatalf("payload %+v", p)
	}
	if !strings.Contains(r.text, "\n  ") {
		t.Fatalf("reply is not indented as MicroMDM's: %s", r.text)
	}
	if cmds := s.Commands("UDID 1"); len(cmds) != 1 {
		t.Fatalf("Commands = %q", cmds)
	}
}

func TestFailAndAPIOff(t *testing.T) {
	s := Start(key)
	defer s.Close()
	s.SetFail(func(udid string) string {
		if udid == "BAD" {
			return "device not enrolled"
		}
		return ""
	})
	if r := call(t, s, "PUT", "/v1/commands/BAD", User, key, lockPlist); r.status != 500 || r.json["error"] != "device not enrolled" {
		t.Fatalf("status %d %s", r.status, r.text)
	}
	if r := call(t, s, "PUT", "/v1/commands/GOOD", User, key, lockPlist); r.status != 201 {
		t.Fatalf("status %d %s", r.status, r.text)
	}
	s.RejectUnknown("GOOD")
	if r := call(t, s, "PUT", "/v1/commands/OTHER", User, key, lockPlist); r.status != 500 || r.json["error"] != "unknown device OTHER" {
		t.Fatalf("status %d %s", r.status, r.text)
	}

	off := Start("")
	defer off.Close()
	if r := call(t, off, "PUT", "/v1/commands/GOOD", User, "", lockPlist); r.status != 404 {
		t.Fatalf("API off: status %d", r.status)
	}
}
