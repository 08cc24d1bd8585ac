// Package jamftest is a stand-in for a Jamf Pro server, which cannot run
// here. It answers the endpoints mdmctl uses the way Jamf's developer
// documentation and the SDKs built from its OpenAPI schema describe them
// (see the jamf package), and runs simulated devices that take their
// DEVICE_LOCK and answer, so the command states can be polled.
//
// Modelled: POST /api/oauth/token (client credentials in the form; 401
// invalid_client; tokens that expire, or are revoked on demand, answer 401
// on the API); GET /api/v1/computers-inventory and GET
// /api/v2/mobile-devices/detail (sections, RSQL filters of == terms joined
// by ";" and ",", pages from 0 with page-size, {"totalCount", "results"};
// as in 11.6's schema, a mobile device's detail carries no management ID,
// GET /api/v2/mobile-devices/{id} does);
// POST /api/v2/mdm/commands (DEVICE_LOCK only, a six-digit pin, a
// management ID Jamf does not know refuses the whole request with 400, a
// command per device answered [{"id", "href"}] with 201); GET
// /api/v2/mdm/commands (a filter is required: uuid, clientManagementId,
// command, status); the API role's privileges (403 INVALID_PRIVILEGE);
// Jamf's error envelope {"httpStatus", "errors": [{"code", "field",
// "description", "id"}]}; a rate limit answering 429 with Retry-After.
//
// Invented where Jamf's documents say nothing: the exact codes and
// descriptions of errors, the body of a 429, the href's form.
package jamftest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
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

// Privileges of Jamf Pro's API roles that the stand-in checks.
const (
	PrivLockMac    = "Send Computer Remote Lock Command"
	PrivLockMobile = "Send Mobile Device Remote Lock Command"
	PrivReadMacs   = "Read Computers"
	PrivReadMobile = "Read Mobile Devices"
	PrivViewMDM    = "View MDM command information in Jamf Pro API"
)

// Device is a computer or mobile device Jamf knows.
type Device struct {
	UDID, Serial string
	// Mobile devices are iPhones and iPads; the rest are computers.
	Mobile bool
	// Model is the model identifier ("MacBookAir10,1"); OSVersion "11.4".
	Model, OSVersion string
	AppleSilicon     bool
	// Unmanaged devices are in the inventory but not managed: no
	// management ID, no MDM command.
	Unmanaged bool
	// Behavior answers the commands; nil means the device never checks in.
	Behavior simdevice.Behavior

	managementID string
	id           int
}

// Command is one queued MDM command, as the stand-in keeps it.
type Command struct {
	UUID, ManagementID, UDID string
	Type                     string
	PIN, Message, Phone      string
	State                    string // PENDING, ACKNOWLEDGED, NOT_NOW, ERROR
	Sent, Completed          time.Time
}

// Server is a fake Jamf Pro on loopback. Its methods are safe for
// concurrent use, also while requests are being served.
type Server struct {
	*httptest.Server
	ClientID, Secret string
	// TokenLifetime is the expires_in of each token (default 20 minutes).
	TokenLifetime time.Duration

	mu         sync.Mutex
	devices    []*Device
	tokens     map[string]time.Time
	issued     int
	privileges map[string]bool
	commands   []*Command
	posts      int // POSTs that queued commands
	throttle   int // API requests still to answer 429
	drop       int // command POSTs still to queue and then drop
	fail       int // command POSTs still to refuse with failStatus, unqueued
	failStatus int
	requests   map[string]int
}

// Start serves a fake Jamf Pro whose API client is clientID with secret,
// its role holding every privilege mdmctl needs.
func Start(clientID, secret string, devices ...Device) *Server {
	s := &Server{ClientID: clientID, Secret: secret, TokenLifetime: 20 * time.Minute,
		tokens: map[string]time.Time{}, requests: map[string]int{},
		privileges: map[string]bool{PrivLockMac: true, PrivLockMobile: true, PrivReadMacs: true, PrivReadMobile: true, PrivViewMDM: true}}
	for i, d := range devices {
		d := d
		d.id = i + 1
		if !d.Unmanaged {
			d.managementID = uuid.NewString()
		}
		s.devices = append(s.devices, &d)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/oauth/token", s.token)
	mux.HandleFunc("GET /api/v1/computers-inventory", s.api(s.computers))
	mux.HandleFunc("GET /api/v2/mobile-devices/detail", s.api(s.mobiles))
	mux.HandleFunc("GET /api/v2/mobile-devices/{id}", s.api(s.mobile))
	mux.HandleFunc("POST /api/v2/mdm/commands", s.api(s.post))
	mux.HandleFunc("GET /api/v2/mdm/commands", s.api(s.list))
	// Started once s.Server is set: handlers read s.URL.
	s.Server = httptest.NewUnstartedServer(mux)
	s.Start()
	return s
}

// Deny removes a privilege from the API client's role.
func (s *Server) Deny(privilege string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.privileges, privilege)
}

// RevokeTokens makes every token issued so far answer 401, as one that
// expired early does.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokensIssued counts the tokens the token endpoint gave out.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Throttle makes the next n API requests answer 429 with Retry-After: 1.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// DropReplies makes the next n command POSTs queue their commands and then
// close the connection without a reply.
func (s *Server) DropReplies(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = n
}

// FailPosts makes the next n command POSTs answer status without queuing
// anything, as a gateway in front of Jamf does when Jamf is down.
func (s *Server) FailPosts(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.failStatus = n, status
}

// Posts counts the command POSTs that queued commands.
func (s *Server) Posts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

// Requests counts the API requests made to a path (429s included).
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// Commands returns the commands queued for the device with udid, oldest first.
func (s *Server) Commands(udid string) []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Command
	for _, c := range s.commands {
		if strings.EqualFold(c.UDID, udid) {
			out = append(out, *c)
		}
	}
	return out
}

// ConsoleLock queues a DEVICE_LOCK for the device with udid as an admin
// does in Jamf's console, outside mdmctl, and returns its uuid. It stays
// pending: the device has not fetched it yet.
func (s *Server) ConsoleLock(udid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if strings.EqualFold(d.UDID, udid) && d.managementID != "" {
			c := &Command{UUID: uuid.NewString(), ManagementID: d.managementID, UDID: d.UDID, Type: "DEVICE_LOCK",
				State: "PENDING", Sent: time.Now().UTC()}
			s.commands = append(s.commands, c)
			return c.UUID
		}
	}
	return ""
}

// ManagementID returns the management ID of the device with udid.
func (s *Server) ManagementID(udid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if strings.EqualFold(d.UDID, udid) {
			return d.managementID
		}
	}
	return ""
}

type cause struct {
	Code        string  `json:"code"`
	Field       *string `json:"field"`
	Description string  `json:"description"`
	ID          *string `json:"id"`
}

func writeError(w http.ResponseWriter, status int, code, field, description string) {
	var f *string
	if field != "" {
		f = &field
	}
	zero := "0"
	servertest.WriteJSON(w, status, map[string]any{"httpStatus": status, "errors": []cause{{Code: code, Field: f, Description: description, ID: &zero}}})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		servertest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		servertest.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if r.PostForm.Get("client_id") != s.ClientID || r.PostForm.Get("client_secret") != s.Secret {
		servertest.WriteJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	s.mu.Lock()
	s.issued++
	tok := fmt.Sprintf("jamf-access-%d-%s", s.issued, uuid.NewString())
	s.tokens[tok] = time.Now().Add(s.TokenLifetime)
	life := s.TokenLifetime
	s.mu.Unlock()
	servertest.WriteJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "scope": "api-role:1", "token_type": "Bearer", "expires_in": int(life / time.Second),
	})
}

// api checks the rate limit and the token before next.
func (s *Server) api(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.URL.Path]++
		throttled := s.throttle > 0
		if throttled {
			s.throttle--
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		exp, ok := s.tokens[tok]
		s.mu.Unlock()
		if throttled {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "", "Too many requests")
			return
		}
		if !ok || time.Now().After(exp) {
			writeError(w, http.StatusUnauthorized, "INVALID_TOKEN", "", "Unauthorized")
			return
		}
		next(w, r)
	}
}

func (s *Server) allowed(w http.ResponseWriter, privilege, what string) bool {
	s.mu.Lock()
	ok := s.privileges[privilege]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusForbidden, "INVALID_PRIVILEGE", "", fmt.Sprintf("User %s not privileged for [%s]", s.ClientID, what))
	}
	return ok
}

// term is field==value; a filter is an or of ands of terms.
type term struct{ field, value string }

var termRE = regexp.MustCompile(`^([A-Za-z.]+)==(?:"((?:[^"\\]|\\.)*)"|([^"]*))$`)

// parseFilter reads the RSQL subset mdmctl sends: == terms, ";" (and)
// binding tighter than "," (or), values bare or double-quoted.
func parseFilter(f string) ([][]term, error) {
	var or [][]term
	for _, group := range splitTop(f, ',') {
		var and []term
		for _, t := range splitTop(group, ';') {
			m := termRE.FindStringSubmatch(strings.TrimSpace(t))
			if m == nil {
				return nil, fmt.Errorf("cannot parse %q", t)
			}
			v := m[3]
			if m[2] != "" || m[3] == "" {
				v = regexp.MustCompile(`\\(.)`).ReplaceAllString(m[2], "$1")
			}
			and = append(and, term{m[1], v})
		}
		or = append(or, and)
	}
	return or, nil
}

// splitTop splits s at sep outside double quotes.
func splitTop(s string, sep byte) []string {
	var out []string
	quoted, esc, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func matches(filter [][]term, field func(string) (string, bool)) (bool, error) {
	for _, and := range filter {
		all := true
		for _, t := range and {
			v, ok := field(t.field)
			if !ok {
				return false, fmt.Errorf("%s is not a field this list filters on", t.field)
			}
			if !strings.EqualFold(v, t.value) {
				all = false
			}
		}
		if all {
			return true, nil
		}
	}
	return len(filter) == 0, nil
}

// paged answers the page asked for of items.
func paged(w http.ResponseWriter, r *http.Request, items []any) {
	q := r.URL.Query()
	p, size := 0, 100
	if v := q.Get("page"); v != "" {
		p, _ = strconv.Atoi(v)
	}
	if v := q.Get("page-size"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	if p < 0 || size < 1 || size > 2000 {
		writeError(w, http.StatusBadRequest, "INVALID_PAGINATION", "page-size", "page must be 0 or more and page-size 1 to 2000")
		return
	}
	lo, hi := min(p*size, len(items)), min((p+1)*size, len(items))
	servertest.WriteJSON(w, http.StatusOK, map[string]any{"totalCount": len(items), "results": items[lo:hi]})
}

func sections(r *http.Request) map[string]bool {
	out := map[string]bool{}
	for _, v := range r.URL.Query()["section"] {
		for _, s := range strings.Split(v, ",") {
			out[strings.TrimSpace(s)] = true
		}
	}
	if len(out) == 0 {
		out["GENERAL"] = true
	}
	return out
}

func (s *Server) filtered(w http.ResponseWriter, r *http.Request, mobile bool, field func(d *Device, f string) (string, bool)) ([]*Device, bool) {
	filter, err := parseFilter(r.URL.Query().Get("filter"))
	if r.URL.Query().Get("filter") == "" {
		filter, err = nil, nil
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD", "filter", "Invalid RSQL filter: "+err.Error())
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Device
	for _, d := range s.devices {
		if d.Mobile != mobile {
			continue
		}
		ok, err := matches(filter, func(f string) (string, bool) { return field(d, f) })
		if err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_FIELD", "filter", err.Error())
			return nil, false
		}
		if ok {
			out = append(out, d)
		}
	}
	return out, true
}

// inventory answers what a computers or mobile devices listing shares:
// the privilege it needs, the RSQL filter on the fields it names. It
// returns the devices listed; false when it has answered already.
func (s *Server) inventory(w http.ResponseWriter, r *http.Request, mobile bool, priv, what string, fields map[string]func(*Device) string) ([]*Device, bool) {
	if !s.allowed(w, priv, what) {
		return nil, false
	}
	return s.filtered(w, r, mobile, func(d *Device, f string) (string, bool) {
		if get, ok := fields[f]; ok {
			return get(d), true
		}
		return "", false
	})
}

func udidOf(d *Device) string         { return d.UDID }
func serialOf(d *Device) string       { return d.Serial }
func managementIDOf(d *Device) string { return d.managementID }

func (s *Server) computers(w http.ResponseWriter, r *http.Request) {
	devs, ok := s.inventory(w, r, false, PrivReadMacs, "Read Computers",
		map[string]func(*Device) string{"udid": udidOf, "hardware.serialNumber": serialOf, "general.managementId": managementIDOf})
	if !ok {
		return
	}
	sec := sections(r)
	var items []any
	for _, d := range devs {
		rec := map[string]any{"id": strconv.Itoa(d.id), "udid": d.UDID, "general": nil, "hardware": nil, "operatingSystem": nil}
		if sec["GENERAL"] {
			var mid any
			if d.managementID != "" {
				mid = d.managementID
			}
			rec["general"] = map[string]any{"name": "mac-" + d.Serial, "platform": "Mac", "managementId": mid,
				"remoteManagement": map[string]any{"managed": !d.Unmanaged, "managementUsername": "jamfadmin"}, "supervised": true}
		}
		if sec["HARDWARE"] {
			arch := "x86_64"
			if d.AppleSilicon {
				arch = "arm64"
			}
			rec["hardware"] = map[string]any{"make": "Apple", "serialNumber": d.Serial, "modelIdentifier": d.Model,
				"processorArchitecture": arch, "appleSilicon": d.AppleSilicon}
		}
		if sec["OPERATING_SYSTEM"] {
			rec["operatingSystem"] = map[string]any{"name": "macOS", "version": d.OSVersion, "build": ""}
		}
		items = append(items, rec)
	}
	paged(w, r, items)
}

func (s *Server) mobiles(w http.ResponseWriter, r *http.Request) {
	devs, ok := s.inventory(w, r, true, PrivReadMobile, "Read Mobile Devices",
		map[string]func(*Device) string{"udid": udidOf, "serialNumber": serialOf, "managementId": managementIDOf})
	if !ok {
		return
	}
	sec := sections(r)
	var items []any
	for _, d := range devs {
		rec := map[string]any{"mobileDeviceId": strconv.Itoa(d.id), "deviceType": "iOS", "general": nil, "hardware": nil}
		if sec["GENERAL"] {
			// 11.6's MobileDeviceGeneral has no managementId: the
			// device's own record has it.
			rec["general"] = map[string]any{"udid": d.UDID, "displayName": "device-" + d.Serial, "osVersion": d.OSVersion,
				"managed": !d.Unmanaged, "supervised": true}
		}
		if sec["HARDWARE"] {
			rec["hardware"] = map[string]any{"serialNumber": d.Serial, "modelIdentifier": d.Model}
		}
		items = append(items, rec)
	}
	paged(w, r, items)
}

// mobile answers GET /api/v2/mobile-devices/{id}: the device's record,
// with its management ID.
func (s *Server) mobile(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(w, PrivReadMobile, "Read Mobile Devices") {
		return
	}
	s.mu.Lock()
	var found *Device
	for _, d := range s.devices {
		if d.Mobile && strconv.Itoa(d.id) == r.PathValue("id") {
			found = d
		}
	}
	s.mu.Unlock()
	if found == nil {
		writeError(w, http.StatusNotFound, "INVALID_ID", "id", "Mobile device not found")
		return
	}
	var mid any
	if found.managementID != "" {
		mid = found.managementID
	}
	servertest.WriteJSON(w, http.StatusOK, map[string]any{
		"id": strconv.Itoa(found.id), "name": "device-" + found.Serial, "serialNumber": found.Serial, "udid": found.UDID,
		"model": found.Model, "modelIdentifier": found.Model, "type": "ios", "managementId": mid,
	})
}

var pinRE = regexp.MustCompile(`^[0-9]{6}$`)

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fail, status := s.fail > 0, s.failStatus
	if fail {
		s.fail--
	}
	s.mu.Unlock()
	if fail {
		http.Error(w, "<html><body>Bad Gateway</body></html>", status)
		return
	}
	var req struct {
		ClientData []struct {
			ManagementID string `json:"managementId"`
		} `json:"clientData"`
		CommandData map[string]any `json:"commandData"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD", "", "Unable to parse the request body")
		return
	}
	str := func(k string) string { v, _ := req.CommandData[k].(string); return v }
	if t := str("commandType"); t != "DEVICE_LOCK" {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD", "commandData.commandType", "The stand-in takes DEVICE_LOCK only, not "+strconv.Quote(t))
		return
	}
	if pin := str("pin"); pin != "" && !pinRE.MatchString(pin) {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD", "commandData.pin", "pin must be 6 digits")
		return
	}
	if len(req.ClientData) == 0 {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD", "clientData", "clientData must not be empty")
		return
	}
	s.mu.Lock()
	var targets []*Device
	for i, c := range req.ClientData {
		var found *Device
		for _, d := range s.devices {
			if d.managementID != "" && strings.EqualFold(d.managementID, c.ManagementID) {
				found = d
			}
		}
		if found == nil {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "INVALID_ID", fmt.Sprintf("clientData[%d].managementId", i),
				"No managed device with management id "+c.ManagementID)
			return
		}
		targets = append(targets, found)
	}
	s.mu.Unlock()
	for _, d := range targets {
		priv := PrivLockMac
		if d.Mobile {
			priv = PrivLockMobile
		}
		if !s.allowed(w, priv, "DEVICE_LOCK") {
			return
		}
	}
	s.mu.Lock()
	s.posts++
	var out []map[string]string
	for _, d := range targets {
		c := &Command{UUID: uuid.NewString(), ManagementID: d.managementID, UDID: d.UDID, Type: "DEVICE_LOCK",
			PIN: str("pin"), Message: str("message"), Phone: str("phoneNumber"), State: "PENDING", Sent: time.Now().UTC()}
		s.commands = append(s.commands, c)
		out = append(out, map[string]string{"id": c.UUID, "href": s.URL + "/api/v2/mdm/commands/" + c.UUID})
		if d.Behavior != nil && !d.Behavior.Offline() {
			go s.deliver(d, c, 0)
		}
	}
	drop := s.drop > 0
	if drop {
		s.drop--
	}
	s.mu.Unlock()
	if drop {
		if servertest.CloseWithoutReply(w) {
			return
		}
	}
	servertest.WriteJSON(w, http.StatusCreated, out)
}

// checkInDelay stands for the time a woken device takes to fetch a
// command, and, after NotNow, for the wait until its next check-in.
const checkInDelay = 30 * time.Millisecond

// deliver plays the device's side: fetch the command and answer; after
// NotNow, again at the next check-in.
func (s *Server) deliver(d *Device, c *Command, seen int) {
	time.Sleep(checkInDelay)
	s.mu.Lock()
	lock := apple.DeviceLock{PIN: c.PIN, Message: c.Message, PhoneNumber: c.Phone}
	id := c.UUID
	s.mu.Unlock()
	raw, err := lock.Payload(id)
	if err != nil {
		panic(err)
	}
	cmd, err := apple.ParseCommand(raw)
	if err != nil {
		panic(err)
	}
	resp := d.Behavior.Answer(cmd, seen)
	state := map[string]string{apple.StatusAcknowledged: "ACKNOWLEDGED", apple.StatusError: "ERROR", apple.StatusNotNow: "NOT_NOW"}[resp.Status]
	if state == "" {
		state = "ERROR"
	}
	s.mu.Lock()
	c.State = state
	if state != "NOT_NOW" {
		c.Completed = time.Now().UTC()
	}
	s.mu.Unlock()
	if state == "NOT_NOW" {
		s.deliver(d, c, seen+1)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(w, PrivViewMDM, "View MDM command information in Jamf Pro API") {
		return
	}
	raw := r.URL.Query().Get("filter")
	if raw == "" {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD", "filter", "At least one filter is required")
		return
	}
	filter, err := parseFilter(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_FIELD", "filter", "Invalid RSQL filter: "+err.Error())
		return
	}
	s.mu.Lock()
	mobile := map[string]bool{}
	for _, d := range s.devices {
		mobile[d.managementID] = d.Mobile
	}
	var items []any
	for _, c := range s.commands {
		ok, err := matches(filter, func(f string) (string, bool) {
			switch f {
			case "uuid":
				return c.UUID, true
			case "clientManagementId":
				return c.ManagementID, true
			case "command":
				return c.Type, true
			case "status":
				return c.State, true
			}
			return "", false
		})
		if err != nil {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "INVALID_FIELD", "filter", err.Error())
			return
		}
		if !ok {
			continue
		}
		clientType := "COMPUTER"
		if mobile[c.ManagementID] {
			clientType = "MOBILE_DEVICE"
		}
		var completed any
		if !c.Completed.IsZero() {
			completed = c.Completed.Format(time.RFC3339Nano)
		}
		items = append(items, map[string]any{
			"uuid": c.UUID, "client": map[string]string{"managementId": c.ManagementID, "clientType": clientType},
			"commandState": c.State, "commandType": c.Type, "dateSent": c.Sent.Format(time.RFC3339Nano),
			"dateCompleted": completed, "profileId": nil, "profileIdentifier": nil,
		})
	}
	s.mu.Unlock()
	slices.Reverse(items) // newest first, as an admin's console lists them
	paged(w, r, items)
}
