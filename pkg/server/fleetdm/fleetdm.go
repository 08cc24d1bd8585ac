// Package fleetdm is the adapter for Fleet (fleetdm.com), whose API runs a
// raw MDM command on many hosts at once and keeps each device's answer.
//
// Read from Fleet's REST API documentation ("Commands": Run MDM command,
// Get MDM command results) and its server source (service.RunMDMCommand,
// enqueueAppleMDMCommand, GetMDMCommandResults):
//
//   - POST /api/v1/fleet/commands/run with {"command": <base64 plist>,
//     "host_uuids": [...]} and an API token as Bearer. Fleet queues the
//     plist as given, under its own CommandUUID, for all hosts or none.
//   - 200 {"command_uuid", "request_type", "failed_uuids"}: queued for every
//     host; those in failed_uuids were not woken (APNs failed for them).
//   - 502: queued, but the push failed for every host. (A proxy answers 502
//     too, so mdmctl asks Fleet whether it holds the command.)
//   - 401/403: the token; 402: DeviceLock needs Fleet Premium; 404: none of
//     the hosts is known; 400/412/415: a host not enrolled, MDM off, mixed
//     platforms, a plist Fleet cannot decode. Errors are
//     {"message": ..., "errors": [{"name": ..., "reason": ...}]}.
//   - GET /api/v1/fleet/commands/results?command_uuid=X: 404 when Fleet has
//     no such command, else the answers so far, one per host (status and the
//     device's result plist, base64). Fleet has no webhook for answers, so
//     --wait polls this.
package fleetdm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Paths of Fleet's command API under the server URL.
const (
	RunPath     = "/api/v1/fleet/commands/run"
	ResultsPath = "/api/v1/fleet/commands/results"
)

// Client talks to one Fleet server.
type Client struct {
	// BaseURL may carry a path prefix (a reverse proxy mounting Fleet).
	BaseURL *url.URL
	// Token is a Fleet API token (an API-only user's), sent as Bearer.
	Token string
	HTTP  *http.Client
	// Retry resends only after Fleet has said it does not hold the command
	// (see Enqueue): Fleet has no "already exists" answer to lean on.
	Retry server.Retry

	// own holds the (CommandUUID, host) pairs locked through Fleet's own
	// lock, whose answers are the hosts' lock state (ownKey -> true).
	own sync.Map
	// seen holds the hosts looked up so far (ID -> *host).
	seen sync.Map
}

var _ server.Server = (*Client)(nil)

type runRequest struct {
	Command   string   `json:"command"`
	HostUUIDs []string `json:"host_uuids"`
}

type runReply struct {
	CommandUUID string   `json:"command_uuid"`
	RequestType string   `json:"request_type"`
	FailedUUIDs []string `json:"failed_uuids"`
}

// errorReply is Fleet's error envelope.
type errorReply struct {
	Message string `json:"message"`
	Errors  []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// text is the envelope as one line: the reasons, else the message.
func (e errorReply) text() string {
	var parts []string
	for _, x := range e.Errors {
		if x.Reason != "" && !slices.Contains(parts, x.Reason) {
			parts = append(parts, x.Reason)
		}
	}
	if len(parts) == 0 {
		return e.Message
	}
	return strings.Join(parts, "; ")
}

// replyLimit bounds the run reply: it may list every host in failed_uuids.
func replyLimit(ids int) int64 { return 64<<10 + int64(ids)*128 }

var (
	errLanded     = errors.New("command already held by Fleet")
	errUnverified = errors.New("unverified")
)

// Enqueue locks Macs through Fleet's own lock when it can carry the lock
// (see ownlock.go), and runs any other command on all of req.IDs in one
// request through the raw command path.
//
// On the raw path, a resend could queue a second copy, so before resending after an attempt
// that may have reached Fleet, Enqueue asks Fleet whether it already holds
// the CommandUUID: if so that attempt landed and the devices are reported
// queued (push unconfirmed); if Fleet cannot be asked, nothing is resent.
// After attempts Fleet provably never took (refused, 429, 503) it resends
// without asking.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	switch {
	case len(req.IDs) == 0:
		return nil, errors.New("no host given: Fleet needs at least one per request")
	case !req.IsInformation() && ownLockTakes(req.Lock):
		return c.lockOwn(ctx, req)
	}
	return c.run(ctx, req)
}

// run sends req through Fleet's raw command path.
func (c *Client) run(ctx context.Context, req server.Request) (*server.Result, error) {
	payload, err := req.Plist()
	if err != nil {
		return nil, err
	}
	origin := server.Origin(c.BaseURL)
	u, err := server.JoinPath(c.BaseURL, RunPath)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(runRequest{Command: base64.StdEncoding.EncodeToString(payload), HostUUIDs: req.IDs})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	sent := 0
	var checkErr error
	newReq := func(ctx context.Context, landed bool) (*http.Request, error) {
		if landed || (sent == 0 && req.MayHaveLanded) {
			held, err := c.holds(ctx, req)
			switch {
			case err != nil:
				checkErr = err
				return nil, errUnverified
			case held:
				return nil, errLanded
			}
		}
		sent++
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Authorization", "Bearer "+c.Token)
		return r, nil
	}
	resp, reply, attempts, err := c.Retry.Do(ctx, c.HTTP, newReq, replyLimit(len(req.IDs)))
	switch {
	case errors.Is(err, errLanded):
		return heldByFleet(req, "an earlier attempt got no usable reply"), nil
	case errors.Is(err, errUnverified):
		return nil, &server.MaybeQueuedError{Err: &server.UnavailableError{Server: origin, Elapsed: time.Since(start), Attempts: sent, Err: fmt.Errorf(
			"no usable reply, and asking Fleet whether it queued the command failed (%v); not resent, to never queue it twice", checkErr)}}
	case err != nil:
		return c.settle(ctx, req, err)
	}
	res, err := c.interpret(ctx, req, resp, reply, attempts.Landed || req.MayHaveLanded)
	if err != nil {
		return c.settle(ctx, req, attempts.Unanswered(err))
	}
	return res, nil
}

// settle decides a request whose fate is unknown (no reply, or a 502/504
// that may come from Fleet after queuing): if Fleet holds the command it is
// queued; if Fleet says it does not, the failure stands as one that queued
// nothing; if Fleet cannot be asked, the command may be queued.
func (c *Client) settle(ctx context.Context, req server.Request, failure error) (*server.Result, error) {
	if !server.MayBeQueued(failure) {
		return nil, failure
	}
	held, err := c.holds(ctx, req)
	switch {
	case err != nil:
		return nil, failure
	case held:
		return heldByFleet(req, failure.Error()), nil
	}
	var m *server.MaybeQueuedError
	errors.As(failure, &m)
	return nil, m.Err
}

// heldByFleet reports every device queued by an attempt whose reply was lost or
// failed: Fleet holds the command, whether it woke the devices is unknown.
func heldByFleet(req server.Request, why string) *server.Result {
	res := &server.Result{Devices: make([]server.DeviceResult, len(req.IDs))}
	for i, id := range req.IDs {
		res.Devices[i] = server.DeviceResult{ID: id, Outcome: server.QueuedNotPushed,
			Error: "Fleet holds the command, but its push is unconfirmed (" + why + "); the device gets it at its next check-in"}
	}
	return res
}

// interpret reads Fleet's reply; landed says an earlier attempt may have
// reached Fleet.
func (c *Client) interpret(ctx context.Context, req server.Request, resp *http.Response, body []byte, landed bool) (*server.Result, error) {
	origin := server.Origin(c.BaseURL)
	status := resp.StatusCode
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := mediaType == "application/json"
	switch {
	case status >= 200 && status < 300:
		if !isJSON {
			return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply has content type %q, want application/json", status, mediaType)}
		}
		var r runReply
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply is not Fleet's command result: %v", status, err)}
		}
		if r.CommandUUID != req.CommandUUID {
			return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply names command %q, not %q", status, r.CommandUUID, req.CommandUUID)}
		}
		return queued(req, status, r), nil
	case status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
		// Enqueue settles it: Fleet answers 502 after queuing when the push fails.
		return nil, server.CheckStatus(origin, status, body)
	}
	var e errorReply
	if !isJSON || json.Unmarshal(body, &e) != nil || e.text() == "" {
		// Not Fleet speaking: a proxy, or a server that is not Fleet.
		return nil, server.CheckStatus(origin, status, body)
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return nil, &server.HTTPError{Server: origin, Status: status, Body: e.text() + " (check the API token and its user's role)"}
	case http.StatusPaymentRequired:
		return failed(req, status, "not queued: DeviceLock needs Fleet Premium (Fleet: "+e.text()+")"), nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return nil, server.CheckStatus(origin, status, body)
	}
	if status == http.StatusInternalServerError && strings.Contains(e.text(), "Duplicate entry") {
		// Fleet's MySQL refusing the CommandUUID: ours, from an attempt that
		// landed, or another command's.
		if landed {
			return heldByFleet(req, "a retry found the command already there"), nil
		}
		return failed(req, status, "not queued: Fleet already holds another command with this UUID (a reused --command-uuid?)"), nil
	}
	// Fleet takes all hosts of a request or none: its reason stands for each.
	refusal := failed(req, status, "not queued: "+e.text())
	if (status == http.StatusBadRequest || status == http.StatusPreconditionFailed) && len(req.IDs) > 1 {
		return c.isolate(ctx, req, refusal)
	}
	return refusal, nil
}

// isolateWorkers bounds the host lookups isolate makes at once.
const isolateWorkers = 8

// isolate finds the hosts that made Fleet refuse a whole request (unknown
// to Fleet, or with its MDM off), fails those alone, and sends the command
// to the rest once more: nothing was queued, so its CommandUUID is free.
// When the culprits cannot be told, Fleet's refusal stands for every host.
func (c *Client) isolate(ctx context.Context, req server.Request, refusal *server.Result) (*server.Result, error) {
	known, err := c.lookedUp(ctx, req.IDs, isolateWorkers)
	if err != nil {
		return refusal, nil
	}
	culprits := map[string]string{}
	var rest []string
	for _, id := range req.IDs {
		switch h := known[id]; {
		case h == nil:
			culprits[id] = "not queued: Fleet does not know this host"
		case h.mdmOff():
			culprits[id] = "not queued: this host's MDM is off in Fleet"
		default:
			rest = append(rest, id)
		}
	}
	if len(culprits) == 0 || len(rest) == 0 {
		return refusal, nil
	}
	retry := req
	retry.IDs = rest
	res, err := c.run(ctx, retry)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]server.DeviceResult, len(res.Devices))
	for _, d := range res.Devices {
		byID[d.ID] = d
	}
	for i, id := range req.IDs {
		if why, bad := culprits[id]; bad {
			refusal.Devices[i].Error = why
		} else {
			refusal.Devices[i] = byID[id]
		}
	}
	return refusal, nil
}

func queued(req server.Request, status int, r runReply) *server.Result {
	res := &server.Result{Devices: make([]server.DeviceResult, len(req.IDs))}
	for i, id := range req.IDs {
		d := server.DeviceResult{ID: id, Outcome: server.Queued}
		if slices.Contains(r.FailedUUIDs, id) {
			d.Outcome, d.Error = server.QueuedNotPushed, "Fleet could not send the push (APNs)"
		}
		res.Devices[i] = d
	}
	return res
}

func failed(req server.Request, status int, why string) *server.Result {
	res := &server.Result{Devices: make([]server.DeviceResult, len(req.IDs))}
	for i, id := range req.IDs {
		res.Devices[i] = server.DeviceResult{ID: id, Outcome: server.Failed, Error: why}
	}
	return res
}

// Answer is one host's latest answer to a command, as Fleet keeps it.
type Answer struct {
	HostUUID    string `json:"host_uuid"`
	CommandUUID string `json:"command_uuid"`
	Status      string `json:"status"`
	UpdatedAt   string `json:"updated_at"`
	Result      []byte `json:"result"` // the device's response plist
}

// Response is the device's own response: the result plist, or, when Fleet
// kept none that decodes, what Fleet says of it.
func (a Answer) Response() apple.Response {
	if r, err := apple.DecodeResponse(a.Result); err == nil {
		if r.UDID == "" && r.EnrollmentID == "" {
			r.UDID = a.HostUUID
		}
		if r.CommandUUID == "" {
			r.CommandUUID = a.CommandUUID
		}
		return r
	}
	return apple.Response{Status: a.Status, CommandUUID: a.CommandUUID, UDID: a.HostUUID}
}

// resultsLimit bounds a results reply: each answer carries the command and
// the device's result plist, base64.
func resultsLimit(hosts int) int64 { return 1<<20 + int64(hosts)*32<<10 }

// Results returns the answers Fleet holds for commandUUID. known is false
// when Fleet has no such command.
func (c *Client) Results(ctx context.Context, commandUUID string, hosts int) (answers []Answer, known bool, err error) {
	var reply struct {
		Results []Answer `json:"results"`
	}
	known, err = c.get(ctx, ResultsPath+"?command_uuid="+url.QueryEscape(commandUUID), resultsLimit(hosts), &reply, "command results")
	return reply.Results, known, err
}

// get reads the Fleet resource at path (escaped, under BaseURL) into v.
// found is false when Fleet answers that it has no such thing (a 404 in
// its error shape; a bare 404 is a wrong URL, an error). what names the
// resource in errors.
func (c *Client) get(ctx context.Context, path string, limit int64, v any, what string) (found bool, err error) {
	u, err := server.JoinPath(c.BaseURL, path)
	if err != nil {
		return false, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err
	}
	r.Header.Set("Accept", "application/json")
	r.Header.Set("Authorization", "Bearer "+c.Token)
	resp, body, err := server.Exchange(c.HTTP, r, limit)
	if err != nil {
		return false, err
	}
	origin := server.Origin(c.BaseURL)
	var e errorReply
	if resp.StatusCode == http.StatusNotFound && json.Unmarshal(body, &e) == nil && e.text() != "" {
		return false, nil
	}
	if err := server.CheckStatus(origin, resp.StatusCode, body, http.StatusOK); err != nil {
		return false, err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("%s are not Fleet's JSON: %v", what, err)}
	}
	return true, nil
}

// holds asks Fleet whether it has req's command.
func (c *Client) holds(ctx context.Context, req server.Request) (bool, error) {
	_, known, err := c.Results(ctx, req.CommandUUID, len(req.IDs))
	return known, err
}
