// Package simplemdmtest is a stand-in for SimpleMDM's API, which is a hosted
// service that cannot run here. It answers the endpoints mdmctl uses the
// way SimpleMDM's API reference (https://api.simplemdm.com) describes them.
//
// Modelled from the reference: HTTP Basic with the API key as the user and
// an empty password; errors as {"errors": [{"title": ...}]}; GET
// /api/v1/devices with search (name, UDID, serial number, IMEI, MAC
// address, phone number), cursor pagination (limit 1 to 100, default 10,
// starting_after, has_more) and the device attributes mdmctl reads; GET
// /api/v1/devices/{id}; POST /api/v1/devices/{id}/lock with form fields
// message, phone_number and pin, answering 202 Accepted with no body, 404
// "object not found" for an unknown id.
//
// Modelled as the nearest documented shape, not confirmed: 401 for a wrong
// key and 403 for a key without write access to devices (a ReadOnlyKey),
// each with an errors body; 422 for a Mac without a PIN, a PIN that is not
// six digits, a PIN sent to an iOS device and a device that is not
// enrolled; 429 with Retry-After (RateLimit) and 400 for a limit out of
// range. Not modelled: the other resources, include_awaiting_enrollment,
// direction, what the device does with the lock.
package simplemdmtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
)

// Device is a device in the stand-in's account, in SimpleMDM's words.
type Device struct {
	// ID is SimpleMDM's id; Start numbers devices without one from 101.
	ID     int
	Name   string
	UDID   string
	Serial string
	// Status is "enrolled" unless set.
	Status string
	// ProductName is the model identifier ("MacBookAir10,1"), OSVersion
	// "11.4", ProcessorArchitecture "arm64" or "x86_64" (empty: null, as
	// SimpleMDM reports for iOS).
	ProductName, OSVersion, ProcessorArchitecture string
}

// Lock is one lock request SimpleMDM accepted.
type Lock struct {
	DeviceID             int
	UDID                 string
	Message, PhoneNumber string
	PIN                  string
	PINGiven             bool
	At                   time.Time
}

// Server is a fake SimpleMDM on loopback. Its methods are safe for
// concurrent use, also while requests are being served.
type Server struct {
	*httptest.Server
	APIKey string
	// ReadOnlyKey is a key whose Devices permission is read only: it lists
	// devices, and its locks are refused 403.
	ReadOnlyKey string

	mu          sync.Mutex
	devices     []Device // by id
	locks       []Lock
	drop        int // lock replies still to drop after taking the lock
	limited     int // requests still to answer 429
	retryAfter  int
	limitedSeen int // 429s answered
	searches    int
}

// Start serves a fake SimpleMDM account holding devices, whose API key is key.
func Start(key string, devices ...Device) *Server {
	s := &Server{APIKey: key, ReadOnlyKey: key + "-read-only"}
	next := 101
	for _, d := range devices {
		if d.ID == 0 {
			d.ID = next
		}
		next = max(next, d.ID) + 1
		if d.Status == "" {
			d.Status = "enrolled"
		}
		s.devices = append(s.devices, d)
	}
	slices.SortFunc(s.devices, func(a, b Device) int { return a.ID - b.ID })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/devices", s.auth(false, s.list))
	mux.HandleFunc("GET /api/v1/devices/{id}", s.auth(false, s.show))
	mux.HandleFunc("POST /api/v1/devices/{id}/lock", s.auth(true, s.lock))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "object not found")
	})
	s.Server = httptest.NewServer(mux)
	return s
}

// DropReplies makes the next n lock requests take the lock and then close
// the connection without a reply, as a crash or a proxy timeout does.
func (s *Server) DropReplies(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = n
}

// RateLimit makes the next n requests, of any kind, answer 429 with
// Retry-After: retryAfter seconds, taking nothing.
func (s *Server) RateLimit(n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.retryAfter = n, retryAfter
}

// RateLimited counts the 429s answered.
func (s *Server) RateLimited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limitedSeen
}

// Searches counts the device list requests answered 200.
func (s *Server) Searches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.searches
}

// Locks returns the locks taken for the device with UDID udid, oldest first.
func (s *Server) Locks(udid string) []Lock {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Lock
	for _, l := range s.locks {
		if strings.EqualFold(l.UDID, udid) {
			out = append(out, l)
		}
	}
	return out
}

// AllLocks counts every lock taken.
func (s *Server) AllLocks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.locks)
}

type errorBody struct {
	Errors []map[string]string `json:"errors"`
}

func writeError(w http.ResponseWriter, status int, title string) {
	servertest.WriteJSON(w, status, errorBody{Errors: []map[string]string{{"title": title}}})
}

// auth checks the Basic credentials: the key as the user, no password.
// write marks a request that needs write access to devices.
func (s *Server) auth(write bool, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.limited > 0 {
			s.limited--
			s.limitedSeen++
			after := s.retryAfter
			s.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(after))
			writeError(w, http.StatusTooManyRequests, "too many requests")
			return
		}
		s.mu.Unlock()
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok || pass != "" || (user != s.APIKey && user != s.ReadOnlyKey):
			w.Header().Set("WWW-Authenticate", `Basic realm="SimpleMDM"`)
			writeError(w, http.StatusUnauthorized, "invalid API key")
			return
		case write && user == s.ReadOnlyKey:
			writeError(w, http.StatusForbidden, "API key does not have write access to devices")
			return
		}
		next(w, r)
	}
}

func (d Device) object() map[string]any {
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	modelName := "Unknown"
	if p, _, ok := apple.ModelFacts(d.ProductName); ok {
		modelName = map[apple.Platform]string{apple.PlatformMacOS: "Mac", apple.PlatformIOS: "iPhone", apple.PlatformIPadOS: "iPad"}[p]
	}
	return map[string]any{
		"type": "device",
		"id":   d.ID,
		"attributes": map[string]any{
			"name":                   d.Name,
			"last_seen_at":           "2026-12-01T09:00:00.000-08:00",
			"status":                 d.Status,
			"device_name":            d.Name,
			"os_version":             null(d.OSVersion),
			"model_name":             modelName,
			"product_name":           null(d.ProductName),
			"unique_identifier":      null(d.UDID),
			"serial_number":          null(d.Serial),
			"processor_architecture": null(d.ProcessorArchitecture),
			"is_supervised":          true,
			"filevault_recovery_key": nil,
		},
		"relationships": map[string]any{
			"device_group": map[string]any{"data": map[string]any{"type": "device_group", "id": 1}},
		},
	}
}

func (d Device) matches(search string) bool {
	if search == "" {
		return true
	}
	search = strings.ToLower(search)
	for _, f := range []string{d.Name, d.UDID, d.Serial} {
		if f != "" && strings.Contains(strings.ToLower(f), search) {
			return true
		}
	}
	return false
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "limit must be between 1 and 100")
			return
		}
		limit = n
	}
	after := 0
	if v := q.Get("starting_after"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "starting_after must be an object id")
			return
		}
		after = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	data := []map[string]any{}
	more := false
	for _, d := range s.devices {
		if d.ID <= after || !d.matches(q.Get("search")) {
			continue
		}
		if len(data) == limit {
			more = true
			break
		}
		data = append(data, d.object())
	}
	s.searches++
	servertest.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": more})
}

// device finds the device with the path's id; the caller holds mu.
func (s *Server) device(r *http.Request) (*Device, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil, false
	}
	for i := range s.devices {
		if s.devices[i].ID == id {
			return &s.devices[i], true
		}
	}
	return nil, false
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.device(r)
	if !ok {
		writeError(w, http.StatusNotFound, "object not found")
		return
	}
	servertest.WriteJSON(w, http.StatusOK, map[string]any{"data": d.object()})
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

func (s *Server) lock(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid request body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.device(r)
	if !ok {
		writeError(w, http.StatusNotFound, "object not found")
		return
	}
	platform, _, _ := apple.ModelFacts(d.ProductName)
	_, pinGiven := r.PostForm["pin"]
	pin := r.PostForm.Get("pin")
	switch {
	case d.Status != "enrolled":
		writeError(w, http.StatusUnprocessableEntity, "device is not enrolled")
		return
	case platform == apple.PlatformMacOS && pin == "":
		writeError(w, http.StatusUnprocessableEntity, "pin is required for macOS devices")
		return
	case pinGiven && platform != apple.PlatformMacOS:
		writeError(w, http.StatusUnprocessableEntity, "pin is not supported by iOS")
		return
	case pinGiven && !sixDigits.MatchString(pin):
		writeError(w, http.StatusUnprocessableEntity, "pin must be a 6-digit number")
		return
	}
	s.locks = append(s.locks, Lock{DeviceID: d.ID, UDID: d.UDID, Message: r.PostForm.Get("message"),
		PhoneNumber: r.PostForm.Get("phone_number"), PIN: pin, PINGiven: pinGiven, At: time.Now()})
	if s.drop > 0 {
		s.drop--
		if servertest.CloseWithoutReply(w) {
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// String describes a lock for scripts and test failures, PIN left out.
func (l Lock) String() string {
	return fmt.Sprintf("lock device %d message=%q phone=%q pin-given=%v", l.DeviceID, l.Message, l.PhoneNumber, l.PINGiven)
}
