package lock

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
)

// BenchmarkPlan100k measures reading, validating, guarding and planning
// 100,000 IDs from stdin, the whole pipeline short of the network.
func BenchmarkPlan100k(b *testing.B) {
	var ids bytes.Buffer
	for i := range 100000 {
		fmt.Fprintf(&ids, "DEV%06d\n", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		streams, in, _, _ := iostreams.Test()
		streams.Out = io.Discard
		in.Write(ids.Bytes())
		opts := &Options{IO: streams, Getenv: func(string) string { return "" }, NewUUID: apple.NewCommandUUID, Now: time.Now,
			IDs: []string{"-"}, Platform: "ios", DryRun: true, Yes: true, Output: "jsonl", Concurrency: 8, Timeout: time.Second, ConnectTimeout: time.Second}
		if err := Run(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
