package kandji_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/kandji"
	"github.com/mdmctl/mdmctl/pkg/server/kandji/kandjitest"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

const token = "kandji-api-token"

// Devices of the tenant the tests use.
var (
	mac = kandjitest.Device{UDID: "C0FFEE14-0003-4A61-9F30-000000014601", Serial: "C02XK1ABCD12", Platform: "Mac",
		OSVersion: "14.6.1", Model: "Mac14,3", ModelName: "Mac mini (2023)", ProcessorName: "Apple M2", Behavior: simdevice.Acknowledge}
	m1 = kandjitest.Device{UDID: "2E8A1C3F-0B11-4D04-9A10-000000001104", Serial: "FVHHFKF7Q6L4", Platform: "Mac",
		OSVersion: "11.4", Model: "MacBookAir10,1", ModelName: "MacBook Air (M1, 2020)", ProcessorName: "Apple M1", Behavior: simdevice.Acknowledge}
	iphone = kandjitest.Device{UDID: "00008020-000915083C80012E", Serial: "C02XK1ABCD1", Platform: "iPhone",
		OSVersion: "17.5.1", Model: "iPhone11,8", ModelName: "iPhone XR", Behavior: simdevice.Acknowledge}
	offline = kandjitest.Device{UDID: "00008110-000E22334455667E", Serial: "OFFLINE1", Platform: "iPad",
		OSVersion: "17.2", Model: "iPad14,1", ModelName: "iPad mini (6th generation)"}
	notNow = kandjitest.Device{UDID: "0BADBEEF-0009-4136-8D50-000000000913", Serial: "BUSY1", Platform: "Mac",
		OSVersion: "13.6.7", Model: "Macmini9,1", ModelName: "Mac mini (M1, 2020)", ProcessorName: "Apple M1", Behavior: simdevice.NotNowOnce}
	failing = kandjitest.Device{UDID: "5EC0DE15-0003-4B05-8E40-000000000015", Serial: "FAIL1", Platform: "Mac",
		OSVersion: "14.5", Model: "Mac15,3", ModelName: "MacBook Pro (14-inch, M3)", ProcessorName: "Apple M3",
		Behavior: simdevice.BehaviorFunc(func(cmd apple.ParsedCommand, _ int) apple.Response {
			return apple.Response{Status: apple.StatusError, CommandUUID: cmd.CommandUUID, ErrorChain: []apple.ErrorChainItem{
				{ErrorCode: 12066, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "A PIN is required to lock this Mac."}}}
		})}
)

func start(t *testing.T, devices ...kandjitest.Device) *kandjitest.Server {
	t.Helper()
	if len(devices) == 0 {
		devices = []kandjitest.Device{mac, m1, iphone, offline, notNow, failing}
	}
	s := kandjitest.Start(token, devices...)
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, base string) (*kandji.Client, *servertest.Sleeps) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	sl := &servertest.Sleeps{}
	return &kandji.Client{BaseURL: u, Token: token, HTTP: &http.Client{Timeout: 5 * time.Second},
		Retry: server.Retry{Max: 3, Base: time.Millisecond, MaxDelay: 5 * time.Second, Sleep: sl.Sleep}}, sl
}

func lockRequest(ids ...string) server.Request {
	return server.Request{CommandUUID: apple.NewCommandUUID(), RequestType: apple.RequestTypeDeviceLock,
		Lock: apple.DeviceLock{Message: "Return to IT", PhoneNumber: "408-555-5555"}, IDs: ids}
}

func enqueue(t *testing.T, c *kandji.Client, req server.Request) server.DeviceResult {
	t.Helper()
	res, err := c.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 1 {
		t.Fatalf("%d device results, want 1: %+v", len(res.Devices), res.Devices)
	}
	return res.Devices[0]
}

func TestLockCarriesMessageAndPhoneAndReturnsKandjisPIN(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	d := enqueue(t, c, lockRequest(mac.UDID))
	locks := s.Locks(mac.UDID)
	switch {
	case d.Outcome != server.Queued || d.ID != mac.UDID:
		t.Fatalf("result %+v, want queued for the UDID", d)
	case len(locks) != 1:
		t.Fatalf("Kandji holds %d locks, want 1", len(locks))
	case locks[0].Message != "Return to IT" || locks[0].PhoneNumber != "408-555-5555":
		t.Fatalf("lock carries %+v", locks[0])
	case d.PIN == "" || d.PIN != locks[0].PIN:
		t.Fatalf("PIN %q, want Kandji's %q", d.PIN, locks[0].PIN)
	case d.Reference != locks[0].UUID:
		t.Fatalf("reference %q, want Kandji's command %q", d.Reference, locks[0].UUID)
	}
	// An iPhone gets no PIN from Kandji.
	d = enqueue(t, c, lockRequest(iphone.UDID))
	if d.Outcome != server.Queued || d.PIN != "" {
		t.Fatalf("iPhone: %+v, want queued without a PIN", d)
	}
}

// TestRequestShape checks the wire: the device ID in the path under a
// prefix, Bearer token, Kandji's JSON keys.
func TestRequestShape(t *testing.T) {
	var (
		mu   sync.Mutex
		got  *http.Request
		body []byte
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/prefix/api/v1/devices":
			fmt.Fprint(w, `[{"device_id":"dev-1","serial_number":"S1","platform":"Mac"}]`)
		case r.Method == http.MethodGet && r.URL.Path == "/prefix/api/v1/devices/dev-1/details":
			fmt.Fprint(w, `{"general":{"platform":"Mac","os_version":"14.5"},"hardware_overview":{"model_identifier":"Mac15,3","udid":"UDID-1"}}`)
		case r.Method == http.MethodGet && r.URL.Path == "/prefix/api/v1/devices/dev-1/commands":
			fmt.Fprint(w, `{"commands":{"count":0,"next":null,"previous":null,"results":[]}}`)
		case r.Method == http.MethodPost:
			mu.Lock()
			got = r
			body, _ = io.ReadAll(r.Body)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"PIN":"496406"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	c, _ := client(t, ts.URL+"/prefix")
	d := enqueue(t, c, lockRequest("UDID-1"))
	mu.Lock()
	defer mu.Unlock()
	switch {
	case got == nil:
		t.Fatal("no lock request")
	case got.URL.Path != "/prefix/api/v1/devices/dev-1/action/lock":
		t.Fatalf("path %s", got.URL.Path)
	case got.Header.Get("Authorization") != "Bearer "+token || got.Header.Get("Content-Type") != "application/json":
		t.Fatalf("headers %v", got.Header)
	case string(body) != `{"Message":"Return to IT","PhoneNumber":"408-555-5555"}`:
		t.Fatalf("body %s", body)
	case d.Outcome != server.Queued || d.PIN != "496406":
		t.Fatalf("result %+v", d)
	}
}

func TestUnknownIDFailsBeforeSending(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	d := enqueue(t, c, lockRequest("11111111-2222-3333-4444-555555555555"))
	if d.Outcome != server.Failed || !strings.Contains(d.Error, "Kandji knows no device") || s.Requests("lock") != 0 {
		t.Fatalf("result %+v, %d lock requests: want failed, none sent", d, s.Requests("lock"))
	}
}

func TestKandjiDeviceIDIsATargetToo(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	id := s.DeviceID(mac.UDID)
	d := enqueue(t, c, lockRequest(strings.ToUpper(id)))
	if d.Outcome != server.Queued || len(s.Locks(mac.UDID)) != 1 {
		t.Fatalf("result %+v for device ID %s", d, id)
	}
}

// TestUDIDFoundAcrossPages: the list is read page by page, and details
// only until the UDIDs asked for are found.
func TestUDIDFoundAcrossPages(t *testing.T) {
	var devices []kandjitest.Device
	for i := range 650 {
		devices = append(devices, kandjitest.Device{UDID: fmt.Sprintf("UDID-%04d", i), Serial: fmt.Sprintf("SER%04d", i),
			Platform: "iPhone", OSVersion: "17.5", Model: "iPhone11,8"})
	}
	s := start(t, devices...)
	c, _ := client(t, s.URL)
	c.Workers = 1
	facts, err := c.Devices(context.Background(), []string{"UDID-0400", "NOPE"})
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 1 || facts["UDID-0400"].Model != "iPhone11,8" {
		t.Fatalf("facts %v", facts)
	}
	if n := s.Requests("list"); n != 3 {
		t.Fatalf("%d list requests, want 3 pages of 300", n)
	}
	// NOPE made it read every device's details once; a second lookup reads none.
	before := s.Requests("details")
	if before != 650 {
		t.Fatalf("%d details requests, want one per device", before)
	}
	if _, err := c.Devices(context.Background(), []string{"UDID-0400", "UDID-0001"}); err != nil || s.Requests("details") != before {
		t.Fatalf("cached lookups made %d more requests (%v)", s.Requests("details")-before, err)
	}
}

func TestFactsFromDetails(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	facts, err := c.Devices(context.Background(), []string{m1.UDID, iphone.UDID, offline.UDID, "NOT-IN-KANDJI"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		m1.UDID:      "macos MacBookAir10,1 11.4",
		iphone.UDID:  "ios iPhone11,8 17.5.1",
		offline.UDID: "ipados iPad14,1 17.2",
	}
	if len(facts) != len(want) {
		t.Fatalf("facts %v", facts)
	}
	for id, w := range want {
		d := facts[id]
		if got := fmt.Sprintf("%s %s %s", d.Platform, d.Model, d.OSVersion); got != w {
			t.Errorf("%s: %s, want %s", id, got, w)
		}
	}
	if a := apple.Assess(facts[m1.UDID], apple.DeviceLock{}); a.Risk != apple.RiskDeactivation {
		t.Fatalf("the M1 on 11.4 assessed %v", a)
	}
}

func TestSerialsMatchWhole(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	// C02XK1ABCD1 is a prefix of the Mac's serial: Kandji's filter finds both.
	got, err := c.Serials(context.Background(), []string{"C02XK1ABCD1", "FVHHFKF7Q6L4", "C02XK1", "NOSUCH"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["C02XK1ABCD1"] != iphone.UDID || got["FVHHFKF7Q6L4"] != m1.UDID {
		t.Fatalf("serials %v", got)
	}
}

func TestCommandAlreadyRunningOnAFirstAttemptFails(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	enqueue(t, c, lockRequest(offline.UDID))
	d := enqueue(t, c, lockRequest(offline.UDID))
	if d.Outcome != server.Failed || !strings.Contains(d.Error, "Command already running") || len(s.Locks(offline.UDID)) != 1 {
		t.Fatalf("second lock: %+v, %d locks", d, len(s.Locks(offline.UDID)))
	}
}

func TestLostReplyIsNotResent(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	s.DropReplies(1)
	d := enqueue(t, c, lockRequest(mac.UDID))
	locks := s.Locks(mac.UDID)
	switch {
	case len(locks) != 1 || s.Requests("lock") != 1:
		t.Fatalf("%d locks, %d lock requests: want one of each", len(locks), s.Requests("lock"))
	case d.Outcome != server.Queued || !strings.Contains(d.Error, "not sent again"):
		t.Fatalf("result %+v", d)
	case d.PIN != locks[0].PIN || d.Reference != locks[0].UUID:
		t.Fatalf("PIN %q ref %q, want Kandji's %q %q (read back)", d.PIN, d.Reference, locks[0].PIN, locks[0].UUID)
	}
}

func TestLostReplyUnverifiableIsUnknown(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	s.DropReplies(1)
	s.Deny("commands")
	_, err := c.Enqueue(context.Background(), lockRequest(mac.UDID))
	if !server.MayBeQueued(err) || len(s.Locks(mac.UDID)) != 1 || s.Requests("lock") != 1 {
		t.Fatalf("err %v, %d locks: want may-be-queued, not resent", err, len(s.Locks(mac.UDID)))
	}
}

func TestResumedRunLooksBeforeSending(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	first := lockRequest(offline.UDID)
	enqueue(t, c, first)
	// A later run resumes the command: Kandji's pending lock is the first's.
	c2, _ := client(t, s.URL)
	resumed := first
	resumed.MayHaveLanded = true
	d := enqueue(t, c2, resumed)
	if d.Outcome != server.Queued || s.Requests("lock") != 1 || len(s.Locks(offline.UDID)) != 1 {
		t.Fatalf("resumed: %+v, %d lock requests", d, s.Requests("lock"))
	}
	// Nothing in Kandji's list: the earlier attempt never landed, so it goes.
	other := lockRequest(iphone.UDID)
	other.MayHaveLanded = true
	if d := enqueue(t, c2, other); d.Outcome != server.Queued || len(s.Locks(iphone.UDID)) != 1 {
		t.Fatalf("resumed without a trace: %+v", d)
	}
	// The list unreadable: not sent.
	s.Deny("commands")
	third := lockRequest(mac.UDID)
	third.MayHaveLanded = true
	if _, err := c2.Enqueue(context.Background(), third); !server.MayBeQueued(err) || len(s.Locks(mac.UDID)) != 0 {
		t.Fatalf("err %v, %d locks", err, len(s.Locks(mac.UDID)))
	}
}

// TestRetryAfterHonoured: a 429 means Kandji took nothing: the lock is
// resent after Retry-After, once.
func TestRetryAfterHonoured(t *testing.T) {
	s := start(t)
	c, sl := client(t, s.URL)
	s.Throttle("lock", 2, 3)
	d := enqueue(t, c, lockRequest(mac.UDID))
	if d.Outcome != server.Queued || len(s.Locks(mac.UDID)) != 1 || s.Requests("lock") != 3 {
		t.Fatalf("result %+v, %d locks, %d requests", d, len(s.Locks(mac.UDID)), s.Requests("lock"))
	}
	if w := sl.Waits(); len(w) != 2 || w[0] != 3*time.Second || w[1] != 3*time.Second {
		t.Fatalf("waited %v, want Retry-After's 3s twice", w)
	}
}

func TestAuthFailuresNameThePermissions(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	c.Token = "wrong"
	_, err := c.Enqueue(context.Background(), lockRequest(mac.UDID))
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "Invalid token") || !strings.Contains(err.Error(), "Device list") {
		t.Fatalf("401: %v", err)
	}
	c.Token = token
	s.Deny("lock")
	_, err = c.Enqueue(context.Background(), lockRequest(mac.UDID))
	var he *server.HTTPError
	if !errors.As(err, &he) || he.Status != 403 || !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "Lock Device") {
		t.Fatalf("403: %v", err)
	}
	if len(s.Locks(mac.UDID)) != 0 {
		t.Fatal("locked with a refused token")
	}
}

func TestPlanLock(t *testing.T) {
	plan, err := kandji.PlanLock(apple.DeviceLock{Message: "hi", PhoneNumber: "1"}, true)
	if err != nil || !plan.ServerPIN {
		t.Fatalf("plan %+v, %v: want Kandji's PIN", plan, err)
	}
	if _, err := kandji.PlanLock(apple.DeviceLock{PIN: "123456"}, true); err == nil || !strings.Contains(err.Error(), "kandji kind cannot take a PIN") {
		t.Fatalf("PIN: %v", err)
	}
	if _, err := kandji.PlanLock(apple.DeviceLock{RequestRequiresNetworkTether: true}, true); err == nil {
		t.Fatal("network tether taken")
	}
	if plan, err := kandji.PlanLock(apple.DeviceLock{Message: "hi"}, false); err != nil || plan.ServerPIN {
		t.Fatalf("an iPhone: plan %+v, %v: Kandji makes no PIN for it", plan, err)
	}
}

// TestWatchDeliversUnderMdmctlsCommandUUID: each lock's status in Kandji's
// command list reaches the collector as the device's answer to mdmctl's
// command; NotNow counts once, an error keeps its chain.
func TestWatchDeliversUnderMdmctlsCommandUUID(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	first, most := kandji.FirstPoll, kandji.MaxPoll
	kandji.FirstPoll, kandji.MaxPoll = 20*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { kandji.FirstPoll, kandji.MaxPoll = first, most })
	col := webhook.NewCollector()
	reqs := map[string]server.Request{}
	for _, id := range []string{mac.UDID, notNow.UDID, failing.UDID, offline.UDID} {
		req := lockRequest(id)
		reqs[id] = req
		col.Expect(req.CommandUUID, id)
		if d := enqueue(t, c, req); d.Outcome != server.Queued {
			t.Fatalf("%s: %+v", id, d)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Watch(ctx, col, func(err error) { t.Error(err) }) }()
	waitCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = col.Wait(waitCtx) // the offline iPad never answers
	cancel()
	stop()
	<-done
	got := map[string]webhook.Result{}
	for _, r := range col.Results() {
		got[r.ID] = r
	}
	check := func(id, status string) *apple.Response {
		t.Helper()
		r := got[id]
		if r.Response == nil || r.Response.Status != status || r.Response.CommandUUID != reqs[id].CommandUUID || r.Response.UDID != id {
			t.Fatalf("%s: %+v, want %s under mdmctl's command", id, r.Response, status)
		}
		return r.Response
	}
	check(mac.UDID, apple.StatusAcknowledged)
	check(notNow.UDID, apple.StatusAcknowledged)
	if got[notNow.UDID].NotNow != 1 {
		t.Fatalf("NotNow counted %d times", got[notNow.UDID].NotNow)
	}
	if r := check(failing.UDID, apple.StatusError); len(r.ErrorChain) != 1 || r.ErrorChain[0].ErrorCode != 12066 {
		t.Fatalf("error chain %+v", r.ErrorChain)
	}
	if got[offline.UDID].Response != nil {
		t.Fatalf("the offline iPad answered %+v", got[offline.UDID].Response)
	}
}

// TestStatusAsksAboutTheReferredLock: in a later session, the lock the
// Result's Reference names is read, not one sent from Kandji's console
// since (the device's newest, still pending).
func TestStatusAsksAboutTheReferredLock(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	first, most := kandji.FirstPoll, kandji.MaxPoll
	kandji.FirstPoll, kandji.MaxPoll = 20*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { kandji.FirstPoll, kandji.MaxPoll = first, most })
	req := lockRequest(mac.UDID)
	d := enqueue(t, c, req)
	if d.Reference == "" {
		t.Fatalf("no reference: %+v", d)
	}
	for deadline := time.Now().Add(3 * time.Second); s.Locks(mac.UDID)[0].Status != kandji.StatusCompleted; {
		if time.Now().After(deadline) {
			t.Fatalf("the lock never completed: %+v", s.Locks(mac.UDID))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.ConsoleLock(mac.UDID) == "" {
		t.Fatal("no console lock")
	}
	later, _ := client(t, s.URL)
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, mac.UDID)
	col.Refer(req.CommandUUID, mac.UDID, d.Reference)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); later.Watch(ctx, col, func(err error) { t.Error(err) }) }()
	waitCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = col.Wait(waitCtx)
	cancel()
	stop()
	<-done
	r := col.Results()[0]
	if !r.Answered() || r.Response.Status != apple.StatusAcknowledged || r.Response.CommandUUID != req.CommandUUID {
		t.Fatalf("%+v, want the referred lock's Acknowledged", r)
	}
}

func TestPacerSpacesRequests(t *testing.T) {
	p := &kandji.Pacer{Burst: 2, Every: 50 * time.Millisecond}
	start := time.Now()
	for range 4 {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Two at once, then one per 50ms.
	if el := time.Since(start); el < 90*time.Millisecond || el > 2*time.Second {
		t.Fatalf("4 requests took %s, want about 100ms", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); err == nil {
		t.Fatal("an empty bucket did not give way to a cancelled context")
	}
	if kandji.PaceBurst+int(time.Hour/kandji.PaceEvery) > kandji.HourlyBudget {
		t.Fatal("the pacing can exceed Kandji's hourly limit")
	}
}

// TestErrorBodies: Kandji's error words, whatever the shape.
func TestErrorBodies(t *testing.T) {
	for _, body := range []string{`"Command already running"`, `["Command already running"]`, `{"detail":"Command already running"}`, `Command already running`} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet && r.URL.Path == "/api/v1/devices":
				_ = json.NewEncoder(w).Encode([]map[string]string{{"device_id": "dev-1"}})
			case r.Method == http.MethodGet:
				fmt.Fprint(w, `{"general":{"platform":"Mac"},"hardware_overview":{"udid":"U1"}}`)
			default:
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, body)
			}
		}))
		c, _ := client(t, ts.URL)
		d := enqueue(t, c, lockRequest("U1"))
		ts.Close()
		if d.Outcome != server.Failed || !strings.Contains(d.Error, "\u201cCommand already running\u201d") {
			t.Errorf("body %s: %+v", body, d)
		}
	}
}

// TestLongCommandList: a device with more commands than a page holds; the
// lock from a lost reply is still found (first and last page), not resent.
func TestLongCommandList(t *testing.T) {
	s := start(t)
	s.AddHistory(mac.UDID, 700)
	c, _ := client(t, s.URL)
	s.DropReplies(1)
	d := enqueue(t, c, lockRequest(mac.UDID))
	if d.Outcome != server.Queued || len(s.Locks(mac.UDID)) != 1 || d.Reference != s.Locks(mac.UDID)[0].UUID {
		t.Fatalf("result %+v, %d locks", d, len(s.Locks(mac.UDID)))
	}
	if n := s.Requests("commands"); n != 2 {
		t.Fatalf("%d command-list requests, want the first and the last page", n)
	}
}

// TestOpenWarnsOfTheConsoleHost: the server URL is the API host, not the
// web console's.
func TestOpenWarnsOfTheConsoleHost(t *testing.T) {
	d, ok := server.Lookup(kandji.Kind)
	if !ok || !d.Inventory || !d.SerialNumbers || !d.NoInformation || !d.RecognizesResend || d.NoStatus || d.Limits.MaxIDs != 1 || !d.NeedsAPIKey {
		t.Fatalf("driver %+v", d)
	}
	for host, warn := range map[string]bool{"acme.kandji.io": true, "acme.api.kandji.io": false, "acme.api.eu.kandji.io": false} {
		var warned []string
		u, _ := url.Parse("https://" + host)
		sess, err := d.Open(context.Background(), server.Config{BaseURL: u, APIKey: token, HTTP: &http.Client{},
			Warn: func(s string) { warned = append(warned, s) }})
		if err != nil {
			t.Fatal(err)
		}
		sess.Close()
		if (len(warned) > 0) != warn || (warn && !strings.Contains(warned[0], "TENANT.api.kandji.io")) {
			t.Errorf("%s: warnings %q", host, warned)
		}
	}
}

// TestAlreadyRunningOnARetryMeansTheFirstLanded: the reply was lost and
// the command list did not show the lock yet, so the lock was sent again;
// Kandji's "Command already running" then says the first one landed:
// queued, with its PIN read back, and still one lock.
func TestAlreadyRunningOnARetryMeansTheFirstLanded(t *testing.T) {
	s := start(t)
	c, _ := client(t, s.URL)
	s.DropReplies(1)
	s.HideLocks(1)
	d := enqueue(t, c, lockRequest(mac.UDID))
	locks := s.Locks(mac.UDID)
	switch {
	case len(locks) != 1 || s.Requests("lock") != 2:
		t.Fatalf("%d locks after %d lock requests: want the one", len(locks), s.Requests("lock"))
	case d.Outcome != server.Queued || !strings.Contains(d.Error, "Command already running"):
		t.Fatalf("result %+v", d)
	case d.PIN != locks[0].PIN || d.Reference != locks[0].UUID:
		t.Fatalf("PIN %q ref %q, want the first lock's", d.PIN, d.Reference)
	}
}

// TestServerURLWithTheAPIPrefix: a server URL copied with /api/v1 still
// reaches the API; one that is not Kandji's API says so.
func TestServerURLWithTheAPIPrefix(t *testing.T) {
	s := start(t)
	d, _ := server.Lookup(kandji.Kind)
	for _, suffix := range []string{"/api/v1", "/api/v1/", "/api"} {
		u, _ := url.Parse(s.URL + suffix)
		sess, err := d.Open(context.Background(), server.Config{BaseURL: u, APIKey: token, HTTP: &http.Client{}, Warn: func(string) {}})
		if err != nil {
			t.Fatal(err)
		}
		facts, _ := sess.Facts(context.Background(), []string{mac.UDID})
		sess.Close()
		if facts[mac.UDID].Model != mac.Model {
			t.Errorf("%s: facts %v", suffix, facts)
		}
	}
	c, _ := client(t, s.URL+"/elsewhere")
	if _, err := c.Enqueue(context.Background(), lockRequest(mac.UDID)); err == nil || !strings.Contains(err.Error(), "not Kandji's API") {
		t.Fatalf("wrong URL: %v", err)
	}
}
