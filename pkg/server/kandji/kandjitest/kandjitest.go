// Package kandjitest is a stand-in for a Kandji (Iru) tenant's API, which
// cannot run here. It answers the endpoints mdmctl uses the way Kandji's
// API documentation describes them (see the kandji package), and runs
// simulated devices that fetch their lock and answer, so the command
// list shows each lock's status move on.
//
// Modelled: Bearer token auth (401 {"detail"}; 403 for an endpoint the
// token is denied, see Deny); GET /api/v1/devices with limit (at most 300),
// offset and a serial_number filter that matches partial serials, a bare
// JSON list; GET /api/v1/devices/{id}/details (general, hardware_overview);
// POST /api/v1/devices/{id}/action/lock with an optional {"Message",
// "PhoneNumber"} body: 404 for an unknown device, 400 "JSON parse error" for
// a body that is not JSON, 400 "Command already running" while a lock is
// pending (or NotNow), else a DeviceLock command, pending, and for a Mac
// 200 {"PIN"} with a six digit PIN Kandji made; GET .../commands: {"commands":
// {"count", "next", "previous", "results"}} oldest first with limit and
// offset, status 1 pending, 2 running, 3 completed, 4 failed, 5 NotNow;
// GET .../secrets/unlockpin: {"pin"}. Throttle answers 429 with Retry-After;
// DropReplies takes a lock and closes the connection without a reply;
// HideLocks makes the command list lag behind the lock action;
// ConsoleLock adds a lock sent from outside mdmctl.
// Not modelled (unconfirmed in Kandji's documentation): the exact error
// bodies, the 429 body, Android and Windows devices, blueprints.
package kandjitest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// Device is a device the tenant holds.
type Device struct {
	// UDID is what details' hardware_overview.udid shows (in lower case,
	// as Kandji's examples show it).
	UDID string
	// DeviceID is Kandji's own ID; Start makes one when it is empty.
	DeviceID string
	Serial   string
	// Platform is Kandji's word: "Mac", "iPhone", "iPad", "AppleTV".
	Platform  string
	OSVersion string
	// Model is the model identifier ("MacBookAir10,1"); ModelName the
	// marketing name the device list shows.
	Model, ModelName string
	// ProcessorName is hardware_overview.processor_name ("Apple M1").
	ProcessorName string
	// Behavior answers the lock; nil means the device never checks in.
	Behavior simdevice.Behavior
}

// Lock is a lock command the tenant holds.
type Lock struct {
	UUID, Message, PhoneNumber, PIN string
	Status                          int
}

// Server is a fake Kandji tenant on loopback. Its methods are safe for
// concurrent use, also while requests are being served.
type Server struct {
	*httptest.Server
	Token string

	mu        sync.Mutex
	devices   []*device
	byID      map[string]*device
	denied    map[string]bool // "lock", "commands", "details", "list", "unlockpin"
	throttle  int
	throttled string // the endpoint throttled, "" for all
	retryIn   int
	drop      int
	hide      int // command-list replies still to leave locks out of
	pins      func(n int) string
	locks     int
	requests  map[string]int
}

type device struct {
	Device
	commands []*command
	pin      string
}

type command struct {
	uuid, requestType    string
	status, attempts     int
	requested, completed time.Time
	message, phone, pin  string
	errorChain           []map[string]any
}

// Start serves a fake tenant whose API token is token.
func Start(token string, devices ...Device) *Server {
	s := &Server{Token: token, byID: map[string]*device{}, denied: map[string]bool{}, requests: map[string]int{}}
	for _, d := range devices {
		if d.DeviceID == "" {
			d.DeviceID = uuid.NewString()
		}
		dd := &device{Device: d}
		// Every enrolled device has commands of Kandji's own already.
		t0 := time.Now().Add(-48 * time.Hour)
		for i, rt := range []string{"DeviceInformation", "ProfileList"} {
			dd.commands = append(dd.commands, &command{uuid: uuid.NewString(), requestType: rt, status: 3, attempts: 1,
				requested: t0.Add(time.Duration(i) * time.Minute), completed: t0.Add(time.Duration(i)*time.Minute + time.Second)})
		}
		s.devices = append(s.devices, dd)
		s.byID[d.DeviceID] = dd
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/devices", s.auth("list", s.list))
	mux.HandleFunc("GET /api/v1/devices/{id}/details", s.auth("details", s.details))
	mux.HandleFunc("POST /api/v1/devices/{id}/action/lock", s.auth("lock", s.lock))
	mux.HandleFunc("GET /api/v1/devices/{id}/commands", s.auth("commands", s.commands))
	mux.HandleFunc("GET /api/v1/devices/{id}/secrets/unlockpin", s.auth("unlockpin", s.unlockPIN))
	// Started once s.Server is set: handlers read s.URL.
	s.Server = httptest.NewUnstartedServer(mux)
	s.Start()
	return s
}

// AddHistory gives the device with udid n more completed commands of
// Kandji's own, requested before any lock: a long command list.
func (s *Server) AddHistory(udid string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.UDID != udid {
			continue
		}
		t0 := time.Now().Add(-time.Hour)
		var older []*command
		for i := range n {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			older = append(older, &command{uuid: uuid.NewString(), requestType: "InstalledApplicationList", status: 3, attempts: 1, requested: at, completed: at})
		}
		d.commands = append(older, d.commands...)
		slices.SortStableFunc(d.commands, func(a, b *command) int { return a.requested.Compare(b.requested) })
	}
}

// DeviceID is Kandji's ID for the device with udid.
func (s *Server) DeviceID(udid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.UDID == udid {
			return d.DeviceID
		}
	}
	return ""
}

// SetPINs makes the tenant's PINs with f (n counts the locks taken from
// 0), for tests that must know them; by default they are random.
func (s *Server) SetPINs(f func(n int) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins = f
}

// Deny answers 403 to the endpoint named ("list", "details", "lock",
// "commands", "unlockpin"), as for a token without that permission.
func (s *Server) Deny(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[endpoint] = true
}

// Allow undoes Deny.
func (s *Server) Allow(endpoint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.denied, endpoint)
}

// Throttle answers the next n requests to endpoint (a name Deny takes, or
// "" for any) 429 with Retry-After: retryAfter seconds, as the tenant's
// hourly limit does.
func (s *Server) Throttle(endpoint string, n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttled, s.throttle, s.retryIn = endpoint, n, retryAfter
}

// DropReplies makes the next n lock requests take the lock and then close
// the connection without a reply, as a crash or a proxy timeout does.
func (s *Server) DropReplies(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = n
}

// HideLocks leaves locks out of the next n command-list replies, as a
// list that lags behind the lock action would.
func (s *Server) HideLocks(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hide = n
}

// ConsoleLock records a lock for the device with udid sent from Kandji's
// web console, outside mdmctl, and returns its UUID. It stays pending: the
// device has not fetched it yet.
func (s *Server) ConsoleLock(udid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.UDID == udid {
			c := &command{uuid: uuid.NewString(), requestType: apple.RequestTypeDeviceLock, status: 1, requested: time.Now().UTC()}
			d.commands = append(d.commands, c)
			return c.uuid
		}
	}
	return ""
}

// Locks returns the locks the tenant holds for the device with udid,
// oldest first.
func (s *Server) Locks(udid string) []Lock {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Lock
	for _, d := range s.devices {
		if d.UDID != udid {
			continue
		}
		for _, c := range d.commands {
			if c.requestType == apple.RequestTypeDeviceLock {
				out = append(out, Lock{UUID: c.uuid, Message: c.message, PhoneNumber: c.phone, PIN: c.pin, Status: c.status})
			}
		}
	}
	return out
}

// Requests counts the requests an endpoint answered (throttled ones too),
// by the names Deny takes.
func (s *Server) Requests(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[endpoint]
}

func writeDetail(w http.ResponseWriter, status int, detail string) {
	servertest.WriteJSON(w, status, map[string]string{"detail": detail})
}

func (s *Server) auth(endpoint string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[endpoint]++
		throttled := s.throttle > 0 && (s.throttled == "" || s.throttled == endpoint)
		retryIn, denied := s.retryIn, s.denied[endpoint]
		if throttled {
			s.throttle--
		}
		s.mu.Unlock()
		switch {
		case r.Header.Get("Authorization") != "Bearer "+s.Token:
			writeDetail(w, http.StatusUnauthorized, "Invalid token.")
		case throttled:
			w.Header().Set("Retry-After", strconv.Itoa(retryIn))
			writeDetail(w, http.StatusTooManyRequests, fmt.Sprintf("Request was throttled. Expected available in %d seconds.", retryIn))
		case denied:
			writeDetail(w, http.StatusForbidden, "You do not have permission to perform this action.")
		default:
			next(w, r)
		}
	}
}

func (d *device) listEntry() map[string]any {
	return map[string]any{
		"device_id": d.DeviceID, "device_name": d.Platform + " " + d.Serial, "model": d.ModelName,
		"serial_number": d.Serial, "platform": d.Platform, "os_version": d.OSVersion,
		"mdm_enabled": true, "agent_installed": d.Platform == "Mac", "is_missing": false, "is_removed": false,
		"last_check_in": time.Now().UTC().Format(time.RFC3339Nano), "tags": []string{},
	}
}

// pageOf reads limit (at most 300, default 300) and offset.
func pageOf(r *http.Request) (limit, offset int) {
	limit, offset = 300, 0
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 && n < 300 {
		limit = n
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("offset")); err == nil && n > 0 {
		offset = n
	}
	return limit, offset
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	limit, offset := pageOf(r)
	serial := strings.ToLower(r.URL.Query().Get("serial_number"))
	s.mu.Lock()
	var match []map[string]any
	for _, d := range s.devices {
		if serial == "" || strings.Contains(strings.ToLower(d.Serial), serial) {
			match = append(match, d.listEntry())
		}
	}
	s.mu.Unlock()
	out := []map[string]any{}
	if offset < len(match) {
		out = match[offset:min(offset+limit, len(match))]
	}
	servertest.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) *device {
	s.mu.Lock()
	d := s.byID[r.PathValue("id")]
	s.mu.Unlock()
	if d == nil {
		writeDetail(w, http.StatusNotFound, "Not found.")
	}
	return d
}

func (s *Server) details(w http.ResponseWriter, r *http.Request) {
	d := s.device(w, r)
	if d == nil {
		return
	}
	servertest.WriteJSON(w, http.StatusOK, map[string]any{
		"general": map[string]any{"device_id": d.DeviceID, "device_name": d.Platform + " " + d.Serial, "model": d.ModelName,
			"platform": d.Platform, "os_version": d.OSVersion},
		"mdm": map[string]any{"mdm_enabled": "True", "supervised": "True"},
		"hardware_overview": map[string]any{"model_name": d.ModelName, "model_identifier": d.Model, "processor_name": d.ProcessorName,
			"udid": strings.ToLower(d.UDID), "serial_number": d.Serial},
		"lost_mode": map[string]any{}, "tags": []string{},
	})
}

func (s *Server) newPIN() string {
	if s.pins != nil {
		return s.pins(s.locks)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%06d", n.Int64())
}

func (s *Server) lock(w http.ResponseWriter, r *http.Request) {
	d := s.device(w, r)
	if d == nil {
		return
	}
	var body struct {
		Message     string `json:"Message"`
		PhoneNumber string `json:"PhoneNumber"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err.Error() != "EOF" {
		servertest.WriteJSON(w, http.StatusBadRequest, "JSON parse error - "+err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range d.commands {
		if c.requestType == apple.RequestTypeDeviceLock && (c.status == 1 || c.status == 2 || c.status == 5) {
			servertest.WriteJSON(w, http.StatusBadRequest, "Command already running")
			return
		}
	}
	if d.Platform == "AppleTV" {
		servertest.WriteJSON(w, http.StatusBadRequest, "Command is not allowed for current device")
		return
	}
	c := &command{uuid: uuid.NewString(), requestType: apple.RequestTypeDeviceLock, status: 1, requested: time.Now().UTC(),
		message: body.Message, phone: body.PhoneNumber}
	reply := map[string]string{}
	if d.Platform == "Mac" {
		c.pin = s.newPIN()
		d.pin = c.pin
		reply["PIN"] = c.pin
	}
	s.locks++
	d.commands = append(d.commands, c)
	if d.Behavior != nil && !d.Behavior.Offline() {
		go s.deliver(d, c, 0)
	}
	if s.drop > 0 {
		s.drop--
		if servertest.CloseWithoutReply(w) {
			return
		}
	}
	servertest.WriteJSON(w, http.StatusOK, reply)
}

// checkInDelay stands for the time a woken device takes to fetch a
// command; nextCheckIn for the wait after NotNow until it checks in again.
const (
	checkInDelay = 30 * time.Millisecond
	nextCheckIn  = 500 * time.Millisecond
)

// deliver plays the device's side: fetch the lock, answer, and after
// NotNow answer again at the next check-in.
func (s *Server) deliver(d *device, c *command, seen int) {
	time.Sleep(checkInDelay)
	s.mu.Lock()
	c.status, c.attempts = 2, c.attempts+1
	cmd := apple.ParsedCommand{CommandUUID: c.uuid, RequestType: c.requestType,
		DeviceLock: apple.DeviceLock{PIN: c.pin, Message: c.message, PhoneNumber: c.phone}}
	s.mu.Unlock()
	resp := d.Behavior.Answer(cmd, seen)
	s.mu.Lock()
	switch resp.Status {
	case apple.StatusAcknowledged:
		c.status, c.completed = 3, time.Now().UTC()
	case apple.StatusNotNow:
		c.status = 5
	default:
		c.status, c.completed = 4, time.Now().UTC()
		for _, e := range resp.ErrorChain {
			c.errorChain = append(c.errorChain, map[string]any{"ErrorCode": e.ErrorCode, "ErrorDomain": e.ErrorDomain,
				"LocalizedDescription": e.LocalizedDescription, "USEnglishDescription": e.USEnglishDescription})
		}
	}
	s.mu.Unlock()
	if resp.Status == apple.StatusNotNow {
		time.Sleep(nextCheckIn)
		s.deliver(d, c, seen+1)
	}
}

func stamp(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Format(time.RFC3339Nano)
}

func (s *Server) commands(w http.ResponseWriter, r *http.Request) {
	d := s.device(w, r)
	if d == nil {
		return
	}
	limit, offset := pageOf(r)
	s.mu.Lock()
	all := slices.Clone(d.commands)
	if s.hide > 0 {
		s.hide--
		all = slices.DeleteFunc(all, func(c *command) bool { return c.requestType == apple.RequestTypeDeviceLock })
	}
	var results []map[string]any
	for _, c := range all[min(offset, len(all)):min(offset+limit, len(all))] {
		chain := c.errorChain
		if chain == nil {
			chain = []map[string]any{}
		}
		results = append(results, map[string]any{
			"uuid": c.uuid, "command_type": c.requestType, "request_type": c.requestType, "status": c.status,
			"attempts": c.attempts, "date_requested": stamp(c.requested), "date_completed": stamp(c.completed),
			"last_pushed": stamp(c.requested), "error_chain": chain, "metadata": map[string]any{}, "priority": 0,
			"request_requires_network_tether": false, "user": nil,
		})
	}
	s.mu.Unlock()
	page := func(off int) any {
		if off < 0 || off >= len(all) || off == offset {
			return nil
		}
		return fmt.Sprintf("%s/api/v1/devices/%s/commands?limit=%d&offset=%d", s.URL, d.DeviceID, limit, off)
	}
	var next, prev any
	if offset+limit < len(all) {
		next = page(offset + limit)
	}
	if offset > 0 {
		prev = page(max(offset-limit, 0))
	}
	if results == nil {
		results = []map[string]any{}
	}
	servertest.WriteJSON(w, http.StatusOK, map[string]any{
		"commands":  map[string]any{"count": len(all), "next": next, "previous": prev, "results": results},
		"device_id": d.DeviceID,
	})
}

func (s *Server) unlockPIN(w http.ResponseWriter, r *http.Request) {
	d := s.device(w, r)
	if d == nil {
		return
	}
	s.mu.Lock()
	pin := d.pin
	s.mu.Unlock()
	if pin == "" {
		writeDetail(w, http.StatusNotFound, "Not found.")
		return
	}
	servertest.WriteJSON(w, http.StatusOK, map[string]string{"pin": pin})
}
