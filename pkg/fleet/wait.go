package fleet

import (
	"sort"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Join merges what the server said about each device with what the device
// later answered, so that with --wait every device is reported once: when
// its answer is in, when its command failed to queue, or at the end.
type Join struct {
	mu        sync.Mutex
	collector *webhook.Collector
	emit      Emit
	queued    map[joinKey]report.Device
	answers   map[joinKey]webhook.Answer
}

type joinKey struct{ uuid, id string }

// NewJoin waits through c (whose OnAnswer it takes) and reports through emit.
func NewJoin(c *webhook.Collector, emit Emit) *Join {
	j := &Join{collector: c, emit: emit, queued: map[joinKey]report.Device{}, answers: map[joinKey]webhook.Answer{}}
	c.OnAnswer = j.answer
	return j
}

// Expect registers every target of cmds before anything is sent.
func (j *Join) Expect(cmds []Command) {
	for _, c := range cmds {
		ids := make([]string, len(c.Targets))
		for i, t := range c.Targets {
			ids[i] = t.ID
		}
		j.collector.Expect(c.UUID, ids...)
	}
}

// Queued takes the server's word on a device (it is Send's Emit).
func (j *Join) Queued(d report.Device) {
	k := joinKey{d.CommandUUID, d.ID}
	switch d.Outcome {
	case report.Queued, report.QueuedNotPushed:
	default:
		// Not queued (or answered in the same exchange): nothing to wait for.
		j.collector.Forget(d.CommandUUID, d.ID)
		j.mu.Lock()
		_, answered := j.answers[k]
		j.mu.Unlock()
		if !answered {
			j.emit(d)
		}
		return
	}
	j.mu.Lock()
	a, answered := j.answers[k]
	if !answered {
		j.queued[k] = d
	}
	j.mu.Unlock()
	if answered {
		j.emit(merge(d, a))
	}
}

// answer receives a final answer from the collector; the answer may beat
// the enqueue reply, so it is held until the queue outcome is known.
func (j *Join) answer(a webhook.Answer) {
	k := joinKey{a.CommandUUID, a.ID}
	j.mu.Lock()
	d, queued := j.queued[k]
	if queued {
		delete(j.queued, k)
	} else {
		j.answers[k] = a
	}
	j.mu.Unlock()
	if queued {
		j.emit(merge(d, a))
	}
}

// Finish reports every device still waiting as no-answer, with how many
// times it said NotNow.
func (j *Join) Finish() {
	notNow := map[joinKey]int{}
	for _, p := range j.collector.Pending() {
		notNow[joinKey{p.CommandUUID, p.ID}] = p.NotNow
	}
	j.mu.Lock()
	rest := j.queued
	j.queued = map[joinKey]report.Device{}
	j.mu.Unlock()
	keys := make([]joinKey, 0, len(rest))
	for k := range rest {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a].id < keys[b].id })
	for _, k := range keys {
		d := rest[k]
		d.Queue, d.Outcome = d.Outcome, report.NoAnswer
		d.NotNow = notNow[k]
		if d.Error == "" {
			d.Error = "no answer yet: the command stays queued for its next check-in"
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
	if d.Queue == report.QueuedNotPushed {
		// It was delivered after all; the push problem is history.
		d.Error = ""
	}
	return d
}
