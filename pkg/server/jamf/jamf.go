// Package jamf is the adapter for Jamf Pro, through the Jamf Pro API with
// an API client's OAuth client credentials (Jamf Pro 10.49 and later).
//
// Read from Jamf's developer documentation (developer.jamf.com: "Client
// Credentials", "Filtering with RSQL", "Jamf Pro API Scalability Best
// Practices", the reference of post_v2-mdm-commands), ruby-jss's object
// models generated from a Jamf Pro 11.6.1 server's own OpenAPI schema
// (PixarAnimationStudios/ruby-jss, lib/jamf/api/jamf_pro/oapi_schemas:
// MdmCommand, MdmCommandState, MdmCommandClient, HrefResponse, ApiError,
// ApiErrorCause, ComputerHardware, ComputerGeneral, MobileDeviceGeneral,
// MobileDeviceV2, the privileges listed per endpoint; and
// api_objects/mdm.rb's device_lock) and the Jamf Pro SDK for Python
// (macadmins/jamf-pro-sdk-python: models/pro/mdm.py, computers.py,
// api_options.py, clients/auth.py, clients/pro_api/pagination.py):
//
//   - Auth: POST /api/oauth/token, form grant_type=client_credentials,
//     client_id, client_secret; the answer's access_token goes as Bearer for
//     its expires_in seconds (cached, fetched again shortly before expiry).
//     The client ID is MDMCTL_API_USER, the secret MDMCTL_API_KEY (or
//     _FILE). A 401 from the API fetches a new token once.
//   - Inventory: GET /api/v1/computers-inventory (privilege Read Computers)
//     with section=GENERAL, HARDWARE, OPERATING_SYSTEM, and GET
//     /api/v2/mobile-devices/detail (Read Mobile Devices) with
//     section=GENERAL, HARDWARE; paged (page from 0, page-size) with an RSQL
//     filter (udid, hardware.serialNumber for computers, serialNumber for
//     mobile devices; "," is or, ";" and), answering {"totalCount",
//     "results"}. Several IDs go in one filter, batched to keep URLs short.
//     A computer's general.managementId is what MDM commands target, its
//     hardware.modelIdentifier and operatingSystem.version feed the guard
//     (hardware.appleSilicon is read; the guard infers Apple silicon from
//     the model). A mobile device's general section has no managementId in
//     11.6's schema: GET /api/v2/mobile-devices/{id} has it, and is asked
//     when the detail leaves it out.
//   - Lock: POST /api/v2/mdm/commands {"clientData": [{"managementId"}...],
//     "commandData": {"commandType": "DEVICE_LOCK", "pin", "message",
//     "phoneNumber"}}, many devices per request, answered [{"id", "href"}]
//     (HrefResponse). The privilege is "Send Computer Remote Lock Command"
//     or "Send Mobile Device Remote Lock Command" by device, with "View MDM
//     command information in Jamf Pro API" (the OpenAPI names the latter
//     for the POST; a missing command privilege answers 403
//     INVALID_PRIVILEGE "not privileged for [DEVICE_LOCK]").
//   - Status: GET /api/v2/mdm/commands?filter=... (a filter is required;
//     uuid, clientManagementId, command, status), results of {uuid,
//     dateSent, client {managementId, clientType}, commandState (PENDING,
//     ACKNOWLEDGED, NOT_NOW, ERROR), commandType}. --wait polls it by uuid,
//     starting fast and backing off.
//   - Errors: {"httpStatus", "errors": [{"code", "field", "description",
//     "id"}]}.
//   - Load: Jamf Pro has no rate limit of its own and asks for at most five
//     concurrent connections: a session keeps to five requests in flight. A
//     429 (from a gateway in front of Jamf) is waited out for its
//     Retry-After, as for any kind.
//
// Not confirmed at a primary source, and built on as stated: that the
// POST's id is the UUID of the command made for one device (SDKs and
// scripts use it so; mdmctl asks Jamf which device each id is for, and
// takes the answer's order as the request's only when it cannot ask); that
// Jamf takes a request's devices all or none when it refuses one (its
// reason is reported for each); that the detail's general section carries
// managementId on newer versions (read when present); that a 6-digit PIN is
// what DEVICE_LOCK takes (ruby-jss says six characters); which versions of
// computers-inventory a given server still serves (v1 is used; v2, v3 and
// v4 exist on newer servers).
//
// Jamf has no idempotency key and no "already exists" answer, so a resend
// is made safe by looking first: before resending a request that may have
// reached Jamf (a lost reply, a 502, a resumed run's MayHaveLanded), the
// adapter lists each device's DEVICE_LOCK commands; one pending, or sent
// since shortly before the first attempt (a day for a resumed run), means
// that attempt landed: the device is queued, not sent a second lock. A
// device it cannot ask about is unknown, never sent twice.
package jamf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/oauth"
)

// Paths of the Jamf Pro API under the server URL.
const (
	TokenPath     = "/api/oauth/token"
	ComputersPath = "/api/v1/computers-inventory"
	MobilePath    = "/api/v2/mobile-devices/detail"
	// MobileDevicePath + a mobile device's Jamf ID: its record, with its
	// management ID.
	MobileDevicePath = "/api/v2/mobile-devices/"
	CommandsPath     = "/api/v2/mdm/commands"
)

// Privileges the API client's role needs, in Jamf's words.
const (
	privLockMac    = "Send Computer Remote Lock Command"
	privLockMobile = "Send Mobile Device Remote Lock Command"
	privReadMacs   = "Read Computers"
	privReadMobile = "Read Mobile Devices"
	privViewMDM    = "View MDM command information in Jamf Pro API"
)

// Client talks to one Jamf Pro server.
type Client struct {
	// BaseURL may carry a path prefix (a reverse proxy mounting Jamf Pro).
	BaseURL *url.URL
	HTTP    *http.Client
	Retry   server.Retry
	Tokens  *oauth.Source

	mu    sync.Mutex
	known map[string]*record // by upper-cased UDID: what inventory said
	sent  map[string]sent    // by Jamf command UUID
	// byRun maps (mdmctl CommandUUID, UDID) to Jamf's command UUID.
	byRun map[[2]string]string
	// mine holds the CommandUUIDs this session sends.
	mine map[string]bool
	now  func() time.Time
}

// sent is one device's command as mdmctl queued it.
type sent struct {
	commandUUID string // mdmctl's
	udid        string
}

var _ server.Server = (*Client)(nil)

// New returns a client for the Jamf Pro server at base, whose API client
// has the given ID and secret.
func New(base *url.URL, clientID, secret string, hc *http.Client, retry server.Retry) *Client {
	tokenURL, _ := server.JoinPath(base, TokenPath)
	src := oauth.New(oauth.Client{TokenURL: tokenURL.String(), ID: clientID, Secret: secret}, hc)
	return &Client{BaseURL: base, HTTP: hc, Retry: retry, Tokens: src}
}

func (c *Client) origin() string { return server.Origin(c.BaseURL) }

func (c *Client) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// apiError is Jamf's error envelope.
type apiError struct {
	HTTPStatus int `json:"httpStatus"`
	Errors     []struct {
		Code        string `json:"code"`
		Field       string `json:"field"`
		Description string `json:"description"`
		ID          any    `json:"id"`
	} `json:"errors"`
}

// text is the envelope as one line: each cause's code and description.
func (e apiError) text() string {
	var parts []string
	for _, x := range e.Errors {
		s := strings.TrimSpace(x.Description)
		switch {
		case s == "":
			s = x.Code
		case x.Code != "":
			s = x.Code + ": " + s
		}
		if x.Field != "" {
			s += " (" + x.Field + ")"
		}
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

// readError reads body as Jamf's error envelope; ok is false when it is
// not one (a proxy's page, or not Jamf at all).
func readError(resp *http.Response, body []byte) (apiError, bool) {
	var e apiError
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" || json.Unmarshal(body, &e) != nil || e.text() == "" {
		return e, false
	}
	return e, true
}

// errToken marks a token that could not be had: the cause is in the chain.
var errToken = errors.New("no access token")

type tokenError struct{ err error }

func (e *tokenError) Error() string {
	msg := "getting a Jamf Pro API access token: " + e.err.Error()
	if errors.Is(e.err, server.ErrUnauthorized) {
		msg += " (check the API client ID in MDMCTL_API_USER and its secret in MDMCTL_API_KEY, and that the API client is enabled in Jamf Pro: Settings > API Roles and Clients)"
	}
	return msg
}
func (e *tokenError) Unwrap() []error { return []error{e.err, errToken} }

// call makes one API request under the retry policy, as Bearer with the
// session's token, and fetches a new token once when Jamf answers 401.
// body, when set, builds the request body of each attempt; check, when set,
// runs before each attempt and may stop it (landed says an earlier attempt
// may have reached Jamf).
func (c *Client) call(ctx context.Context, method, path string, body func() []byte, limit int64,
	check func(ctx context.Context, landed bool) error) (*http.Response, []byte, server.Sent, error) {
	u, err := server.JoinPath(c.BaseURL, path)
	if err != nil {
		return nil, nil, server.Sent{}, err
	}
	landedBefore, attemptsBefore := false, 0
	for try := 0; ; try++ {
		newReq := func(ctx context.Context, landed bool) (*http.Request, error) {
			if check != nil {
				if err := check(ctx, landed || landedBefore); err != nil {
					return nil, err
				}
			}
			tok, err := c.Tokens.Token(ctx)
			if err != nil {
				return nil, &tokenError{err}
			}
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body())
			}
			r, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
			if err != nil {
				return nil, err
			}
			if body != nil {
				r.Header.Set("Content-Type", "application/json")
			}
			r.Header.Set("Accept", "application/json")
			r.Header.Set("Authorization", "Bearer "+tok)
			return r, nil
		}
		resp, reply, s, err := c.Retry.Do(ctx, c.HTTP, newReq, limit)
		if err == nil && resp.StatusCode == http.StatusUnauthorized && try == 0 {
			// Expired early or revoked: a 401 is a refusal, nothing was
			// done; fetch a new token and ask once more.
			c.Tokens.Invalidate()
			landedBefore = landedBefore || s.Landed
			attemptsBefore += s.Attempts
			continue
		}
		s.Landed = s.Landed || landedBefore
		s.Attempts += attemptsBefore
		if err != nil {
			// An attempt of the first round may have landed: the second
			// round's failure leaves the command possibly queued.
			err = s.Unanswered(err)
		}
		return resp, reply, s, err
	}
}

// denied is the error of a 401 or 403 from the API, naming what the API
// client's role needs for what was asked.
func (c *Client) denied(resp *http.Response, body []byte, needs string) error {
	msg := ""
	if e, ok := readError(resp, body); ok {
		msg = "Jamf Pro: " + e.text() + "; "
	}
	if resp.StatusCode == http.StatusUnauthorized {
		msg += "Jamf Pro rejected a fresh access token (check the API client ID and secret, and that the API client is enabled)"
	} else {
		msg += "the API client's role lacks a privilege: it needs " + needs + " (Jamf Pro: Settings > API Roles and Clients)"
	}
	return &server.HTTPError{Server: c.origin(), Status: resp.StatusCode, Body: msg}
}

// get reads a JSON resource at path (escaped, with its query) into v.
// needs names the privileges for a 403.
func (c *Client) get(ctx context.Context, path string, limit int64, v any, needs, what string) error {
	resp, body, _, err := c.call(ctx, http.MethodGet, path, nil, limit, nil)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return c.denied(resp, body, needs)
	default:
		return c.unexpected(resp, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &server.ProtocolError{Server: c.origin(), Problem: fmt.Sprintf("%s are not Jamf Pro's JSON: %v", what, err)}
	}
	return nil
}

// unexpected classifies a reply that is no answer: Jamf's reason when it
// gives one in its envelope, 429 and 5xx an unavailable server.
func (c *Client) unexpected(resp *http.Response, body []byte) error {
	e, ok := readError(resp, body)
	switch {
	case ok && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500):
		return server.CheckStatus(c.origin(), resp.StatusCode, []byte("Jamf Pro: "+e.text()))
	case ok:
		return &server.HTTPError{Server: c.origin(), Status: resp.StatusCode, Body: "Jamf Pro: " + e.text()}
	}
	return server.CheckStatus(c.origin(), resp.StatusCode, body)
}

// page is Jamf's paged list.
type page[T any] struct {
	TotalCount int `json:"totalCount"`
	Results    []T `json:"results"`
}

// pageSize is asked of every paged list; Jamf's default is 100.
const pageSize = 100

// list reads every page of a filtered list.
func list[T any](ctx context.Context, c *Client, path string, query url.Values, limit int64, needs, what string) ([]T, error) {
	var out []T
	for n := 0; ; n++ {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("page", fmt.Sprint(n))
		q.Set("page-size", fmt.Sprint(pageSize))
		var p page[T]
		if err := c.get(ctx, path+"?"+q.Encode(), limit, &p, needs, what); err != nil {
			return out, err
		}
		out = append(out, p.Results...)
		if len(p.Results) == 0 || len(out) >= p.TotalCount || n > 1000 {
			return out, nil
		}
	}
}

// rsqlQuote quotes a value for an RSQL filter.
func rsqlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// anyOf is an RSQL filter matching field against any of values.
func anyOf(field string, values []string) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = field + "==" + rsqlQuote(v)
	}
	return strings.Join(parts, ",")
}

// Batches of values per filter: bounded in count and in the escaped
// filter's length, as proxies cap URLs.
const (
	batchValues = 50
	batchBytes  = 3000
)

// batches splits values so that each batch's filter on field stays short.
func batches(field string, values []string) [][]string {
	var out [][]string
	var cur []string
	for _, v := range values {
		next := append(cur[:len(cur):len(cur)], v)
		if len(cur) > 0 && (len(next) > batchValues || len(url.QueryEscape(anyOf(field, next))) > batchBytes) {
			out = append(out, cur)
			next = []string{v}
		}
		cur = next
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// flexString reads a JSON string or number (Jamf's IDs are either, by
// endpoint and version).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}
