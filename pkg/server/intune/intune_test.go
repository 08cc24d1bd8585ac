package intune_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/intune"
	"github.com/mdmctl/mdmctl/pkg/server/intune/intunetest"
	"github.com/mdmctl/mdmctl/pkg/server/oauth"
	"github.com/mdmctl/mdmctl/pkg/server/servertest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

const (
	tenant   = "contoso.onmicrosoft.com"
	clientID = "11111111-2222-4333-8444-555555555555"
	secret   = "intune-unit-secret"
)

var (
	m1 = intunetest.Device{UDID: "2E8A1C3F-0B11-4D04-9A10-000000001104", Serial: "SBX0000004", Name: "Air",
		OperatingSystem: "macOS", OSVersion: "11.4", Model: "MacBookAir10,1", Behavior: simdevice.Acknowledge}
	mini = intunetest.Device{UDID: "C0FFEE14-0003-4A61-9F30-000000014601", Serial: "SBX0000006", Name: "Mini",
		OperatingSystem: "macOS", OSVersion: "14.6.1", Model: "Mac14,3", Behavior: simdevice.Acknowledge}
	intel = intunetest.Device{UDID: "7F3C2A10-1611-4E04-8B20-000000001604", Serial: "SBX0000005", Name: "Pro",
		OperatingSystem: "macOS", OSVersion: "11.4", Model: "MacBook Pro", Behavior: simdevice.Acknowledge}
	phone = intunetest.Device{UDID: "00008020-000915083C80012E", Serial: "SBX0000001", Name: "Phone",
		OperatingSystem: "iOS", OSVersion: "17.5.1", Model: "iPhone XR", Behavior: simdevice.Acknowledge}
	silent = intunetest.Device{UDID: "00008110-000E22334455667E", Serial: "SBX0000009", Name: "Offline iPad",
		OperatingSystem: "iPadOS", OSVersion: "17.2", Model: "iPad14,1"}
	windows = intunetest.Device{Serial: "WIN0001", Name: "PC", OperatingSystem: "Windows", OSVersion: "10.0.22631.4460", Model: "Surface Laptop 5"}
)

func start(t *testing.T, devices ...intunetest.Device) *intunetest.Server {
	t.Helper()
	s := intunetest.Start(tenant, clientID, secret, devices...)
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, s *intunetest.Server, sec string) (*intune.Client, *servertest.Sleeps) {
	t.Helper()
	base, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	tokenURL, scope := intune.TokenEndpoint(base, tenant)
	sl := &servertest.Sleeps{}
	return &intune.Client{BaseURL: base, HTTP: hc, Concurrency: 4,
		Tokens:  oauth.New(oauth.Client{TokenURL: tokenURL, ID: clientID, Secret: sec, Scopes: []string{scope}}, hc),
		Retry:   server.Retry{Max: 3, Base: time.Millisecond, MaxDelay: 30 * time.Second, Sleep: sl.Sleep},
		PINWait: 500 * time.Millisecond, PINPoll: 20 * time.Millisecond, PollFirst: 20 * time.Millisecond, PollMax: 50 * time.Millisecond}, sl
}

func lock(ids ...string) server.Request {
	return server.Request{CommandUUID: apple.NewCommandUUID(), RequestType: apple.RequestTypeDeviceLock, IDs: ids}
}

func enq(t *testing.T, c *intune.Client, req server.Request) server.DeviceResult {
	t.Helper()
	res, err := c.Enqueue(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != 1 {
		t.Fatalf("%d results, want 1", len(res.Devices))
	}
	return res.Devices[0]
}

func countPosts(s *intunetest.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if strings.HasPrefix(r, "POST ") {
			n++
		}
	}
	return n
}

func TestLockAMacReturnsIntunesPIN(t *testing.T) {
	s := start(t, mini, phone)
	c, _ := client(t, s, secret)
	d := enq(t, c, lock(mini.UDID))
	locks := s.Locks(mini.UDID)
	if d.Outcome != server.Queued || len(locks) != 1 {
		t.Fatalf("outcome %s (%s), %d locks; want queued and one lock", d.Outcome, d.Error, len(locks))
	}
	if d.PIN == "" || d.PIN != locks[0].PIN || len(d.PIN) != 6 {
		t.Fatalf("PIN %q, Intune made %q", d.PIN, locks[0].PIN)
	}
	if d.Reference != "managedDevice "+s.ManagedID(mini.UDID) {
		t.Fatalf("reference %q", d.Reference)
	}
	// An iPhone gets no PIN, and no note about one.
	p := enq(t, c, lock(phone.UDID))
	if p.Outcome != server.Queued || p.PIN != "" || p.Error != "" {
		t.Fatalf("iPhone: %+v", p)
	}
}

func TestPINNotExposedSaysWhereItIs(t *testing.T) {
	s := start(t, mini)
	s.HidePIN(true)
	c, _ := client(t, s, secret)
	d := enq(t, c, lock(mini.UDID))
	if d.Outcome != server.Queued || d.PIN != "" || !strings.Contains(d.PINNote, "Intune admin center") {
		t.Fatalf("%+v", d)
	}
}

func TestRequestShape(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := start(t, mini)
	c, _ := client(t, s, secret)
	c.HTTP.Transport = roundTrip(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		line := r.Method + " " + r.URL.Path
		if r.URL.Path == "/"+tenant+"/oauth2/v2.0/token" {
			body, _ := r.GetBody()
			b, _ := io.ReadAll(body)
			form, _ := url.ParseQuery(string(b))
			line += " scope=" + form.Get("scope") + " grant=" + form.Get("grant_type")
		} else {
			line += " auth=" + strings.SplitN(r.Header.Get("Authorization"), " ", 2)[0]
			if r.Method == http.MethodPost {
				line += " len=" + strconv.FormatInt(r.ContentLength, 10)
			}
		}
		seen = append(seen, line)
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})
	enq(t, c, lock(s.ManagedID(mini.UDID)))
	want := []string{
		"POST /" + tenant + "/oauth2/v2.0/token scope=https://graph.microsoft.com/.default grant=client_credentials",
		"GET /v1.0/deviceManagement/managedDevices/" + s.ManagedID(mini.UDID) + " auth=Bearer",
	}
	if len(seen) < 4 || seen[0] != want[0] || seen[1] != want[1] {
		t.Fatalf("requests:\n%s", strings.Join(seen, "\n"))
	}
	post := "POST /v1.0/deviceManagement/managedDevices/" + s.ManagedID(mini.UDID) + "/remoteLock auth=Bearer len=0"
	if seen[3] != post {
		t.Fatalf("lock request %q, want %q", seen[3], post)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestTokenEndpoints(t *testing.T) {
	for _, tt := range []struct{ base, token, scope string }{
		{"https://graph.microsoft.com", "https://login.microsoftonline.com/T/oauth2/v2.0/token", "https://graph.microsoft.com/.default"},
		{"https://graph.microsoft.us", "https://login.microsoftonline.us/T/oauth2/v2.0/token", "https://graph.microsoft.us/.default"},
		{"https://dod-graph.microsoft.us", "https://login.microsoftonline.us/T/oauth2/v2.0/token", "https://dod-graph.microsoft.us/.default"},
		{"https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn/T/oauth2/v2.0/token", "https://microsoftgraph.chinacloudapi.cn/.default"},
		{"https://proxy.example:8443/graph", "https://proxy.example:8443/T/oauth2/v2.0/token", "https://graph.microsoft.com/.default"},
	} {
		u, _ := url.Parse(tt.base)
		tok, scope := intune.TokenEndpoint(u, "T")
		if tok != tt.token || scope != tt.scope {
			t.Errorf("%s: %s %s", tt.base, tok, scope)
		}
	}
	u, _ := url.Parse("https://graph.microsoft.com/v1.0/")
	if r := intune.GraphRoot(u); r.String() != "https://graph.microsoft.com" {
		t.Errorf("GraphRoot = %s", r)
	}
}

func TestPlanLockRefusesWhatGraphCannotCarry(t *testing.T) {
	for _, l := range []apple.DeviceLock{{PIN: "123456"}, {Message: "Return to IT"}, {PhoneNumber: "408-555-5555"}} {
		if _, err := intune.PlanLock(l, true); err == nil || !strings.Contains(err.Error(), "intune kind") {
			t.Errorf("%+v: %v", l, err)
		}
	}
	plan, err := intune.PlanLock(apple.DeviceLock{}, true)
	if err != nil || !plan.ServerPIN || plan.Warning == "" {
		t.Fatalf("%+v %v", plan, err)
	}
	if plan, err := intune.PlanLock(apple.DeviceLock{}, false); err != nil || plan.ServerPIN {
		t.Fatalf("an iPhone: %+v %v: Intune makes no PIN for it", plan, err)
	}
}

func TestInventory(t *testing.T) {
	s := start(t, windows, phone, intel, silent, m1, mini)
	s.SetPageSize(1) // every listing pages
	c, _ := client(t, s, secret)
	ctx := context.Background()
	got, err := c.Serials(ctx, []string{"SBX0000004", "SBX0000001", "NOPE0000", "WIN0001"})
	if err != nil {
		t.Fatal(err)
	}
	if got["SBX0000004"] != m1.UDID || got["SBX0000001"] != phone.UDID || len(got) != 3 {
		t.Fatalf("serials: %v", got)
	}
	// A device with no UDID is named by its managed device ID.
	if got["WIN0001"] != s.ManagedID("WIN0001") {
		t.Fatalf("WIN0001 -> %q", got["WIN0001"])
	}
	c2, _ := client(t, s, secret)
	facts, err := c2.Devices(ctx, []string{m1.UDID, intel.UDID, phone.UDID, silent.UDID, "FFFFFFFF-0000-0000-0000-000000000000", s.ManagedID(mini.UDID)})
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string, want apple.Device) {
		t.Helper()
		d, ok := facts[id]
		if !ok || d.Platform != want.Platform || d.Model != want.Model || d.OSVersion.String() != want.OSVersion.String() {
			t.Errorf("%s: %+v (known %t), want %+v", id, d, ok, want)
		}
	}
	check(m1.UDID, apple.Device{Platform: apple.PlatformMacOS, Model: "MacBookAir10,1", OSVersion: apple.Version{11, 4}})
	// "MacBook Pro" is a marketing name: the model stays unknown.
	check(intel.UDID, apple.Device{Platform: apple.PlatformMacOS, OSVersion: apple.Version{11, 4}})
	check(phone.UDID, apple.Device{Platform: apple.PlatformIOS, OSVersion: apple.Version{17, 5, 1}})
	check(silent.UDID, apple.Device{Platform: apple.PlatformIPadOS, Model: "iPad14,1", OSVersion: apple.Version{17, 2}})
	check(s.ManagedID(mini.UDID), apple.Device{Platform: apple.PlatformMacOS, Model: "Mac14,3", OSVersion: apple.Version{14, 6, 1}})
	if _, ok := facts["FFFFFFFF-0000-0000-0000-000000000000"]; ok || len(facts) != 5 {
		t.Fatalf("facts: %v", facts)
	}
	// The guard refuses the M1 on 11.4 from these facts alone.
	if a := apple.Assess(facts[m1.UDID], apple.DeviceLock{}); a.Risk != apple.RiskDeactivation {
		t.Fatalf("M1 on 11.4: %+v", a)
	}
}

func TestUnknownDeviceFailsBeforeSending(t *testing.T) {
	s := start(t, mini)
	c, _ := client(t, s, secret)
	d := enq(t, c, lock("00000000-AAAA-BBBB-CCCC-000000000000"))
	if d.Outcome != server.Failed || !strings.Contains(d.Error, "no managed device") || countPosts(s) != 0 {
		t.Fatalf("%+v; requests %v", d, s.Requests())
	}
}

func TestLostReplyIsNotResent(t *testing.T) {
	s := start(t, mini)
	s.DropReplies(1)
	c, _ := client(t, s, secret)
	d := enq(t, c, lock(mini.UDID))
	locks := s.Locks(mini.UDID)
	if d.Outcome != server.Queued || len(locks) != 1 || !strings.Contains(d.Error, "not resent") {
		t.Fatalf("%+v; %d locks", d, len(locks))
	}
	if d.PIN != locks[0].PIN {
		t.Fatalf("PIN %q, want %q", d.PIN, locks[0].PIN)
	}
}

func TestThrottlingHonoursRetryAfter(t *testing.T) {
	s := start(t, phone)
	c, sl := client(t, s, secret)
	s.Throttle(2)
	d := enq(t, c, lock(phone.UDID))
	if d.Outcome != server.Queued || len(s.Locks(phone.UDID)) != 1 {
		t.Fatalf("%+v", d)
	}
	if len(sl.Waits()) != 2 || sl.Waits()[0] != time.Second || sl.Waits()[1] != time.Second {
		t.Fatalf("waits %v, want Retry-After's 1s twice", sl.Waits())
	}
}

func TestAuthFailures(t *testing.T) {
	s := start(t, mini)
	c, _ := client(t, s, "wrong-secret")
	_, err := c.Enqueue(context.Background(), lock(mini.UDID))
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "AADSTS7000215") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("wrong secret: %v", err)
	}
	s.SetPermissions(true, false)
	c, _ = client(t, s, secret)
	_, err = c.Enqueue(context.Background(), lock(mini.UDID))
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), intune.PermissionLock) || len(s.Locks(mini.UDID)) != 0 {
		t.Fatalf("no PrivilegedOperations: %v", err)
	}
	// A token Graph stops taking is fetched again, once.
	s.SetPermissions(true, true)
	s.RevokeTokens()
	d := enq(t, c, lock(mini.UDID))
	if d.Outcome != server.Queued || s.Tokens() != 2 {
		t.Fatalf("%+v, %d tokens", d, s.Tokens())
	}
}

func TestResumedCommandIsNotSentTwice(t *testing.T) {
	s := start(t, silent, mini)
	c, _ := client(t, s, secret)
	req := lock(silent.UDID)
	enq(t, c, req)
	// The offline iPad's lock stays pending: a resumed run finds it.
	req.MayHaveLanded = true
	c2, _ := client(t, s, secret)
	d := enq(t, c2, req)
	if d.Outcome != server.Queued || len(s.Locks(silent.UDID)) != 1 || !strings.Contains(d.Error, "not resent") {
		t.Fatalf("%+v; %d locks", d, len(s.Locks(silent.UDID)))
	}
	// The Mac's lock is done: it may have been this command's, or not.
	mreq := lock(mini.UDID)
	enq(t, c, mreq)
	waitState(t, c, mini.UDID, mreq)
	mreq.MayHaveLanded = true
	d = enq(t, c2, mreq)
	if d.Outcome != server.Unknown || len(s.Locks(mini.UDID)) != 1 {
		t.Fatalf("%+v; %d locks", d, len(s.Locks(mini.UDID)))
	}
}

func TestSecondLockOnAPendingMacIsRefused(t *testing.T) {
	offlineMac := mini
	offlineMac.Behavior = simdevice.Offline
	s := start(t, offlineMac)
	c, _ := client(t, s, secret)
	enq(t, c, lock(mini.UDID))
	d := enq(t, c, lock(mini.UDID))
	if d.Outcome != server.Failed || !strings.Contains(d.Error, "second PIN") || len(s.Locks(mini.UDID)) != 1 {
		t.Fatalf("%+v", d)
	}
}

// waitState polls until the device answers req, and returns the answer.
func waitState(t *testing.T, c *intune.Client, id string, req server.Request) apple.Response {
	t.Helper()
	col := webhook.NewCollector()
	col.Expect(req.CommandUUID, id)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go c.Watch(ctx, col, func(err error) { t.Error(err) })
	if err := col.Wait(ctx); err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return *col.Results()[0].Response
}

func TestWaitMapsActionStates(t *testing.T) {
	broken := mini
	broken.UDID, broken.Serial = "BAD00000-0000-4000-8000-000000000001", "SBXBAD"
	broken.Behavior = simdevice.BehaviorFunc(func(cmd apple.ParsedCommand, _ int) apple.Response {
		return apple.Response{Status: apple.StatusError, CommandUUID: cmd.CommandUUID}
	})
	busy := mini
	busy.Behavior = simdevice.NotNowOnce
	s := start(t, busy, broken)
	c, _ := client(t, s, secret)
	req := lock(mini.UDID)
	enq(t, c, req)
	if r := waitState(t, c, mini.UDID, req); r.Status != apple.StatusAcknowledged || r.CommandUUID != req.CommandUUID || r.UDID != mini.UDID {
		t.Fatalf("busy Mac: %+v", r)
	}
	req = lock(broken.UDID)
	enq(t, c, req)
	r := waitState(t, c, broken.UDID, req)
	if r.Status != apple.StatusError || len(r.ErrorChain) != 1 || !strings.Contains(r.ErrorChain[0].LocalizedDescription, "failed") {
		t.Fatalf("broken Mac: %+v", r)
	}
}

// TestNextLinkBehindAProxy: Graph's @odata.nextLink names Graph's own host;
// behind a proxy it is followed through the proxy, and a link to any other
// host is refused (the token never leaves the configured server).
func TestNextLinkBehindAProxy(t *testing.T) {
	s := start(t, windows, phone, intel, m1, mini)
	s.SetPageSize(2)
	target, _ := url.Parse(s.URL)
	var rewrote atomic.Int32
	mux := http.NewServeMux()
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target)) // the token endpoint, at the same origin
	mux.Handle("/graph/", http.StripPrefix("/graph", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		r.Host = target.Host // Graph names its own host in its links
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(rec, r)
		body := rec.Body.String()
		if strings.Contains(body, target.Host) {
			rewrote.Add(1)
			body = strings.ReplaceAll(body, "http://"+target.Host, "https://graph.microsoft.com")
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = io.WriteString(w, body)
	})))
	proxy := httptest.NewServer(mux)
	defer proxy.Close()
	base, _ := url.Parse(proxy.URL + "/graph")
	c, _ := client(t, s, secret)
	c.BaseURL = base
	tokenURL, scope := intune.TokenEndpoint(base, tenant)
	c.Tokens = oauth.New(oauth.Client{TokenURL: tokenURL, ID: clientID, Secret: secret, Scopes: []string{scope}}, c.HTTP)
	got, err := c.Serials(context.Background(), []string{"SBX0000006"})
	if err != nil {
		t.Fatal(err)
	}
	facts, err := c.Devices(context.Background(), []string{m1.UDID})
	if err != nil || got["SBX0000006"] != mini.UDID || facts[m1.UDID].Model != "MacBookAir10,1" || rewrote.Load() == 0 {
		t.Fatalf("serials %v, facts %v, %v, %d links rewritten", got, facts, err, rewrote.Load())
	}
}

// TestNotAnAppleDevice: a PC Intune manages is locked without waiting for
// a PIN, and its facts say nothing to the guard.
func TestNotAnAppleDevice(t *testing.T) {
	s := start(t, windows)
	c, _ := client(t, s, secret)
	c.PINWait = 5 * time.Second
	ids, err := c.Serials(context.Background(), []string{"WIN0001"})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	d := enq(t, c, lock(ids["WIN0001"]))
	if d.Outcome != server.Queued || d.PIN != "" || d.Error != "" || time.Since(begin) > 2*time.Second {
		t.Fatalf("%+v after %s", d, time.Since(begin))
	}
	facts, _ := c.Devices(context.Background(), []string{ids["WIN0001"]})
	if f := facts[ids["WIN0001"]]; f.Platform != apple.PlatformUnknown || f.OSVersion != nil || f.Model != "" {
		t.Fatalf("facts %+v", f)
	}
}

// TestGatewayErrorAfterTheLock: a gateway answers 502 (not Graph's JSON)
// after Intune took the lock: before resending, the action results show
// the lock, so it is queued and sent once.
func TestGatewayErrorAfterTheLock(t *testing.T) {
	s := start(t, mini)
	target, _ := url.Parse(s.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/remoteLock") {
			rp.ServeHTTP(httptest.NewRecorder(), r)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>502 Bad Gateway</html>")
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer gw.Close()
	c, _ := client(t, s, secret)
	c.BaseURL, _ = url.Parse(gw.URL)
	tokenURL, scope := intune.TokenEndpoint(c.BaseURL, tenant)
	c.Tokens = oauth.New(oauth.Client{TokenURL: tokenURL, ID: clientID, Secret: secret, Scopes: []string{scope}}, c.HTTP)
	d := enq(t, c, lock(mini.UDID))
	if d.Outcome != server.Queued || len(s.Locks(mini.UDID)) != 1 || d.PIN != s.Locks(mini.UDID)[0].PIN {
		t.Fatalf("%+v; %d locks", d, len(s.Locks(mini.UDID)))
	}
}

// TestNotGraphJSON: a 200 that is not Graph's JSON is a protocol error,
// never taken for an empty inventory.
func TestNotGraphJSON(t *testing.T) {
	s := start(t, mini)
	target, _ := url.Parse(s.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1.0/") {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>sign in</html>")
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer bad.Close()
	c, _ := client(t, s, secret)
	c.BaseURL, _ = url.Parse(bad.URL)
	tokenURL, scope := intune.TokenEndpoint(c.BaseURL, tenant)
	c.Tokens = oauth.New(oauth.Client{TokenURL: tokenURL, ID: clientID, Secret: secret, Scopes: []string{scope}}, c.HTTP)
	_, err := c.Serials(context.Background(), []string{"SBX0000006"})
	var pe *server.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v, want a protocol error", err)
	}
}

// lateKeeper records the PINs --wait's watcher hands over, and whether the
// device had answered by then.
type lateKeeper struct {
	mu       sync.Mutex
	col      *webhook.Collector
	pins     []string
	answered bool
}

func (k *lateKeeper) keep(uuid, id, pin string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, r := range k.col.Results() {
		k.answered = k.answered || (r.CommandUUID == uuid && r.ID == id && r.Answered())
	}
	k.pins = append(k.pins, uuid+" "+id+" "+pin)
	return nil
}

// TestLatePINIsHandedToTheRun: a Mac's PIN Intune publishes after Enqueue
// gave up reading it goes to the run's keep, once, before the Mac's
// answer; a PIN Enqueue returned, and an iPhone, give none.
func TestLatePINIsHandedToTheRun(t *testing.T) {
	offline := intel
	offline.Behavior = simdevice.Offline
	s := start(t, mini, offline)
	s.MakePINsLate(700*time.Millisecond, "")
	c, _ := client(t, s, secret)
	col := webhook.NewCollector()
	k := &lateKeeper{col: col}
	c.KeepPINs(k.keep)
	req, idle := lock(mini.UDID), lock(intel.UDID)
	for _, r := range []server.Request{req, idle} {
		col.Expect(r.CommandUUID, r.IDs[0])
		if d := enq(t, c, r); d.PIN != "" || !strings.Contains(d.PINNote, "Intune admin center") {
			t.Fatalf("%+v: want no PIN yet, and where it is", d)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go c.Watch(ctx, col, func(err error) { t.Error(err) })
	<-ctx.Done() // the offline Mac never answers: its PIN is seen on every round
	k.mu.Lock()
	defer k.mu.Unlock()
	want := []string{req.CommandUUID + " " + mini.UDID + " " + s.Locks(mini.UDID)[0].PIN, idle.CommandUUID + " " + intel.UDID + " " + s.Locks(intel.UDID)[0].PIN}
	slices.Sort(k.pins)
	slices.Sort(want)
	if !slices.Equal(k.pins, want) || k.answered {
		t.Fatalf("kept %q (after the answer: %t), want %q, each once, before the answer", k.pins, k.answered, want)
	}
	if r := col.Results(); !r[0].Answered() || r[1].Answered() {
		t.Fatalf("answers %+v: want the Mac's, not the offline Mac's", r)
	}

	// Enqueue read the PIN itself: nothing is handed over later.
	s2 := start(t, mini, phone)
	c2, _ := client(t, s2, secret)
	col2 := webhook.NewCollector()
	k2 := &lateKeeper{col: col2}
	c2.KeepPINs(k2.keep)
	for _, id := range []string{mini.UDID, phone.UDID} {
		r := lock(id)
		col2.Expect(r.CommandUUID, id)
		enq(t, c2, r)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	go c2.Watch(ctx2, col2, func(err error) { t.Error(err) })
	if err := col2.Wait(ctx2); err != nil {
		t.Fatal(err)
	}
	if len(k2.pins) != 0 {
		t.Fatalf("kept %d PINs, want none", len(k2.pins))
	}
}
