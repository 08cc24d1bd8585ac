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
	"slices"
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
	payload, err := req.Plist()
	if err != nil {
		return nil, err
	}
	u := c.EnqueueURL(req.IDs, req.NoPush)
	user := c.User
	if user == "" {
		user = DefaultUser
	}
	newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPut, "", bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		r.URL, r.Host = u, u.Host
		r.Header.Set("Content-Type", "application/xml; charset=UTF-8")
		r.Header.Set("Accept", "application/json")
		r.SetBasicAuth(user, c.APIKey)
		return r, nil
	}
	resp, body, sent, err := c.Retry.Do(ctx, c.HTTP, newReq, replyLimit(len(req.IDs)))
	if err != nil {
		return nil, err
	}
	res, err := c.read(req, resp, body, sent.Landed || req.MayHaveLanded)
	return res, sent.Unanswered(err)
}

// read turns NanoMDM's reply into one outcome per device; landed says an
// earlier attempt may have reached the server.
func (c *Client) read(req server.Request, resp *http.Response, body []byte, landed bool) (*server.Result, error) {
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
	if notEnrolled(r.CommandError) {
		return nil, &server.NotEnrolledError{Server: origin, Detail: r.CommandError}
	}
	return interpret(req, resp.StatusCode, r, landed), nil
}

// interpret turns an APIResult into one outcome per requested ID. A
// command_error (top level or per device) means the command was not queued;
// a push_error alone means it was queued but the device was not woken.
// "This CommandUUID already exists" means queued when an earlier attempt
// may have landed, and otherwise that another command holds the UUID.
func interpret(req server.Request, status int, r apiResult, landed bool) *server.Result {
	res := &server.Result{Devices: make([]server.DeviceResult, len(req.IDs))}
	topError := r.CommandError
	if isDuplicate(topError, req.CommandUUID) {
		if landed {
			for i, id := range req.IDs {
				res.Devices[i] = server.DeviceResult{ID: id, Outcome: server.Queued,
					Error: "queued by an earlier attempt (the retry found the command already there)"}
			}
			return res
		}
		topError = "not queued: the server already holds another command with this CommandUUID (a reused --command-uuid?): " + topError
	}
	unreadable := unattributable(req, status, r)
	for i, id := range req.IDs {
		d := server.DeviceResult{ID: id, Outcome: server.Queued}
		st, hasStatus := r.Status[id]
		switch {
		case st.CommandError != "":
			d.Outcome, d.Error = server.Failed, st.CommandError
		case topError != "":
			d.Outcome, d.Error = server.Failed, topError
		case st.PushError != "":
			d.Outcome, d.Error = server.QueuedNotPushed, pushFailure(st.PushError)
		case unreadable != "" && !hasStatus:
			d.Outcome, d.Error = server.Unknown, unreadable
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

// unattributable says why a 207 or 500 cannot be read for the requested
// IDs it does not name: its status names IDs that were not requested (a
// proxy or the server rewrote them), or a 207 names no requested ID with an
// error, though it reports one. "" when it can be read.
func unattributable(req server.Request, status int, r apiResult) string {
	if status != http.StatusMultiStatus && status != http.StatusInternalServerError {
		return ""
	}
	requested := make(map[string]bool, len(req.IDs))
	for _, id := range req.IDs {
		requested[id] = true
	}
	var stray []string
	failing := false
	for id, st := range r.Status {
		if !requested[id] {
			stray = append(stray, id)
		} else if st.CommandError != "" || st.PushError != "" {
			failing = true
		}
	}
	switch {
	case len(stray) > 0:
		slices.Sort(stray)
		if len(stray) > 3 {
			stray = append(stray[:3], "...")
		}
		return fmt.Sprintf("may be queued: NanoMDM's HTTP %d reply names IDs that were not requested (%s), so it cannot be read for this one", status, strings.Join(stray, ", "))
	case status == http.StatusMultiStatus && !failing:
		return "may be queued: NanoMDM's HTTP 207 reply reports a failure but names no requested ID with one, so it cannot be read for this one"
	}
	return ""
}

// isDuplicate recognizes "this CommandUUID already exists" as each of
// NanoMDM v0.9.0's storage backends words it: kv (filekv, inmem)
// "command already exists: UUID"; pgsql (lib/pq) `pq: duplicate key value
// violates unique constraint "commands_pkey"`; mysql (go-sql-driver)
// "Error 1062 (23000): Duplicate entry 'UUID' for key 'commands.PRIMARY'"
// ('PRIMARY' before MySQL 8.0.19).
func isDuplicate(commandError, uuid string) bool {
	switch {
	case commandError == "":
		return false
	case strings.Contains(commandError, "command already exists: "+uuid):
		return true
	case strings.Contains(commandError, `duplicate key value violates unique constraint "commands_pkey"`):
		return true
	case strings.Contains(commandError, "Error 1062") && strings.Contains(commandError, "Duplicate entry '"+uuid+"' for key '"):
		return strings.Contains(commandError, "'commands.PRIMARY'") || strings.Contains(commandError, "'PRIMARY'")
	}
	return false
}

// notEnrolled recognizes the top-level answer of NanoMDM on pgsql or mysql
// when an ID has no enrollment: the queue row's foreign key to enrollments
// fails and the whole transaction rolls back. pgsql: `pq: insert or update
// on table "enrollment_queue" violates foreign key constraint
// "enrollment_queue_id_fkey"`; mysql: "Error 1452 (23000): Cannot add or
// update a child row: a foreign key constraint fails (`db`.`enrollment_queue`,
// CONSTRAINT ... FOREIGN KEY (`id`) REFERENCES `enrollments` ...)".
func notEnrolled(commandError string) bool {
	switch {
	case strings.Contains(commandError, `on table "enrollment_queue" violates foreign key constraint "enrollment_queue_id_fkey"`):
		return true
	case strings.Contains(commandError, "Error 1452") && strings.Contains(commandError, "enrollment_queue"):
		// The other foreign key, to the command, cannot fail: the same
		// transaction has just inserted it.
		return !strings.Contains(commandError, "REFERENCES `commands`")
	}
	return false
}
