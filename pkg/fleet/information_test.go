package fleet

import (
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

func TestPlanInformation(t *testing.T) {
	// Different lock values and generated PINs split DeviceLock commands,
	// never DeviceInformation ones: only the limits do.
	ts := targets(5, &apple.DeviceLock{Message: "a"}, &apple.Device{})
	ts[1].Lock = &apple.DeviceLock{Message: "b"}
	ts[2].Lock, ts[2].PINGenerated = &apple.DeviceLock{PIN: "123456"}, true
	cmds, err := PlanInformation(ts, Limits{MaxIDs: 3, MaxIDBytes: 1 << 20}, counter())
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || len(cmds[0].Targets) != 3 || len(cmds[1].Targets) != 2 {
		t.Fatalf("got %d commands, want 3+2 devices", len(cmds))
	}
	for _, c := range cmds {
		if c.RequestType != apple.RequestTypeDeviceInformation || c.requestType() != apple.RequestTypeDeviceInformation {
			t.Errorf("%s: request type %q", c.UUID, c.RequestType)
		}
		p, err := apple.ParseCommand(c.Payload)
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
	if (Command{}).requestType() != apple.RequestTypeDeviceLock {
		t.Error("a command without a request type is not DeviceLock")
	}
}
