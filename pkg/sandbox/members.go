package sandbox

import (
	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// Member is one simulated device of the sandbox and what it shows.
type Member struct {
	Facts    simdevice.Facts
	Behavior simdevice.Kind
	// Shows is what an admin sees when locking it.
	Shows string
}

// AppleExampleUDID is the iPhone of Apple's own DeviceLock example.
const AppleExampleUDID = "00008020-000915083C80012E"

// Members cover the cases admins meet when they lock devices. Each answers
// DeviceInformation as a real device of its model and version does (see
// simdevice.Device.Information); the offline iPad never answers.
var Members = []Member{
	{simdevice.Facts{UDID: AppleExampleUDID, Name: "Apple example iPhone", Platform: apple.PlatformIOS, Model: "iPhone11,8", OSVersion: "17.5.1", BuildVersion: "21F90", Serial: "SBX0000001"},
		simdevice.Acknowledge, "Acknowledged, MessageResult Success (Apple's example response)"},
	{simdevice.Facts{UDID: "00008030-0010200A3C41802E", Name: "iPad without passcode", Platform: apple.PlatformIPadOS, Model: "iPad13,18", OSVersion: "17.4", BuildVersion: "21E219", Serial: "SBX0000002"},
		simdevice.NoPasscode, "Acknowledged, MessageResult NoPasscodeSet"},
	{simdevice.Facts{UDID: "00008101-000A11223344556E", Name: "iPhone in Lost Mode", Platform: apple.PlatformIOS, Model: "iPhone13,2", OSVersion: "16.7.8", BuildVersion: "20H343", Serial: "SBX0000003"},
		simdevice.LostMode, "Acknowledged, MessageResult DeviceInLostMode"},
	{simdevice.Facts{UDID: "2E8A1C3F-0B11-4D04-9A10-000000001104", Name: "MacBook Air (M1) on 11.4", Platform: apple.PlatformMacOS, Model: "MacBookAir10,1", OSVersion: "11.4", BuildVersion: "20F71", Serial: "SBX0000004"},
		simdevice.Acknowledge, "refused by mdmctl's guard: DeviceLock would deactivate it"},
	{simdevice.Facts{UDID: "7F3C2A10-1611-4E04-8B20-000000001604", Name: "MacBook Pro (Intel) on 11.4", Platform: apple.PlatformMacOS, Model: "MacBookPro16,1", OSVersion: "11.4", BuildVersion: "20F71", Serial: "SBX0000005"},
		simdevice.Acknowledge, "Acknowledged (Intel: no deactivation; no phone number shown)"},
	{simdevice.Facts{UDID: "C0FFEE14-0003-4A61-9F30-000000014601", Name: "Mac mini (M2) on 14.6.1", Platform: apple.PlatformMacOS, Model: "Mac14,3", OSVersion: "14.6.1", BuildVersion: "23G93", Serial: "SBX0000006"},
		simdevice.Acknowledge, "Acknowledged, MessageResult Success"},
	{simdevice.Facts{UDID: "5EC0DE15-0003-4B05-8E40-000000000015", Name: "MacBook Pro (M3) needing a PIN", Platform: apple.PlatformMacOS, Model: "Mac15,3", OSVersion: "14.5", BuildVersion: "23F79", Serial: "SBX0000007"},
		simdevice.RequirePIN, "Error with an ErrorChain without --pin; Acknowledged with one"},
	{simdevice.Facts{UDID: "0BADBEEF-0009-4136-8D50-000000000913", Name: "Mac mini (M1), busy once", Platform: apple.PlatformMacOS, Model: "Macmini9,1", OSVersion: "13.6.7", BuildVersion: "22G720", Serial: "SBX0000008"},
		simdevice.NotNowOnce, "NotNow once, then Acknowledged"},
	{simdevice.Facts{UDID: "00008110-000E22334455667E", Name: "iPad that is offline", Platform: apple.PlatformIPadOS, Model: "iPad14,1", OSVersion: "17.2", BuildVersion: "21C62", Serial: "SBX0000009"},
		simdevice.Offline, "never answers (offline)"},
}
