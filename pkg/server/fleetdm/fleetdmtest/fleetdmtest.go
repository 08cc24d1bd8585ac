// Package fleetdmtest is a stand-in for a Fleet server, which cannot run
// here (it needs MySQL, Redis and a license). It answers the two endpoints
// mdmctl uses the way Fleet's REST API documentation and its service code
// describe them (see the fleetdm package), and runs simulated devices that
// fetch their commands and answer, so the answers can be polled.
//
// Modelled: Bearer token auth (401); POST /api/v1/fleet/commands/run with
// Fleet's order of checks: no known host (404), a host with MDM off (412),
// bad base64 (400), a body that is not a command plist (415), DeviceLock
// without Premium (402), a host unknown to MDM (400, nothing queued), a
// CommandUUID already held (500, MySQL's duplicate key), then the push:
// failed_uuids, or 502 when it failed for every host (queued all the same).
// GET /api/v1/fleet/commands/results: 404 for an unknown command, else the
// answers so far. GET /api/v1/fleet/hosts/identifier/{uuid}: the host's
// id, platform, os_version, hardware_model and lock state, 404 for an
// unknown host. POST /api/v1/fleet/hosts/{id}/lock (Fleet's own lock, as
// its service's LockHost checks it): 404 for an unknown host, 402 without
// Premium, 422 with MDM off or a lock already pending, 409 when locked;
// then, on a Mac, DeviceLock queued under Fleet's own CommandUUID with a
// PIN it makes, 200 {"unlock_pin", "device_status", "pending_action"} with
// view_pin (204 without); the Mac's answer sets its lock state. An iPhone
// or iPad is put in Lost Mode instead (recorded, not simulated). Not
// modelled: teams and roles, Windows commands, unlock and wipe, the
// deprecated /mdm/apple endpoints.
package fleetdmtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// Host is a host Fleet knows.
type Host struct {
	UUID string
	// Serial is its hardware_serial; Fleet finds a host by it too.
	Serial string
	// MDMOff hosts are known to Fleet but not enrolled in its MDM.
	MDMOff bool
	// PushFails makes APNs refuse this host's push.
	PushFails bool
	// Behavior answers the commands; nil means the host never checks in.
	Behavior simdevice.Behavior
	// What Fleet's host details report, in its words: platform "darwin",
	// "ios" or "ipados", os_version "macOS 14.6.1", hardware_model "Mac14,3".
	Platform, OSVersion, HardwareModel string
}

// Server is a fake Fleet on loopback. Its methods are safe for concurrent
// use, also while requests are being served.
type Server struct {
	*httptest.Server
	Token string

	mu       sync.Mutex
	premium  bool
	hosts    map[string]Host
	ids      map[uint]string // Fleet's host IDs -> UUIDs
	state    map[string]*lockState
	commands map[string]*command
	runs     int // run requests that queued a command
	drop     int // replies still to drop after queuing
}

// lockState is a host's lock as Fleet's own lock keeps it.
type lockState struct {
	id       uint
	pending  bool
	locked   bool
	lostMode bool
	pin      string
	locks    int // lock requests Fleet took
}

type command struct {
	// own marks the DeviceLock of Fleet's own lock: its answer sets the
	// host's lock state.
	own     bool
	raw     []byte
	reqType string
	hosts   []string
	answers map[string]*answer
	order   []string // hosts in the order they first answered
}

type answer struct {
	status  string
	result  []byte
	updated time.Time
}

// Start serves a fake Fleet Premium whose API token is token.
func Start(token string, hosts ...Host) *Server {
	s := &Server{Token: token, premium: true, hosts: map[string]Host{}, ids: map[uint]string{}, state: map[string]*lockState{}, commands: map[string]*command{}}
	for i, h := range hosts {
		s.hosts[h.UUID] = h
		id := uint(i + 1)
		s.ids[id] = h.UUID
		s.state[h.UUID] = &lockState{id: id}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/fleet/commands/run", s.auth(s.run))
	mux.HandleFunc("GET /api/v1/fleet/commands/results", s.auth(s.results))
	mux.HandleFunc("GET /api/v1/fleet/hosts/identifier/{identifier}", s.auth(s.host))
	mux.HandleFunc("POST /api/v1/fleet/hosts/{id}/lock", s.auth(s.lock))
	s.Server = httptest.NewServer(mux)
	return s
}

// SetPremium switches the license: without Premium, DeviceLock is refused.
func (s *Server) SetPremium(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.premium = on
}

// DropReplies makes the next n run or lock requests queue their command and then
// close the connection without a reply, as a crash or a proxy timeout does.
func (s *Server) DropReplies(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = n
}

// Queue returns the CommandUUIDs queued for a host, oldest first.
func (s *Server) Queue(host string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for uuid, c := range s.commands {
		if slices.Contains(c.hosts, host) {
			out = append(out, uuid)
		}
	}
	slices.Sort(out)
	return out
}

// Command returns the plist queued under uuid.
func (s *Server) Command(uuid string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[uuid]
	if !ok {
		return nil, false
	}
	return slices.Clone(c.raw), true
}

// Locks counts the lock requests Fleet's own lock took for a host, and
// gives the PIN it made for the last one.
func (s *Server) Locks(host string) (n int, pin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state[host]
	if st == nil {
		return 0, ""
	}
	return st.locks, st.pin
}

// Runs counts the run requests that queued a command.
func (s *Server) Runs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs
}

type fleetError struct {
	Message string              `json:"message"`
	Errors  []map[string]string `json:"errors"`
}

func writeError(w http.ResponseWriter, status int, message, name, reason string) {
	servertest.WriteJSON(w, status, fleetError{Message: message, Errors: []map[string]string{{"name": name, "reason": reason}}})
}

func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.Token {
			writeError(w, http.StatusUnauthorized, "Authentication required", "base", "Authentication required")
			return
		}
		next(w, r)
	}
}

func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Command   string   `json:"command"`
		HostUUIDs []string `json:"host_uuids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "Bad request", "base", "json decoder error")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var known []Host
	for _, id := range req.HostUUIDs {
		if h, ok := s.hosts[id]; ok {
			known = append(known, h)
		}
	}
	if len(known) == 0 {
		writeError(w, http.StatusNotFound, "Validation Failed", "host_uuids", "No hosts targeted. Make sure you provide a valid UUID.")
		return
	}
	for _, h := range known {
		if h.MDMOff {
			writeError(w, http.StatusPreconditionFailed, "Validation Failed", "host_uuids",
				"Can't run the MDM command because one or more hosts have MDM turned off. Run the following command to see a list of hosts with MDM on: fleetctl get hosts --mdm.")
			return
		}
	}
	raw, err := base64.StdEncoding.DecodeString(req.Command)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(req.Command); err != nil {
			writeError(w, http.StatusBadRequest, "Validation Failed", "command", "unable to decode base64 command")
			return
		}
	}
	cmd, err := apple.ParseCommand(raw)
	if err != nil || cmd.CommandUUID == "" {
		writeError(w, http.StatusUnsupportedMediaType, "Validation Failed", "command", "unable to decode plist command")
		return
	}
	if cmd.RequestType == apple.RequestTypeDeviceLock && !s.premium {
		writeError(w, http.StatusPaymentRequired, "Requires Fleet Premium license", "base", "Requires Fleet Premium license")
		return
	}
	if len(known) < len(req.HostUUIDs) {
		writeError(w, http.StatusBadRequest, "Validation Failed", "device_ids",
			"at least one of the hosts is not enrolled in MDM or is not an elegible device: Error 1452: Cannot add or update a child row: a foreign key constraint fails")
		return
	}
	if _, dup := s.commands[cmd.CommandUUID]; dup {
		writeError(w, http.StatusInternalServerError, "Internal Server Error", "base",
			fmt.Sprintf("enqueue command: Error 1062 (23000): Duplicate entry '%s' for key 'nano_commands.PRIMARY'", cmd.CommandUUID))
		return
	}
	c := &command{raw: raw, reqType: cmd.RequestType, hosts: slices.Clone(req.HostUUIDs), answers: map[string]*answer{}}
	s.commands[cmd.CommandUUID] = c
	s.runs++
	var failed []string
	for _, h := range known {
		if h.PushFails {
			failed = append(failed, h.UUID)
			continue
		}
		if h.Behavior != nil && !h.Behavior.Offline() {
			go s.deliver(h, cmd.CommandUUID, 0)
		}
	}
	if s.dropped(w) {
		return
	}
	if len(failed) == len(known) {
		writeError(w, http.StatusBadGateway, "Bad Gateway", "base", "Apple push notificiation service: push failed for all hosts")
		return
	}
	servertest.WriteJSON(w, http.StatusOK, map[string]any{
		"command_uuid": cmd.CommandUUID, "request_type": cmd.RequestType, "failed_uuids": failed, "platform": "darwin",
	})
}

// dropped closes the connection without a reply when replies are to be
// dropped (DropReplies), as a crash or a proxy timeout does. s.mu is held.
func (s *Server) dropped(w http.ResponseWriter) bool {
	if s.drop == 0 {
		return false
	}
	s.drop--
	return servertest.CloseWithoutReply(w)
}

// checkInDelay stands for the time a woken device takes to fetch a command,
// and, after NotNow, for the wait until its next check-in.
const checkInDelay = 20 * time.Millisecond

// deliver plays the device's side: fetch the command, answer, and after a
// NotNow answer again at the next check-in, as Fleet re-sends it.
func (s *Server) deliver(h Host, uuid string, seen int) {
	time.Sleep(checkInDelay)
	s.mu.Lock()
	c := s.commands[uuid]
	s.mu.Unlock()
	cmd, err := apple.ParseCommand(c.raw)
	var resp apple.Response
	if err != nil {
		resp = simdevice.FormatErrorResponse(uuid, "The command could not be parsed.")
	} else {
		resp = h.Behavior.Answer(cmd, seen)
	}
	if resp.CommandUUID == "" {
		resp.CommandUUID = uuid
	}
	if resp.UDID == "" {
		resp.UDID = h.UUID
	}
	body, err := resp.Encode()
	if err != nil {
		panic(err) // the simulator's own response: a bug, not a case
	}
	s.mu.Lock()
	if _, ok := c.answers[h.UUID]; !ok {
		c.order = append(c.order, h.UUID)
	}
	c.answers[h.UUID] = &answer{status: resp.Status, result: body, updated: time.Now().UTC()}
	if st := s.state[h.UUID]; c.own && resp.Status != apple.StatusNotNow {
		st.pending, st.locked = false, resp.Status == apple.StatusAcknowledged
	}
	s.mu.Unlock()
	if resp.Status == apple.StatusNotNow {
		s.deliver(h, uuid, seen+1)
	}
}

func (s *Server) results(w http.ResponseWriter, r *http.Request) {
	uuid := r.URL.Query().Get("command_uuid")
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[uuid]
	if !ok {
		writeError(w, http.StatusNotFound, "Resource Not Found", "base", fmt.Sprintf("MDMCommand %s was not found in the datastore", uuid))
		return
	}
	type result struct {
		HostUUID    string `json:"host_uuid"`
		CommandUUID string `json:"command_uuid"`
		Status      string `json:"status"`
		UpdatedAt   string `json:"updated_at"`
		RequestType string `json:"request_type"`
		Hostname    string `json:"hostname"`
		Payload     []byte `json:"payload"`
		Result      []byte `json:"result"`
	}
	var out struct {
		Results []result `json:"results,omitempty"`
	}
	for _, host := range c.order {
		a := c.answers[host]
		out.Results = append(out.Results, result{
			HostUUID: host, CommandUUID: uuid, Status: a.status, UpdatedAt: a.updated.Format(time.RFC3339Nano),
			RequestType: c.reqType, Hostname: "host-" + host, Payload: c.raw, Result: a.result,
		})
	}
	servertest.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) host(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("identifier")
	s.mu.Lock()
	h, ok := s.hosts[id]
	if !ok { // Fleet's identifier is a UUID, a host name or a serial
		for _, c := range s.hosts {
			if c.Serial != "" && c.Serial == id {
				h, ok = c, true
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Resource Not Found", "base", fmt.Sprintf("Host %s was not found in the datastore", id))
		return
	}
	s.mu.Lock()
	st := *s.state[h.UUID]
	s.mu.Unlock()
	servertest.WriteJSON(w, http.StatusOK, map[string]any{"host": map[string]any{
		"id": st.id, "uuid": h.UUID, "hostname": "host-" + h.UUID, "hardware_serial": h.Serial, "platform": h.Platform,
		"os_version": h.OSVersion, "hardware_model": h.HardwareModel,
		"mdm": map[string]any{"connected_to_fleet": !h.MDMOff, "device_status": st.deviceStatus(), "pending_action": st.pendingAction()},
	}})
}

func (st lockState) deviceStatus() string {
	if st.locked {
		return "locked"
	}
	return "unlocked"
}

func (st lockState) pendingAction() string {
	if st.pending {
		return "lock"
	}
	return ""
}

// lock is Fleet's own lock, its checks in the order of its LockHost.
func (s *Server) lock(w http.ResponseWriter, r *http.Request) {
	var id uint
	if _, err := fmt.Sscan(r.PathValue("id"), &id); err != nil {
		writeError(w, http.StatusBadRequest, "Bad request", "id", "invalid host id")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	uuid, ok := s.ids[id]
	if !ok {
		writeError(w, http.StatusNotFound, "Resource Not Found", "base", fmt.Sprintf("Host %d was not found in the datastore", id))
		return
	}
	h, st := s.hosts[uuid], s.state[uuid]
	switch {
	case !s.premium:
		writeError(w, http.StatusPaymentRequired, "Requires Fleet Premium license", "base", "Requires Fleet Premium license")
		return
	case h.MDMOff:
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", "host_id", "Can't lock the host because it doesn't have MDM turned on.")
		return
	case st.pending:
		writeError(w, http.StatusUnprocessableEntity, "Validation Failed", "host_id", "Host has pending lock request. Host cannot be locked again until lock is complete.")
		return
	case st.locked:
		writeError(w, http.StatusConflict, "Conflict", "host_id", "Host is already locked.")
		return
	}
	st.locks++
	st.pending = true
	if h.Platform != "darwin" {
		st.lostMode = true // Fleet's own lock of an iPhone or iPad is Lost Mode
	} else {
		// Fleet makes a six-digit PIN; the stand-in's is the host's ID,
		// so scripts know it and can tell it never leaks.
		st.pin = fmt.Sprintf("38%04d", id)
		cmdUUID := fmt.Sprintf("F1EE7000-0000-4000-8000-%012d", len(s.commands)+1)
		raw, err := apple.DeviceLock{PIN: st.pin}.Payload(cmdUUID)
		if err != nil {
			panic(err) // the stand-in's own command
		}
		s.commands[cmdUUID] = &command{own: true, raw: raw, reqType: apple.RequestTypeDeviceLock, hosts: []string{uuid}, answers: map[string]*answer{}}
		if h.Behavior != nil && !h.Behavior.Offline() && !h.PushFails {
			go s.deliver(h, cmdUUID, 0)
		}
	}
	if s.dropped(w) {
		return
	}
	if r.URL.Query().Get("view_pin") != "true" || st.pin == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	servertest.WriteJSON(w, http.StatusOK, map[string]any{"unlock_pin": st.pin, "device_status": st.deviceStatus(), "pending_action": st.pendingAction()})
}
