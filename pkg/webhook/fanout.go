package webhook

import "sync"

// Sink takes the events a Receiver accepts.
type Sink interface {
	// DeliverEvent reports whether the event counted (see Collector.DeliverEvent).
	DeliverEvent(Event) bool
}

// Fanout hands every event to each collector added so far, so one receiver
// serves a run that awaits answers to more than one command (a preflight's
// DeviceInformation, then the DeviceLock). Safe for concurrent use.
type Fanout struct {
	mu         sync.Mutex
	collectors []*Collector
}

// Add makes c receive every event from now on.
func (f *Fanout) Add(c *Collector) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.collectors = append(f.collectors, c)
}

// DeliverEvent delivers ev to every collector; it counted when any took it.
func (f *Fanout) DeliverEvent(ev Event) bool {
	f.mu.Lock()
	cs := append([]*Collector(nil), f.collectors...)
	f.mu.Unlock()
	counted := false
	for _, c := range cs {
		if c.DeliverEvent(ev) {
			counted = true
		}
	}
	return counted
}
