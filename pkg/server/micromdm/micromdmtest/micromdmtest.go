// Package micromdmtest is a stand-in for a MicroMDM v1 server, which cannot
// run here: it serves the raw command API as MicroMDM documents it (see the
// micromdm package) and records what each device was sent.
package micromdmtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"howett.net/plist"
)

// Server is a fake MicroMDM.
type Server struct {
	*httptest.Server
	APIKey string

	mu       sync.Mutex
	commands map[string][][]byte // udid -> raw plists, in order
	// Fail, when set, makes the server answer 500 {"error": Fail(udid)} for
	// the devices it returns a non-empty string for.
	Fail func(udid string) string
}

// Start serves a fake MicroMDM with apiKey on loopback.
func Start(apiKey string) *Server {
	s := &Server{APIKey: apiKey, commands: map[string][][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/commands/", s.rawCommand)
	s.Server = httptest.NewServer(mux)
	return s
}

// Commands returns what udid was sent.
func (s *Server) Commands(udid string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.commands[udid]...)
}

func (s *Server) rawCommand(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != "micromdm" || pass != s.APIKey {
		w.Header().Set("WWW-Authenticate", `Basic realm="micromdm"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	udid := strings.TrimPrefix(r.URL.Path, "/v1/commands/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	var cmd struct {
		CommandUUID string
		Command     struct{ RequestType string }
	}
	if _, err := plist.Unmarshal(body, &cmd); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
		return
	}
	if cmd.CommandUUID == "" || cmd.Command.RequestType == "" {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "request must contain UDID of the device"})
		return
	}
	if s.Fail != nil {
		if msg := s.Fail(udid); msg != "" {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": msg})
			return
		}
	}
	s.mu.Lock()
	s.commands[udid] = append(s.commands[udid], body)
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"payload": map[string]any{
		"udid": udid, "command_uuid": cmd.CommandUUID,
		"command": map[string]any{"request_type": cmd.Command.RequestType},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
