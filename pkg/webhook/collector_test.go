package webhook

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/nanomdm/mdm"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// answers records OnAnswer calls.
type answers struct {
	mu  sync.Mutex
	got []Answer
}

func (a *answers) add(x Answer) {
	a.mu.Lock()
	a.got = append(a.got, x)
	a.mu.Unlock()
}

func (a *answers) list() []Answer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Answer(nil), a.got...)
}

func newTestCollector() (*Collector, *answers) {
	c, a := NewCollector(), &answers{}
	c.OnAnswer = a.add
	return c, a
}

func ack(uuid, udid string) apple.Response {
	return apple.Response{Status: apple.StatusAcknowledged, CommandUUID: uuid, UDID: udid, MessageResult: apple.MessageResultSuccess}
}

func notNow(uuid, udid string) apple.Response {
	return apple.Response{Status: apple.StatusNotNow, CommandUUID: uuid, UDID: udid}
}

func mustFinishNow(t *testing.T, c *Collector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v; pending %+v", err, c.Pending())
	}
}

func mustStillWait(t *testing.T, c *Collector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait = %v, want it still waiting", err)
	}
}

func TestCollectorNotNowThenAcknowledged(t *testing.T) {
	c, got := newTestCollector()
	c.Expect("C", "MAC-1")
	for i := 0; i < 2; i++ {
		if !c.Deliver(notNow("C", "MAC-1")) {
			t.Fatal("NotNow from an awaited device not counted")
		}
	}
	mustStillWait(t, c)
	if r := c.Results(); len(r) != 1 || r[0].Answered() || r[0].NotNow != 2 {
		t.Errorf("after two NotNow: %+v", r)
	}
	if p := c.Pending(); !reflect.DeepEqual(p, []Pending{{ID: "MAC-1", CommandUUID: "C", NotNow: 2}}) {
		t.Errorf("Pending = %+v", p)
	}
	if len(got.list()) != 0 {
		t.Errorf("NotNow reached OnAnswer: %+v", got.list())
	}

	if !c.Deliver(ack("C", "MAC-1")) {
		t.Fatal("final answer not counted")
	}
	mustFinishNow(t, c)
	want := Answer{ID: "MAC-1", CommandUUID: "C", Response: ack("C", "MAC-1"), NotNow: 2}
	if a := got.list(); !reflect.DeepEqual(a, []Answer{want}) {
		t.Errorf("OnAnswer got %+v, want %+v", a, want)
	}
	r := c.Results()
	if len(r) != 1 || !r[0].Answered() || !reflect.DeepEqual(*r[0].Response, want.Response) || r[0].NotNow != 2 {
		t.Errorf("Results = %+v", r)
	}
	if p := c.Pending(); len(p) != 0 {
		t.Errorf("Pending = %+v after the answer", p)
	}
}

// A device may send the same status twice; the first final answer stands.
func TestCollectorDuplicateAnswers(t *testing.T) {
	c, got := newTestCollector()
	c.Expect("C", "D1")
	first := ack("C", "D1")
	if !c.Deliver(first) {
		t.Fatal("first answer not counted")
	}
	for _, r := range []apple.Response{
		first,
		{Status: apple.StatusError, CommandUUID: "C", UDID: "D1"},
		notNow("C", "D1"),
	} {
		if c.Deliver(r) {
			t.Errorf("repeat %s counted", r.Status)
		}
	}
	if a := got.list(); len(a) != 1 || !reflect.DeepEqual(a[0].Response, first) {
		t.Errorf("OnAnswer got %+v, want the first answer once", a)
	}
	if r := c.Results(); !reflect.DeepEqual(*r[0].Response, first) || r[0].NotNow != 0 {
		t.Errorf("Results = %+v, want the first answer", r)
	}
	// A snapshot is the caller's to change.
	c.Results()[0].Response.Status = "changed"
	if c.Results()[0].Response.Status != apple.StatusAcknowledged {
		t.Error("changing a snapshot changed the collector")
	}
}

func TestCollectorIgnores(t *testing.T) {
	c, got := newTestCollector()
	c.Expect("C", "D1")
	for name, r := range map[string]apple.Response{
		"Idle poll":             {Status: apple.StatusIdle, UDID: "D1"},
		"Idle with a UUID":      {Status: apple.StatusIdle, CommandUUID: "C", UDID: "D1"},
		"another command":       ack("OTHER", "D1"),
		"a device not targeted": ack("C", "D2"),
		"no command UUID":       ack("", "D1"),
		"no device ID":          ack("C", ""),
		"unknown status":        {Status: "Processing", CommandUUID: "C", UDID: "D1"},
	} {
		if c.Deliver(r) {
			t.Errorf("%s counted", name)
		}
	}
	if r := c.Results(); len(r) != 1 || r[0].Answered() || r[0].NotNow != 0 {
		t.Errorf("Results = %+v, want D1 untouched", r)
	}
	if len(got.list()) != 0 {
		t.Errorf("OnAnswer got %+v", got.list())
	}
	mustStillWait(t, c)
}

func TestCollectorUserEnrollment(t *testing.T) {
	c, got := newTestCollector()
	c.Expect("C", "UE-7F3A", exampleUDID)
	ue := apple.Response{Status: apple.StatusNotNow, CommandUUID: "C", EnrollmentID: "UE-7F3A"}
	if !c.Deliver(ue) {
		t.Fatal("NotNow by EnrollmentID not counted")
	}
	ue.Status = apple.StatusError
	if !c.Deliver(ue) || !c.Deliver(ack("C", exampleUDID)) {
		t.Fatal("answers by EnrollmentID and UDID not both counted")
	}
	mustFinishNow(t, c)
	r := c.Results()
	if r[0].ID != "UE-7F3A" || r[0].NotNow != 1 || r[0].Response.Status != apple.StatusError || r[1].ID != exampleUDID || !r[1].Answered() {
		t.Errorf("Results = %+v", r)
	}
	if a := got.list(); len(a) != 2 {
		t.Errorf("OnAnswer got %+v", a)
	}
}

// NanoMDM's enrollment ID (ids.id) matches, and a user-channel report,
// which names its device's UDID too, never finishes the device channel.
func TestCollectorEventIDs(t *testing.T) {
	c, _ := newTestCollector()
	c.Expect("C", "D1", "D1:501")
	user := apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "C", UDID: "D1", UserID: "501", UserShortName: "ada"}
	body, _ := nanoResponse(t, enrollment{id: "D1:501", typ: mdm.User, parentID: "D1"}, user, nil)
	ev, err := DecodeEvent(body)
	if err != nil {
		t.Fatal(err)
	}
	if !c.DeliverEvent(ev) {
		t.Fatal("user-channel answer not matched by ids.id")
	}
	if r := c.Results(); r[0].Answered() || !r[1].Answered() {
		t.Fatalf("user-channel answer landed on %+v", r)
	}
	// Without ids (MicroMDM), a user-channel report matches nothing here.
	c2, _ := newTestCollector()
	c2.Expect("C", "D1")
	ev.Acknowledge.IDs = nil
	if c2.DeliverEvent(ev) || c2.Deliver(user) {
		t.Error("user-channel report finished the device channel's command")
	}
	// A custom ID: only ids.id names the expected device.
	c3, _ := newTestCollector()
	c3.Expect("C", "asset-42")
	body, _ = nanoResponse(t, enrollment{id: "asset-42", typ: mdm.Device}, ack("C", "D9"), nil)
	if ev, err = DecodeEvent(body); err != nil || !c3.DeliverEvent(ev) {
		t.Errorf("ids.id not matched: %v", err)
	}
	if c3.DeliverEvent(Event{Topic: TopicAuthenticate, Checkin: &Checkin{UDID: "D9"}}) {
		t.Error("check-in counted")
	}
}

// A report whose plist does not parse still ends the wait with the status
// the server saw.
func TestCollectorUndecodablePayload(t *testing.T) {
	c, got := newTestCollector()
	c.Expect("C", "D1")
	ev := Event{Topic: TopicConnect, Acknowledge: &Acknowledge{UDID: "D1", Status: "Acknowledged", CommandUUID: "C", RawPayload: []byte("garbage")}}
	if !c.DeliverEvent(ev) {
		t.Fatal("not counted")
	}
	if a := got.list(); len(a) != 1 || !reflect.DeepEqual(a[0].Response, apple.Response{Status: "Acknowledged", CommandUUID: "C", UDID: "D1"}) {
		t.Errorf("answer = %+v", a)
	}
	ev.Acknowledge.Status = ""
	c.Expect("C", "D2")
	ev.Acknowledge.UDID = "D2"
	if c.DeliverEvent(ev) {
		t.Error("a report with neither plist nor status counted")
	}
}

func TestCollectorExpectAndForget(t *testing.T) {
	c, _ := newTestCollector()
	mustFinishNow(t, c) // nothing expected: nothing to wait for
	c.Expect("", "D0")
	c.Expect("C", "D1", "", "D2", "D1")
	c.Expect("C", "D2")
	if r := c.Results(); len(r) != 2 || r[0].ID != "D1" || r[1].ID != "D2" {
		t.Fatalf("Results = %+v, want D1 and D2 once each, in order", r)
	}
	c.Deliver(notNow("C", "D2"))
	c.Forget("C", "D2")
	c.Forget("C", "D2")
	c.Forget("C", "NOBODY")
	if c.Deliver(ack("C", "D2")) {
		t.Error("answer after Forget counted")
	}
	mustStillWait(t, c)
	c.Deliver(ack("C", "D1"))
	mustFinishNow(t, c)
	r := c.Results()
	if !r[0].Answered() || r[0].Forgotten || r[1].Answered() || !r[1].Forgotten || r[1].NotNow != 1 {
		t.Errorf("Results = %+v", r)
	}
}

// TestCollectorRefer: a reference attached to an expected pair shows in
// its results, before and after the answer; others are ignored.
func TestCollectorRefer(t *testing.T) {
	c, _ := newTestCollector()
	c.Expect("C", "D1", "D2")
	c.Refer("C", "D1", "jamf-1")
	c.Refer("C", "NOBODY", "jamf-9")
	c.Refer("OTHER", "D2", "jamf-9")
	if r := c.Results(); len(r) != 2 || r[0].Reference != "jamf-1" || r[1].Reference != "" {
		t.Fatalf("Results = %+v, want jamf-1 on D1 only", r)
	}
	c.Deliver(ack("C", "D1"))
	if r := c.Results(); !r[0].Answered() || r[0].Reference != "jamf-1" {
		t.Fatalf("after the answer: %+v", r[0])
	}
}

func TestCollectorWaitEndsWithContext(t *testing.T) {
	c, _ := newTestCollector()
	c.Expect("C", "D1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Wait(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Wait = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait ignored its context")
	}
	if r := c.Results(); len(r) != 1 || r[0].Answered() {
		t.Errorf("Results = %+v, want D1 without an answer", r)
	}
}

// The callback may use the Collector, and Wait returns only after the
// last callback has returned (so a caller can print every answer before
// it reports the rest as silent).
func TestCollectorCallbackOrdering(t *testing.T) {
	c := NewCollector()
	c.Expect("C", "D1", "D2")
	var mu sync.Mutex
	var printed []string
	c.OnAnswer = func(a Answer) {
		_ = c.Results()
		_ = c.Pending()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		printed = append(printed, a.ID)
		mu.Unlock()
	}
	waited := make(chan error)
	go func() { waited <- c.Wait(context.Background()) }()
	go c.Deliver(ack("C", "D1"))
	go c.Deliver(ack("C", "D2"))
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deadlock: the callback could not use the Collector")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(printed) != 2 {
		t.Errorf("Wait returned with callbacks %v still running", printed)
	}
}
