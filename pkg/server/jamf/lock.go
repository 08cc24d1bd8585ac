package jamf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// ErrInformation is returned for DeviceInformation: Jamf's command API
// takes its own command types, and mdmctl sends only DEVICE_LOCK.
var ErrInformation = errors.New("the jamf kind sends only DEVICE_LOCK: the guard reads Jamf Pro's inventory instead of asking the device")

type clientData struct {
	ManagementID string `json:"managementId"`
}

type commandData struct {
	CommandType string `json:"commandType"`
	PIN         string `json:"pin,omitempty"`
	Message     string `json:"message,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
}

type commandRequest struct {
	ClientData  []clientData `json:"clientData"`
	CommandData commandData  `json:"commandData"`
}

// hrefResponse is one element of the POST's answer.
type hrefResponse struct {
	ID   flexString `json:"id"`
	Href string     `json:"href"`
}

// Lookback windows for "this attempt landed": a DEVICE_LOCK sent since
// shortly before this run's first attempt (the margin covers the clocks of
// mdmctl and Jamf disagreeing), or, for an earlier run's attempt whose time
// is not known here, within the last day.
const (
	clockMargin    = 10 * time.Minute
	earlierRunSpan = 24 * time.Hour
)

var errSettled = errors.New("every device settled by looking before a resend")

// target is one device the lock goes to.
type target struct {
	id  string // as the run gave it
	rec *record
}

// Enqueue sends DEVICE_LOCK to req.IDs (UDIDs), resolved to Jamf's
// management IDs through its inventory; a UDID Jamf does not know, or a
// device it does not manage, fails before anything is sent.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	switch {
	case len(req.IDs) == 0:
		return nil, errors.New("no device given: Jamf Pro needs at least one per request")
	case req.IsInformation():
		return nil, ErrInformation
	}
	c.sending(req.CommandUUID)
	recs, err := c.resolve(ctx, req.IDs)
	if err != nil {
		return nil, fmt.Errorf("looking the devices up in Jamf Pro's inventory (nothing was sent): %w", err)
	}
	// An ID named twice counts once.
	var ids []string
	for _, id := range req.IDs {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	results := map[string]server.DeviceResult{}
	var targets []target
	seen := map[string]string{}  // management ID -> the ID its lock goes under
	twins := map[string]string{} // ID -> the ID of the same device's lock
	for _, id := range ids {
		r := recs[strings.ToUpper(id)]
		switch {
		case r == nil:
			results[id] = server.DeviceResult{ID: id, Outcome: server.Failed,
				Error: "not queued: Jamf Pro has no computer or mobile device with this UDID; nothing was sent to it"}
		case r.unmanaged() || r.managementID == "":
			results[id] = server.DeviceResult{ID: id, Outcome: server.Failed,
				Error: "not queued: Jamf Pro knows this device but does not manage it (no management ID); nothing was sent to it"}
		case seen[strings.ToLower(r.managementID)] != "":
			// The same device under its UDID in other letters: one lock,
			// reported for both.
			twins[id] = seen[strings.ToLower(r.managementID)]
		default:
			seen[strings.ToLower(r.managementID)] = id
			targets = append(targets, target{id: id, rec: r})
		}
	}
	if len(targets) > 0 {
		if err := c.lock(ctx, req, targets, results); err != nil {
			return nil, err
		}
	}
	res := &server.Result{Devices: make([]server.DeviceResult, 0, len(ids))}
	for id, first := range twins {
		d := results[first]
		d.ID = id
		results[id] = d
	}
	for _, id := range ids {
		if d, ok := results[id]; ok {
			res.Devices = append(res.Devices, d)
		}
	}
	return res, nil
}

// lock sends the command to targets and fills results; an error is a
// request that got no per-device answer.
func (c *Client) lock(ctx context.Context, req server.Request, targets []target, results map[string]server.DeviceResult) error {
	start := c.clock()
	// Locks sent since then count as an earlier attempt's.
	since := start.Add(-clockMargin)
	if req.MayHaveLanded {
		since = start.Add(-earlierRunSpan)
	}
	remaining := targets
	first := true
	// look settles, before a resend, the devices an earlier attempt may
	// have reached: those Jamf holds a DEVICE_LOCK for are queued; those it
	// cannot be asked about are unknown; neither is sent again.
	look := func(ctx context.Context, since time.Time, why string) {
		kept := remaining[:0:0]
		for _, t := range remaining {
			uuid, err := c.recentLock(ctx, t.rec.managementID, since)
			switch {
			case err != nil:
				results[t.id] = server.DeviceResult{ID: t.id, Outcome: server.Unknown, Error: fmt.Sprintf(
					"%s, and asking Jamf Pro whether it holds a DEVICE_LOCK for this device failed (%v); not resent, so it cannot be locked twice", why, err)}
			case uuid != "":
				c.note(uuid, req.CommandUUID, t.id)
				results[t.id] = server.DeviceResult{ID: t.id, Outcome: server.Queued, Reference: uuid}
			default:
				kept = append(kept, t)
			}
		}
		remaining = kept
	}
	check := func(ctx context.Context, landed bool) error {
		mayHave := landed || (first && req.MayHaveLanded)
		first = false
		if !mayHave {
			return nil
		}
		look(ctx, since, "an earlier attempt may have reached Jamf Pro")
		if len(remaining) == 0 {
			return errSettled
		}
		return nil
	}
	sentTo := remaining
	body := func() []byte {
		sentTo = remaining
		cr := commandRequest{CommandData: commandData{CommandType: "DEVICE_LOCK", PIN: req.Lock.PIN,
			Message: req.Lock.Message, PhoneNumber: req.Lock.PhoneNumber}}
		for _, t := range remaining {
			cr.ClientData = append(cr.ClientData, clientData{ManagementID: t.rec.managementID})
		}
		b, _ := json.Marshal(cr)
		return b
	}
	limit := 64<<10 + int64(len(targets))*512
	resp, reply, s, err := c.call(ctx, http.MethodPost, CommandsPath, body, limit, check)
	if errors.Is(err, errSettled) {
		return nil
	}
	if err == nil {
		err = c.interpret(ctx, req, resp, reply, sentTo, results)
		if err != nil {
			err = s.Unanswered(err)
		}
	}
	if err == nil || !server.MayBeQueued(err) {
		return err
	}
	// No usable answer, and an attempt may have queued the command: ask
	// Jamf for each device before saying anything.
	before := len(remaining)
	look(ctx, since, "no usable reply ("+err.Error()+")")
	if len(remaining) == before && allUnsettled(targets, results) {
		// Jamf holds no lock for any of them, and said so for each:
		// nothing was queued, and the failure stands as such.
		var m *server.MaybeQueuedError
		if errors.As(err, &m) {
			return m.Err
		}
	}
	for _, t := range remaining {
		results[t.id] = server.DeviceResult{ID: t.id, Outcome: server.Unknown, Error: fmt.Sprintf(
			"no usable reply (%v), and Jamf Pro lists no DEVICE_LOCK for this device yet; not resent, so it cannot be locked twice", err)}
	}
	return nil
}

// allUnsettled reports whether none of ts has a result yet.
func allUnsettled(ts []target, results map[string]server.DeviceResult) bool {
	for _, t := range ts {
		if _, ok := results[t.id]; ok {
			return false
		}
	}
	return true
}

// interpret reads Jamf's answer to the POST for the devices it carried.
func (c *Client) interpret(ctx context.Context, req server.Request, resp *http.Response, body []byte, sentTo []target, results map[string]server.DeviceResult) error {
	origin := c.origin()
	status := resp.StatusCode
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case status == http.StatusOK || status == http.StatusCreated:
		// A success Jamf's answer cannot be read from still queued the
		// commands, most likely: the devices are settled by looking.
		if mt != "application/json" {
			return &server.MaybeQueuedError{Err: &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply has content type %q, want application/json", status, mt)}}
		}
		var hrefs []hrefResponse
		if err := json.Unmarshal(body, &hrefs); err != nil {
			return &server.MaybeQueuedError{Err: &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply is not Jamf Pro's list of queued commands: %v", status, err)}}
		}
		c.queued(ctx, req, hrefs, sentTo, results)
		return nil
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		needs := privLockMac + " (for Macs) or " + privLockMobile + " (for iPhones and iPads), with " + privReadMacs + ", " + privReadMobile + " and " + privViewMDM
		return c.denied(resp, body, needs)
	case status == http.StatusTooManyRequests || status >= 500:
		return c.unexpected(resp, body)
	}
	e, ok := readError(resp, body)
	if !ok {
		return c.unexpected(resp, body)
	}
	// Jamf takes a request's devices all or none: its reason stands for each.
	for _, t := range sentTo {
		results[t.id] = server.DeviceResult{ID: t.id, Outcome: server.Failed, Error: "not queued: Jamf Pro: " + e.text()}
	}
	return nil
}

// queued records the commands Jamf made, one per device: Jamf is asked
// which device each command is for; when it cannot say, the answer's order
// is taken as the request's.
func (c *Client) queued(ctx context.Context, req server.Request, hrefs []hrefResponse, sentTo []target, results map[string]server.DeviceResult) {
	byMgmt := map[string]string{} // management ID (lower) -> Jamf uuid
	var uuids []string
	for _, h := range hrefs {
		if h.ID != "" {
			uuids = append(uuids, string(h.ID))
		}
	}
	if len(uuids) > 0 {
		if got, err := c.byUUID(ctx, uuids); err == nil {
			for u, x := range got {
				byMgmt[strings.ToLower(x.Client.ManagementID)] = u
			}
		}
	}
	if len(byMgmt) == 0 && len(uuids) == len(sentTo) {
		for i, t := range sentTo {
			byMgmt[strings.ToLower(t.rec.managementID)] = uuids[i]
		}
	}
	for _, t := range sentTo {
		d := server.DeviceResult{ID: t.id, Outcome: server.Queued}
		if u := byMgmt[strings.ToLower(t.rec.managementID)]; u != "" {
			d.Reference = u
			c.note(u, req.CommandUUID, t.id)
		}
		results[t.id] = d
	}
}
