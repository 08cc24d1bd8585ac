package simplemdm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/server/simplemdm/simplemdmtest"
)

const (
	iPhone = "00008020-000915083C80012E"
	m1Mac  = "2E8A1C3F-0B11-4D04-9A10-000000001104"
	m2Mac  = "C0FFEE14-0003-4A61-9F30-000000014601"
)

var devices = []simplemdmtest.Device{
	{UDID: iPhone, Name: "Apple example iPhone", Serial: "SBX0000001", ProductName: "iPhone11,8", OSVersion: "17.5.1"},
	{UDID: m1Mac, Name: "MacBook Air (M1)", Serial: "SBX0000004", ProductName: "MacBookAir10,1", OSVersion: "11.4", ProcessorArchitecture: "arm64"},
	{UDID: m2Mac, Name: "Mac mini (M2)", Serial: "SBX0000006", ProductName: "Mac14,3", OSVersion: "14.6.1", ProcessorArchitecture: "arm64"},
	{UDID: "GONE-0001", Name: "Returned iPad", ProductName: "iPad13,18", OSVersion: "17.4", Status: "unenrolled"},
}

func start(t *testing.T, extra ...simplemdmtest.Device) (*simplemdmtest.Server, *Client, *servertest.Sleeps, *[]string) {
	t.Helper()
	s := simplemdmtest.Start("test-key", append(append([]simplemdmtest.Device{}, devices...), extra...)...)
	t.Cleanup(s.Close)
	c, sl, warned := client(t, s.URL, s.APIKey)
	return s, c, sl, warned
}

func client(t *testing.T, rawURL, key string) (*Client, *servertest.Sleeps, *[]string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	sl := &servertest.Sleeps{}
	var warned []string
	c := &Client{BaseURL: u, APIKey: key, HTTP: withRateLimitReset(&http.Client{Timeout: 5 * time.Second}),
		Retry: server.Retry{Max: 3, Base: time.Millisecond, MaxDelay: 30 * time.Second, Sleep: sl.Sleep}, Workers: 4,
		Warn: func(s string) { warned = append(warned, s) }}
	return c, sl, &warned
}

func lockReq(id string, lock apple.DeviceLock) server.Request {
	return server.Request{CommandUUID: "CMD-1", Lock: lock, IDs: []string{id}}
}

func enqueue(t *testing.T, c *Client, req server.Request) server.DeviceResult {
	t.Helper()
	res, err := c.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if len(res.Devices) != 1 {
		t.Fatalf("got %d results, want 1: %+v", len(res.Devices), res.Devices)
	}
	return res.Devices[0]
}

func TestLockIPhoneSendsMessageAndPhone(t *testing.T) {
	s, c, _, warned := start(t)
	d := enqueue(t, c, lockReq(iPhone, apple.DeviceLock{Message: "Return to IT", PhoneNumber: "408-555-5555"}))
	if d.Outcome != server.Queued || d.ID != iPhone || !strings.HasPrefix(d.Reference, "SimpleMDM device ") {
		t.Fatalf("got %+v, want queued with SimpleMDM's device id as reference", d)
	}
	locks := s.Locks(iPhone)
	if len(locks) != 1 || locks[0].Message != "Return to IT" || locks[0].PhoneNumber != "408-555-5555" || locks[0].PINGiven {
		t.Fatalf("SimpleMDM took %+v", locks)
	}
	if len(*warned) != 0 {
		t.Errorf("warned %q", *warned)
	}
}

func TestLockMacSendsPIN(t *testing.T) {
	s, c, _, _ := start(t)
	d := enqueue(t, c, lockReq(m2Mac, apple.DeviceLock{PIN: "482913", Message: "m"}))
	if d.Outcome != server.Queued {
		t.Fatalf("got %+v", d)
	}
	if locks := s.Locks(m2Mac); len(locks) != 1 || locks[0].PIN != "482913" {
		t.Fatalf("SimpleMDM took %+v", locks)
	}
}

func TestMacWithoutPINIsNotSent(t *testing.T) {
	s, c, _, _ := start(t)
	d := enqueue(t, c, lockReq(m2Mac, apple.DeviceLock{Message: "m"}))
	if d.Outcome != server.Failed || d.Error != MissingPIN {
		t.Fatalf("got %+v, want failed: %s", d, MissingPIN)
	}
	for _, want := range []string{"MDMCTL_PIN", "--pin-file", "--pin-generate"} {
		if !strings.Contains(d.Error, want) {
			t.Errorf("%q does not name %s", d.Error, want)
		}
	}
	if n := s.AllLocks(); n != 0 {
		t.Fatalf("SimpleMDM took %d locks", n)
	}
}

func TestIPhoneLockGoesWithoutPIN(t *testing.T) {
	s, c, _, warned := start(t)
	d := enqueue(t, c, lockReq(iPhone, apple.DeviceLock{PIN: "482913"}))
	if d.Outcome != server.Queued {
		t.Fatalf("got %+v (the stand-in refuses a PIN for iOS, as SimpleMDM documents it unsupported)", d)
	}
	if locks := s.Locks(iPhone); len(locks) != 1 || locks[0].PINGiven {
		t.Fatalf("SimpleMDM took %+v", locks)
	}
	if len(*warned) != 1 || !strings.Contains((*warned)[0], "takes no PIN for iOS") {
		t.Fatalf("warned %q", *warned)
	}
}

func TestBadPINIsSimpleMDMsRefusal(t *testing.T) {
	s, c, _, _ := start(t)
	d := enqueue(t, c, lockReq(m2Mac, apple.DeviceLock{PIN: "1234"}))
	if d.Outcome != server.Failed || !strings.Contains(d.Error, "pin must be a 6-digit number") {
		t.Fatalf("got %+v", d)
	}
	if n := s.AllLocks(); n != 0 {
		t.Fatalf("SimpleMDM took %d locks", n)
	}
}

func TestUnknownAndUnenrolledAreNotSent(t *testing.T) {
	s, c, _, _ := start(t)
	for id, want := range map[string]string{
		"NOT-THERE": "no enrolled device with this UDID",
		"GONE-0001": `lists this device as "unenrolled"`,
		// A search matches names too: only the UDID field counts.
		"Apple example": "no enrolled device with this UDID",
	} {
		d := enqueue(t, c, lockReq(id, apple.DeviceLock{}))
		if d.Outcome != server.Failed || !strings.Contains(d.Error, want) || !strings.HasPrefix(d.Error, "not sent") {
			t.Errorf("%s: got %+v, want failed: %s", id, d, want)
		}
	}
	if n := s.AllLocks(); n != 0 {
		t.Fatalf("SimpleMDM took %d locks", n)
	}
}

func TestMayHaveLandedIsUnknownUnsent(t *testing.T) {
	s, c, _, _ := start(t)
	req := lockReq(iPhone, apple.DeviceLock{})
	req.MayHaveLanded = true
	d := enqueue(t, c, req)
	if d.Outcome != server.Unknown || !strings.Contains(d.Error, NotResent) {
		t.Fatalf("got %+v", d)
	}
	if s.AllLocks() != 0 || s.Searches() != 0 {
		t.Fatalf("sent something: %d locks, %d searches", s.AllLocks(), s.Searches())
	}
}

func TestLostReplyIsUnknownNeverResent(t *testing.T) {
	s, c, sl, _ := start(t)
	s.DropReplies(1)
	d := enqueue(t, c, lockReq(iPhone, apple.DeviceLock{Message: "m"}))
	if d.Outcome != server.Unknown || !strings.Contains(d.Error, "may have reached SimpleMDM") {
		t.Fatalf("got %+v", d)
	}
	if n := len(s.Locks(iPhone)); n != 1 {
		t.Fatalf("SimpleMDM took %d locks, want exactly 1", n)
	}
	if len(sl.Waits()) != 0 {
		t.Fatalf("retried after a lost reply: waits %v", sl.Waits())
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	s, c, sl, _ := start(t)
	if _, err := c.Device(context.Background(), iPhone); err != nil { // the look-up first, so the 429s hit the lock
		t.Fatal(err)
	}
	s.RateLimit(2, 7)
	d := enqueue(t, c, lockReq(iPhone, apple.DeviceLock{}))
	if d.Outcome != server.Queued {
		t.Fatalf("got %+v", d)
	}
	if len(sl.Waits()) != 2 || sl.Waits()[0] != 7*time.Second || sl.Waits()[1] != 7*time.Second {
		t.Fatalf("waited %v, want Retry-After's 7s twice", sl.Waits())
	}
	if n := len(s.Locks(iPhone)); n != 1 {
		t.Fatalf("SimpleMDM took %d locks", n)
	}
}

func TestRateLimitedThroughoutIsNotReached(t *testing.T) {
	s, c, _, _ := start(t)
	if _, err := c.Device(context.Background(), iPhone); err != nil {
		t.Fatal(err)
	}
	s.RateLimit(100, 0)
	_, err := c.Enqueue(context.Background(), lockReq(iPhone, apple.DeviceLock{}))
	if !server.NotReached(err) || !strings.Contains(err.Error(), "too many requests") {
		t.Fatalf("got %v, want an unavailable error that reached nothing", err)
	}
	if s.AllLocks() != 0 || s.RateLimited() != 4 {
		t.Fatalf("%d locks, %d 429s; want 0 and 4 (1 + 3 retries)", s.AllLocks(), s.RateLimited())
	}
}

func TestSearchesAreRetriedOn429(t *testing.T) {
	s, c, sl, _ := start(t)
	s.RateLimit(1, 2)
	got, err := c.Devices(context.Background(), []string{m1Mac})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[m1Mac]; !ok || len(sl.Waits()) != 1 || sl.Waits()[0] != 2*time.Second {
		t.Fatalf("got %v after waits %v", got, sl.Waits())
	}
}

func TestAuthFailuresNameThePermission(t *testing.T) {
	s, _, _, _ := start(t)
	for _, tc := range []struct {
		key    string
		status int
		title  string
	}{
		{"wrong-key", 401, "invalid API key"},
		{s.ReadOnlyKey, 403, "API key does not have write access to devices"},
	} {
		c, _, _ := client(t, s.URL, tc.key)
		_, err := c.Enqueue(context.Background(), lockReq(iPhone, apple.DeviceLock{}))
		var he *server.HTTPError
		if !errors.Is(err, server.ErrUnauthorized) || !errors.As(err, &he) || he.Status != tc.status ||
			!strings.Contains(he.Body, tc.title) || !strings.Contains(he.Body, "Devices permission") {
			t.Errorf("key %s: got %v", tc.key, err)
		}
		if strings.Contains(err.Error(), tc.key) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	if n := s.AllLocks(); n != 0 {
		t.Fatalf("SimpleMDM took %d locks", n)
	}
}

func TestInventoryFeedsTheGuard(t *testing.T) {
	_, c, _, _ := start(t)
	got, err := c.Devices(context.Background(), []string{m1Mac, iPhone, "NOT-THERE"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got["NOT-THERE"]; ok || len(got) != 2 {
		t.Fatalf("got %v", got)
	}
	m1 := got[m1Mac]
	if m1.Platform != apple.PlatformMacOS || m1.Model != "MacBookAir10,1" || m1.OSVersion.String() != "11.4" {
		t.Fatalf("M1 facts %+v", m1)
	}
	if a := apple.Assess(m1, apple.DeviceLock{PIN: "482913"}); a.Risk != apple.RiskDeactivation {
		t.Fatalf("the guard says %+v for the M1 on 11.4", a)
	}
	if p := got[iPhone]; p.Platform != apple.PlatformIOS || p.OSVersion.String() != "17.5.1" {
		t.Fatalf("iPhone facts %+v", p)
	}
}

func TestFactsReadRapidSecurityResponseVersions(t *testing.T) {
	var d Device
	d.Attributes.ProductName, d.Attributes.OSVersion = "Mac14,3", "13.4.1 (a)"
	if f := d.Facts(); f.OSVersion.String() != "13.4.1" || f.Platform != apple.PlatformMacOS {
		t.Fatalf("got %+v", f)
	}
	d.Attributes.ProductName, d.Attributes.ProcessorArchitecture = "", "x86_64"
	if f := d.Facts(); f.Platform != apple.PlatformMacOS || f.Model != "" {
		t.Fatalf("a device with an architecture and no model: %+v", f)
	}
}

func TestSerialsResolveToUDIDs(t *testing.T) {
	s, c, _, _ := start(t)
	got, err := c.Serials(context.Background(), []string{"SBX0000004", "sbx0000001", "NOSUCH", "SBX00000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["SBX0000004"] != m1Mac || got["sbx0000001"] != iPhone {
		t.Fatalf("got %v", got)
	}
	// The device found by serial is known by its UDID too: no second search.
	before := s.Searches()
	if d, err := c.Device(context.Background(), m1Mac); err != nil || d == nil {
		t.Fatalf("%v %v", d, err)
	}
	if s.Searches() != before {
		t.Fatalf("searched again for a device already found")
	}
}

func TestSearchFollowsPagination(t *testing.T) {
	var many []simplemdmtest.Device
	for i := range 250 {
		many = append(many, simplemdmtest.Device{UDID: fmt.Sprintf("LAB-%04d", i), Name: "Lab iPad", ProductName: "iPad13,18", OSVersion: "17.4"})
	}
	s, c, _, _ := start(t, many...)
	got, err := c.Search(context.Background(), "Lab iPad")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 || got[0].Attributes.UniqueIdentifier != "LAB-0000" || got[249].Attributes.UniqueIdentifier != "LAB-0249" {
		t.Fatalf("got %d devices", len(got))
	}
	if n := s.Searches(); n != 3 {
		t.Fatalf("%d pages asked for, want 3 of %d", n, PageSize)
	}
}

func TestTwoEnrolledRecordsAreAnError(t *testing.T) {
	s, c, _, _ := start(t, simplemdmtest.Device{UDID: iPhone, Name: "old record", ProductName: "iPhone11,8"})
	_, err := c.Enqueue(context.Background(), lockReq(iPhone, apple.DeviceLock{}))
	if err == nil || !strings.Contains(err.Error(), "2 enrolled devices") {
		t.Fatalf("got %v", err)
	}
	if s.AllLocks() != 0 {
		t.Fatal("locked one of two records")
	}
}

// A 5xx after the lock went out may follow SimpleMDM taking it: unknown,
// never resent. A 503 turned it away: resent.
func TestFiveHundredsAfterTheLock(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   server.Outcome
		posts  int
	}{
		{http.StatusBadGateway, server.Unknown, 1},
		{http.StatusInternalServerError, server.Unknown, 1},
		{http.StatusServiceUnavailable, server.Queued, 2},
	} {
		var (
			mu    sync.Mutex
			posts int
		)
		h := http.NewServeMux()
		h.HandleFunc("GET /api/v1/devices", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"data":[{"type":"device","id":7,"attributes":{"status":"enrolled","unique_identifier":%q,"product_name":"iPhone11,8"}}],"has_more":false}`, iPhone)
		})
		h.HandleFunc("POST /api/v1/devices/7/lock", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			posts++
			first := posts == 1
			mu.Unlock()
			if first {
				w.WriteHeader(tc.status)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
		srv := httptest.NewServer(h)
		c, _, _ := client(t, srv.URL, "k")
		d := enqueue(t, c, lockReq(iPhone, apple.DeviceLock{}))
		srv.Close()
		if d.Outcome != tc.want || posts != tc.posts {
			t.Errorf("HTTP %d: got %+v after %d posts, want %s after %d", tc.status, d, posts, tc.want, tc.posts)
		}
	}
}

func TestRateLimitResetBecomesRetryAfter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for v, want := range map[string]int{"1800000042": 42, "1799999990": 0, "5": 5} {
		if got, ok := resetWait(v, now); !ok || got != want {
			t.Errorf("resetWait(%s) = %d, %v; want %d", v, got, ok, want)
		}
	}
	if _, ok := resetWait("soon", now); ok {
		t.Error("read a header that is no number")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Reset", "1800000009")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	rt := &rateLimitReset{next: http.DefaultTransport, now: func() time.Time { return now }}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Retry-After"); got != "9" {
		t.Fatalf("Retry-After %q, want 9", got)
	}
}

func TestPlanLockRefusesNetworkTether(t *testing.T) {
	if _, err := planLock(apple.DeviceLock{RequestRequiresNetworkTether: true}, true); err == nil || !strings.Contains(err.Error(), Kind) {
		t.Fatalf("got %v", err)
	}
	if p, err := planLock(apple.DeviceLock{PIN: "482913", Message: "m", PhoneNumber: "1"}, true); err != nil || p.ServerPIN {
		t.Fatalf("got %+v, %v", p, err)
	}
}

func TestDriverSaysWhatItCannotDo(t *testing.T) {
	d, ok := server.Lookup(Kind)
	if !ok {
		t.Fatal("not registered")
	}
	if !d.NoStatus || !d.NoInformation || !d.Inventory || !d.SerialNumbers || d.Limits.MaxIDs != 1 || !d.NeedsAPIKey || d.RecognizesResend {
		t.Fatalf("driver %+v", d)
	}
}

func lab(n int) []simplemdmtest.Device {
	var out []simplemdmtest.Device
	for i := range n {
		out = append(out, simplemdmtest.Device{UDID: fmt.Sprintf("LAB-%04d", i), Serial: fmt.Sprintf("LABSN%04d", i), Name: "Lab iPad", ProductName: "iPad13,18", OSVersion: "17.4"})
	}
	return out
}

// Many targets in a small account: one read of the device list settles
// them all, the unknown ones too; nothing is searched for again.
func TestManyDevicesReadTheListOnce(t *testing.T) {
	s, c, _, _ := start(t, lab(40)...)
	ids := []string{m1Mac, "NOT-THERE"}
	for i := range 30 {
		ids = append(ids, fmt.Sprintf("LAB-%04d", i))
	}
	got, err := c.Devices(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 31 || got[m1Mac].Model != "MacBookAir10,1" {
		t.Fatalf("got %d devices", len(got))
	}
	if n := s.Searches(); n != 1 {
		t.Fatalf("%d list requests, want 1 page", n)
	}
	d := enqueue(t, c, lockReq("NOT-THERE", apple.DeviceLock{}))
	if d.Outcome != server.Failed || s.Searches() != 1 {
		t.Fatalf("got %+v after %d list requests", d, s.Searches())
	}
	serials, err := c.Serials(context.Background(), []string{"LABSN0001", "LABSN0002", "LABSN0003", "LABSN0004", "LABSN0005", "LABSN0006", "LABSN0007", "NOSUCH"})
	if err != nil || len(serials) != 7 || serials["LABSN0007"] != "LAB-0007" || s.Searches() != 2 {
		t.Fatalf("serials %v, %v after %d list requests", serials, err, s.Searches())
	}
}

// A few targets in a large account: the list is read no further than the
// searches it saves, then each target left is searched for.
func TestFewDevicesInALargeAccountAreSearched(t *testing.T) {
	s, c, _, _ := start(t, lab(1000)...)
	var ids []string
	for i := 990; i < 1000; i++ {
		ids = append(ids, fmt.Sprintf("LAB-%04d", i))
	}
	got, err := c.Devices(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("got %d devices", len(got))
	}
	if n := s.Searches(); n > 2*len(ids) {
		t.Fatalf("%d list requests for %d devices", n, len(ids))
	}
}
