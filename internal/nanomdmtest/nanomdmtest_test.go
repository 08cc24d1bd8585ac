package nanomdmtest

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// TestDeviceReceivesQueuedCommand drives the real NanoMDM end to end: a
// simulated device enrolls with signed check-ins, a DeviceLock is queued
// through the enqueue API, and the device receives exactly those bytes.
func TestDeviceReceivesQueuedCommand(t *testing.T) {
	s := startT(t)
	ctx := context.Background()
	dev, err := s.Enroll(ctx, simdevice.Facts{UDID: "SIM-1", Platform: apple.PlatformIOS}, simdevice.Behave(simdevice.NotNowOnce))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := apple.DeviceLock{Message: "Return to IT", PhoneNumber: "408-555-5555"}.Payload("SIM-CMD-1")
	if err != nil {
		t.Fatal(err)
	}
	res := enqueue(t, s, payload, "SIM-1")
	if got := res.Devices[0].Outcome; got != server.Queued {
		t.Fatalf("outcome %s (%s), want queued", got, res.Devices[0].Error)
	}

	// NotNow first: the server keeps the command and hands it over again.
	for i := 0; i < 2; i++ {
		if err := dev.CheckIn(ctx); err != nil {
			t.Fatalf("check-in %d: %v\n%s", i, err, s.Log())
		}
	}
	got := dev.Received()
	if len(got) != 2 {
		t.Fatalf("device received %d deliveries, want 2 (NotNow, then again)", len(got))
	}
	for i, r := range got {
		if !bytes.Equal(r.Raw, payload) {
			t.Errorf("delivery %d differs from the queued plist:\n%s", i, r.Raw)
		}
	}
	if got[0].Answer.Status != apple.StatusNotNow || got[1].Answer.Status != apple.StatusAcknowledged {
		t.Errorf("answers %s, %s; want NotNow, Acknowledged", got[0].Answer.Status, got[1].Answer.Status)
	}
	// Acknowledged ends it: a third check-in gets nothing.
	if err := dev.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(dev.Received()); n != 2 {
		t.Errorf("after Acknowledged the device got %d deliveries, want still 2", n)
	}
}

func TestRequirePINDeviceAnswersError(t *testing.T) {
	s := startT(t)
	ctx := context.Background()
	dev, err := s.Enroll(ctx, simdevice.Facts{UDID: "MAC-PIN", Platform: apple.PlatformMacOS, Model: "Mac14,2", OSVersion: "14.5"}, simdevice.Behave(simdevice.RequirePIN))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := apple.DeviceLock{}.Payload("NO-PIN")
	enqueue(t, s, payload, "MAC-PIN")
	if err := dev.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	got := dev.Received()
	if len(got) != 1 || got[0].Answer.Status != apple.StatusError || len(got[0].Answer.ErrorChain) == 0 {
		t.Fatalf("want one Error answer with an ErrorChain, got %+v", got)
	}
	withPIN, _ := apple.DeviceLock{PIN: "123456"}.Payload("WITH-PIN")
	enqueue(t, s, withPIN, "MAC-PIN")
	if err := dev.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	got = dev.Received()
	if len(got) != 2 || got[1].Answer.Status != apple.StatusAcknowledged || got[1].Command.PIN != "123456" {
		t.Fatalf("with a PIN: want Acknowledged, got %+v", got[len(got)-1])
	}
}

func TestUnsignedCheckInIsRejected(t *testing.T) {
	s := startT(t)
	req, _ := http.NewRequest(http.MethodPut, s.MDMURL(), bytes.NewReader([]byte(`<plist><dict><key>MessageType</key><string>Authenticate</string></dict></plist>`)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("an unsigned Authenticate was accepted")
	}
}

func startT(t *testing.T) *Server {
	t.Helper()
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func enqueue(t *testing.T, s *Server, payload []byte, ids ...string) *server.Result {
	t.Helper()
	u, _ := url.Parse(s.URL)
	c := &nanomdm.Client{BaseURL: u, APIKey: s.APIKey, HTTP: &http.Client{Timeout: 10 * time.Second}}
	cmd, err := apple.ParseCommand(payload)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Enqueue(context.Background(), server.Request{CommandUUID: cmd.CommandUUID, RequestType: cmd.RequestType, Payload: payload, IDs: ids, NoPush: true})
	if err != nil {
		t.Fatalf("enqueue: %v\n%s", err, s.Log())
	}
	return res
}
