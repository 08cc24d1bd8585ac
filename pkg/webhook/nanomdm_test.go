package webhook

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/micromdm/nanomdm/mdm"
	nanowebhook "github.com/micromdm/nanomdm/service/webhook"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// The tests feed the receiver events made by NanoMDM v0.9.0's own webhook
// service from the device's own plist, so the shapes are the real ones,
// not this package's idea of them.

const testEventID = "3f1c9a0e7b5d2468" // NanoMDM's trace IDs are 8 random bytes in hex

// captureDoer stands in for NanoMDM's HTTP client and keeps the last request.
type captureDoer struct {
	mu     sync.Mutex
	body   []byte
	header http.Header
}

func (d *captureDoer) Do(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.body, d.header = body, r.Header.Clone()
	d.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

// enrollment is what NanoMDM resolved the reporting device to.
type enrollment struct {
	id       string
	typ      mdm.EnrollType
	parentID string
	params   map[string]string // query parameters of the device's request
}

func deviceEnrollment(udid string) enrollment { return enrollment{id: udid, typ: mdm.Device} }

func (e enrollment) request() *mdm.Request {
	r := mdm.NewRequestWithContext(context.Background(), nil)
	r.EnrollID = &mdm.EnrollID{ID: e.id, Type: e.typ, ParentID: e.parentID}
	r.Params = e.params
	return r
}

// nanoService is NanoMDM's webhook service posting to url through doer,
// signing with key when it is set.
func nanoService(url string, doer nanowebhook.Doer, key []byte) *nanowebhook.Webhook {
	opts := []nanowebhook.Option{
		nanowebhook.WithClient(doer),
		nanowebhook.WithEventID(func(context.Context) string { return testEventID }),
	}
	if key != nil {
		opts = append(opts, nanowebhook.WithHMACSecret(key))
	}
	return nanowebhook.New(url, opts...)
}

// nanoReport returns the event NanoMDM posts when e sends the command
// report raw, and its X-Hmac-Signature (empty without a key).
func nanoReport(t testing.TB, e enrollment, raw []byte, key []byte) (body []byte, sig string) {
	t.Helper()
	cr, err := mdm.DecodeCommandResults(raw)
	if err != nil {
		t.Fatalf("NanoMDM rejects the report: %v\n%s", err, raw)
	}
	d := &captureDoer{}
	if _, err := nanoService("http://unused.invalid/webhook", d, key).CommandAndReportResults(e.request(), cr); err != nil {
		t.Fatal(err)
	}
	return d.body, d.header.Get(nanowebhook.HMACHeader)
}

// nanoResponse is nanoReport for a response mdmctl's own type describes.
func nanoResponse(t testing.TB, e enrollment, r apple.Response, key []byte) (body []byte, sig string) {
	t.Helper()
	raw, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return nanoReport(t, e, raw, key)
}

// nanoCheckin returns the event NanoMDM posts for a check-in message.
func nanoCheckin(t testing.TB, e enrollment, raw []byte) []byte {
	t.Helper()
	msg, err := mdm.DecodeCheckin(raw)
	if err != nil {
		t.Fatalf("NanoMDM rejects the check-in: %v", err)
	}
	d := &captureDoer{}
	w := nanoService("http://unused.invalid/webhook", d, nil)
	switch m := msg.(type) {
	case *mdm.Authenticate:
		err = w.Authenticate(e.request(), m)
	case *mdm.TokenUpdate:
		err = w.TokenUpdate(e.request(), m)
	case *mdm.CheckOut:
		err = w.CheckOut(e.request(), m)
	default:
		t.Fatalf("no webhook for check-in %T", msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d.body
}

const authenticatePlist = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>MessageType</key>
	<string>Authenticate</string>
	<key>Topic</key>
	<string>com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9</string>
	<key>UDID</key>
	<string>00008020-000915083C80012E</string>
	<key>Model</key>
	<string>iPhone11,8</string>
	<key>OSVersion</key>
	<string>17.5</string>
</dict>
</plist>
`
