package dispatch

import (
	"sort"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Join merges what the server said about each device with what the device
// later answered, so that with --wait every device is reported once,
// whichever arrives first: when its answer is in, when its command failed
// to queue, or at the end. An answer for the device's CommandUUID proves
// the command was queued, whatever the enqueue reply said (it may have
// been lost, or a gateway's 502); a device the server refused is failed,
// answer or not: the answer is another command's under a reused UUID.
type Join struct {
	mu        sync.Mutex
	collector *webhook.Collector
	emit      Emit
	// expected is the CommandUUID each device is awaited under.
	expected map[string]string
	// held: queue outcomes waiting for an answer; answers: answers
	// waiting for the queue outcome.
	held    map[joinKey]report.Device
	answers map[joinKey]webhook.Answer
	// pins are PINs kept before the queue outcome came (see PIN).
	pins map[joinKey]string
}

type joinKey struct{ uuid, id string }

// NewJoin waits through c (whose OnAnswer it takes) and reports through emit.
func NewJoin(c *webhook.Collector, emit Emit) *Join {
	j := &Join{collector: c, emit: emit, expected: map[string]string{},
		held: map[joinKey]report.Device{}, answers: map[joinKey]webhook.Answer{}, pins: map[joinKey]string{}}
	c.OnAnswer = j.answer
	return j
}

// Expect registers every target of cmds before it is sent. A device
// expected again under another CommandUUID (its request was split) is no
// longer awaited under the old one, which queued nothing.
func (j *Join) Expect(cmds []Command) {
	for _, c := range cmds {
		ids := make([]string, len(c.Targets))
		j.mu.Lock()
		for i, t := range c.Targets {
			ids[i] = t.ID
			if old, ok := j.expected[t.ID]; ok && old != c.UUID {
				j.collector.Forget(old, t.ID)
			}
			j.expected[t.ID] = c.UUID
		}
		j.mu.Unlock()
		j.collector.Expect(c.UUID, ids...)
	}
}

// awaitsAnswer reports whether a queue outcome leaves the device able to
// answer: queued, or possibly queued.
func awaitsAnswer(o report.Outcome) bool {
	return o == report.Queued || o == report.QueuedNotPushed || o == report.Unknown
}

// Queued takes the server's word on a device (it is Send's Emit).
func (j *Join) Queued(d report.Device) {
	k := joinKey{d.CommandUUID, d.ID}
	j.mu.Lock()
	if pin, ok := j.pins[k]; ok {
		delete(j.pins, k)
		d = withLatePIN(d, pin)
	}
	a, answered := j.answers[k]
	delete(j.answers, k)
	wait := awaitsAnswer(d.Outcome) && !answered
	if wait {
		j.held[k] = d
	}
	j.mu.Unlock()
	switch {
	case wait:
	case answered && awaitsAnswer(d.Outcome):
		j.emit(merge(d, a))
	default:
		// Not queued (or answered in the same exchange): nothing to wait for.
		j.collector.Forget(d.CommandUUID, d.ID)
		j.emit(d)
	}
}

// PIN takes a PIN the server published after the device's queue outcome
// (Session.PINs), once it is kept: the device's line, if it is not out
// yet, carries it instead of saying where else the PIN is. Call it before
// the device's answer is delivered.
func (j *Join) PIN(uuid, id, pin string) {
	k := joinKey{uuid, id}
	j.mu.Lock()
	defer j.mu.Unlock()
	if d, held := j.held[k]; held {
		j.held[k] = withLatePIN(d, pin)
		return
	}
	j.pins[k] = pin // its queue outcome is still to come
}

// answer receives a final answer from the collector; the answer may beat
// the enqueue reply, so it is held until the queue outcome is known.
func (j *Join) answer(a webhook.Answer) {
	k := joinKey{a.CommandUUID, a.ID}
	j.mu.Lock()
	d, held := j.held[k]
	if held {
		delete(j.held, k)
	} else {
		j.answers[k] = a
	}
	j.mu.Unlock()
	if held {
		j.emit(merge(d, a))
	}
}

// Finish reports every device still waiting: a queued one as no-answer,
// with how many times it said NotNow; one that may be queued as unknown.
func (j *Join) Finish() {
	notNow := map[joinKey]int{}
	for _, p := range j.collector.Pending() {
		notNow[joinKey{p.CommandUUID, p.ID}] = p.NotNow
	}
	j.mu.Lock()
	rest := j.held
	j.held = map[joinKey]report.Device{}
	j.mu.Unlock()
	keys := make([]joinKey, 0, len(rest))
	for k := range rest {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a].id < keys[b].id })
	for _, k := range keys {
		d := rest[k]
		d.NotNow = notNow[k]
		if d.Outcome != report.Unknown {
			d.Queue, d.Outcome = d.Outcome, report.NoAnswer
			if d.Error == "" {
				d.Error = "no answer yet: the command stays queued for its next check-in"
			}
		}
		j.emit(d)
	}
}

func merge(d report.Device, a webhook.Answer) report.Device {
	resp := a.Response
	d.Queue = d.Outcome
	d.Outcome = AnswerOutcome(resp)
	d.Response = &resp
	d.NotNow = a.NotNow
	switch d.Queue {
	case report.QueuedNotPushed:
		// It was delivered after all; the push problem is history.
		d.Error = ""
	case report.Unknown:
		// The answer proves it was queued.
		d.Queue, d.Error = report.Queued, ""
	}
	return d
}
