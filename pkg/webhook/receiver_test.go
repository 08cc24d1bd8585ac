package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/nanomdm/mdm"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

type counts struct{ accepted, ignored, rejected int64 }

func countsOf(rc *Receiver) counts {
	return counts{rc.Accepted.Load(), rc.Ignored.Load(), rc.Rejected.Load()}
}

func post(t *testing.T, url string, body []byte, sig string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if sig != "" {
		req.Header.Set(SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func newTestServer(t *testing.T, key []byte) (*Receiver, *Collector, *answers, string) {
	c, a := newTestCollector()
	rc := &Receiver{Collector: c, HMACKey: key}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, c, a, srv.URL + "/webhook"
}

// NanoMDM signs with -webhook-hmac-key; an event with a bad or missing
// signature is refused with 401 and never reaches the Collector.
func TestReceiverHMAC(t *testing.T) {
	key := []byte("hook-secret")
	rc, c, got, url := newTestServer(t, key)
	c.Expect("0001_DeviceLock", exampleUDID)

	// NanoMDM's own client, signing with the wrong key: NanoMDM sees a failure.
	forged := nanoService(url, http.DefaultClient, []byte("wrong"))
	cr := commandResults(t, appleExample)
	if _, err := forged.CommandAndReportResults(deviceEnrollment(exampleUDID).request(), cr); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("forged event: NanoMDM got %v, want a 401 failure", err)
	}
	body, sig := nanoResponse(t, deviceEnrollment(exampleUDID), appleExample, key)
	if code := post(t, url, body, ""); code != http.StatusUnauthorized {
		t.Errorf("unsigned event: %d", code)
	}
	if code := post(t, url, bytes.Replace(body, []byte(`"status":"Acknowledged"`), []byte(`"status":"Error"`), 1), sig); code != http.StatusUnauthorized {
		t.Errorf("altered event: %d", code)
	}
	if got := countsOf(rc); got != (counts{0, 0, 3}) {
		t.Errorf("counts = %+v, want 3 rejected", got)
	}
	if r := c.Results(); r[0].Answered() || len(got.list()) != 0 {
		t.Fatalf("a rejected event counted: %+v", r)
	}

	// The genuine event, through NanoMDM's real client.
	genuine := nanoService(url, http.DefaultClient, key)
	if _, err := genuine.CommandAndReportResults(deviceEnrollment(exampleUDID).request(), cr); err != nil {
		t.Fatalf("genuine event: %v", err)
	}
	mustFinishNow(t, c)
	if a := got.list(); len(a) != 1 || a[0].Response.MessageResult != apple.MessageResultSuccess {
		t.Errorf("answers = %+v", a)
	}
	if got := countsOf(rc); got != (counts{1, 0, 3}) {
		t.Errorf("counts = %+v", got)
	}
}

// Without a key, a signature header is neither needed nor checked.
func TestReceiverWithoutKey(t *testing.T) {
	rc, c, _, url := newTestServer(t, nil)
	c.Expect("0001_DeviceLock", exampleUDID)
	body, _ := nanoResponse(t, deviceEnrollment(exampleUDID), appleExample, nil)
	if code := post(t, url, body, "bm90IGEgc2lnbmF0dXJl"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	mustFinishNow(t, c)
	if got := countsOf(rc); got != (counts{1, 0, 0}) {
		t.Errorf("counts = %+v", got)
	}
}

// Everything authentic gets 200, so NanoMDM logs no failure, but only
// awaited answers count.
func TestReceiverIgnoresWhatNobodyAwaits(t *testing.T) {
	key := []byte("k")
	rc, c, got, url := newTestServer(t, key)
	c.Expect("C", "D1")
	sendNano := func(e enrollment, r apple.Response) int {
		body, sig := nanoResponse(t, e, r, key)
		return post(t, url, body, sig)
	}
	checkin := nanoCheckin(t, deviceEnrollment("D1"), []byte(authenticatePlist))
	for name, code := range map[string]int{
		"Idle poll":            sendNano(deviceEnrollment("D1"), apple.Response{Status: apple.StatusIdle, UDID: "D1"}),
		"unrelated command":    sendNano(deviceEnrollment("D1"), ack("SOMEONE-ELSES", "D1")),
		"device not targeted":  sendNano(deviceEnrollment("D2"), ack("C", "D2")),
		"Authenticate checkin": post(t, url, checkin, Sign(key, checkin)),
	} {
		if code != http.StatusOK {
			t.Errorf("%s: status %d, want 200", name, code)
		}
	}
	if got := countsOf(rc); got != (counts{0, 4, 0}) {
		t.Errorf("counts = %+v, want 4 ignored", got)
	}
	// NotNow counts but does not finish; then the answer, then a repeat.
	for _, r := range []apple.Response{notNow("C", "D1"), ack("C", "D1"), ack("C", "D1")} {
		if code := sendNano(deviceEnrollment("D1"), r); code != http.StatusOK {
			t.Errorf("%s: status %d", r.Status, code)
		}
	}
	mustFinishNow(t, c)
	if got := countsOf(rc); got != (counts{2, 5, 0}) {
		t.Errorf("counts = %+v, want NotNow and the answer accepted, the repeat ignored", got)
	}
	if a := got.list(); len(a) != 1 || a[0].NotNow != 1 {
		t.Errorf("answers = %+v", a)
	}

	// A receiver without a collector still answers 200.
	bare := httptest.NewServer(&Receiver{})
	defer bare.Close()
	if code := post(t, bare.URL, checkin, ""); code != http.StatusOK {
		t.Errorf("no collector: %d", code)
	}
}

func TestReceiverRejects(t *testing.T) {
	key := []byte("k")
	rc, c, _, url := newTestServer(t, key)
	c.Expect("0001_DeviceLock", exampleUDID)
	good, _ := nanoResponse(t, deviceEnrollment(exampleUDID), appleExample, nil)

	// A valid event padded to exactly the bound is accepted; one byte more is not.
	atLimit := append(append([]byte{}, good...), bytes.Repeat([]byte(" "), MaxBody-len(good))...)
	tooBig := append(atLimit, ' ')
	if code := post(t, url, tooBig, Sign(key, tooBig)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized with Content-Length: %d, want 413", code)
	}
	// Chunked: no Content-Length, so the bound applies while reading.
	req, _ := http.NewRequest(http.MethodPost, url, io.MultiReader(bytes.NewReader(tooBig)))
	req.ContentLength = -1
	req.Header.Set(SignatureHeader, Sign(key, tooBig))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked: %d, want 413", resp.StatusCode)
	}

	notJSON := []byte("<plist/>")
	if code := post(t, url, notJSON, Sign(key, notJSON)); code != http.StatusBadRequest {
		t.Errorf("signed garbage: %d, want 400", code)
	}
	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if r := c.Results(); r[0].Answered() {
		t.Fatal("a rejected event counted")
	}
	if got := countsOf(rc); got != (counts{0, 0, 3}) {
		t.Errorf("counts = %+v, want 3 rejected", got)
	}

	if code := post(t, url, atLimit, Sign(key, atLimit)); code != http.StatusOK {
		t.Errorf("event of exactly MaxBody bytes: %d", code)
	}
	mustFinishNow(t, c)
}

// commandResults is the report NanoMDM decoded from the device's plist.
func commandResults(t testing.TB, r apple.Response) *mdm.CommandResults {
	t.Helper()
	raw, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cr, err := mdm.DecodeCommandResults(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cr
}

// 1,000 devices answer at once through NanoMDM's own webhook client, with
// NotNow first for half of them, a repeat of every answer, and Idle polls
// and answers to other commands mixed in; every device is reported exactly
// once, with its own answer and NotNow count.
func TestReceiverThousandDevicesConcurrently(t *testing.T) {
	const n = 1000
	key := []byte("fleet-secret")
	c, got := newTestCollector()
	rc := &Receiver{Collector: c, HMACKey: key}
	url, shutdown, err := Listen("127.0.0.1:0", rc)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())

	const uuidA, uuidB = "AAAAAAAA-0000-4000-8000-000000000001", "BBBBBBBB-0000-4000-8000-000000000002"
	udid := func(i int) string { return fmt.Sprintf("00008020-%016X", i) }
	uuidOf := func(i int) string { // two commands, as a fleet run splits by platform
		if i%2 == 0 {
			return uuidA
		}
		return uuidB
	}
	for i := 0; i < n; i++ {
		c.Expect(uuidOf(i), udid(i))
	}
	waited := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		waited <- c.Wait(ctx)
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	sender := nanoService(url, client, key)
	jobs := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				e := deviceEnrollment(udid(i))
				var reports []apple.Response
				if i%5 == 0 {
					reports = append(reports, apple.Response{Status: apple.StatusIdle, UDID: udid(i)})
				}
				if i%4 < 2 {
					reports = append(reports, notNow(uuidOf(i), udid(i)))
				}
				final := ack(uuidOf(i), udid(i))
				if i%10 == 0 {
					final = apple.Response{Status: apple.StatusError, CommandUUID: uuidOf(i), UDID: udid(i),
						ErrorChain: []apple.ErrorChainItem{{ErrorCode: 12081, ErrorDomain: "MCMDMErrorDomain", LocalizedDescription: "tether"}}}
				}
				reports = append(reports, final, final)
				if i%5 == 1 {
					reports = append(reports, ack("STRANGER", udid(i)))
				}
				for _, r := range reports {
					if _, err := sender.CommandAndReportResults(e.request(), commandResults(t, r)); err != nil {
						errs <- fmt.Errorf("device %d %s: %v", i, r.Status, err)
					}
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("Wait: %v; %d pending", err, len(c.Pending()))
	}

	a := got.list()
	if len(a) != n {
		t.Fatalf("%d answers, want %d", len(a), n)
	}
	seen := map[string]bool{}
	for _, x := range a {
		if seen[x.ID] {
			t.Errorf("%s answered twice", x.ID)
		}
		seen[x.ID] = true
	}
	results := c.Results()
	if len(results) != n {
		t.Fatalf("%d results, want %d", len(results), n)
	}
	for i, r := range results {
		wantNotNow, wantStatus := 0, apple.StatusAcknowledged
		if i%4 < 2 {
			wantNotNow = 1
		}
		if i%10 == 0 {
			wantStatus = apple.StatusError
		}
		if r.ID != udid(i) || r.CommandUUID != uuidOf(i) || !r.Answered() || r.Response.Status != wantStatus || r.NotNow != wantNotNow {
			t.Fatalf("result %d = %+v (%+v), want %s with %d NotNow", i, r, r.Response, wantStatus, wantNotNow)
		}
	}
	if got, want := countsOf(rc), (counts{n + n/2, n + 2*n/5, 0}); got != want {
		t.Errorf("counts = %+v, want %+v", got, want)
	}
}

func TestListen(t *testing.T) {
	rc := &Receiver{Collector: NewCollector()}
	checkin := nanoCheckin(t, deviceEnrollment("D1"), []byte(authenticatePlist))
	for _, addr := range []string{"127.0.0.1:0", ":0", "localhost:0"} {
		t.Run(addr, func(t *testing.T) {
			url, shutdown, err := Listen(addr, rc)
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`^http://127\.0\.0\.1:[1-9][0-9]*/webhook$`).MatchString(url) {
				t.Fatalf("URL %q does not name the bound port on loopback", url)
			}
			base := strings.TrimSuffix(url, "/webhook")
			for path, want := range map[string]int{"/webhook": 200, "/": 200, "": 200, "/hook": 404, "/webhook/x": 404} {
				if code := post(t, base+path, checkin, ""); code != want {
					t.Errorf("POST %q: %d, want %d", path, code, want)
				}
			}
			// The address is taken while serving.
			host := strings.TrimPrefix(base, "http://")
			if _, _, err := Listen(host, rc); err == nil {
				t.Errorf("second Listen on %s succeeded", host)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := http.Post(url, "application/json", bytes.NewReader(checkin)); err == nil {
				t.Error("still serving after shutdown")
			}
		})
	}
	if l, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		l.Close()
		url, shutdown, err := Listen("[::1]:0", rc)
		if err != nil {
			t.Fatal(err)
		}
		defer shutdown(context.Background())
		if !strings.HasPrefix(url, "http://[::1]:") {
			t.Errorf("IPv6 URL = %q", url)
		}
		if code := post(t, url, checkin, ""); code != http.StatusOK {
			t.Errorf("IPv6 POST: %d", code)
		}
	}
	if _, _, err := Listen("127.0.0.1:99999", rc); err == nil {
		t.Error("Listen accepted an invalid address")
	}
}
