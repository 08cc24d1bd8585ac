package simdevice

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// PINRequirer is a Behavior that says whether its Mac needs a PIN to lock,
// which the device reports as PINRequiredForDeviceLock. RequirePIN does.
type PINRequirer interface {
	RequiresPIN() bool
}

// RequiresPIN is true for RequirePIN: that Mac's lock fails without a PIN.
func (k Kind) RequiresPIN() bool { return k == RequirePIN }

// answersInformation says whether the device answers DeviceInformation
// itself, from its Facts: every behavior does but FormatError, whose device
// cannot run any command.
func answersInformation(b Behavior) bool {
	k, ok := b.(Kind)
	return !ok || k != FormatError
}

// Version gates of DeviceInformation keys on macOS (Apple's
// mdm/commands/information.device.yaml).
var (
	macOSPINRequired      = apple.Version{11, 0}
	macOSProvisioningUDID = apple.Version{11, 3}
	macOSIsAppleSilicon   = apple.Version{12, 0}
)

// Information is what this device answers to DeviceInformation, as a real
// device of its facts does: ProductName is the model identifier on every
// platform, and on macOS Model is too (elsewhere Model is a hardware model
// number the facts do not hold, so it is left out); IsAppleSilicon only
// from macOS 12, PINRequiredForDeviceLock only from macOS 11,
// ProvisioningUDID only from macOS 11.3. Keys the facts leave unknown, or
// whose OS version is unknown, are not answered.
func (d *Device) Information() apple.Information {
	f := d.Facts
	in := apple.Information{OSVersion: f.OSVersion, BuildVersion: f.BuildVersion, ProductName: f.Model,
		ModelName: orDefault(f.ModelName, modelName(f.Model))}
	if f.Model == "" {
		in.ModelName = f.ModelName
	}
	if f.EffectivePlatform() != apple.PlatformMacOS {
		return in
	}
	in.Model = f.Model
	v, err := apple.ParseVersion(f.OSVersion)
	if err != nil {
		return in
	}
	_, arch, _ := apple.ModelFacts(f.Model)
	if v.Compare(macOSPINRequired) >= 0 {
		p, ok := d.behavior().(PINRequirer)
		needs := ok && p.RequiresPIN()
		in.PINRequiredForDeviceLock = &needs
	}
	if v.Compare(macOSProvisioningUDID) >= 0 {
		in.ProvisioningUDID = f.UDID
		if arch == apple.ArchAppleSilicon {
			in.ProvisioningUDID = provisioningUDID(f.UDID)
		}
	}
	if v.Compare(macOSIsAppleSilicon) >= 0 && arch != apple.ArchUnknown {
		silicon := arch == apple.ArchAppleSilicon
		in.IsAppleSilicon = &silicon
	}
	return in
}

// provisioningUDID derives the chip-style identifier an Apple silicon Mac
// reports besides its UDID, reproducibly from the UDID.
func provisioningUDID(udid string) string {
	h := sha256.Sum256([]byte("simdevice provisioning " + udid))
	return fmt.Sprintf("00008103-%X", h[:8])
}

// informationAnswer answers a DeviceInformation command with the keys it
// asks for that the device knows; unknown keys are not answered.
func (d *Device) informationAnswer(raw []byte, cmd apple.ParsedCommand) apple.Response {
	queries, err := apple.ParseQueries(raw)
	if err != nil || len(queries) == 0 {
		return FormatErrorResponse(cmd.CommandUUID, "The command could not be parsed.")
	}
	q := d.Information().QueryResponses()
	for k := range q {
		if !slices.Contains(queries, k) {
			delete(q, k)
		}
	}
	return apple.Response{Status: apple.StatusAcknowledged, CommandUUID: cmd.CommandUUID, QueryResponses: q}
}
