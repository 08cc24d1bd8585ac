package dispatch

import (
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

func TestPlanInformation(t *testing.T) {
	// Different lock values and generated PINs split DeviceLock commands,
	// never DeviceInformation ones: only the limits do.
	ts := targets(5, &apple.DeviceLock{Message: "a"}, &apple.Device{})
	ts[1].Lock = &apple.DeviceLock{Message: "b"}
	ts[2].Lock, ts[2].PINGenerated = &apple.DeviceLock{PIN: "123456"}, true
	cmds, err := PlanInformation(ts, server.Limits{MaxIDs: 3, MaxIDBytes: 1 << 20}, counter())
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || len(cmds[0].Targets) != 3 || len(cmds[1].Targets) != 2 {
		t.Fatalf("got %d commands, want 3+2 devices", len(cmds))
	}
	for _, c := range cmds {
		if c.RequestType != apple.RequestTypeDeviceInformation || !c.Request(false).IsInformation() {
			t.Errorf("%s: request type %q", c.UUID, c.RequestType)
		}
		plist, _ := c.Plist()
		p, err := apple.ParseCommand(plist)
		if err != nil || p.CommandUUID != c.UUID || p.RequestType != apple.RequestTypeDeviceInformation || p.PIN != "" {
			t.Errorf("%s: payload %+v, %v", c.UUID, p, err)
		}
		for _, tt := range c.Targets {
			if tt.Lock.PIN != "" || tt.PINGenerated {
				t.Errorf("%s: a PIN went into a preflight", tt.ID)
			}
		}
	}
	if ts[2].Lock.PIN != "123456" || !ts[2].PINGenerated {
		t.Error("planning a preflight changed the targets")
	}
	if (Command{}).Request(false).RequestType != apple.RequestTypeDeviceLock {
		t.Error("a command without a request type is not DeviceLock")
	}
}

func TestAnsweredNeverOverridesEarlierFacts(t *testing.T) {
	yes, no := true, false
	v114, _ := apple.ParseVersion("11.4")
	cases := []struct {
		name   string
		input  apple.Device
		answer apple.Information
		want   apple.Risk
	}{
		{"unknown input, M1 answers 11.4", apple.Device{}, apple.Information{ProductName: "MacBookAir10,1", OSVersion: "11.4"}, apple.RiskDeactivation},
		{"unknown input, M2 answers 14.5", apple.Device{}, apple.Information{ProductName: "Mac14,2", OSVersion: "14.5", IsAppleSilicon: &yes}, apple.RiskNone},
		{"flags say 11.4 on an M1, device claims 14.5", apple.Device{Platform: apple.PlatformMacOS, Model: "MacBookAir10,1", OSVersion: v114},
			apple.Information{ProductName: "MacBookAir10,1", OSVersion: "14.5"}, apple.RiskDeactivation},
		{"flags say 11.4, device claims an Intel model", apple.Device{Platform: apple.PlatformMacOS, OSVersion: v114},
			apple.Information{ProductName: "MacBookPro16,1", OSVersion: "11.4", IsAppleSilicon: &no}, apple.RiskNone},
		{"garbage answer keeps the facts unknown", apple.Device{}, apple.Information{ProductName: "not a model", OSVersion: "eleven"}, apple.RiskUnknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := &Target{ID: "D", Facts: &c.input, Lock: &apple.DeviceLock{}}
			Assess([]*Target{tg})
			Answered(tg, c.answer)
			if tg.Assessment.Risk != c.want {
				t.Fatalf("risk %v, want %v (%s)", tg.Assessment.Risk, c.want, tg.Assessment.Reason)
			}
			if c.want == apple.RiskDeactivation && !strings.Contains(tg.Assessment.Reason, AnswerSource) && c.input.Model == "" {
				t.Errorf("reason does not name the device answer: %s", tg.Assessment.Reason)
			}
		})
	}
}
