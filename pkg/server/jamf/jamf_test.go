package jamf_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/jamf"
	"github.com/mdmctl/mdmctl/pkg/server/jamf/jamftest"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

const (
	clientID = "jamf-test-client"
	secret   = "jamf-test-secret"
)

// Devices of the tests: an Apple silicon Mac on 11.4, an Intel Mac, an
// iPhone, an iPad, one in the inventory but unmanaged, one offline.
var devices = []jamftest.Device{
	{UDID: "M1-114", Serial: "SERM1", Model: "MacBookAir10,1", OSVersion: "11.4", AppleSilicon: true, Behavior: simdevice.Acknowledge},
	{UDID: "INTEL", Serial: "SERINTEL", Model: "MacBookPro16,1", OSVersion: "11.4", Behavior: simdevice.Acknowledge},
	{UDID: "IPHONE", Serial: "SERPHONE", Mobile: true, Model: "iPhone11,8", OSVersion: "17.5.1", Behavior: simdevice.Acknowledge},
	{UDID: "IPAD", Serial: "SERIPAD", Mobile: true, Model: "iPad13,18", OSVersion: "17.4", Behavior: simdevice.NotNowOnce},
	{UDID: "UNMANAGED", Serial: "SERUNM", Model: "Mac14,3", OSVersion: "14.6.1", Unmanaged: true},
	{UDID: "OFF", Serial: "SEROFF", Model: "Mac14,3", OSVersion: "14.6.1", Behavior: simdevice.Offline},
	{UDID: "PIN", Serial: "SERPIN", Model: "Mac15,3", OSVersion: "14.5", Behavior: simdevice.RequirePIN},
}

func start(t *testing.T) *jamftest.Server {
	t.Helper()
	fake := jamftest.Start(clientID, secret, devices...)
	t.Cleanup(fake.Close)
	return fake
}

func client(t *testing.T, fake *jamftest.Server, sec string, sl *servertest.Sleeps) *jamf.Client {
	t.Helper()
	u, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	if sl == nil {
		sl = &servertest.Sleeps{}
	}
	retry := server.Retry{Max: 3, Base: time.Millisecond, MaxDelay: 5 * time.Second, Sleep: sl.Sleep}
	return jamf.New(u, clientID, sec, fake.Client(), retry)
}

func lockRequest(ids ...string) server.Request {
	return server.Request{CommandUUID: apple.NewCommandUUID(), IDs: ids,
		Lock: apple.DeviceLock{PIN: "482913", Message: "Return to IT", PhoneNumber: "408-555-5555"}}
}

func byID(res *server.Result) map[string]server.DeviceResult {
	out := map[string]server.DeviceResult{}
	for _, d := range res.Devices {
		out[d.ID] = d
	}
	return out
}

// TestLockManyInOneRequest: the known, managed devices get a DEVICE_LOCK
// each from one POST, values as given; a UDID Jamf does not know and an
// unmanaged device fail before anything is sent.
func TestLockManyInOneRequest(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	req := lockRequest("INTEL", "IPHONE", "NOT-IN-JAMF", "UNMANAGED")
	res, err := c.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(res)
	for _, id := range []string{"INTEL", "IPHONE"} {
		d := got[id]
		cmds := fake.Commands(id)
		if d.Outcome != server.Queued || len(cmds) != 1 || d.Reference != cmds[0].UUID {
			t.Fatalf("%s: %+v, commands %+v", id, d, cmds)
		}
		if c := cmds[0]; c.Type != "DEVICE_LOCK" || c.PIN != "482913" || c.Message != "Return to IT" || c.Phone != "408-555-5555" {
			t.Fatalf("%s: command %+v", id, c)
		}
	}
	if d := got["NOT-IN-JAMF"]; d.Outcome != server.Failed || !strings.Contains(d.Error, "no computer or mobile device with this UDID") {
		t.Fatalf("unknown: %+v", d)
	}
	if d := got["UNMANAGED"]; d.Outcome != server.Failed || !strings.Contains(d.Error, "does not manage it") || len(fake.Commands("UNMANAGED")) != 0 {
		t.Fatalf("unmanaged: %+v", d)
	}
	if n := fake.Posts(); n != 1 {
		t.Fatalf("%d POSTs, want 1", n)
	}
}

// TestOneLockPerDevice: a device named twice, or by its UDID in other
// letters, is sent one lock.
func TestOneLockPerDevice(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	res, err := c.Enqueue(context.Background(), lockRequest("INTEL", "INTEL", "intel"))
	if err != nil {
		t.Fatal(err)
	}
	got := byID(res)
	if len(res.Devices) != 2 || got["INTEL"].Outcome != server.Queued || got["intel"].Outcome != server.Queued || got["intel"].Reference != got["INTEL"].Reference || len(fake.Commands("INTEL")) != 1 {
		t.Fatalf("%+v, %d commands", res.Devices, len(fake.Commands("INTEL")))
	}
}

// TestFactsAndSerials: the inventory gives the guard each device's
// platform, model and OS version, and serials their UDIDs; what Jamf does
// not know is absent.
func TestFactsAndSerials(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	facts, err := c.Devices(context.Background(), []string{"M1-114", "IPAD", "IPHONE", "NOPE"})
	if err != nil {
		t.Fatal(err)
	}
	m1 := facts["M1-114"]
	if m1.Platform != apple.PlatformMacOS || m1.Model != "MacBookAir10,1" || m1.OSVersion.String() != "11.4" {
		t.Fatalf("M1: %+v", m1)
	}
	if a := apple.Assess(m1, apple.DeviceLock{}); a.Risk != apple.RiskDeactivation {
		t.Fatalf("the guard does not refuse the M1 on 11.4 from Jamf's facts: %+v", a)
	}
	if facts["IPAD"].Platform != apple.PlatformIPadOS || facts["IPHONE"].Platform != apple.PlatformIOS || facts["IPHONE"].Model != "iPhone11,8" {
		t.Fatalf("mobile: %+v", facts)
	}
	if _, ok := facts["NOPE"]; ok {
		t.Fatal("a device Jamf does not know has facts")
	}
	serials, err := c.Serials(context.Background(), []string{"SERM1", "SERIPAD", "UNKNOWN1"})
	if err != nil {
		t.Fatal(err)
	}
	if serials["SERM1"] != "M1-114" || serials["SERIPAD"] != "IPAD" || serials["UNKNOWN1"] != "" || len(serials) != 2 {
		t.Fatalf("serials: %v", serials)
	}
	// One request per list for the computers, one for the mobile devices.
	if n := fake.Requests(jamf.ComputersPath); n != 2 {
		t.Fatalf("%d computer inventory requests, want 2 (one per lookup)", n)
	}
}

// TestBatchesManyIDs: many UDIDs are looked up a batch per request, each
// request paged.
func TestBatchesManyIDs(t *testing.T) {
	var many []jamftest.Device
	var ids []string
	for i := range 230 {
		id := strings.Repeat("A", 20) + "-" + string(rune('A'+i%26)) + strings.Repeat("0", i%7) + "-" + itoa(i)
		many = append(many, jamftest.Device{UDID: id, Serial: "S" + itoa(i), Model: "Mac14,3", OSVersion: "14.6.1"})
		ids = append(ids, id)
	}
	fake := jamftest.Start(clientID, secret, many...)
	defer fake.Close()
	c := client(t, fake, secret, nil)
	facts, err := c.Devices(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != len(ids) {
		t.Fatalf("%d facts for %d devices", len(facts), len(ids))
	}
	if n := fake.Requests(jamf.ComputersPath); n < 5 || n > 10 {
		t.Fatalf("%d inventory requests for 230 UDIDs", n)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// TestWrongSecret: the token endpoint refuses the client: exit 4's error,
// naming what to check, the secret nowhere in it; nothing sent.
func TestWrongSecret(t *testing.T) {
	fake := start(t)
	c := client(t, fake, "wrong-secret", nil)
	_, err := c.Enqueue(context.Background(), lockRequest("INTEL"))
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "MDMCTL_API_USER") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("err = %v", err)
	}
	if fake.Posts() != 0 || len(fake.Commands("INTEL")) != 0 {
		t.Fatal("sent with a refused client")
	}
}

// TestTokenRefreshedOn401: a token Jamf stops honouring is fetched again
// once, and the request goes through.
func TestTokenRefreshedOn401(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	if _, err := c.Devices(context.Background(), []string{"INTEL"}); err != nil {
		t.Fatal(err)
	}
	fake.RevokeTokens()
	res, err := c.Enqueue(context.Background(), lockRequest("IPHONE"))
	if err != nil || res.Devices[0].Outcome != server.Queued {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if n := fake.TokensIssued(); n != 2 {
		t.Fatalf("%d tokens issued, want 2", n)
	}
}

// TestTokenCached: one token serves every request of a session.
func TestTokenCached(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	for range 3 {
		if _, err := c.Enqueue(context.Background(), lockRequest("INTEL", "IPHONE")); err != nil {
			t.Fatal(err)
		}
	}
	if n := fake.TokensIssued(); n != 1 {
		t.Fatalf("%d tokens issued, want 1", n)
	}
}

// TestForbiddenNamesPrivilege: a role without the lock privilege is exit
// 4's error naming the privileges; nothing is queued.
func TestForbiddenNamesPrivilege(t *testing.T) {
	fake := start(t)
	fake.Deny(jamftest.PrivLockMac)
	c := client(t, fake, secret, nil)
	_, err := c.Enqueue(context.Background(), lockRequest("INTEL"))
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "Send Computer Remote Lock Command") || !strings.Contains(err.Error(), "INVALID_PRIVILEGE") {
		t.Fatalf("err = %v", err)
	}
	if len(fake.Commands("INTEL")) != 0 {
		t.Fatal("queued without the privilege")
	}
	fake.Deny(jamftest.PrivReadMacs)
	_, err = c.Devices(context.Background(), []string{"PIN"})
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "Read Computers") {
		t.Fatalf("inventory err = %v", err)
	}
	// A role that reads only mobile devices still finds them.
	facts, err := c.Devices(context.Background(), []string{"IPAD"})
	if err != nil || facts["IPAD"].Platform != apple.PlatformIPadOS {
		t.Fatalf("iPad without Read Computers: %v, %v", facts, err)
	}
}

// TestReferenceWithoutStatusPrivilege: when Jamf cannot be asked which
// device each new command is for, the answer's order is the request's.
func TestReferenceWithoutStatusPrivilege(t *testing.T) {
	fake := start(t)
	fake.Deny(jamftest.PrivViewMDM)
	c := client(t, fake, secret, nil)
	res, err := c.Enqueue(context.Background(), lockRequest("INTEL", "IPHONE", "PIN"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Devices {
		cmds := fake.Commands(d.ID)
		if d.Outcome != server.Queued || len(cmds) != 1 || d.Reference != cmds[0].UUID {
			t.Fatalf("%s: %+v, commands %+v", d.ID, d, cmds)
		}
	}
}

// TestRateLimitHonoured: 429s are waited out for their Retry-After, then
// the lock goes, once.
func TestRateLimitHonoured(t *testing.T) {
	fake := start(t)
	sl := &servertest.Sleeps{}
	c := client(t, fake, secret, sl)
	fake.Throttle(3) // the inventory lookup twice, the POST once
	res, err := c.Enqueue(context.Background(), lockRequest("INTEL"))
	if err != nil || res.Devices[0].Outcome != server.Queued {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if len(sl.Waits()) != 3 || sl.Waits()[0] != time.Second || sl.Waits()[2] != time.Second {
		t.Fatalf("waits %v, want three of 1s (Retry-After)", sl.Waits())
	}
	if n := len(fake.Commands("INTEL")); n != 1 {
		t.Fatalf("%d commands", n)
	}
}

// TestLostReplyNotDuplicated: Jamf queues the lock and the reply is lost;
// before resending, the adapter finds the device's DEVICE_LOCK and reports
// it queued, never sent twice.
func TestLostReplyNotDuplicated(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	fake.DropReplies(1)
	res, err := c.Enqueue(context.Background(), lockRequest("OFF", "IPHONE"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Devices {
		cmds := fake.Commands(d.ID)
		if d.Outcome != server.Queued || len(cmds) != 1 || d.Reference != cmds[0].UUID {
			t.Fatalf("%s: %+v, commands %+v", d.ID, d, cmds)
		}
	}
	if n := fake.Posts(); n != 1 {
		t.Fatalf("%d POSTs, want 1", n)
	}
}

// TestGatewayErrorResentAfterLooking: a 502 may come after Jamf queued the
// lock, so before resending the adapter looks; finding none, it resends,
// and the device has one lock.
func TestGatewayErrorResentAfterLooking(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	fake.FailPosts(1, http.StatusBadGateway)
	res, err := c.Enqueue(context.Background(), lockRequest("INTEL"))
	if err != nil || res.Devices[0].Outcome != server.Queued {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if n := len(fake.Commands("INTEL")); n != 1 || fake.Requests(jamf.CommandsPath) != 4 {
		t.Fatalf("%d commands, %d requests to the commands API (POST, look, POST, which command is whose)", n, fake.Requests(jamf.CommandsPath))
	}
}

// TestResumeLooksFirst: a request that an earlier run may have sent finds
// the pending lock and is not resent; when Jamf cannot be asked, the
// device is unknown, still not resent.
func TestResumeLooksFirst(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	first := lockRequest("OFF")
	if _, err := c.Enqueue(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	again := first
	again.MayHaveLanded = true
	res, err := c.Enqueue(context.Background(), again)
	if err != nil || res.Devices[0].Outcome != server.Queued || res.Devices[0].Reference != fake.Commands("OFF")[0].UUID {
		t.Fatalf("res %+v, err %v", res, err)
	}
	// A device with no lock yet is sent one.
	fresh := lockRequest("INTEL")
	fresh.MayHaveLanded = true
	if res, err := c.Enqueue(context.Background(), fresh); err != nil || res.Devices[0].Outcome != server.Queued || len(fake.Commands("INTEL")) != 1 {
		t.Fatalf("fresh: %+v, %v", res, err)
	}
	fake.Deny(jamftest.PrivViewMDM)
	blind := lockRequest("IPHONE")
	blind.MayHaveLanded = true
	res, err = c.Enqueue(context.Background(), blind)
	if err != nil || res.Devices[0].Outcome != server.Unknown || !strings.Contains(res.Devices[0].Error, "not resent") {
		t.Fatalf("blind: %+v, %v", res, err)
	}
	if n := fake.Posts(); n != 2 || len(fake.Commands("OFF")) != 1 || len(fake.Commands("IPHONE")) != 0 {
		t.Fatalf("%d POSTs", n)
	}
}

// TestRefusedRequest: Jamf refusing the request (a PIN it does not take)
// fails each device with Jamf's reason.
func TestRefusedRequest(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	req := lockRequest("INTEL", "IPHONE")
	req.Lock.PIN = "12345"
	res, err := c.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Devices {
		if d.Outcome != server.Failed || !strings.Contains(d.Error, "pin must be 6 digits") {
			t.Fatalf("%+v", d)
		}
	}
}

// TestInformationRefused: what Jamf cannot do is refused unsent.
func TestInformationRefused(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	info := lockRequest("INTEL")
	info.RequestType = apple.RequestTypeDeviceInformation
	if _, err := c.Enqueue(context.Background(), info); !errors.Is(err, jamf.ErrInformation) {
		t.Fatalf("err = %v", err)
	}
	if fake.Posts() != 0 {
		t.Fatal("sent")
	}
}

// TestWatchDeliversStates polls the command states while simulated devices
// answer, under mdmctl's CommandUUID: Acknowledged, NotNow then
// Acknowledged, Error; the offline device stays unanswered.
func TestWatchDeliversStates(t *testing.T) {
	fake := start(t)
	c := client(t, fake, secret, nil)
	req := lockRequest("INTEL", "IPAD", "PIN", "OFF")
	req.Lock.PIN = ""
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, req.IDs...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Watch(ctx, col, func(err error) { t.Errorf("poll: %v", err) })
	if _, err := c.Enqueue(ctx, req); err != nil {
		t.Fatal(err)
	}
	waitCtx, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	_ = col.Wait(waitCtx) // OFF never answers
	got := map[string]webhook.Result{}
	for _, r := range col.Results() {
		got[r.ID] = r
	}
	switch {
	case !got["INTEL"].Answered() || got["INTEL"].Response.Status != apple.StatusAcknowledged || got["INTEL"].Response.CommandUUID != req.CommandUUID:
		t.Fatalf("INTEL: %+v", got["INTEL"])
	case !got["IPAD"].Answered() || got["IPAD"].Response.Status != apple.StatusAcknowledged:
		t.Fatalf("IPAD: %+v", got["IPAD"])
	case !got["PIN"].Answered() || got["PIN"].Response.Status != apple.StatusError:
		t.Fatalf("PIN: %+v", got["PIN"])
	case got["OFF"].Answered():
		t.Fatalf("OFF answered: %+v", got["OFF"])
	}
}

// TestStatusReadsEarlierRun: a session that sends nothing (mdmctl status)
// finds an earlier run's lock as the device's newest DEVICE_LOCK.
func TestStatusReadsEarlierRun(t *testing.T) {
	fake := start(t)
	req := lockRequest("IPHONE")
	if _, err := client(t, fake, secret, nil).Enqueue(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	later := client(t, fake, secret, nil)
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, "IPHONE")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	go later.Watch(ctx, col, func(err error) { t.Errorf("poll: %v", err) })
	_ = col.Wait(ctx)
	r := col.Results()[0]
	if !r.Answered() || r.Response.Status != apple.StatusAcknowledged || r.Response.CommandUUID != req.CommandUUID {
		t.Fatalf("%+v", r)
	}
}

// TestStatusAsksAboutTheReferredLock: with the Jamf command the history
// kept, a later session reads that command, not a lock sent from Jamf's
// console since (the device's newest, still pending).
func TestStatusAsksAboutTheReferredLock(t *testing.T) {
	fake := start(t)
	req := lockRequest("IPHONE")
	res, err := client(t, fake, secret, nil).Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	ref := res.Devices[0].Reference
	if ref == "" {
		t.Fatalf("no reference: %+v", res.Devices[0])
	}
	for deadline := time.Now().Add(3 * time.Second); fake.Commands("IPHONE")[0].State != "ACKNOWLEDGED"; {
		if time.Now().After(deadline) {
			t.Fatalf("the lock was never acknowledged: %+v", fake.Commands("IPHONE"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fake.ConsoleLock("IPHONE") == "" {
		t.Fatal("no console lock")
	}
	later := client(t, fake, secret, nil)
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, "IPHONE")
	col.Refer(req.CommandUUID, "IPHONE", ref)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	go later.Watch(ctx, col, func(err error) { t.Errorf("poll: %v", err) })
	_ = col.Wait(ctx)
	r := col.Results()[0]
	if !r.Answered() || r.Response.Status != apple.StatusAcknowledged || r.Response.CommandUUID != req.CommandUUID {
		t.Fatalf("%+v, want the referred lock's Acknowledged", r)
	}
}

// TestLockRunNeverGuesses: a lock run reads its own command's state, never
// the device's earlier lock, even when it sends after polling started.
func TestLockRunNeverGuesses(t *testing.T) {
	var mu sync.Mutex
	n := 0
	flip := simdevice.BehaviorFunc(func(cmd apple.ParsedCommand, seen int) apple.Response {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 1 {
			return apple.Response{Status: apple.StatusAcknowledged}
		}
		return apple.Response{Status: apple.StatusError}
	})
	fake := jamftest.Start(clientID, secret, jamftest.Device{UDID: "FLIP", Serial: "SFLIP", Model: "Mac14,3", OSVersion: "14.6.1", Behavior: flip})
	defer fake.Close()
	if _, err := client(t, fake, secret, nil).Enqueue(context.Background(), lockRequest("FLIP")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the first lock is acknowledged
	c := client(t, fake, secret, nil)
	req := lockRequest("FLIP")
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, "FLIP")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	go c.Watch(ctx, col, func(err error) { t.Errorf("poll: %v", err) })
	time.Sleep(600 * time.Millisecond) // polling runs before the send
	if _, err := c.Enqueue(ctx, req); err != nil {
		t.Fatal(err)
	}
	_ = col.Wait(ctx)
	if r := col.Results()[0]; !r.Answered() || r.Response.Status != apple.StatusError {
		t.Fatalf("read %+v, want this run's own Error", r)
	}
}
