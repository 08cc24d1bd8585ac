// Package intunetest is a stand-in for Microsoft Intune behind Microsoft
// Graph, and for the Entra ID token endpoint, which cannot run here. It
// answers what mdmctl uses the way Graph's v1.0 reference and the
// msgraph-sdk-go models describe it (see the intune package), and plays
// the devices: a remoteLock is recorded at once as pending in the device's
// deviceActionResults, then the simulated device answers and the state
// becomes done or failed.
//
// Modelled: POST /{tenant}/oauth2/v2.0/token (client credentials in the
// form; AADSTS errors for an unknown tenant, a wrong client or secret, a
// wrong scope); Bearer tokens on every Graph call (401
// InvalidAuthenticationToken); the two application permissions (403
// Forbidden naming the one missing); GET /v1.0/deviceManagement/managedDevices
// with $select, $filter (serialNumber eq and operatingSystem eq; a filter on
// anything else is ignored, as Graph does) and @odata.nextLink paging, udid
// always empty in a list; GET .../managedDevices/{id} with $select (udid
// and deviceActionResults only when selected; 404 ResourceNotFound); POST
// .../managedDevices/{id}/remoteLock (no body, 204; a Mac gets a
// six-digit unlockPin in its remoteLockActionResult, or one made later
// on demand); 429 with Retry-After on demand; replies dropped after the lock took effect on demand.
// Certificate credentials too (SetCertificate): a PS256 client assertion
// naming the certificate by x5t#S256 (or the older RS256 with x5t), checked for its signature, audience,
// issuer and lifetime. Not modelled: delegated auth, $top/$orderby,
// other actions, beta.
package intunetest

import (
	"cmp"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// Device is a device Intune manages.
type Device struct {
	// ID is its managed device ID (a GUID); Start makes one when empty.
	ID     string
	UDID   string
	Serial string
	Name   string
	// What Intune reports, in its words: operatingSystem "macOS", "iOS",
	// "iPadOS"; osVersion "14.6.1"; model "MacBookAir10,1" or "MacBook Air".
	OperatingSystem, OSVersion, Model string
	// Behavior answers the lock; nil means the device never checks in.
	Behavior simdevice.Behavior
}

// Lock is one remoteLock Intune recorded.
type Lock struct {
	Device string // managed device ID
	PIN    string // the unlock PIN Intune made (Macs only)
	Start  time.Time
}

// Server is a fake Graph and token endpoint on loopback. Its methods are
// safe for concurrent use, also while requests are being served.
type Server struct {
	*httptest.Server
	Tenant, ClientID, Secret string

	mu         sync.Mutex
	cert       *x509.Certificate // the app's registered certificate, if any
	devices    []*device
	tokens     map[string]bool
	issued     int
	read, lock bool // the app's permissions
	pageSize   int
	throttle   int  // requests still to answer 429
	drop       int  // remoteLock replies still to drop after recording
	downAfter  bool // a dropped reply takes Graph down (503) until Up
	down       bool
	hidePIN    bool
	pinAfter   time.Duration // how long after the lock a Mac's PIN is made
	pinFixed   string        // the PIN Intune makes, when set
	locks      []Lock
	requests   []string // method and path of every Graph request
}

type device struct {
	Device
	actions []map[string]any
}

// Start serves a fake tenant whose app registration is clientID with
// secret, holding devices, with both permissions granted.
func Start(tenant, clientID, secret string, devices ...Device) *Server {
	s := &Server{Tenant: tenant, ClientID: clientID, Secret: secret, tokens: map[string]bool{}, read: true, lock: true, pageSize: 3}
	for i, d := range devices {
		if d.ID == "" {
			d.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", 0x1e0000+i, i+1)
		}
		s.devices = append(s.devices, &device{Device: d})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("GET /v1.0/deviceManagement/managedDevices", s.graph(false, s.list))
	mux.HandleFunc("GET /v1.0/deviceManagement/managedDevices/{id}", s.graph(false, s.get))
	mux.HandleFunc("POST /v1.0/deviceManagement/managedDevices/{id}/remoteLock", s.graph(true, s.remoteLock))
	s.Server = httptest.NewServer(mux)
	return s
}

// SetCertificate registers a certificate with the app: it may then
// authenticate with a client assertion signed by the certificate's key.
func (s *Server) SetCertificate(cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert = cert
}

// SetPermissions grants or withdraws the app's application permissions.
func (s *Server) SetPermissions(read, privilegedOperations bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.read, s.lock = read, privilegedOperations
}

// SetPageSize sets how many devices a list page holds.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = max(1, n)
}

// Throttle makes the next n Graph requests answer 429 with Retry-After: 1.
func (s *Server) Throttle(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = n
}

// DropReplies makes the next n remoteLock requests take effect and then
// close the connection without a reply, as a crash or a proxy timeout does.
func (s *Server) DropReplies(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = n
}

// GoDownAfterDrop makes a dropped remoteLock reply (DropReplies) take
// Graph down: every request answers 503 until Up.
func (s *Server) GoDownAfterDrop(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downAfter = on
}

// Up ends an outage GoDownAfterDrop started.
func (s *Server) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
}

// HidePIN keeps unlockPin out of the action results (as a tenant whose
// PIN Graph does not expose would).
func (s *Server) HidePIN(hide bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hidePIN = hide
}

// MakePINsLate makes Intune make each Mac's unlock PIN after this long
// rather than with the lock: until then its action result shows no
// unlockPin, and the Mac gets no DeviceLock (which carries the PIN). pin,
// when set, is the PIN every Mac gets, for tests that look for it.
func (s *Server) MakePINsLate(after time.Duration, pin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pinAfter, s.pinFixed = after, pin
}

// SetOffline makes the device with this UDID, serial or managed ID stop
// checking in: its locks stay pending.
func (s *Server) SetOffline(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.find(id); d != nil {
		d.Behavior = simdevice.Offline
	}
}

// RevokeTokens makes every token issued so far invalid.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
}

// Locks returns the remoteLocks recorded for the device with this UDID,
// serial or managed ID, oldest first.
func (s *Server) Locks(id string) []Lock {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.find(id)
	var out []Lock
	for _, l := range s.locks {
		if d != nil && l.Device == d.ID {
			out = append(out, l)
		}
	}
	return out
}

// ManagedID is the managed device ID of the device with this UDID or serial.
func (s *Server) ManagedID(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.find(id); d != nil {
		return d.ID
	}
	return ""
}

// Requests returns "METHOD path" of every Graph request so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Tokens counts the access tokens issued.
func (s *Server) Tokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func (s *Server) find(id string) *device {
	for _, d := range s.devices {
		if strings.EqualFold(d.ID, id) || (d.UDID != "" && strings.EqualFold(d.UDID, id)) || (d.Serial != "" && d.Serial == id) {
			return d
		}
	}
	return nil
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	servertest.WriteJSON(w, status, map[string]any{
		"error": code, "error_description": desc, "error_codes": []int{}, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id": "00000000-0000-0000-0000-000000000000", "correlation_id": "00000000-0000-0000-0000-000000000000",
	})
}

// token is Entra ID's v2.0 token endpoint for client credentials.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, 400, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	switch {
	case r.PathValue("tenant") != s.Tenant:
		tokenError(w, 400, "invalid_tenant", fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", r.PathValue("tenant")))
	case r.PostForm.Get("grant_type") != "client_credentials":
		tokenError(w, 400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
	case r.PostForm.Get("client_id") != s.ClientID:
		tokenError(w, 400, "unauthorized_client", fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory.", r.PostForm.Get("client_id")))
	case r.PostForm.Get("client_assertion_type") != "":
		if err := s.checkAssertion(r); err != "" {
			tokenError(w, 401, "invalid_client", err)
			return
		}
		s.issue(w)
	case r.PostForm.Get("client_secret") == "":
		tokenError(w, 401, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case r.PostForm.Get("client_secret") != s.Secret:
		tokenError(w, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	case r.PostForm.Get("scope") != "https://graph.microsoft.com/.default":
		tokenError(w, 400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
	default:
		s.issue(w)
	}
}

func (s *Server) issue(w http.ResponseWriter) {
	s.mu.Lock()
	s.issued++
	tok := fmt.Sprintf("graph-token-%d-%s", s.issued, randomDigits(8))
	s.tokens[tok] = true
	s.mu.Unlock()
	servertest.WriteJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok})
}

// checkAssertion verifies a client assertion as Entra ID does: the
// jwt-bearer type, a JWT signed by the registered certificate's key (PS256
// naming it by x5t#S256, as documented now, or RS256 by x5t, as before),
// for this token URL, issued by and for the client,
// within its validity. It returns Entra ID's reason for a refusal.
func (s *Server) checkAssertion(r *http.Request) string {
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return "AADSTS50027: JWT token is invalid or malformed (client_assertion_type)."
	}
	parts := strings.Split(r.PostForm.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return "AADSTS50027: JWT token is invalid or malformed."
	}
	var header struct {
		Alg, Typ, X5t string
		X5tS256       string `json:"x5t#S256"`
	}
	var claims struct {
		Aud, Iss, Sub, Jti string
		Nbf, Exp           int64
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return "AADSTS50027: JWT token is invalid or malformed."
	}
	s.mu.Lock()
	cert := s.cert
	s.mu.Unlock()
	if cert == nil {
		return "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application."
	}
	thumb1, thumb256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	verified := false
	if ok {
		switch header.Alg {
		case "PS256":
			verified = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, nil) == nil
		case "RS256":
			verified = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil
		}
	}
	named := header.X5tS256 == base64.RawURLEncoding.EncodeToString(thumb256[:]) ||
		(header.X5tS256 == "" && header.X5t == base64.RawURLEncoding.EncodeToString(thumb1[:]))
	now := time.Now().Unix()
	tokenURL := "http://" + r.Host + r.URL.Path
	switch {
	case header.Alg != "PS256" && header.Alg != "RS256":
		return "AADSTS5002730: Invalid JWT token. Unsupported key for the signing algorithm."
	case !named:
		return "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application."
	case !verified:
		return "AADSTS7000274: Key was found, but use of the key to verify the signature failed."
	case claims.Aud != tokenURL:
		return "AADSTS700212: No matching federated identity record found for presented assertion audience '" + claims.Aud + "'."
	case claims.Iss != s.ClientID || claims.Sub != s.ClientID || claims.Jti == "":
		return "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter."
	case claims.Exp <= now || claims.Nbf > now+300 || claims.Exp-claims.Nbf > 24*3600:
		return "AADSTS700024: Client assertion is not within its valid time range."
	}
	return ""
}

// graphError writes Graph's error envelope.
func graphError(w http.ResponseWriter, status int, code, message string) {
	servertest.WriteJSON(w, status, map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]any{"date": time.Now().UTC().Format("2006-01-02T15:04:05"), "request-id": "5f1b1c2e-0000-4000-8000-000000000001", "client-request-id": "5f1b1c2e-0000-4000-8000-000000000001"},
	}})
}

func (s *Server) graph(privileged bool, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		valid := s.tokens[tok]
		read, lock := s.read, s.lock
		throttled := s.throttle > 0
		if throttled {
			s.throttle--
		}
		down := s.down
		s.mu.Unlock()
		switch {
		case down:
			graphError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable.")
		case throttled:
			w.Header().Set("Retry-After", "1")
			graphError(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
		case !valid:
			graphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		case !read && !lock, privileged && !lock:
			need := "DeviceManagementManagedDevices.Read.All"
			if privileged {
				need = "DeviceManagementManagedDevices.PrivilegedOperations.All"
			}
			graphError(w, http.StatusForbidden, "Forbidden", `{"_version": 3, "Message": "Application is not authorized to perform this operation. Application must have one of the following scopes: `+need+` - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000"}`)
		default:
			next(w, r)
		}
	}
}

// fields is the device as Graph's JSON, with the selected fields only
// (all but udid and deviceActionResults when nothing is selected).
func (s *Server) fields(d *device, sel []string, inList bool) map[string]any {
	all := map[string]any{
		"id": d.ID, "deviceName": d.Name, "model": d.Model, "manufacturer": "Apple",
		"operatingSystem": d.OperatingSystem, "osVersion": d.OSVersion, "serialNumber": d.Serial,
		"lastSyncDateTime": "2026-12-01T08:00:00Z", "managementAgent": "mdm", "complianceState": "compliant",
		"udid": "",
	}
	if !inList && slices.Contains(sel, "udid") {
		all["udid"] = d.UDID
	}
	if slices.Contains(sel, "deviceActionResults") {
		all["deviceActionResults"] = s.actionsJSON(d)
	}
	if len(sel) == 0 {
		return all
	}
	out := map[string]any{}
	for _, f := range sel {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out
}

func (s *Server) actionsJSON(d *device) []map[string]any {
	out := []map[string]any{}
	for _, a := range d.actions {
		c := map[string]any{}
		for k, v := range a {
			if k == "unlockPin" && s.hidePIN {
				continue
			}
			c[k] = v
		}
		out = append(out, c)
	}
	return out
}

func selected(q url.Values) []string {
	var sel []string
	for _, f := range strings.Split(q.Get("$select"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			sel = append(sel, f)
		}
	}
	return sel
}

var filterEq = regexp.MustCompile(`^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$`)

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var prop, val string
	if f := q.Get("$filter"); f != "" {
		m := filterEq.FindStringSubmatch(f)
		if m == nil {
			graphError(w, http.StatusBadRequest, "BadRequest", "Invalid filter clause")
			return
		}
		prop, val = m[1], strings.ReplaceAll(m[2], "''", "'")
	}
	skip, _ := strconv.Atoi(q.Get("$skiptoken"))
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []*device
	for _, d := range s.devices {
		switch prop {
		case "serialNumber":
			if !strings.EqualFold(d.Serial, val) {
				continue
			}
		case "operatingSystem":
			if !strings.EqualFold(d.OperatingSystem, val) {
				continue
			}
		}
		// Any other property: Graph ignores the filter and lists everything.
		match = append(match, d)
	}
	end := min(len(match), skip+s.pageSize)
	page := []map[string]any{}
	for _, d := range match[min(skip, len(match)):end] {
		page = append(page, s.fields(d, selected(q), true))
	}
	out := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices", "value": page}
	if end < len(match) {
		next := *r.URL
		nq := r.URL.Query()
		nq.Set("$skiptoken", strconv.Itoa(end))
		next.RawQuery = strings.ReplaceAll(nq.Encode(), "+", "%20")
		next.Scheme, next.Host = "http", r.Host
		out["@odata.nextLink"] = next.String()
	}
	servertest.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	for _, d := range s.devices {
		if strings.EqualFold(d.ID, id) {
			servertest.WriteJSON(w, http.StatusOK, s.fields(d, selected(r.URL.Query()), false))
			return
		}
	}
	graphError(w, http.StatusNotFound, "ResourceNotFound", `{"_version": 3, "Message": "Resource not found for the segment 'managedDevices'. Operation ID (for customer support): 00000000-0000-0000-0000-000000000000"}`)
}

func (s *Server) remoteLock(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > 0 {
		graphError(w, http.StatusBadRequest, "BadRequest", "remoteLock takes no request body")
		return
	}
	s.mu.Lock()
	id := r.PathValue("id")
	var d *device
	for _, x := range s.devices {
		if strings.EqualFold(x.ID, id) {
			d = x
		}
	}
	if d == nil {
		s.mu.Unlock()
		graphError(w, http.StatusNotFound, "ResourceNotFound", `{"_version": 3, "Message": "Resource not found for the segment 'managedDevices'."}`)
		return
	}
	now := time.Now().UTC()
	// A later lock replaces the earlier's result; startDateTime moves on
	// even within a clock tick.
	if l := len(s.locks); l > 0 && !now.After(s.locks[l-1].Start) {
		now = s.locks[l-1].Start.Add(time.Millisecond)
	}
	lock := Lock{Device: d.ID, Start: now}
	result := map[string]any{
		"@odata.type": "#microsoft.graph.deviceActionResult", "actionName": "remoteLock", "actionState": "pending",
		"startDateTime": now.Format(time.RFC3339Nano), "lastUpdatedDateTime": now.Format(time.RFC3339Nano),
	}
	var late time.Duration
	if strings.EqualFold(d.OperatingSystem, "macOS") {
		lock.PIN = cmp.Or(s.pinFixed, randomDigits(6))
		result["@odata.type"] = "#microsoft.graph.remoteLockActionResult"
		if late = s.pinAfter; late == 0 {
			result["unlockPin"] = lock.PIN
		}
	}
	d.actions = slices.DeleteFunc(d.actions, func(a map[string]any) bool { return a["actionName"] == "remoteLock" })
	d.actions = append(d.actions, result)
	s.locks = append(s.locks, lock)
	b := d.Behavior
	online := b != nil && !b.Offline()
	switch {
	case late > 0:
		time.AfterFunc(late, func() {
			s.mu.Lock()
			result["unlockPin"] = lock.PIN
			s.mu.Unlock()
			if online {
				s.deliver(d, b, result, lock.PIN, 0)
			}
		})
	case online:
		go s.deliver(d, b, result, lock.PIN, 0)
	}
	drop := s.drop > 0
	if drop {
		s.drop--
		s.down = s.downAfter
	}
	s.mu.Unlock()
	if drop {
		if servertest.CloseWithoutReply(w) {
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkInDelay stands for the time a notified device takes to fetch the
// lock, and, after NotNow, for the wait until its next check-in.
const checkInDelay = 50 * time.Millisecond

// deliver plays the device: Intune sends DeviceLock (with its own PIN for a
// Mac), the device answers, and the action state follows.
func (s *Server) deliver(d *device, b simdevice.Behavior, result map[string]any, pin string, seen int) {
	time.Sleep(checkInDelay)
	uuid := "INTUNE-" + randomDigits(12)
	payload, err := apple.DeviceLock{PIN: pin}.Payload(uuid)
	if err != nil {
		panic(err)
	}
	cmd, err := apple.ParseCommand(payload)
	if err != nil {
		panic(err)
	}
	resp := b.Answer(cmd, seen)
	state := "done"
	switch resp.Status {
	case apple.StatusNotNow:
		s.deliver(d, b, result, pin, seen+1)
		return
	case apple.StatusAcknowledged:
	default:
		state = "failed"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	result["actionState"] = state
	result["lastUpdatedDateTime"] = time.Now().UTC().Format(time.RFC3339Nano)
}

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		v, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			panic(err)
		}
		b.WriteByte(byte('0' + v.Int64()))
	}
	return b.String()
}
