package simdevice

import (
	"reflect"
	"testing"

	"howett.net/plist"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

func TestDeviceAnswersInformation(t *testing.T) {
	cmd, err := apple.InformationPayload("INFO-1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		facts    Facts
		behavior Behavior
		want     map[string]any
	}{
		{"M1 on 11.4: no IsAppleSilicon before macOS 12", Facts{UDID: "M1", Model: "MacBookAir10,1", OSVersion: "11.4", BuildVersion: "20F71"}, Acknowledge,
			map[string]any{"OSVersion": "11.4", "BuildVersion": "20F71", "ProductName": "MacBookAir10,1", "Model": "MacBookAir10,1",
				"ModelName": "MacBook Air", "PINRequiredForDeviceLock": false, "ProvisioningUDID": provisioningUDID("M1")}},
		{"M3 needing a PIN on 14.5", Facts{UDID: "M3", Platform: apple.PlatformMacOS, Model: "Mac15,3", OSVersion: "14.5"}, RequirePIN,
			map[string]any{"OSVersion": "14.5", "ProductName": "Mac15,3", "Model": "Mac15,3", "ModelName": "Mac",
				"PINRequiredForDeviceLock": true, "IsAppleSilicon": true, "ProvisioningUDID": provisioningUDID("M3")}},
		{"Intel on 12.7: its ProvisioningUDID is its UDID", Facts{UDID: "I12", Model: "MacBookPro16,1", OSVersion: "12.7"}, Acknowledge,
			map[string]any{"OSVersion": "12.7", "ProductName": "MacBookPro16,1", "Model": "MacBookPro16,1", "ModelName": "MacBook Pro",
				"PINRequiredForDeviceLock": false, "IsAppleSilicon": false, "ProvisioningUDID": "I12"}},
		{"Intel on 10.15: no PINRequiredForDeviceLock before macOS 11", Facts{UDID: "I10", Model: "MacBookPro15,1", OSVersion: "10.15.7"}, RequirePIN,
			map[string]any{"OSVersion": "10.15.7", "ProductName": "MacBookPro15,1", "Model": "MacBookPro15,1", "ModelName": "MacBook Pro"}},
		{"iPhone: no Mac keys", Facts{UDID: "P", Platform: apple.PlatformIOS, Model: "iPhone11,8", OSVersion: "17.5.1"}, Acknowledge,
			map[string]any{"OSVersion": "17.5.1", "ProductName": "iPhone11,8", "ModelName": "iPhone"}},
		{"unknown version: no version-gated keys", Facts{UDID: "U", Model: "Mac14,2"}, Acknowledge,
			map[string]any{"ProductName": "Mac14,2", "Model": "Mac14,2", "ModelName": "Mac"}},
		{"a function behavior leaves DeviceInformation to the device", Facts{UDID: "F", Model: "iPad13,18", OSVersion: "17.4"},
			BehaviorFunc(func(c apple.ParsedCommand, _ int) apple.Response { return FormatErrorResponse(c.CommandUUID, "no") }),
			map[string]any{"OSVersion": "17.4", "ProductName": "iPad13,18", "ModelName": "iPad"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDevice(tt.facts, tt.behavior, "http://mdm.invalid/mdm", Identity{}, nil)
			got := d.Execute(cmd)
			if got.Status != apple.StatusAcknowledged || got.CommandUUID != "INFO-1" || got.UDID != tt.facts.UDID {
				t.Fatalf("answer envelope: %+v", got)
			}
			if !reflect.DeepEqual(got.QueryResponses, tt.want) {
				t.Fatalf("QueryResponses\n %v\nwant\n %v", got.QueryResponses, tt.want)
			}
			// On the wire, as mdmctl decodes it.
			wire, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := apple.DecodeResponse(wire)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Information(), got.Information()) {
				t.Fatalf("decoded %+v, sent %+v", back.Information(), got.Information())
			}
		})
	}
}

func TestDeviceAnswersOnlyWhatIsAsked(t *testing.T) {
	cmd, err := plist.MarshalIndent(map[string]any{"CommandUUID": "Q", "Command": map[string]any{
		"RequestType": "DeviceInformation", "Queries": []string{"OSVersion", "SerialNumber", "NoSuchKey"}}}, plist.XMLFormat, "\t")
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(Facts{UDID: "M", Model: "Mac14,2", OSVersion: "14.5"}, Acknowledge, "http://mdm.invalid/mdm", Identity{}, nil)
	got := d.Execute(cmd)
	if want := map[string]any{"OSVersion": "14.5"}; !reflect.DeepEqual(got.QueryResponses, want) {
		t.Fatalf("QueryResponses = %v, want %v (unknown keys unanswered)", got.QueryResponses, want)
	}
}

func TestFormatErrorDeviceAnswersNoInformation(t *testing.T) {
	cmd, _ := apple.InformationPayload("INFO-2")
	d := newDevice(Facts{UDID: "X", Model: "Mac14,2", OSVersion: "14.5"}, FormatError, "http://mdm.invalid/mdm", Identity{}, nil)
	if got := d.Execute(cmd); got.Status != apple.StatusCommandFormatError || got.QueryResponses != nil {
		t.Fatalf("answer: %+v", got)
	}
}
