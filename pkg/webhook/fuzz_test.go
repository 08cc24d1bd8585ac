package webhook

import (
	"os"
	"testing"
)

func FuzzDecodeEvent(f *testing.F) {
	if data, err := os.ReadFile("testdata/nanomdm-devicelock-acknowledged.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"topic":"mdm.Connect","acknowledge_event":{"udid":"X","status":"Idle"}}`))
	f.Add([]byte(`{"topic":"mdm.Authenticate","checkin_event":{"udid":"X","raw_payload":"AAAA"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			return
		}
		if ev.Topic == "" {
			t.Fatal("decoded an event without a topic")
		}
		if r, err := ev.Response(); err == nil && r.Status == "" {
			t.Fatal("a response without a status")
		}
		c := NewCollector()
		c.Expect("C", "X")
		c.DeliverEvent(ev)
	})
}
