package simdevice

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/micromdm/nanomdm/cryptoutil"
	"howett.net/plist"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// wireRequest is one device request as a server sees it.
type wireRequest struct {
	Method, Path, ContentType, UserAgent string
	Body                                 []byte
	Signer                               *x509.Certificate
	Msg                                  map[string]any
}

// fakeMDM checks signatures like NanoMDM, records every request, and
// hands out queued commands one per command-channel request.
type fakeMDM struct {
	t        *testing.T
	mu       sync.Mutex
	reqs     []wireRequest
	commands [][]byte
	status   int           // non-zero: answer every request with it
	polls    chan struct{} // one send per command-channel request, when set
}

func (f *fakeMDM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	signer, err := cryptoutil.VerifyMdmSignature(r.Header.Get("Mdm-Signature"), body)
	if err != nil {
		f.t.Errorf("%s %s: Mdm-Signature does not verify: %v", r.Method, r.URL.Path, err)
	}
	var msg map[string]any
	if _, err := plist.Unmarshal(body, &msg); err != nil {
		f.t.Errorf("body is not a plist: %v\n%s", err, body)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, wireRequest{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), body, signer, msg})
	status := f.status
	var next []byte
	isCommand := r.Header.Get("Content-Type") == ContentTypeCommand
	if isCommand && len(f.commands) > 0 {
		next, f.commands = f.commands[0], f.commands[1:]
	}
	f.mu.Unlock()
	if status != 0 {
		http.Error(w, "refused", status)
		return
	}
	_, _ = w.Write(next)
	if isCommand && f.polls != nil {
		f.polls <- struct{}{}
	}
}

func (f *fakeMDM) queue(cmds ...[]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commands = append(f.commands, cmds...)
}

func (f *fakeMDM) requests() []wireRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wireRequest(nil), f.reqs...)
}

func newFake(t *testing.T) (*fakeMDM, *httptest.Server) {
	f := &fakeMDM{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// countingTransport proves the injected RoundTripper carries the requests.
type countingTransport struct {
	mu sync.Mutex
	n  int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func TestEnrollWire(t *testing.T) {
	fake, srv := newFake(t)
	rt := &countingTransport{}
	mac := Facts{UDID: "5EC0DE15-0003-4B05-8E40-000000000015", Name: "Ada's MacBook Air", Platform: apple.PlatformMacOS,
		Model: "MacBookAir10,1", OSVersion: "14.5", BuildVersion: "23F79", Serial: "C02SIM00001"}
	d, err := NewDevice(Config{Facts: mac, BaseURL: srv.URL + "/prefix/", CheckInPath: "/checkin", Transport: rt, KeyType: KeyRSA})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := fake.requests()
	if len(reqs) != 2 || rt.n != 2 {
		t.Fatalf("%d requests (%d through the transport), want Authenticate and TokenUpdate", len(reqs), rt.n)
	}
	for _, r := range reqs {
		if r.Method != http.MethodPut || r.Path != "/prefix/checkin" || r.ContentType != "application/x-apple-aspen-mdm-checkin" {
			t.Errorf("check-in went as %s %s %q", r.Method, r.Path, r.ContentType)
		}
		if r.Signer == nil || !r.Signer.Equal(d.Identity.Cert) {
			t.Error("check-in not signed by the device identity")
		}
		if !strings.HasPrefix(r.UserAgent, "MDM/1.0") {
			t.Errorf("User-Agent %q", r.UserAgent)
		}
	}
	wantAuth := map[string]any{
		"MessageType": "Authenticate", "Topic": DefaultTopic, "UDID": mac.UDID,
		"BuildVersion": "23F79", "DeviceName": "Ada's MacBook Air", "Model": "MacBookAir10,1", "ModelName": "MacBook Air",
		"OSVersion": "14.5", "ProductName": "MacBookAir10,1", "SerialNumber": "C02SIM00001",
	}
	if !reflect.DeepEqual(reqs[0].Msg, wantAuth) {
		t.Errorf("Authenticate\n %v\nwant\n %v", reqs[0].Msg, wantAuth)
	}
	wantToken := map[string]any{
		"MessageType": "TokenUpdate", "Topic": DefaultTopic, "UDID": mac.UDID,
		"Token": d.Token, "PushMagic": d.PushMagic,
	}
	if !reflect.DeepEqual(reqs[1].Msg, wantToken) {
		t.Errorf("TokenUpdate\n %v\nwant\n %v", reqs[1].Msg, wantToken)
	}
	if !bytes.Contains(reqs[1].Body, []byte("<key>Token</key>\n\t\t<data>")) || len(d.Token) != 32 {
		t.Errorf("Token must be 32 bytes of plist data:\n%s", reqs[1].Body)
	}

	// An iPhone leaves out the macOS-only keys.
	phone := Facts{UDID: "00008101-000A11223344556E", Name: "iPhone", Model: "iPhone13,2", OSVersion: "17.5.1", Serial: "F2LSIM00002"}
	p, err := NewDevice(Config{Facts: phone, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Authenticate(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := fake.requests()[2]
	wantAuth = map[string]any{"MessageType": "Authenticate", "Topic": DefaultTopic, "UDID": phone.UDID,
		"OSVersion": "17.5.1", "ProductName": "iPhone13,2", "SerialNumber": "F2LSIM00002"}
	if got.Path != "/mdm" || !reflect.DeepEqual(got.Msg, wantAuth) {
		t.Errorf("iPhone Authenticate to %s\n %v\nwant\n %v", got.Path, got.Msg, wantAuth)
	}
}

func TestModelNames(t *testing.T) {
	for model, want := range map[string]string{
		"MacBookAir10,1": "MacBook Air", "MacBookPro18,3": "MacBook Pro", "Macmini9,1": "Mac mini",
		"iMac21,1": "iMac", "iMacPro1,1": "iMac Pro", "MacPro7,1": "Mac Pro", "MacBook10,1": "MacBook",
		"Mac14,2": "Mac", "iPhone11,8": "iPhone", "iPad13,18": "iPad", "VirtualMac2,1": "Apple Virtual Machine", "": "Mac", "garbage": "Mac",
	} {
		if got := modelName(model); got != want {
			t.Errorf("modelName(%q) = %q, want %q", model, got, want)
		}
	}
}

func TestCheckInSession(t *testing.T) {
	fake, srv := newFake(t)
	d, err := NewDevice(Config{Facts: Facts{UDID: "DEV-1", Platform: apple.PlatformIOS}, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := apple.DeviceLock{Message: "Return to IT", PhoneNumber: "408-555-5555"}.Payload("C-1")
	if err != nil {
		t.Fatal(err)
	}
	info := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict>` +
		`<key>RequestType</key><string>DeviceInformation</string></dict><key>CommandUUID</key><string>C-2</string></dict></plist>`)
	badPIN := []byte(`<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string>` +
		`<key>PIN</key><integer>123456</integer></dict><key>CommandUUID</key><string>C-3</string></dict></plist>`)
	fake.queue(lock, info, badPIN)

	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := fake.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want Idle and three results", len(reqs))
	}
	for _, r := range reqs {
		if r.Method != http.MethodPut || r.Path != "/mdm" || r.ContentType != "application/x-apple-aspen-mdm; charset=UTF-8" {
			t.Errorf("poll went as %s %s %q", r.Method, r.Path, r.ContentType)
		}
	}
	want := []map[string]any{
		{"Status": "Idle", "UDID": "DEV-1"},
		{"Status": "Acknowledged", "UDID": "DEV-1", "CommandUUID": "C-1", "MessageResult": "Success"},
	}
	for i, w := range want {
		if !reflect.DeepEqual(reqs[i].Msg, w) {
			t.Errorf("report %d\n %v\nwant\n %v", i, reqs[i].Msg, w)
		}
	}
	for i, uuid := range []string{"C-2", "C-3"} {
		r, err := apple.DecodeResponse(reqs[2+i].Body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != apple.StatusCommandFormatError || r.CommandUUID != uuid || r.UDID != "DEV-1" || len(r.ErrorChain) != 1 {
			t.Errorf("answer to %s: %+v, want CommandFormatError with an ErrorChain", uuid, r)
		}
	}

	got := d.Received()
	if len(got) != 3 {
		t.Fatalf("recorded %d commands, want 3", len(got))
	}
	for i, raw := range [][]byte{lock, info, badPIN} {
		if !bytes.Equal(got[i].Raw, raw) || got[i].Delivery != 1 {
			t.Errorf("delivery %d recorded as %q (delivery %d)", i, got[i].Raw, got[i].Delivery)
		}
	}
	if got[0].Command.Message != "Return to IT" || got[0].Command.PhoneNumber != "408-555-5555" || got[0].ParseError != nil {
		t.Errorf("parsed %+v (%v)", got[0].Command, got[0].ParseError)
	}
	if got[2].ParseError == nil || got[2].Answer.CommandUUID != "C-3" {
		t.Errorf("a PIN of the wrong type parsed: %+v", got[2])
	}
}

func TestRunWakeAndWaitFor(t *testing.T) {
	fake, srv := newFake(t)
	fake.polls = make(chan struct{}, 16)
	d, err := NewDevice(Config{Facts: Facts{UDID: "RUN-1"}, BaseURL: srv.URL, Behavior: NotNowOnce})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx, 0) }()

	waitPoll := func(what string) {
		t.Helper()
		select {
		case <-fake.polls:
		case <-ctx.Done():
			t.Fatalf("no poll: %s", what)
		}
	}
	waitPoll("Run checks in at once")
	lock, _ := apple.DeviceLock{}.Payload("WAKE-1")
	fake.queue(lock)
	d.Wake()
	got, err := d.WaitFor(ctx, func(r []Received) bool { return len(r) == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Answer.Status != apple.StatusNotNow || got[0].Command.CommandUUID != "WAKE-1" {
		t.Fatalf("first delivery answered %+v", got[0].Answer)
	}
	fake.queue(lock) // the server hands a NotNow command over again
	d.Wake()
	got, err = d.WaitFor(ctx, func(r []Received) bool { return len(r) == 2 })
	if err != nil {
		t.Fatal(err)
	}
	if got[1].Answer.Status != apple.StatusAcknowledged || got[1].Delivery != 2 {
		t.Fatalf("second delivery answered %+v (delivery %d)", got[1].Answer, got[1].Delivery)
	}
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not stop with its context")
	}

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := d.WaitFor(short, func(r []Received) bool { return len(r) == 3 }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor past its deadline returned %v", err)
	}
}

func TestRunTicks(t *testing.T) {
	fake, srv := newFake(t)
	fake.polls = make(chan struct{}, 16)
	d, err := NewDevice(Config{Facts: Facts{UDID: "TICK-1"}, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = d.Run(runCtx, 5*time.Millisecond) }()
	for i := range 3 {
		select {
		case <-fake.polls:
		case <-ctx.Done():
			t.Fatalf("only %d polls", i)
		}
	}
}

func TestOfflineNeverCallsTheServer(t *testing.T) {
	fake, srv := newFake(t)
	d, err := NewDevice(Config{Facts: Facts{UDID: "OFF-1"}, BaseURL: srv.URL, Behavior: Offline})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx, time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if n := len(fake.requests()); n != 0 {
		t.Fatalf("an offline device made %d requests", n)
	}
}

func TestServerRefusal(t *testing.T) {
	fake, srv := newFake(t)
	fake.status = http.StatusBadRequest
	d, err := NewDevice(Config{Facts: Facts{UDID: "REF-1"}, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var se *StatusError
	if err := d.Enroll(context.Background()); !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("Enroll error %v, want a StatusError 400", err)
	}
	if err := d.CheckIn(context.Background()); !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
		t.Fatalf("CheckIn error %v, want a StatusError 400", err)
	}
	var got []error
	ctx, cancel := context.WithCancel(context.Background())
	d.OnError = func(err error) { got = append(got, err); cancel() }
	_ = d.Run(ctx, 0)
	if len(got) != 1 {
		t.Fatalf("OnError heard %d errors, want 1", len(got))
	}
}

func TestSessionsDoNotOverlap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	d, err := NewDevice(Config{Facts: Facts{UDID: "ONE-1"}, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- d.CheckIn(context.Background()) }()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := d.CheckIn(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second session ran beside the first: %v", err)
	}
	release <- struct{}{}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

func TestNewDeviceValidates(t *testing.T) {
	if _, err := NewDevice(Config{BaseURL: "http://x"}); err == nil {
		t.Error("no UDID accepted")
	}
	if _, err := NewDevice(Config{Facts: Facts{UDID: "X"}}); err == nil {
		t.Error("no BaseURL accepted")
	}
	id, _ := SelfSigned("given", KeyECDSA)
	d, err := NewDevice(Config{Facts: Facts{UDID: "X"}, BaseURL: "http://h/base/", Path: "srv", Identity: &id, Topic: "com.apple.mgmt.External.T"})
	if err != nil {
		t.Fatal(err)
	}
	if d.ServerURL != "http://h/base/srv" || d.CheckInURL != "http://h/base/srv" || d.Identity.Cert != id.Cert || d.Topic != "com.apple.mgmt.External.T" {
		t.Errorf("device %s %s %s", d.ServerURL, d.CheckInURL, d.Topic)
	}
	a, _ := NewDevice(Config{Facts: Facts{UDID: "SAME"}, BaseURL: "http://h"})
	b, _ := NewDevice(Config{Facts: Facts{UDID: "SAME"}, BaseURL: "http://h"})
	if !bytes.Equal(a.Token, b.Token) || a.PushMagic != b.PushMagic || a.Identity.Cert.Equal(b.Identity.Cert) {
		t.Error("token and push magic should follow the UDID, identities should not")
	}
}

func TestFacts(t *testing.T) {
	f := Facts{Model: "Mac14,2", OSVersion: "11.4"}
	if f.EffectivePlatform() != apple.PlatformMacOS {
		t.Errorf("platform from model: %q", f.EffectivePlatform())
	}
}
