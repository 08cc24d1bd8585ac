// Package micromdm queues commands on a MicroMDM v1 server through its raw
// command API, one device per request.
//
// What the adapter relies on, read in micromdm/micromdm at c4878e2 (Oct 2025):
//   - platform/command/server.go registers POST and PUT /v1/commands/{udid}
//     (gorilla/mux, matched on the decoded path, so a UDID cannot hold "/");
//     GET views and DELETE clears the queue on the same path.
//   - new_command.go reads the whole body, decodes it with an XML-only plist
//     decoder and checks nothing but CommandUUID and Command.RequestType. It
//     does not check that the UDID is enrolled, nor that the CommandUUID is
//     new: platform/queue appends, so a resent command is queued twice.
//   - Success is 201 with {"payload":{"udid","command_uuid","command":
//     {"request_type"},"payload":"<base64 of the body>"}}; every failure goes
//     through pkg/httputil.ErrorEncoder as {"error":"..."}, status 500 unless
//     the error names another (go-kit's basic-auth error names 401).
//   - Queueing and the APNs push run later on pubsub (platform/queue,
//     platform/apns): the 201 means accepted, a push always follows, and a
//     push failure is only logged, never reported.
//   - cmd/micromdm/serve.go mounts the API only when -api-key is set (else
//     404) behind basic.AuthMiddleware("micromdm", key): HTTP Basic, user
//     "micromdm". That check runs after the body is decoded, so a malformed
//     plist gets 500 even with a wrong key.
//   - docs/user-guide/api-and-webhooks.md documents the raw endpoint (PR 864).
package micromdm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// DefaultUser is MicroMDM's fixed Basic auth user name.
const DefaultUser = "micromdm"

// Client talks to one MicroMDM server.
type Client struct {
	// BaseURL may carry a path prefix (a reverse proxy mounting MicroMDM).
	BaseURL *url.URL
	// User defaults to DefaultUser; APIKey is the server's -api-key.
	User   string
	APIKey string
	HTTP   *http.Client
	// Retry is applied only where MicroMDM cannot have taken the command
	// (see Enqueue), because it would queue a resent command a second time.
	Retry server.Retry
}

var _ server.Server = (*Client)(nil)

// reply is MicroMDM's newRawCommandResponse, or the ErrorEncoder's shape.
type reply struct {
	Payload *struct {
		UDID        string `json:"udid"`
		CommandUUID string `json:"command_uuid"`
		Command     struct {
			RequestType string `json:"request_type"`
		} `json:"command"`
		Raw []byte `json:"payload"` // base64 in the JSON
	} `json:"payload"`
	Error string `json:"error"`
}

// replyLimit bounds the reply: it echoes the command in base64, indented.
func replyLimit(payload []byte) int64 { return 64<<10 + 2*int64(len(payload)) }

// CommandURL is the raw command URL for one device: the UDID path-escaped
// under any prefix of BaseURL.
func (c *Client) CommandURL(id string) (*url.URL, error) {
	// MicroMDM matches the decoded path, so these would reach another
	// route, be redirected, or match none.
	if id == "" || id == "." || id == ".." || strings.Contains(id, "/") {
		return nil, fmt.Errorf("MicroMDM cannot address the device ID %q in its URL", id)
	}
	return server.JoinPath(c.BaseURL, "/v1/commands/"+url.PathEscape(id))
}

// Enqueue PUTs the command plist for the single device in req.IDs.
//
// A failed attempt is resent only when MicroMDM cannot have queued it: the
// request was not fully sent, or the reply was 429 or 503 (a proxy or load
// balancer refusing it). After a 502, a 504 or a lost reply the command may
// be queued, and the error says so (server.MayBeQueued); a command an
// earlier run may have queued is not sent again at all.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	if len(req.IDs) != 1 {
		return nil, fmt.Errorf("MicroMDM takes one device per request, got %d", len(req.IDs))
	}
	if req.MayHaveLanded {
		return nil, &server.MaybeQueuedError{Err: errors.New("not resent: an earlier attempt may have queued it, and MicroMDM would queue a second copy")}
	}
	payload, err := req.Plist()
	if err != nil {
		return nil, err
	}
	id := req.IDs[0]
	u, err := c.CommandURL(id)
	if err != nil {
		return nil, err
	}
	user := c.User
	if user == "" {
		user = DefaultUser
	}
	origin := server.Origin(c.BaseURL)

	newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/xml; charset=UTF-8")
		r.Header.Set("Accept", "application/json")
		r.SetBasicAuth(user, c.APIKey)
		return r, nil
	}
	retry := c.Retry
	retry.OnlyUnlanded = true
	resp, body, sent, err := retry.Do(ctx, c.HTTP, newReq, replyLimit(payload))
	if err != nil {
		return nil, err
	}
	res, err := interpret(origin, id, req, resp, body)
	return res, sent.Unanswered(err)
}

// interpret reads MicroMDM's reply. 201 is the only success; a JSON error
// at 500 (or at a 4xx that is not about credentials, method or load) is
// MicroMDM refusing this command for this device.
func interpret(origin, id string, req server.Request, resp *http.Response, body []byte) (*server.Result, error) {
	status := resp.StatusCode
	res := &server.Result{}
	var r reply
	jsonErr := json.Unmarshal(body, &r)
	switch {
	case status == http.StatusCreated:
		if err := checkQueued(id, req, r, jsonErr); err != nil {
			mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP 201 reply (content type %q) %v", mediaType, err)}
		}
		res.Devices = []server.DeviceResult{{ID: id, Outcome: server.Queued}}
		return res, nil
	case status >= 200 && status < 300:
		return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply, but MicroMDM answers 201 when it takes a command", status)}
	case jsonErr == nil && r.Error != "" && commandError(status):
		res.Devices = []server.DeviceResult{{ID: id, Outcome: server.Failed, Error: r.Error}}
		return res, nil
	}
	// A 500 without MicroMDM's JSON comes from a proxy or a crash:
	// CheckStatus makes it, like 502/503/504/429, an unavailable server.
	return nil, server.CheckStatus(origin, status, body)
}

// checkQueued makes sure the 201 is for this command and this device.
func checkQueued(id string, req server.Request, r reply, jsonErr error) error {
	p := r.Payload
	sent, _ := req.Plist() // encoded for the request already: deterministic
	switch {
	case jsonErr != nil:
		return fmt.Errorf("is not MicroMDM's JSON: %v", jsonErr)
	case p == nil:
		return errors.New("has no payload")
	case p.CommandUUID != req.CommandUUID:
		return fmt.Errorf("queued command %q, not %q", p.CommandUUID, req.CommandUUID)
	case p.UDID != id:
		return fmt.Errorf("queued the command for %q, not %q", p.UDID, id)
	case req.RequestType != "" && p.Command.RequestType != req.RequestType:
		return fmt.Errorf("queued a %q command, not %q", p.Command.RequestType, req.RequestType)
	case len(p.Raw) > 0 && !bytes.Equal(p.Raw, sent):
		return errors.New("echoes a command plist that differs from the one sent")
	}
	return nil
}

// commandError reports whether a JSON error at status is about the command
// rather than the credentials, the method or the server's load.
func commandError(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusMethodNotAllowed,
		http.StatusProxyAuthRequired, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status == http.StatusInternalServerError || (status >= 400 && status < 500)
}
