// Package micromdm queues commands on a MicroMDM v1 server through its raw
// command API.
//
// Confirmed in micromdm/micromdm platform/command (transport_http.go,
// new_command.go): POST or PUT /v1/commands/{udid} takes the raw command
// plist, checks only CommandUUID and Command.RequestType, and answers 201
// with {"payload":{"udid","command_uuid","command":{"request_type"}}}; a
// failure is {"error":"..."}. One device per request; HTTP Basic with the
// user "micromdm" and the API key.
package micromdm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// DefaultUser is MicroMDM's Basic auth user name.
const DefaultUser = "micromdm"

// Client talks to one MicroMDM server.
type Client struct {
	BaseURL *url.URL
	User    string
	APIKey  string
	HTTP    *http.Client
	Retry   server.Retry
}

var _ server.Server = (*Client)(nil)

type reply struct {
	Payload *struct {
		UDID        string `json:"udid"`
		CommandUUID string `json:"command_uuid"`
		Command     struct {
			RequestType string `json:"request_type"`
		} `json:"command"`
	} `json:"payload"`
	Error string `json:"error"`
}

const replyLimit = 256 << 10

// Enqueue PUTs the command plist for the single device in req.IDs.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	if len(req.IDs) != 1 {
		return nil, fmt.Errorf("micromdm takes one device per request, got %d", len(req.IDs))
	}
	id := req.IDs[0]
	u, err := server.JoinPath(c.BaseURL, "/v1/commands/"+url.PathEscape(id))
	if err != nil {
		return nil, err
	}
	user := c.User
	if user == "" {
		user = DefaultUser
	}
	newReq := func() (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(req.Payload))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/xml; charset=UTF-8")
		r.Header.Set("Accept", "application/json")
		r.SetBasicAuth(user, c.APIKey)
		return r, nil
	}
	resp, body, _, err := c.Retry.Do(c.HTTP, newReq, replyLimit)
	if err != nil {
		return nil, err
	}
	origin := server.Origin(c.BaseURL)
	res := &server.Result{CommandUUID: req.CommandUUID, RequestType: req.RequestType, HTTPStatus: resp.StatusCode}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var r reply
	jsonErr := json.Unmarshal(body, &r)
	switch {
	case resp.StatusCode == http.StatusCreated && jsonErr == nil && r.Payload != nil:
		if r.Payload.CommandUUID != "" && r.Payload.CommandUUID != req.CommandUUID {
			return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("queued command %s, not %s", r.Payload.CommandUUID, req.CommandUUID)}
		}
		res.Devices = []server.DeviceResult{{ID: id, Outcome: server.Queued}}
		return res, nil
	case resp.StatusCode == http.StatusInternalServerError && jsonErr == nil && r.Error != "":
		// MicroMDM's answer for a command it would not queue.
		res.Devices = []server.DeviceResult{{ID: id, Outcome: server.Failed, Error: r.Error}}
		return res, nil
	}
	if err := server.CheckStatus(origin, resp.StatusCode, body, http.StatusCreated); err != nil {
		return nil, err
	}
	if mediaType != "application/json" || jsonErr != nil {
		return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP 201 reply is not MicroMDM's JSON (content type %q)", mediaType)}
	}
	return nil, &server.ProtocolError{Server: origin, Problem: "HTTP 201 reply has no payload"}
}
