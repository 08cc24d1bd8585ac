// Package raw sends a command the way Apple's "Lock a Device" page draws
// the exchange: PUT the command plist to a URL and read the device's
// DeviceLockResponse plist from the reply. There is no queue: the answer is
// the device's own, reported as server.Answered.
package raw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Placeholder in URL is replaced by each device's escaped ID.
const Placeholder = "{udid}"

// ContentType is the MDM protocol's media type for command and response plists.
const ContentType = "application/x-apple-aspen-mdm"

// Client PUTs each command to URL, one device per request.
type Client struct {
	// URL may hold Placeholder in its path (path-escaped there) or in its
	// query (query-escaped there). Without one, every device's command goes
	// to the same URL.
	URL string
	// User and APIKey go as HTTP Basic credentials when either is set (an
	// empty user name is sent as such); with both empty no Authorization
	// header is added.
	User   string
	APIKey string
	HTTP   *http.Client
	Retry  server.Retry
}

var _ server.Server = (*Client)(nil)

// responseLimit bounds one DeviceLockResponse, which is a few hundred bytes
// plus any ErrorChain.
const responseLimit = 256 << 10

// TargetURL is URL with the escaped id in place of every Placeholder.
func (c *Client) TargetURL(id string) (*url.URL, error) {
	// Split by hand: url.Parse would escape the braces of the placeholder.
	path, query, hasQuery := strings.Cut(c.URL, "?")
	path = strings.ReplaceAll(path, Placeholder, url.PathEscape(id))
	raw := path
	if hasQuery {
		raw += "?" + strings.ReplaceAll(query, Placeholder, url.QueryEscape(id))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Not err itself: it would repeat the URL, which may hold secrets.
		return nil, errors.New("the raw server URL is not a valid http(s) URL")
	}
	return u, nil
}

// Enqueue sends the command to the single device in req.IDs and returns its
// answer as DeviceResult.Response.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	if len(req.IDs) != 1 {
		return nil, fmt.Errorf("the raw exchange takes one device per request, got %d", len(req.IDs))
	}
	payload, err := req.Plist()
	if err != nil {
		return nil, err
	}
	id := req.IDs[0]
	target, err := c.TargetURL(id)
	if err != nil {
		return nil, err
	}
	newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPut, target.String(), bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", ContentType)
		r.Header.Set("Accept", ContentType+", application/xml, text/xml")
		if c.User != "" || c.APIKey != "" {
			r.SetBasicAuth(c.User, c.APIKey)
		}
		return r, nil
	}
	resp, body, sent, err := c.Retry.Do(ctx, c.HTTP, newReq, responseLimit)
	if err != nil {
		return nil, err
	}
	res, err := readAnswer(req, id, target, resp, body)
	return res, sent.Unanswered(err)
}

// readAnswer checks the exchange's reply and decodes the device's answer.
func readAnswer(req server.Request, id string, target *url.URL, resp *http.Response, body []byte) (*server.Result, error) {
	origin := server.Origin(target)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, server.CheckStatus(origin, resp.StatusCode, body)
	}
	answer, err := decode(resp, body)
	if err != nil {
		return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply %v", resp.StatusCode, err)}
	}
	if err := matches(answer, id, req.CommandUUID); err != nil {
		return nil, &server.ProtocolError{Server: origin, Problem: err.Error()}
	}
	return &server.Result{Devices: []server.DeviceResult{{ID: id, Outcome: server.Answered, Response: &answer}}}, nil
}

// decode reads a DeviceLockResponse: XML or binary, never the OpenStep text
// forms the plist library would also take.
func decode(resp *http.Response, body []byte) (apple.Response, error) {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	trimmed := bytes.TrimLeft(body, "\ufeff \t\r\n")
	binary := bytes.HasPrefix(body, []byte("bplist"))
	switch {
	case len(trimmed) == 0:
		return apple.Response{}, errors.New("is empty, want a DeviceLockResponse plist")
	case !plistType(mediaType) && !(mediaType == "application/octet-stream" && binary):
		return apple.Response{}, fmt.Errorf("has content type %q, want a plist (%s or application/xml)", mediaType, ContentType)
	case !binary && trimmed[0] != '<':
		return apple.Response{}, errors.New("is neither an XML nor a binary plist")
	}
	answer, err := apple.DecodeResponse(body)
	if err != nil {
		return apple.Response{}, fmt.Errorf("is not a DeviceLockResponse: %v", err)
	}
	return answer, nil
}

// plistType lists the media types a plist reply may carry; none at all is
// taken too, as a bare endpoint may not set one.
func plistType(t string) bool {
	switch t {
	case "", ContentType, "application/xml", "text/xml", "application/x-plist", "application/x-apple-plist":
		return true
	}
	return false
}

// matches rejects an answer to another command or from another device: it
// would say nothing about the one this request was for.
func matches(r apple.Response, id, commandUUID string) error {
	if r.CommandUUID != "" && r.CommandUUID != commandUUID {
		return fmt.Errorf("the response answers command %q, not %q", r.CommandUUID, commandUUID)
	}
	// A UDID may be written in either case; an enrollment ID is the target
	// of a User Enrollment and then the only ID in the answer.
	if r.UDID == "" && r.EnrollmentID == "" {
		return nil
	}
	if strings.EqualFold(r.UDID, id) || strings.EqualFold(r.EnrollmentID, id) {
		return nil
	}
	return fmt.Errorf("the response comes from device %q, not %q", r.DeviceID(), id)
}
