package webhook

import (
	"context"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Answer is a device's final answer to a command.
type Answer struct {
	ID          string // the ID mdmctl targeted
	CommandUUID string
	Response    apple.Response
	NotNow      int // NotNow answers before this one
}

// Pending is an expected device that has not answered for good.
type Pending struct {
	ID          string
	CommandUUID string
	NotNow      int
}

type key struct{ uuid, id string }

type expectation struct {
	notNow int
	done   bool
}

// Collector matches device answers to the (CommandUUID, device) pairs a run
// awaits. Answers are keyed on the CommandUUID, as Apple advises; the device
// is matched by UDID or EnrollmentID. The first final answer wins; NotNow is
// counted, not final: the server asks the device again.
type Collector struct {
	mu      sync.Mutex
	expect  map[key]*expectation
	open    int
	changed chan struct{} // closed and replaced whenever open drops
	// OnAnswer, when set, receives each final answer once, in arrival
	// order; calls are serialized.
	OnAnswer func(Answer)
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{expect: map[key]*expectation{}, changed: make(chan struct{})}
}

// Expect registers devices that will answer commandUUID. Register before
// sending: an answer can arrive before the enqueue request returns.
func (c *Collector) Expect(commandUUID string, ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		k := key{commandUUID, id}
		if _, ok := c.expect[k]; !ok {
			c.expect[k] = &expectation{}
			c.open++
		}
	}
}

// Forget stops waiting for a device (its command was never queued).
func (c *Collector) Forget(commandUUID, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.expect[key{commandUUID, id}]; ok && !e.done {
		e.done = true
		c.closeOne()
	}
}

func (c *Collector) closeOne() {
	c.open--
	close(c.changed)
	c.changed = make(chan struct{})
}

// Deliver hands over one device report. It returns false when nobody waits
// for it (another command, a device not targeted, Idle, a repeat).
func (c *Collector) Deliver(r apple.Response) bool {
	if r.CommandUUID == "" || r.Status == apple.StatusIdle {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		e *expectation
		k key
	)
	for _, id := range []string{r.UDID, r.EnrollmentID} {
		if id == "" {
			continue
		}
		if found, ok := c.expect[key{r.CommandUUID, id}]; ok {
			e, k = found, key{r.CommandUUID, id}
			break
		}
	}
	if e == nil || e.done {
		return false
	}
	if !r.Final() {
		if r.Status == apple.StatusNotNow {
			e.notNow++
			return true
		}
		return false
	}
	e.done = true
	c.closeOne()
	if c.OnAnswer != nil {
		c.OnAnswer(Answer{ID: k.id, CommandUUID: k.uuid, Response: r, NotNow: e.notNow})
	}
	return true
}

// Wait returns when every expected device has answered for good or been
// forgotten, or when ctx ends (its error is returned).
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

// Pending lists the devices still without a final answer.
func (c *Collector) Pending() []Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Pending
	for k, e := range c.expect {
		if !e.done {
			out = append(out, Pending{ID: k.id, CommandUUID: k.uuid, NotNow: e.notNow})
		}
	}
	return out
}
