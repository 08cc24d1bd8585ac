package sandbox

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// TestMembersAnswerAsListed locks every sandbox device through NanoMDM's own
// API in-process and checks each answers the way its Shows says it does.
func TestMembersAnswerAsListed(t *testing.T) {
	sb, client, collector, ids := startListening(t)
	collector.Expect("SANDBOX-TEST", ids...)
	res, err := client.Enqueue(context.Background(), server.Request{CommandUUID: "SANDBOX-TEST", Lock: apple.DeviceLock{Message: "m"}, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Devices {
		if d.Outcome != server.Queued {
			t.Errorf("%s: %s (%s), want queued and pushed", d.ID, d.Outcome, d.Error)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = collector.Wait(ctx)

	want := map[string]string{ // UDID -> Status/MessageResult
		AppleExampleUDID:                       "Acknowledged/Success",
		"00008030-0010200A3C41802E":            "Acknowledged/NoPasscodeSet",
		"00008101-000A11223344556E":            "Acknowledged/DeviceInLostMode",
		"5EC0DE15-0003-4B05-8E40-000000000015": "Error/",
		"0BADBEEF-0009-4136-8D50-000000000913": "Acknowledged/Success",
		"00008110-000E22334455667E":            "", // offline
	}
	for _, r := range collector.Results() {
		w, ok := want[r.ID]
		if !ok {
			continue
		}
		got := ""
		if r.Response != nil {
			got = r.Response.Status + "/" + r.Response.MessageResult
		}
		if got != w {
			t.Errorf("%s answered %q, want %q", r.ID, got, w)
		}
		if r.ID == "0BADBEEF-0009-4136-8D50-000000000913" && r.NotNow != 1 {
			t.Errorf("the busy Mac said NotNow %d times, want 1", r.NotNow)
		}
	}
	if f, ok := sb.Facts(context.Background(), []string{"2E8A1C3F-0B11-4D04-9A10-000000001104", "NOT-IN-FLEET"})["2E8A1C3F-0B11-4D04-9A10-000000001104"]; !ok || apple.Assess(f, apple.DeviceLock{}).Risk != apple.RiskDeactivation {
		t.Errorf("the sandbox's Apple silicon Mac on 11.4 must be one the guard refuses: %+v", f)
	}
}

// TestMembersAnswerDeviceInformation asks every sandbox device for the
// facts a preflight needs, through NanoMDM's API, and checks each answers
// what its model and version would; the offline iPad does not answer.
func TestMembersAnswerDeviceInformation(t *testing.T) {
	sb, client, collector, ids := startListening(t)
	collector.Expect("SANDBOX-INFO", ids...)
	if _, err := client.Enqueue(context.Background(), server.Request{CommandUUID: "SANDBOX-INFO", RequestType: apple.RequestTypeDeviceInformation, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = collector.Wait(ctx)

	for _, r := range collector.Results() {
		d, _ := sb.Device(r.ID)
		if d.Behavior.Offline() {
			if r.Answered() {
				t.Errorf("%s is offline but answered", r.ID)
			}
			continue
		}
		if !r.Answered() || r.Response.Status != apple.StatusAcknowledged {
			t.Errorf("%s: no Acknowledged answer: %+v", r.ID, r.Response)
			continue
		}
		in := r.Response.Information()
		if in.OSVersion != d.Facts.OSVersion || in.ProductName != d.Facts.Model || in.BuildVersion != d.Facts.BuildVersion {
			t.Errorf("%s answered %+v, facts %+v", r.ID, in, d.Facts)
		}
		got := in.Device()
		if want := sb.Facts(context.Background(), []string{r.ID})[r.ID]; apple.Assess(got, apple.DeviceLock{}).Risk != apple.Assess(want, apple.DeviceLock{}).Risk {
			t.Errorf("%s: the guard judges its answer %+v differently from its inventory %+v", r.ID, got, want)
		}
		switch r.ID {
		case "2E8A1C3F-0B11-4D04-9A10-000000001104": // M1 on 11.4
			if in.IsAppleSilicon != nil || in.PINRequiredForDeviceLock == nil || *in.PINRequiredForDeviceLock {
				t.Errorf("the M1 on 11.4: %+v (want no IsAppleSilicon, PINRequiredForDeviceLock false)", in)
			}
		case "5EC0DE15-0003-4B05-8E40-000000000015": // the Mac needing a PIN
			if in.PINRequiredForDeviceLock == nil || !*in.PINRequiredForDeviceLock || in.IsAppleSilicon == nil || !*in.IsAppleSilicon {
				t.Errorf("the Mac needing a PIN: %+v", in)
			}
		}
	}
}

// startListening starts a sandbox whose devices poll every 50ms, and returns
// it, a NanoMDM client for it, a collector of its answers and its device IDs.
func startListening(t *testing.T) (*Sandbox, *nanomdm.Client, *webhook.Collector, []string) {
	t.Helper()
	sb, err := Start(Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	base, _ := url.Parse(BaseURL)
	client := &nanomdm.Client{BaseURL: base, APIKey: APIKey, HTTP: &http.Client{Transport: sb.Transport()}}
	collector := webhook.NewCollector()
	sb.Subscribe(collector)
	var ids []string
	for _, m := range sb.Members() {
		ids = append(ids, m.Facts.UDID)
	}
	return sb, client, collector, ids
}
