package webhook

import (
	"context"
	"slices"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Answer is a device's final answer to a command.
type Answer struct {
	ID          string         `json:"id"` // the ID mdmctl targeted
	CommandUUID string         `json:"command_uuid"`
	Response    apple.Response `json:"response"`
	NotNow      int            `json:"not_now,omitempty"` // NotNow answers before this one
}

// Pending is an expected device that has not answered for good.
type Pending struct {
	ID          string
	CommandUUID string
	NotNow      int
}

// Result is one expected device's outcome at the time of a snapshot.
type Result struct {
	ID          string `json:"id"`
	CommandUUID string `json:"command_uuid"`
	// Response is the final answer; nil means no final answer (yet).
	Response *apple.Response `json:"response,omitempty"`
	// NotNow counts the device's NotNow answers: it received the command
	// but could not run it, and the server will ask again.
	NotNow int `json:"not_now,omitempty"`
	// Forgotten is set when the caller stopped waiting (see Forget).
	Forgotten bool `json:"forgotten,omitempty"`
	// Reference is the server's own name for the command, when the caller
	// knows it (see Refer).
	Reference string `json:"server_reference,omitempty"`
}

// Answered reports whether the device gave a final answer.
func (r Result) Answered() bool { return r.Response != nil }

type key struct{ uuid, id string }

type expectation struct {
	notNow    int
	done      bool
	forgotten bool
	resp      *apple.Response
	ref       string
}

// Collector matches device answers to the (CommandUUID, device) pairs a run
// awaits. Answers are keyed on the CommandUUID, as Apple advises, since a
// device may repeat itself. The first final answer wins; NotNow is counted,
// not final: the server asks the device again. All methods are safe for
// concurrent use.
type Collector struct {
	mu      sync.Mutex
	expect  map[key]*expectation
	order   []key // registration order, for stable snapshots
	open    int
	changed chan struct{} // closed and replaced whenever open drops

	cbMu sync.Mutex // serializes OnAnswer calls
	// OnAnswer, when set, receives each final answer once. Set it before
	// answers can arrive. Calls are serialized but run outside the
	// collector's lock, so the callback may call the Collector; Wait
	// returns only after the callback for the last answer has returned.
	OnAnswer func(Answer)
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{expect: map[key]*expectation{}, changed: make(chan struct{})}
}

// Expect registers devices that will answer commandUUID. An ID is the
// device's UDID, or its EnrollmentID for a user enrollment (or any NanoMDM
// enrollment ID). Register before sending: an answer can arrive before the
// enqueue request returns, and answers nobody awaits are dropped. Empty IDs
// and repeats are ignored.
func (c *Collector) Expect(commandUUID string, ids ...string) {
	if commandUUID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		k := key{commandUUID, id}
		if _, ok := c.expect[k]; ok || id == "" {
			continue
		}
		c.expect[k] = &expectation{}
		c.order = append(c.order, k)
		c.open++
	}
}

// Forget stops waiting for a device (its command was never queued).
func (c *Collector) Forget(commandUUID, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.expect[key{commandUUID, id}]; ok && !e.done {
		e.done, e.forgotten = true, true
		c.closeOne()
	}
}

// Refer attaches the server's own name for the command an expected device
// awaits (a vendor's command UUID, kept in the history), so that a watcher
// asks the server about that command. A pair not expected is ignored.
func (c *Collector) Refer(commandUUID, id, reference string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.expect[key{commandUUID, id}]; ok {
		e.ref = reference
	}
}

func (c *Collector) closeOne() {
	c.open--
	close(c.changed)
	c.changed = make(chan struct{})
}

// Deliver hands over one device report. It returns true when the report
// counted: a first final answer, or a NotNow, from an awaited device. It
// returns false for anything else (another command, a device not targeted,
// Idle, a repeat).
func (c *Collector) Deliver(r apple.Response) bool {
	return c.deliver(r, "")
}

// DeliverFor hands over a report the server has already matched to the
// device id (an API that returns answers per host), as Deliver does.
func (c *Collector) DeliverFor(id string, r apple.Response) bool {
	return c.deliver(r, id)
}

// DeliverEvent hands over the device report a webhook event carries, as
// Deliver does. NanoMDM's enrollment ID (ids.id) matches too. A report
// whose plist cannot be decoded still counts with the status the server
// saw, so an answered device is not reported silent.
func (c *Collector) DeliverEvent(ev Event) bool {
	a := ev.Acknowledge
	if a == nil {
		return false
	}
	r, err := a.Response()
	if err != nil {
		if a.Status == "" {
			return false
		}
		r = a.fieldsResponse()
	}
	var nanoID string
	if a.IDs != nil {
		nanoID = a.IDs.ID
	}
	return c.deliver(r, nanoID)
}

func (c *Collector) deliver(r apple.Response, nanoID string) bool {
	if r.CommandUUID == "" || r.Status == apple.StatusIdle {
		return false
	}
	c.mu.Lock()
	k, e := c.match(r, nanoID)
	if e == nil || e.done || (!r.Final() && r.Status != apple.StatusNotNow) {
		c.mu.Unlock()
		return false
	}
	if !r.Final() {
		e.notNow++
		c.mu.Unlock()
		return true
	}
	resp := r
	e.done, e.resp = true, &resp
	a := Answer{ID: k.id, CommandUUID: k.uuid, Response: r, NotNow: e.notNow}
	cb := c.OnAnswer
	c.mu.Unlock()

	if cb != nil {
		c.cbMu.Lock()
		cb(a)
		c.cbMu.Unlock()
	}
	// Counted only now, so that Wait's return means every callback ran.
	c.mu.Lock()
	c.closeOne()
	c.mu.Unlock()
	return true
}

// match finds the expectation a report answers. A user-channel report
// (UserID, EnrollmentUserID or UserShortName set) carries its device's UDID
// too, so it matches only by NanoMDM's user-channel ID, never by the device
// identifiers: it must not finish the device channel's command.
func (c *Collector) match(r apple.Response, nanoID string) (key, *expectation) {
	ids := [3]string{nanoID}
	if r.UserID == "" && r.EnrollmentUserID == "" && r.UserShortName == "" {
		ids[1], ids[2] = r.UDID, r.EnrollmentID
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		k := key{r.CommandUUID, id}
		if e, ok := c.expect[k]; ok {
			return k, e
		}
	}
	return key{}, nil
}

// Wait returns nil when every expected device has answered for good or been
// forgotten, or ctx's error when ctx ends first.
func (c *Collector) Wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		open, changed := c.open, c.changed
		c.mu.Unlock()
		if open == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Pending lists the devices still without a final answer, in the order
// they were expected.
func (c *Collector) Pending() []Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Pending
	for _, k := range c.order {
		if e := c.expect[k]; !e.done {
			out = append(out, Pending{ID: k.id, CommandUUID: k.uuid, NotNow: e.notNow})
		}
	}
	return out
}

// Results is a snapshot of every expected device, each exactly once, in the
// order they were expected: its final answer, or none with its NotNow count.
func (c *Collector) Results() []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Result, len(c.order))
	for i, k := range c.order {
		e := c.expect[k]
		out[i] = Result{ID: k.id, CommandUUID: k.uuid, NotNow: e.notNow, Forgotten: e.forgotten, Reference: e.ref}
		if e.resp != nil {
			r := *e.resp // a copy: the caller may keep or change it
			r.ErrorChain = slices.Clone(r.ErrorChain)
			out[i].Response = &r
		}
	}
	return out
}
