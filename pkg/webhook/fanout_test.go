package webhook

import "testing"

func TestFanoutDeliversToEachCollector(t *testing.T) {
	info, lock := NewCollector(), NewCollector()
	info.Expect("INFO", "D")
	lock.Expect("LOCK", "D")
	var f Fanout
	f.Add(info)
	f.Add(lock)
	ack := func(uuid string) Event {
		return Event{Topic: TopicConnect, Acknowledge: &Acknowledge{UDID: "D", Status: "Acknowledged", CommandUUID: uuid}}
	}
	if !f.DeliverEvent(ack("INFO")) || !f.DeliverEvent(ack("LOCK")) {
		t.Fatal("an awaited answer did not count")
	}
	if f.DeliverEvent(ack("OTHER")) {
		t.Fatal("an answer nobody awaits counted")
	}
	for name, c := range map[string]*Collector{"info": info, "lock": lock} {
		if r := c.Results(); len(r) != 1 || !r[0].Answered() {
			t.Errorf("%s collector: %+v", name, r)
		}
	}
}
