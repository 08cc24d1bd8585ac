package simdevice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/internal/nanomdmtest"
	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// These tests run the real NanoMDM v0.9.0 binary.

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deliverOne queues a fresh DeviceLock for d, checks d in once and
// returns the payload after checking that d got it byte for byte.
func deliverOne(t *testing.T, s *nanomdmtest.Server, d *simdevice.Device, uuid string) []byte {
	t.Helper()
	ctx := testContext(t)
	payload, err := apple.DeviceLock{Message: "Return to IT", PhoneNumber: "408-555-5555"}.Payload(uuid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, payload, d.Facts.UDID); err != nil {
		t.Fatal(err)
	}
	before := len(d.Received())
	if err := d.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	got := d.Received()[before:]
	if len(got) != 1 || !bytes.Equal(got[0].Raw, payload) {
		t.Fatalf("device got %d commands, want exactly the queued plist", len(got))
	}
	return payload
}

func TestIdentitiesNanoMDMEnrolls(t *testing.T) {
	mac := simdevice.Facts{Name: "Sim Mac", Platform: apple.PlatformMacOS, Model: "Mac14,2", OSVersion: "14.5", BuildVersion: "23F79", Serial: "SIMMAC0001"}

	t.Run("ECDSA and RSA identities from the server's CA", func(t *testing.T) {
		s := nanomdmtest.StartT(t, nanomdmtest.Options{})
		for i, kt := range []simdevice.KeyType{simdevice.KeyECDSA, simdevice.KeyRSA} {
			f := mac
			f.UDID = "KEY-" + string(kt)
			cfg := s.DeviceConfig(f, simdevice.Acknowledge)
			cfg.KeyType = kt
			d, err := simdevice.NewDevice(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Enroll(testContext(t)); err != nil {
				t.Fatalf("%s: %v", kt, err)
			}
			deliverOne(t, s, d, "KEY-CMD-"+string(rune('A'+i)))
		}
	})

	t.Run("a self-signed identity as the -ca file", func(t *testing.T) {
		id, err := simdevice.SelfSigned("SELF-1", simdevice.KeyECDSA)
		if err != nil {
			t.Fatal(err)
		}
		s := nanomdmtest.StartT(t, nanomdmtest.Options{CAPEM: id.CertPEM()})
		f := mac
		f.UDID = "SELF-1"
		cfg := s.DeviceConfig(f, simdevice.Acknowledge)
		cfg.Identity = &id
		d, err := simdevice.NewDevice(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Enroll(testContext(t)); err != nil {
			t.Fatal(err)
		}
		deliverOne(t, s, d, "SELF-CMD")
	})

	t.Run("separate check-in endpoint (-checkin)", func(t *testing.T) {
		s := nanomdmtest.StartT(t, nanomdmtest.Options{CheckinEndpoint: true})
		d := s.NewDevice(t, "CHECKIN-1", simdevice.Acknowledge, mac)
		if d.CheckInURL != s.URL+"/checkin" || d.ServerURL != s.URL+"/mdm" {
			t.Fatalf("device URLs %s %s", d.CheckInURL, d.ServerURL)
		}
		deliverOne(t, s, d, "CHECKIN-CMD")
	})

	t.Run("identities the server refuses", func(t *testing.T) {
		s := nanomdmtest.StartT(t, nanomdmtest.Options{})
		stranger, err := simdevice.NewDevice(simdevice.Config{Facts: simdevice.Facts{UDID: "STRANGER"}, BaseURL: s.URL})
		if err != nil {
			t.Fatal(err)
		}
		var se *simdevice.StatusError
		if err := stranger.Enroll(testContext(t)); !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
			t.Errorf("a self-signed identity the server does not trust: %v, want HTTP 400", err)
		}
		first := s.NewDevice(t, "OWNER", simdevice.Acknowledge, simdevice.Facts{})
		cfg := s.DeviceConfig(simdevice.Facts{UDID: "THIEF"}, simdevice.Acknowledge)
		cfg.Identity = &first.Identity
		thief, err := simdevice.NewDevice(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// certauth binds a certificate to one enrollment; reuse is a 500.
		if err := thief.Enroll(testContext(t)); !errors.As(err, &se) || se.StatusCode != http.StatusInternalServerError {
			t.Errorf("another device's identity: %v, want HTTP 500", err)
		}
	})
}

// hookEvent is the part of NanoMDM's webhook event the tests read.
type hookEvent struct {
	Topic string `json:"topic"`
	Ack   *struct {
		UDID        string `json:"udid"`
		Status      string `json:"status"`
		CommandUUID string `json:"command_uuid"`
		RawPayload  []byte `json:"raw_payload"`
	} `json:"acknowledge_event"`
}

// hooks collects webhook events; NanoMDM posts them asynchronously.
type hooks struct {
	mu      sync.Mutex
	events  []hookEvent
	changed chan struct{}
}

func startHooks(t *testing.T) (*hooks, string) {
	h := &hooks{changed: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev hookEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body: %v\n%s", err, body)
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		close(h.changed)
		h.changed = make(chan struct{})
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// answer waits for the device's report of a command with a given status
// and returns it decoded from the event's raw_payload.
func (h *hooks) answer(t *testing.T, udid, commandUUID, status string) apple.Response {
	t.Helper()
	ctx := testContext(t)
	for {
		h.mu.Lock()
		events, changed := h.events, h.changed
		h.mu.Unlock()
		for _, ev := range events {
			if ev.Ack != nil && ev.Ack.UDID == udid && ev.Ack.CommandUUID == commandUUID && ev.Ack.Status == status {
				r, err := apple.DecodeResponse(ev.Ack.RawPayload)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("NanoMDM reported no %s from %s for %s", status, udid, commandUUID)
		}
	}
}

func (h *hooks) reportsFrom(udid string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev.Ack != nil && ev.Ack.UDID == udid {
			n++
		}
	}
	return n
}

// TestBehaviorsThroughNanoMDM locks one device of each kind with one
// enqueue and checks, through NanoMDM's webhook, that the server took
// each answer exactly as the device recorded it.
func TestBehaviorsThroughNanoMDM(t *testing.T) {
	h, hookURL := startHooks(t)
	s := nanomdmtest.StartT(t, nanomdmtest.Options{WebhookURL: hookURL})
	ctx := testContext(t)

	devices := map[simdevice.Kind]*simdevice.Device{}
	var ids []string
	for _, k := range simdevice.Kinds() {
		udid := "FLEET-" + string(k)
		devices[k] = s.NewDevice(t, udid, k, simdevice.Facts{Platform: apple.PlatformMacOS, Model: "Mac15,3", OSVersion: "14.5"})
		ids = append(ids, udid)
	}
	payload, err := apple.DeviceLock{Message: "Lost Mac"}.Payload("FLEET-LOCK")
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Enqueue(ctx, payload, ids...)
	if err != nil {
		t.Fatal(err)
	}
	if res.CommandUUID != "FLEET-LOCK" || res.RequestType != "DeviceLock" || !res.NoPush {
		t.Errorf("enqueue answered %+v", res)
	}
	for _, d := range devices {
		if err := d.CheckIn(ctx); err != nil {
			t.Fatal(err)
		}
	}

	type want struct {
		status, result string
		errorCode      int
	}
	wants := map[simdevice.Kind]want{
		simdevice.Acknowledge: {apple.StatusAcknowledged, apple.MessageResultSuccess, 0},
		simdevice.NoPasscode:  {apple.StatusAcknowledged, apple.MessageResultNoPasscodeSet, 0},
		simdevice.LostMode:    {apple.StatusAcknowledged, apple.MessageResultDeviceInLostMode, 0},
		simdevice.RequirePIN:  {apple.StatusError, "", simdevice.ErrorCodePINRequired},
		simdevice.NotNowOnce:  {apple.StatusNotNow, "", 0},
		simdevice.FormatError: {apple.StatusCommandFormatError, "", simdevice.ErrorCodeFormat},
	}
	for k, w := range wants {
		d := devices[k]
		got := h.answer(t, d.Facts.UDID, "FLEET-LOCK", w.status)
		rec := d.Received()
		if len(rec) != 1 || !bytes.Equal(rec[0].Raw, payload) {
			t.Fatalf("%s received %d commands, want the queued plist once", k, len(rec))
		}
		if !reflect.DeepEqual(got, rec[0].Answer) {
			t.Errorf("%s: NanoMDM got\n %+v\nthe device sent\n %+v", k, got, rec[0].Answer)
		}
		code := 0
		if len(got.ErrorChain) > 0 {
			code = got.ErrorChain[0].ErrorCode
		}
		if got.UDID != d.Facts.UDID || got.MessageResult != w.result || code != w.errorCode {
			t.Errorf("%s answered %+v, want %+v", k, got, w)
		}
	}

	// NotNow: NanoMDM keeps the command and hands it over at the next check-in.
	nn := devices[simdevice.NotNowOnce]
	if err := nn.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	h.answer(t, nn.Facts.UDID, "FLEET-LOCK", apple.StatusAcknowledged)
	if rec := nn.Received(); len(rec) != 2 || rec[1].Delivery != 2 || !bytes.Equal(rec[1].Raw, payload) {
		t.Fatalf("NotNowOnce deliveries %+v", rec)
	}
	// Final answers leave nothing queued.
	for k, d := range devices {
		n := len(d.Received())
		if err := d.CheckIn(ctx); err != nil {
			t.Fatal(err)
		}
		if len(d.Received()) != n {
			t.Errorf("%s got a command again after its final answer", k)
		}
	}
	if off := devices[simdevice.Offline]; len(off.Received()) != 0 || h.reportsFrom(off.Facts.UDID) != 0 {
		t.Error("the offline device checked in")
	}
}

func TestMalformedCommandsThroughNanoMDM(t *testing.T) {
	h, hookURL := startHooks(t)
	s := nanomdmtest.StartT(t, nanomdmtest.Options{WebhookURL: hookURL})
	d := s.NewDevice(t, "IPHONE-1", simdevice.Acknowledge, simdevice.Facts{Platform: apple.PlatformIOS, Model: "iPhone13,2"})
	ctx := testContext(t)
	// NanoMDM checks only CommandUUID and RequestType, so both reach the device.
	info := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict>` +
		`<key>RequestType</key><string>DeviceInformation</string></dict><key>CommandUUID</key><string>INFO-1</string></dict></plist>`)
	badPIN := []byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict>` +
		`<key>RequestType</key><string>DeviceLock</string><key>PIN</key><integer>123456</integer></dict>` +
		`<key>CommandUUID</key><string>BADPIN-1</string></dict></plist>`)
	for _, p := range [][]byte{info, badPIN} {
		if _, err := s.Enqueue(ctx, p, d.Facts.UDID); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	for _, uuid := range []string{"INFO-1", "BADPIN-1"} {
		r := h.answer(t, d.Facts.UDID, uuid, apple.StatusCommandFormatError)
		if len(r.ErrorChain) != 1 || r.ErrorChain[0].ErrorDomain != simdevice.ErrorDomain {
			t.Errorf("%s: %+v", uuid, r)
		}
	}
	if rec := d.Received(); len(rec) != 2 || rec[1].ParseError == nil {
		t.Errorf("recorded %+v", rec)
	}
}

// TestPushWakesRunningDevice drives a device the way a sandbox's push
// handler does: Run in the background, Wake on push.
func TestPushWakesRunningDevice(t *testing.T) {
	s := nanomdmtest.StartT(t, nanomdmtest.Options{})
	d := s.NewDevice(t, "RUNNER", simdevice.LostMode, simdevice.Facts{Platform: apple.PlatformIPadOS})
	ctx := testContext(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx, 0) }()
	defer func() { stop(); <-done }()

	payload, _ := apple.DeviceLock{}.Payload("RUN-LOCK")
	if _, err := s.Enqueue(ctx, payload, d.Facts.UDID); err != nil {
		t.Fatal(err)
	}
	d.Wake()
	got, err := d.WaitFor(ctx, func(r []simdevice.Received) bool { return len(r) == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0].Raw, payload) || got[0].Answer.MessageResult != apple.MessageResultDeviceInLostMode {
		t.Fatalf("got %+v", got[0])
	}
}
