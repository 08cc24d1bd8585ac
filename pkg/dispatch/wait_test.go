package dispatch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// joinCase is one device's story: what the enqueue reply said of it and
// whether the device answered the run's command.
type joinCase struct {
	queue    report.Outcome
	answered bool
}

// want is the device's one line, whatever order things arrived in.
func (c joinCase) want() (outcome, queue report.Outcome) {
	switch {
	case c.queue == report.Failed:
		// The server refused it: an answer for the UUID is another command's.
		return report.Failed, ""
	case c.answered:
		// The answer proves it was queued, whatever the reply said.
		return report.Acknowledged, report.Queued
	case c.queue == report.Unknown:
		return report.Unknown, ""
	}
	return report.NoAnswer, report.Queued
}

// permutations calls f with every ordering of n events.
func permutations(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}

// TestJoinEveryInterleaving feeds the joiner every interleaving of queue
// results and answers for three devices, for every combination of queue
// outcome (queued, failed, unknown) and answered or not: each device comes
// out exactly once, with the same final outcome in every order.
func TestJoinEveryInterleaving(t *testing.T) {
	outcomes := []report.Outcome{report.Queued, report.Failed, report.Unknown}
	const devices = 3
	var cases [][devices]joinCase
	for combo := 0; combo < 216; combo++ { // (3 outcomes × 2)^3
		var cs [devices]joinCase
		for d, c := 0, combo; d < devices; d, c = d+1, c/6 {
			cs[d] = joinCase{queue: outcomes[c%6/2], answered: c%2 == 1}
		}
		cases = append(cases, cs)
	}
	runs := 0
	for _, cs := range cases {
		type event struct {
			device int
			answer bool
		}
		var events []event
		for d, c := range cs {
			events = append(events, event{d, false})
			if c.answered {
				events = append(events, event{d, true})
			}
		}
		permutations(len(events), func(order []int) {
			runs++
			col := webhook.NewCollector()
			got := map[string][]report.Device{}
			j := NewJoin(col, func(d report.Device) { got[d.ID] = append(got[d.ID], d) })
			cmd := Command{UUID: "U"}
			for d := range cs {
				cmd.Targets = append(cmd.Targets, &Target{ID: fmt.Sprintf("D%d", d)})
			}
			j.Expect([]Command{cmd})
			for _, i := range order {
				e := events[i]
				id := fmt.Sprintf("D%d", e.device)
				if e.answer {
					col.DeliverFor(id, apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "U", UDID: id})
				} else {
					j.Queued(report.Device{ID: id, CommandUUID: "U", Outcome: cs[e.device].queue, Error: "reply"})
				}
			}
			j.Finish()
			for d, c := range cs {
				id := fmt.Sprintf("D%d", d)
				lines := got[id]
				wantOutcome, wantQueue := c.want()
				if len(lines) != 1 || lines[0].Outcome != wantOutcome || lines[0].Queue != wantQueue {
					t.Fatalf("%v in order %v: %s came out %+v, want once as %s (queue %q)", cs, order, id, lines, wantOutcome, wantQueue)
				}
			}
		})
	}
	if runs < 10000 {
		t.Fatalf("only %d interleavings tried", runs)
	}
}

// TestJoinFollowsASplit: a device expected again under a new CommandUUID
// (its request was split) is awaited under that one only.
func TestJoinFollowsASplit(t *testing.T) {
	col := webhook.NewCollector()
	var got []report.Device
	j := NewJoin(col, func(d report.Device) { got = append(got, d) })
	a, b := &Target{ID: "A"}, &Target{ID: "B"}
	j.Expect([]Command{{UUID: "U", Targets: []*Target{a, b}}})
	j.Expect([]Command{{UUID: "U1", Targets: []*Target{a}}})
	j.Expect([]Command{{UUID: "U2", Targets: []*Target{b}}})
	j.Queued(report.Device{ID: "A", CommandUUID: "U1", Outcome: report.Queued})
	j.Queued(report.Device{ID: "B", CommandUUID: "U2", Outcome: report.Failed})
	col.DeliverFor("A", apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "U1", UDID: "A"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := col.Wait(ctx); err != nil {
		t.Fatalf("still waiting for the abandoned UUID: %v", err)
	}
	j.Finish()
	if len(got) != 2 || got[0].Outcome != report.Failed || got[1].Outcome != report.Acknowledged {
		t.Fatalf("%+v", got)
	}
}

// TestJoinLatePIN: a PIN kept after the queue outcome, or before it came,
// goes on the device's one line, which no longer says where else the PIN
// is; the rest of its reason stays, and a no-answer line keeps its own.
func TestJoinLatePIN(t *testing.T) {
	const note = "the PIN is on the server"
	for _, tc := range []struct {
		name             string
		pinFirst, answer bool
		reason, want     string
	}{
		{"kept while held", false, true, "", ""},
		{"kept before the queue outcome", true, true, "not resent", "not resent"},
		{"no answer", false, false, "", "no answer yet: the command stays queued for its next check-in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := webhook.NewCollector()
			var got []report.Device
			j := NewJoin(col, func(d report.Device) { got = append(got, d) })
			j.Expect([]Command{{UUID: "U", Targets: []*Target{{ID: "A"}}}})
			d := report.Device{ID: "A", CommandUUID: "U", Outcome: report.Queued, Error: joinReason(tc.reason, note), PINNote: note}
			if tc.pinFirst {
				j.PIN("U", "A", "604213")
				j.Queued(d)
			} else {
				j.Queued(d)
				j.PIN("U", "A", "604213")
			}
			if tc.answer {
				col.Deliver(apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "U", UDID: "A"})
			}
			j.Finish()
			if len(got) != 1 || got[0].PIN != "604213" || got[0].Error != tc.want || got[0].PINNote != "" {
				t.Fatalf("%+v: want one line with the PIN, reason %q", got, tc.want)
			}
		})
	}
}
