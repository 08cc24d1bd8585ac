// Package micromdmtest is a stand-in for a MicroMDM v1 server, which cannot
// run here (its module is not served). It answers the raw command API the
// way micromdm/micromdm's platform/command and pkg/httputil do (see the
// micromdm package for what was read) and records what each device was sent.
//
// Modelled: POST and PUT /v1/commands/{udid}; the body decoded as an XML
// plist before the credentials are checked; 401 {"error":"Unauthorized"}
// with a Basic challenge; 500 {"error":...} for a body that is not an XML
// plist or lacks CommandUUID or Command.RequestType; 201 with the payload
// echoed; 404 for every path when the API key is empty (MicroMDM mounts no
// API then). Not modelled: GET and DELETE on the same path (viewing and
// clearing the queue), the JSON command API, pushes and webhooks.
package micromdmtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"howett.net/plist"

	"github.com/mdmctl/mdmctl/pkg/server/servertest"
)

// User is the Basic auth user MicroMDM requires.
const User = "micromdm"

// Server is a fake MicroMDM on loopback. Its methods are safe for
// concurrent use, also while requests are being served.
type Server struct {
	*httptest.Server
	// APIKey is the password the API wants; fixed at Start.
	APIKey string
	// Fail, when it returns a non-empty string for a UDID, makes the server
	// refuse that device's commands with 500 {"error": <that string>}.
	// Set it before the first request, or use SetFail.
	Fail func(udid string) string

	mu       sync.Mutex
	received []Command
}

// Command is one command the server accepted.
type Command struct {
	UDID        string // as MicroMDM sees it: unescaped
	Method      string
	CommandUUID string
	RequestType string
	Raw         []byte // the body, byte for byte
}

// Start serves a fake MicroMDM whose API key is apiKey; an empty key turns
// the API off, as on a real server.
func Start(apiKey string) *Server {
	s := &Server{APIKey: apiKey}
	mux := http.NewServeMux()
	if apiKey != "" {
		// The method patterns make every other method a 405, as gorilla/mux does.
		mux.HandleFunc("POST /v1/commands/{udid}", s.rawCommand)
		mux.HandleFunc("PUT /v1/commands/{udid}", s.rawCommand)
	}
	s.Server = httptest.NewServer(mux)
	return s
}

// SetFail replaces Fail while the server may be serving.
func (s *Server) SetFail(fail func(udid string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Fail = fail
}

// RejectUnknown makes the server refuse every UDID but enrolled. A real
// MicroMDM v1 takes commands for any UDID (it checks none); this stands
// for a server or proxy that does, and exercises the per-device failure.
func (s *Server) RejectUnknown(enrolled ...string) {
	known := slices.Clone(enrolled)
	s.SetFail(func(udid string) string {
		if slices.Contains(known, udid) {
			return ""
		}
		return "unknown device " + udid
	})
}

// Commands returns the raw plists udid was sent, oldest first.
func (s *Server) Commands(udid string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, c := range s.received {
		if c.UDID == udid {
			out = append(out, bytes.Clone(c.Raw))
		}
	}
	return out
}

// Received returns every accepted command, in arrival order.
func (s *Server) Received() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Command, len(s.received))
	for i, c := range s.received {
		c.Raw = bytes.Clone(c.Raw)
		out[i] = c
	}
	return out
}

// rawCommand follows MicroMDM's order: decode the body, then check the
// credentials, then the two required keys.
func (s *Server) rawCommand(w http.ResponseWriter, r *http.Request) {
	udid := r.PathValue("udid")
	if strings.Contains(udid, "/") {
		// gorilla/mux matches the decoded path, where %2F splits the segment.
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("read payload body: %v", err))
		return
	}
	var cmd struct {
		CommandUUID string
		Command     struct{ RequestType string }
	}
	// MicroMDM's decoder reads XML plists only.
	format, err := plist.Unmarshal(body, &cmd)
	if err == nil && format != plist.XMLFormat {
		err = fmt.Errorf("not an XML plist")
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("parse payload as plist: %v", err))
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != User || pass != s.APIKey {
		w.Header().Set("WWW-Authenticate", `Basic realm="micromdm"`)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		writeError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if cmd.CommandUUID == "" || cmd.Command.RequestType == "" {
		writeError(w, http.StatusInternalServerError, "request is malformed")
		return
	}
	s.mu.Lock()
	fail := s.Fail
	s.mu.Unlock()
	if fail != nil {
		if msg := fail(udid); msg != "" {
			writeError(w, http.StatusInternalServerError, msg)
			return
		}
	}
	s.mu.Lock()
	s.received = append(s.received, Command{UDID: udid, Method: r.Method,
		CommandUUID: cmd.CommandUUID, RequestType: cmd.Command.RequestType, Raw: body})
	s.mu.Unlock()
	servertest.WriteJSON(w, http.StatusCreated, map[string]any{"payload": map[string]any{
		"udid":         udid,
		"command_uuid": cmd.CommandUUID,
		"command":      map[string]any{"request_type": cmd.Command.RequestType},
		"payload":      body, // base64, as MicroMDM marshals its []byte
	}})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	servertest.WriteJSON(w, status, map[string]any{"error": msg})
}
