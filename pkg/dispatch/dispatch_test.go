package dispatch

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
)

func targets(n int, lock *apple.DeviceLock, facts *apple.Device) []*Target {
	ts := make([]*Target, n)
	for i := range ts {
		ts[i] = &Target{ID: fmt.Sprintf("DEV%05d", i), Lock: lock, Facts: facts}
	}
	Assess(ts)
	return ts
}

func counter() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("U%d", n) }
}

func TestPlanBatchesByLimits(t *testing.T) {
	lock, facts := &apple.DeviceLock{Message: "m"}, &apple.Device{Platform: apple.PlatformIOS}
	ts := targets(2500, lock, facts)
	cmds, err := Plan(ts, server.Limits{MaxIDs: 1000, MaxIDBytes: 1 << 20}, counter(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 3 || len(cmds[0].Targets) != 1000 || len(cmds[2].Targets) != 500 {
		t.Fatalf("got %d commands (%d, ...), want 1000+1000+500", len(cmds), len(cmds[0].Targets))
	}
	seen := map[string]bool{}
	for _, c := range cmds {
		if seen[c.UUID] {
			t.Errorf("UUID %s reused across commands", c.UUID)
		}
		seen[c.UUID] = true
		plist, _ := c.Plist()
		p, err := apple.ParseCommand(plist)
		if err != nil || p.CommandUUID != c.UUID || p.Message != "m" {
			t.Errorf("payload of %s = %+v, %v", c.UUID, p, err)
		}
	}
	// The URL budget: "DEV00000," is 9 bytes, so 90 bytes hold 10 IDs.
	cmds, _ = Plan(ts[:25], server.Limits{MaxIDs: 1000, MaxIDBytes: 90}, counter(), "")
	if len(cmds) != 3 || len(cmds[0].Targets) != 10 {
		t.Errorf("URL budget: %d commands, first with %d IDs; want 3, 10", len(cmds), len(cmds[0].Targets))
	}
}

func TestPlanSeparatesValuesAndGeneratedPINs(t *testing.T) {
	facts := &apple.Device{}
	a, b := &apple.DeviceLock{Message: "a"}, &apple.DeviceLock{Message: "b"}
	ts := append(targets(3, a, facts), targets(2, b, facts)...)
	pinned := &Target{ID: "MAC", Lock: &apple.DeviceLock{Message: "a", PIN: "123456"}, Facts: facts, PINGenerated: true}
	ts = append(ts, pinned)
	Assess(ts)
	cmds, err := Plan(ts, nanomdm.Limits, counter(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 3 {
		t.Fatalf("%d commands, want 3 (a, b, the generated PIN alone)", len(cmds))
	}
	if _, err := Plan(ts, nanomdm.Limits, counter(), "FIXED"); err == nil || !strings.Contains(err.Error(), "need 3 commands") {
		t.Errorf("a fixed UUID for 3 commands: %v", err)
	}
	one, err := Plan(ts[:3], nanomdm.Limits, counter(), "FIXED")
	if err != nil || len(one) != 1 || one[0].UUID != "FIXED" {
		t.Errorf("a fixed UUID for one command: %+v, %v", one, err)
	}
}

func TestAssessSharesVerdicts(t *testing.T) {
	v, _ := apple.ParseVersion("11.4")
	ts := targets(3, &apple.DeviceLock{}, &apple.Device{Model: "MacBookAir10,1", OSVersion: v})
	if ts[0].Assessment != ts[2].Assessment || ts[0].Assessment.Risk != apple.RiskDeactivation {
		t.Errorf("targets with the same facts should share one deactivation verdict")
	}
}

func BenchmarkPlan10k(b *testing.B) {
	ts := targets(10000, &apple.DeviceLock{Message: "m"}, &apple.Device{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Plan(ts, nanomdm.Limits, counter(), ""); err != nil {
			b.Fatal(err)
		}
	}
}
