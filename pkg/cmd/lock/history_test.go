package lock

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// TestHistoryKeepsTheServersReference: the reference a queue outcome
// carries is recorded with it, for a later status to ask the server about.
func TestHistoryKeepsTheServersReference(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	store, err := history.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &runHistory{store: store, base: history.Lock{Server: "https://jamf.example.com", Kind: "jamf"},
		now: time.Now, warn: func(msg string) { t.Error(msg) }}
	c := dispatch.Command{UUID: apple.NewCommandUUID(), Targets: []*dispatch.Target{
		{ID: "A", Facts: &apple.Device{}, Lock: &apple.DeviceLock{}},
		{ID: "B", Facts: &apple.Device{}, Lock: &apple.DeviceLock{}},
	}}
	if err := h.beforeSend(nil)(c); err != nil {
		t.Fatal(err)
	}
	h.outcome(report.Device{ID: "A", Outcome: report.Queued, CommandUUID: c.UUID, Reference: "jamf-a"})
	h.outcome(report.Device{ID: "B", Outcome: report.Failed, CommandUUID: c.UUID, Error: "nope"})
	h.close()

	store, err = history.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.Latest(context.Background(), "https://jamf.example.com", []string{"A", "B"})
	if err != nil {
		t.Fatal(err)
	}
	if got["A"].Reference != "jamf-a" || got["A"].Outcome != report.Queued || got["B"].Reference != "" || got["B"].Outcome != report.Failed {
		t.Fatalf("recorded %+v", got)
	}
}
