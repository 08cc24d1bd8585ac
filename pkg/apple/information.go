package apple

import (
	"fmt"

	"howett.net/plist"
)

// RequestTypeDeviceInformation is the RequestType of Apple's DeviceInformation
// command (mdm/commands/information.device.yaml).
const RequestTypeDeviceInformation = "DeviceInformation"

// Query keys of DeviceInformation that the guard and the lock need.
const (
	QueryOSVersion                = "OSVersion"
	QueryBuildVersion             = "BuildVersion"
	QueryProductName              = "ProductName" // the model identifier, e.g. MacBookAir10,1 or iPad8,12
	QueryModel                    = "Model"       // on macOS the model identifier too
	QueryModelName                = "ModelName"   // "MacBook Air", "iPhone"
	QueryIsAppleSilicon           = "IsAppleSilicon"
	QueryPINRequiredForDeviceLock = "PINRequiredForDeviceLock"
	QueryProvisioningUDID         = "ProvisioningUDID"
)

// InformationQueries are the keys a preflight asks for, in Apple's order.
var InformationQueries = []string{
	QueryOSVersion, QueryBuildVersion, QueryProductName, QueryModel, QueryModelName,
	QueryIsAppleSilicon, QueryPINRequiredForDeviceLock, QueryProvisioningUDID,
}

type informationCommand struct {
	RequestType string   `plist:"RequestType"`
	Queries     []string `plist:"Queries"`
}

// InformationPayload encodes a DeviceInformation command envelope asking for
// InformationQueries, as an XML property list.
func InformationPayload(commandUUID string) ([]byte, error) {
	if commandUUID == "" {
		return nil, fmt.Errorf("command UUID is empty")
	}
	env := struct {
		Command     informationCommand `plist:"Command"`
		CommandUUID string             `plist:"CommandUUID"`
	}{
		Command:     informationCommand{RequestType: RequestTypeDeviceInformation, Queries: InformationQueries},
		CommandUUID: commandUUID,
	}
	return plist.MarshalIndent(env, plist.XMLFormat, "\t")
}

// ParseQueries returns the Queries of a DeviceInformation command plist
// (what a device reads from it); other commands have none.
func ParseQueries(data []byte) ([]string, error) {
	var env struct {
		Command informationCommand `plist:"Command"`
	}
	if _, err := plist.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("decoding command plist: %w", err)
	}
	return env.Command.Queries, nil
}

// Information is what a device answered to DeviceInformation. Empty strings
// and nil pointers mean "not answered": a device leaves out keys its OS
// does not have (IsAppleSilicon before macOS 12, PINRequiredForDeviceLock
// before macOS 11 and off macOS), so an absent key proves nothing.
type Information struct {
	OSVersion                string `json:"os_version,omitempty"`
	BuildVersion             string `json:"build_version,omitempty"`
	ProductName              string `json:"product_name,omitempty"`
	Model                    string `json:"model,omitempty"`
	ModelName                string `json:"model_name,omitempty"`
	IsAppleSilicon           *bool  `json:"is_apple_silicon,omitempty"`
	PINRequiredForDeviceLock *bool  `json:"pin_required_for_device_lock,omitempty"`
	ProvisioningUDID         string `json:"provisioning_udid,omitempty"`
}

// Informative reports whether any key was answered.
func (in Information) Informative() bool { return in != Information{} }

// Information reads the QueryResponses of a DeviceInformation answer. A
// value of the wrong type counts as not answered: a device that sends
// garbage for a key has not told mdmctl anything about it.
func (r Response) Information() Information {
	q := r.QueryResponses
	str := func(k string) string { s, _ := q[k].(string); return s }
	boolean := func(k string) *bool {
		if b, ok := q[k].(bool); ok {
			return &b
		}
		return nil
	}
	return Information{
		OSVersion:                str(QueryOSVersion),
		BuildVersion:             str(QueryBuildVersion),
		ProductName:              str(QueryProductName),
		Model:                    str(QueryModel),
		ModelName:                str(QueryModelName),
		IsAppleSilicon:           boolean(QueryIsAppleSilicon),
		PINRequiredForDeviceLock: boolean(QueryPINRequiredForDeviceLock),
		ProvisioningUDID:         str(QueryProvisioningUDID),
	}
}

// QueryResponses renders the answered keys as a device puts them in its
// response (the simulated devices' side of Information).
func (in Information) QueryResponses() map[string]any {
	q := map[string]any{}
	for k, v := range map[string]string{
		QueryOSVersion: in.OSVersion, QueryBuildVersion: in.BuildVersion, QueryProductName: in.ProductName,
		QueryModel: in.Model, QueryModelName: in.ModelName, QueryProvisioningUDID: in.ProvisioningUDID,
	} {
		if v != "" {
			q[k] = v
		}
	}
	if in.IsAppleSilicon != nil {
		q[QueryIsAppleSilicon] = *in.IsAppleSilicon
	}
	if in.PINRequiredForDeviceLock != nil {
		q[QueryPINRequiredForDeviceLock] = *in.PINRequiredForDeviceLock
	}
	return q
}

// Device turns the answer into facts for the guard. The model identifier
// is ProductName (on macOS Model holds it too); a model that is not a
// well-formed identifier, or a version that does not parse, stays unknown.
// IsAppleSilicon is not used: it exists only from macOS 12, outside the
// dangerous range, and the model identifier says as much.
func (in Information) Device() Device {
	var d Device
	model := in.ProductName
	if ValidateModel(model) != nil {
		model = ""
	}
	if model == "" && ValidateModel(in.Model) == nil {
		if _, _, known := ModelFacts(in.Model); known {
			model = in.Model
		}
	}
	if model != "" {
		d.Model = model
		d.Platform, _, _ = ModelFacts(model)
	}
	if v, err := ParseVersion(in.OSVersion); err == nil {
		d.OSVersion = v
	}
	return d
}
