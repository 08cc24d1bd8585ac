// Package raw sends a command the way Apple's "Lock a Device" page draws
// the exchange: PUT the command plist to a URL, read the device's
// DeviceLockResponse plist back.
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

// Placeholder in the URL is replaced by each device's escaped ID.
const Placeholder = "{udid}"

// ContentType is the MDM protocol's media type for device messages.
const ContentType = "application/x-apple-aspen-mdm"

// Client PUTs to URL, one device per request.
type Client struct {
	// URL may hold {udid} in its path or query.
	URL string
	// User and APIKey, when either is set, go as HTTP Basic credentials.
	User   string
	APIKey string
	HTTP   *http.Client
	Retry  server.Retry
}

var _ server.Server = (*Client)(nil)

// responseLimit bounds one DeviceLockResponse.
const responseLimit = 1 << 20

// Enqueue sends the command to the single device in req.IDs and returns its
// answer as DeviceResult.Response.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	if len(req.IDs) != 1 {
		return nil, fmt.Errorf("raw kind takes one device per request, got %d", len(req.IDs))
	}
	id := req.IDs[0]
	target, err := c.TargetURL(id)
	if err != nil {
		return nil, err
	}
	newReq := func() (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPut, target.String(), bytes.NewReader(req.Payload))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", ContentType)
		r.Header.Set("Accept", "application/xml")
		if c.User != "" || c.APIKey != "" {
			r.SetBasicAuth(c.User, c.APIKey)
		}
		return r, nil
	}
	resp, body, _, err := c.Retry.Do(c.HTTP, newReq, responseLimit)
	if err != nil {
		return nil, err
	}
	origin := server.Origin(target)
	if err := server.CheckStatus(origin, resp.StatusCode, body, http.StatusOK); err != nil {
		return nil, err
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return nil, &server.ProtocolError{Server: origin, Problem: "HTTP 200 reply is empty, want a DeviceLockResponse plist"}
	case mediaType != "" && !isPlistType(mediaType):
		return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("reply has content type %q, want a plist (application/xml)", mediaType)}
	}
	answer, err := apple.DecodeResponse(body)
	if err != nil {
		return nil, &server.ProtocolError{Server: origin, Problem: err.Error()}
	}
	if answer.CommandUUID != "" && answer.CommandUUID != req.CommandUUID {
		return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("response answers command %s, not %s", answer.CommandUUID, req.CommandUUID)}
	}
	return &server.Result{
		CommandUUID: req.CommandUUID,
		RequestType: req.RequestType,
		HTTPStatus:  resp.StatusCode,
		Devices:     []server.DeviceResult{{ID: id, Outcome: server.Answered, Response: &answer}},
	}, nil
}

func isPlistType(t string) bool {
	switch t {
	case "application/xml", "text/xml", "application/x-plist", "application/x-apple-plist", ContentType:
		return true
	}
	return false
}

// TargetURL puts the escaped id in place of {udid}.
func (c *Client) TargetURL(id string) (*url.URL, error) {
	if !strings.Contains(c.URL, Placeholder) {
		return url.Parse(c.URL)
	}
	// Escape for the query when the placeholder sits there, else for a path segment.
	escaped := url.PathEscape(id)
	if q := strings.Index(c.URL, "?"); q >= 0 && strings.Index(c.URL, Placeholder) > q {
		escaped = url.QueryEscape(id)
	}
	u, err := url.Parse(strings.ReplaceAll(c.URL, Placeholder, escaped))
	if err != nil {
		return nil, errors.New("invalid raw URL template")
	}
	return u, nil
}
