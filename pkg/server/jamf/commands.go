package jamf

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Jamf's command states (MdmCommandStatus.commandState).
const (
	statePending      = "PENDING"
	stateAcknowledged = "ACKNOWLEDGED"
	stateNotNow       = "NOT_NOW"
	stateError        = "ERROR"
)

// command is one entry of GET /api/v2/mdm/commands.
type command struct {
	UUID   string `json:"uuid"`
	Client struct {
		ManagementID string `json:"managementId"`
		ClientType   string `json:"clientType"`
	} `json:"client"`
	CommandState string `json:"commandState"`
	Status       string `json:"status"`
	CommandType  string `json:"commandType"`
	DateSent     string `json:"dateSent"`
}

// state is the command's state in Jamf's upper-case words, whichever field
// the server fills.
func (c command) state() string {
	s := c.CommandState
	if s == "" {
		s = c.Status
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "NOTNOW" {
		s = stateNotNow
	}
	return s
}

func (c command) sentAt() (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, c.DateSent); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// commandsLimit bounds a page of commands.
const commandsLimit = 4 << 20

// commands lists the MDM commands matching an RSQL filter.
func (c *Client) commands(ctx context.Context, filter string) ([]command, error) {
	return list[command](ctx, c, CommandsPath, url.Values{"filter": {filter}}, commandsLimit, privViewMDM, "MDM commands")
}

// byUUID looks commands up by their UUIDs, a batch per request.
func (c *Client) byUUID(ctx context.Context, uuids []string) (map[string]command, error) {
	out := map[string]command{}
	for _, b := range batches("uuid", uuids) {
		got, err := c.commands(ctx, anyOf("uuid", b))
		for _, x := range got {
			out[strings.ToLower(x.UUID)] = x
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// recentLock finds a DEVICE_LOCK for the device that an earlier attempt
// may have queued: one still pending (or postponed), or one sent at or
// after since. It returns the command's UUID, "" for none.
func (c *Client) recentLock(ctx context.Context, managementID string, since time.Time) (string, error) {
	got, err := c.commands(ctx, "clientManagementId=="+rsqlQuote(managementID)+";command==DEVICE_LOCK")
	if err != nil {
		return "", err
	}
	best := ""
	for _, x := range got {
		if !strings.EqualFold(x.Client.ManagementID, managementID) && x.Client.ManagementID != "" {
			continue
		}
		if x.CommandType != "" && x.CommandType != "DEVICE_LOCK" {
			continue
		}
		t, dated := x.sentAt()
		switch st := x.state(); {
		case st == statePending || st == stateNotNow:
			best = x.UUID
		case dated && !t.Before(since):
			if best == "" {
				best = x.UUID
			}
		}
	}
	return best, nil
}

// adoptAfter is how long a session that has sent nothing waits before it
// takes the locks it awaits for an earlier run's: a lock run sends at once
// after it starts waiting, and its own commands are never guessed at.
const adoptAfter = 2 * time.Second

// Polling starts fast, for the devices that answer at once, and slows
// down for those that take minutes, to spare the server.
const (
	firstPoll = 250 * time.Millisecond
	maxPoll   = 10 * time.Second
)

// response is what Jamf's state of a command says, as Apple's answer.
func response(st, commandUUID, udid string) (apple.Response, bool) {
	r := apple.Response{CommandUUID: commandUUID, UDID: udid}
	switch st {
	case stateAcknowledged:
		r.Status = apple.StatusAcknowledged
	case stateError:
		r.Status = apple.StatusError
	case stateNotNow:
		r.Status = apple.StatusNotNow
	default:
		return r, false
	}
	return r, true
}

// Watch polls Jamf for the commands col awaits and delivers each change of
// state under mdmctl's CommandUUID, until ctx ends. A NotNow is delivered
// once each time Jamf reports it anew. Polling errors go to onError.
func (c *Client) Watch(ctx context.Context, col *webhook.Collector, onError func(error)) {
	seen := map[string]string{} // Jamf uuid -> state last delivered
	// tried: locks of an earlier session whose Jamf command was looked for.
	tried := map[[2]string]bool{}
	started := time.Now()
	wait := firstPoll
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		var (
			uuids    []string
			referred []webhook.Result
			former   []webhook.Result
		)
		c.mu.Lock()
		for _, r := range col.Results() {
			if r.Answered() || r.Forgotten {
				continue
			}
			switch u := c.byRun[[2]string{r.CommandUUID, strings.ToUpper(r.ID)}]; {
			case u != "":
				uuids = append(uuids, u)
			case r.Reference != "":
				// An earlier run's lock whose Jamf command the history
				// kept: asked about by its uuid, nothing guessed.
				referred = append(referred, r)
			case len(c.mine) == 0 && time.Since(started) >= adoptAfter && !tried[[2]string{r.CommandUUID, r.ID}]:
				// A session that sends nothing (mdmctl status): the
				// locks awaited are an earlier run's.
				former = append(former, r)
			}
		}
		c.mu.Unlock()
		for _, r := range referred {
			c.note(r.Reference, r.CommandUUID, r.ID)
			uuids = append(uuids, r.Reference)
		}
		if len(former) > 0 {
			for _, r := range former {
				tried[[2]string{r.CommandUUID, r.ID}] = true
			}
			if err := c.adopt(ctx, former); err != nil && onError != nil {
				onError(err)
			}
			c.mu.Lock()
			for _, r := range former {
				if u := c.byRun[[2]string{r.CommandUUID, strings.ToUpper(r.ID)}]; u != "" {
					uuids = append(uuids, u)
				}
			}
			c.mu.Unlock()
		}
		if len(uuids) == 0 {
			continue // nothing to ask about yet: look again soon
		}
		wait = min(2*wait, maxPoll)
		got, err := c.byUUID(ctx, uuids)
		if ctx.Err() != nil {
			return
		}
		if err != nil && onError != nil {
			onError(err)
		}
		for _, u := range uuids {
			x, ok := got[strings.ToLower(u)]
			if !ok {
				continue
			}
			st := x.state()
			c.mu.Lock()
			s := c.sent[strings.ToLower(u)]
			c.mu.Unlock()
			resp, final := response(st, s.commandUUID, s.udid)
			if !final || seen[u] == st {
				continue
			}
			seen[u] = st
			col.DeliverFor(s.udid, resp)
		}
	}
}

// adopt finds the Jamf commands of locks an earlier session sent (what
// `mdmctl status` asks about) whose Jamf command uuid the history does not
// hold (recorded before it kept one, or Jamf's answer did not say): each
// device's newest DEVICE_LOCK is taken as the one the lock queued. A lock
// sent from Jamf's console since then would be read instead.
func (c *Client) adopt(ctx context.Context, locks []webhook.Result) error {
	var udids []string
	for _, r := range locks {
		udids = append(udids, r.ID)
	}
	recs, err := c.resolve(ctx, udids)
	if err != nil {
		return err
	}
	for _, l := range locks {
		rec := recs[strings.ToUpper(l.ID)]
		if rec == nil || rec.managementID == "" {
			continue
		}
		got, err := c.commands(ctx, "clientManagementId=="+rsqlQuote(rec.managementID)+";command==DEVICE_LOCK")
		if err != nil {
			return err
		}
		var newest command
		var newestAt time.Time
		for _, x := range got {
			if t, ok := x.sentAt(); ok && (newest.UUID == "" || t.After(newestAt)) {
				newest, newestAt = x, t
			}
		}
		c.note(newest.UUID, l.CommandUUID, l.ID)
	}
	return nil
}

// init makes the maps; c.mu is held.
func (c *Client) init() {
	if c.sent == nil {
		c.sent, c.byRun, c.mine = map[string]sent{}, map[[2]string]string{}, map[string]bool{}
	}
}

// sending marks commandUUID as this session's own: its Jamf commands are
// known from the POST, never guessed.
func (c *Client) sending(commandUUID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	c.mine[commandUUID] = true
}

// note records that Jamf's command uuid carries mdmctl's commandUUID to udid.
func (c *Client) note(uuid, commandUUID, udid string) {
	if uuid == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	c.sent[strings.ToLower(uuid)] = sent{commandUUID: commandUUID, udid: udid}
	c.byRun[[2]string{commandUUID, strings.ToUpper(udid)}] = uuid
}
