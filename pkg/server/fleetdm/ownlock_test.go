package fleetdm_test

import (
	"context"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/fleetdm"
	"github.com/mdmctl/mdmctl/pkg/server/fleetdm/fleetdmtest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

func TestOwnReference(t *testing.T) {
	for ref, want := range map[string]bool{"Fleet host 17's lock": true, "Fleet host 17's lock!": false, "Fleet host x's lock": false, "": false} {
		if got := fleetdm.IsOwnReference(ref); got != want {
			t.Errorf("%q: %v, want %v", ref, got, want)
		}
	}
}

func TestPlanLock(t *testing.T) {
	d, _ := server.Lookup(fleetdm.Kind)
	for _, tc := range []struct {
		name      string
		lock      apple.DeviceLock
		mayBeMac  bool
		serverPIN bool
		warns     bool
	}{
		{"a Mac, nothing of the admin's: Fleet's own lock", apple.DeviceLock{}, true, true, false},
		{"a Mac with a message: raw, warned", apple.DeviceLock{Message: "Return to IT"}, true, false, true},
		{"a Mac with a PIN: raw, warned", apple.DeviceLock{PIN: "246810"}, true, false, true},
		{"a Mac with a phone: raw, warned", apple.DeviceLock{PhoneNumber: "408-555-5555"}, true, false, true},
		{"an iPhone: raw (Fleet's own lock is Lost Mode)", apple.DeviceLock{}, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := d.PlanLock(tc.lock, tc.mayBeMac)
			if err != nil || plan.ServerPIN != tc.serverPIN || (plan.Warning != "") != tc.warns {
				t.Fatalf("plan %+v, err %v", plan, err)
			}
		})
	}
}

func mac(uuid string, b simdevice.Behavior) fleetdmtest.Host {
	return fleetdmtest.Host{UUID: uuid, Behavior: b, Platform: "darwin", OSVersion: "macOS 14.6.1", HardwareModel: "Mac14,3"}
}

func ownLock(ids ...string) server.Request {
	return server.Request{CommandUUID: apple.NewCommandUUID(), RequestType: apple.RequestTypeDeviceLock, IDs: ids}
}

// TestOwnLockReturnsFleetsPIN: a Mac is locked through Fleet's own lock,
// its PIN comes back for the escrow; an iPhone in the same request gets
// DeviceLock through the raw path.
func TestOwnLockReturnsFleetsPIN(t *testing.T) {
	fake := fleetdmtest.Start(token, mac("M1", simdevice.Acknowledge),
		fleetdmtest.Host{UUID: "P1", Platform: "ios", Behavior: simdevice.Acknowledge})
	defer fake.Close()
	res, err := client(t, fake.URL).Enqueue(context.Background(), ownLock("M1", "P1"))
	if err != nil {
		t.Fatal(err)
	}
	n, pin := fake.Locks("M1")
	byID := map[string]server.DeviceResult{}
	for _, d := range res.Devices {
		byID[d.ID] = d
	}
	if m := byID["M1"]; n != 1 || m.Outcome != server.Queued || m.PIN != pin || pin == "" || m.Reference == "" {
		t.Fatalf("Mac: %d locks (PIN %q), result %+v", n, pin, m)
	}
	if p := byID["P1"]; p.Outcome != server.Queued || p.PIN != "" || len(fake.Queue("P1")) != 1 {
		t.Fatalf("iPhone: result %+v, queue %v", p, fake.Queue("P1"))
	}
	if n, _ := fake.Locks("P1"); n != 0 {
		t.Fatal("the iPhone went through Fleet's own lock (Lost Mode)")
	}
}

// TestOwnLockLostReplyNotDuplicated: Fleet took the lock and the reply was
// lost; the resend meets "pending lock", read as the first lock landing.
func TestOwnLockLostReplyNotDuplicated(t *testing.T) {
	fake := fleetdmtest.Start(token, mac("M1", nil))
	defer fake.Close()
	fake.DropReplies(1)
	res, err := client(t, fake.URL).Enqueue(context.Background(), ownLock("M1"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := fake.Locks("M1"); n != 1 || res.Devices[0].Outcome != server.Queued || res.Devices[0].PIN != "" {
		t.Fatalf("%d locks, result %+v", n, res.Devices[0])
	}
	// A second run finds the lock pending: refused by Fleet, not locked twice.
	res, err = client(t, fake.URL).Enqueue(context.Background(), ownLock("M1"))
	if err != nil || res.Devices[0].Outcome != server.Failed {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if n, _ := fake.Locks("M1"); n != 1 {
		t.Fatalf("%d locks, want 1", n)
	}
}

func TestOwnLockNeedsPremium(t *testing.T) {
	fake := fleetdmtest.Start(token, mac("M1", nil))
	defer fake.Close()
	fake.SetPremium(false)
	res, err := client(t, fake.URL).Enqueue(context.Background(), ownLock("M1"))
	if err != nil || res.Devices[0].Outcome != server.Failed || fake.Runs() != 0 {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

// TestOwnLockAnsweredByLockState: --wait hears a Mac's own lock from its
// lock state, once the Mac has answered Fleet's DeviceLock.
func TestOwnLockAnsweredByLockState(t *testing.T) {
	fake := fleetdmtest.Start(token, mac("M1", simdevice.NotNowOnce))
	defer fake.Close()
	fc := client(t, fake.URL)
	req := ownLock("M1")
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, "M1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go fc.Watch(ctx, col, func(err error) { t.Error(err) })
	if _, err := fc.Enqueue(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := col.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	r := col.Results()[0]
	if r.Response == nil || r.Response.Status != apple.StatusAcknowledged {
		t.Fatalf("answer %+v", r)
	}
}
