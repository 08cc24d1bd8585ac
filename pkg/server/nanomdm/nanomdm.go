// Package nanomdm queues commands on a NanoMDM (or NanoHUB) server through
// its enqueue API, PUT /v1/enqueue/{id,id,...}, and reads its APIResult.
package nanomdm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// DefaultUser is NanoMDM's fixed Basic auth user name.
const DefaultUser = "nanomdm"

// Client talks to one NanoMDM server.
type Client struct {
	// BaseURL may carry a path prefix (NanoHUB mounts the API under /api/v1/nanomdm).
	BaseURL *url.URL
	User    string
	APIKey  string
	HTTP    *http.Client
	Retry   server.Retry
}

var _ server.Server = (*Client)(nil)

// apiResult mirrors NanoMDM v0.9.0's api.APIResult; errors are plain strings.
type apiResult struct {
	Status       map[string]enrollmentResult `json:"status"`
	NoPush       bool                        `json:"no_push"`
	PushError    string                      `json:"push_error"`
	CommandError string                      `json:"command_error"`
	CommandUUID  string                      `json:"command_uuid"`
	RequestType  string                      `json:"request_type"`
}

type enrollmentResult struct {
	PushError    string `json:"push_error"`
	PushResult   string `json:"push_result"`
	CommandError string `json:"command_error"`
}

// replyLimit bounds the APIResult: a fixed part plus room for one status
// entry with an error per device.
func replyLimit(ids int) int64 { return 64<<10 + int64(ids)*1024 }

// EnqueueURL is the request URL for ids, joined by the commas NanoMDM
// splits on; the path is escaped once, when the request is written, not
// built as a string and parsed again (a batch's path runs to kilobytes).
func (c *Client) EnqueueURL(ids []string, noPush bool) *url.URL {
	u := *c.BaseURL
	u.Path = strings.TrimRight(c.BaseURL.Path, "/") + "/v1/enqueue/" + strings.Join(ids, ",")
	u.RawPath = ""
	if noPush {
		u.RawQuery = "nopush=1"
	}
	return &u
}

// Enqueue PUTs the command plist for all of req.IDs in one request.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	u := c.EnqueueURL(req.IDs, req.NoPush)
	user := c.User
	if user == "" {
		user = DefaultUser
	}
	newReq := func() (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPut, "", bytes.NewReader(req.Payload))
		if err != nil {
			return nil, err
		}
		r.URL, r.Host = u, u.Host
		r.Header.Set("Content-Type", "application/xml; charset=UTF-8")
		r.Header.Set("Accept", "application/json")
		r.SetBasicAuth(user, c.APIKey)
		return r, nil
	}
	resp, body, attempts, err := c.Retry.Do(c.HTTP, newReq, replyLimit(len(req.IDs)))
	if err != nil {
		return nil, err
	}
	origin := server.Origin(c.BaseURL)
	if resp.StatusCode == http.StatusNotFound {
		return nil, notFound(c.BaseURL, body)
	}
	if err := server.CheckStatus(origin, resp.StatusCode, body, http.StatusOK, http.StatusMultiStatus, http.StatusInternalServerError); err != nil {
		return nil, err
	}

	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType != "application/json" {
		if resp.StatusCode == http.StatusInternalServerError {
			// A 500 that is not NanoMDM's APIResult comes from a proxy or a crash.
			return nil, &server.UnavailableError{Server: origin, Err: fmt.Errorf("HTTP 500: %s", server.Excerpt(body))}
		}
		return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply has content type %q, want application/json", resp.StatusCode, mediaType)}
	}
	var r apiResult
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply is not a NanoMDM API result: %v", resp.StatusCode, err)}
	}
	return interpret(req, resp.StatusCode, r, attempts > 1), nil
}

// interpret turns an APIResult into one outcome per requested ID. A
// command_error (top level or per device) means the command was not queued;
// a push_error alone means it was queued but the device was not woken. On a
// retry, "command already exists" for our own UUID means an earlier attempt
// landed: the command is queued once, as wanted.
func interpret(req server.Request, status int, r apiResult, retried bool) *server.Result {
	res := &server.Result{
		CommandUUID: r.CommandUUID,
		RequestType: r.RequestType,
		HTTPStatus:  status,
		Devices:     make([]server.DeviceResult, len(req.IDs)),
	}
	if res.CommandUUID == "" {
		res.CommandUUID = req.CommandUUID
	}
	if res.RequestType == "" {
		res.RequestType = req.RequestType
	}
	landedEarlier := retried && isDuplicate(r.CommandError, req.CommandUUID)
	for i, id := range req.IDs {
		d := server.DeviceResult{ID: id, Outcome: server.Queued}
		st, hasStatus := r.Status[id]
		if landedEarlier {
			d.Error = "queued by an earlier attempt (the retry found the command already there)"
			res.Devices[i] = d
			continue
		}
		switch {
		case st.CommandError != "":
			d.Outcome, d.Error = server.Failed, st.CommandError
		case r.CommandError != "":
			d.Outcome, d.Error = server.Failed, r.CommandError
		case st.PushError != "":
			d.Outcome, d.Error = server.QueuedNotPushed, pushFailure(st.PushError)
		case r.PushError != "" && !hasStatus:
			d.Outcome, d.Error = server.QueuedNotPushed, pushFailure(r.PushError)
		}
		d.PushID = st.PushResult
		res.Devices[i] = d
	}
	return res
}

// notFound names the path that is not there, its device IDs elided, and
// the usual cause: NanoHUB serves NanoMDM's API under a prefix.
func notFound(base *url.URL, body []byte) error {
	prefix := strings.TrimRight(base.Path, "/")
	hint := ""
	if !strings.HasSuffix(prefix, "/api/v1/nanomdm") {
		hint = "; NanoHUB serves NanoMDM's API under /api/v1/nanomdm: --server " + server.Origin(base) + "/api/v1/nanomdm"
	}
	return &server.HTTPError{Server: server.Origin(base), Status: http.StatusNotFound,
		Body: fmt.Sprintf("no %s/v1/enqueue/… here (%s)%s", prefix, server.Excerpt(body), hint)}
}

// pushFailure explains NanoMDM's push_error, keeping its text. "push data
// missing for id" means NanoMDM never saw the ID enroll.
func pushFailure(pushError string) string {
	if strings.Contains(pushError, "push data missing for id") {
		return "not enrolled on this server (a typo?); push failed: " + pushError
	}
	return "push failed: " + pushError
}

// isDuplicate recognizes NanoMDM's "command already exists: UUID".
func isDuplicate(commandError, uuid string) bool {
	return commandError != "" && strings.Contains(commandError, "command already exists") && strings.Contains(commandError, uuid)
}
