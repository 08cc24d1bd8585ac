package history

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/report"
)

// BenchmarkRun10k records what a lock run of 10,000 devices does: ten
// commands of 1,000 marked sending, then each command's outcomes.
func BenchmarkRun10k(b *testing.B) {
	ctx := context.Background()
	s, err := Open(filepath.Join(b.TempDir(), "history.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	run := 0
	for b.Loop() {
		run++
		for c := range 10 {
			uuid := fmt.Sprintf("RUN%d-CMD%d", run, c)
			locks := make([]Lock, 1000)
			updates := make([]Update, 1000)
			for i := range locks {
				dev := fmt.Sprintf("DEV%06d", c*1000+i)
				locks[i] = lock(dev, uuid, t0)
				updates[i] = Update{Server: locks[i].Server, CommandUUID: uuid, Device: dev, Outcome: report.Queued, At: t0}
			}
			if err := s.Sending(ctx, locks); err != nil {
				b.Fatal(err)
			}
			if err := s.Record(ctx, updates); err != nil {
				b.Fatal(err)
			}
		}
	}
}
