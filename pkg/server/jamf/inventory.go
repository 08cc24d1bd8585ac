package jamf

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// record is what Jamf's inventory says of one device.
type record struct {
	mobile       bool // a mobile device, else a computer
	jamfID       string
	udid         string
	serial       string
	managementID string
	// managed is false when Jamf says the device is not managed (no MDM
	// command can reach it); nil when it does not say.
	managed *bool
	device  apple.Device
}

func (r *record) unmanaged() bool { return r.managed != nil && !*r.managed }

// computer is the part of a computers-inventory record mdmctl reads.
type computer struct {
	ID      flexString `json:"id"`
	UDID    string     `json:"udid"`
	General *struct {
		ManagementID     string `json:"managementId"`
		RemoteManagement *struct {
			Managed *bool `json:"managed"`
		} `json:"remoteManagement"`
	} `json:"general"`
	Hardware *struct {
		SerialNumber    string `json:"serialNumber"`
		ModelIdentifier string `json:"modelIdentifier"`
		AppleSilicon    *bool  `json:"appleSilicon"`
	} `json:"hardware"`
	OperatingSystem *struct {
		Version string `json:"version"`
	} `json:"operatingSystem"`
}

func (c computer) record() *record {
	r := &record{jamfID: string(c.ID), udid: c.UDID, device: apple.Device{Platform: apple.PlatformMacOS}}
	if g := c.General; g != nil {
		r.managementID = g.ManagementID
		if g.RemoteManagement != nil {
			r.managed = g.RemoteManagement.Managed
		}
	}
	if h := c.Hardware; h != nil {
		r.serial = h.SerialNumber
		if apple.ValidateModel(h.ModelIdentifier) == nil {
			r.device.Model = h.ModelIdentifier
		}
	}
	if os := c.OperatingSystem; os != nil {
		r.device.OSVersion = apple.ReportedVersion(os.Version)
	}
	return r
}

// mobileDevice is the part of a mobile-devices/detail record mdmctl reads.
type mobileDevice struct {
	ID         flexString `json:"mobileDeviceId"`
	DeviceType string     `json:"deviceType"`
	General    *struct {
		UDID      string `json:"udid"`
		OSVersion string `json:"osVersion"`
		// ManagementID is in the detail's general section on some
		// versions only (not in 11.6's schema): else managementIDs asks.
		ManagementID string `json:"managementId"`
		Managed      *bool  `json:"managed"`
	} `json:"general"`
	// ManagementID at the top, as GET /api/v2/mobile-devices/{id}/detail
	// answers it.
	ManagementID string `json:"managementId"`
	Hardware     *struct {
		SerialNumber    string `json:"serialNumber"`
		ModelIdentifier string `json:"modelIdentifier"`
	} `json:"hardware"`
}

func (m mobileDevice) record() *record {
	r := &record{mobile: true, jamfID: string(m.ID)}
	r.managementID = m.ManagementID
	if g := m.General; g != nil {
		r.udid, r.managed = g.UDID, g.Managed
		if g.ManagementID != "" {
			r.managementID = g.ManagementID
		}
		r.device.OSVersion = apple.ReportedVersion(g.OSVersion)
	}
	model := ""
	if h := m.Hardware; h != nil {
		r.serial, model = h.SerialNumber, h.ModelIdentifier
	}
	switch {
	case strings.HasPrefix(model, "iPad"):
		r.device.Platform = apple.PlatformIPadOS
	case strings.HasPrefix(model, "iPhone"), strings.HasPrefix(model, "iPod"):
		r.device.Platform = apple.PlatformIOS
	case strings.EqualFold(m.DeviceType, "iOS") && model == "":
		r.device.Platform = apple.PlatformIOS
	default:
		// An Apple TV, or a model Jamf does not name: the guard's rules
		// for iPhone and iPad do not apply to it.
		r.device = apple.Device{}
		return r
	}
	if apple.ValidateModel(model) == nil {
		r.device.Model = model
	}
	return r
}

// Bounds of one inventory page: records carry sections mdmctl does not ask
// for on some versions, so the bound is generous.
const inventoryLimit = 16 << 20

var (
	computerSections = []string{"GENERAL", "HARDWARE", "OPERATING_SYSTEM"}
	mobileSections   = []string{"GENERAL", "HARDWARE"}
)

// lookup finds devices by UDID (bySerial false) or serial number in the
// computers' inventory, then the rest among mobile devices, a batch of
// values per request. The map is by upper-cased value; err is the first
// failed request (what it left unread is absent).
func (c *Client) lookup(ctx context.Context, values []string, bySerial bool) (map[string]*record, error) {
	found := map[string]*record{}
	key := func(r *record) string {
		if bySerial {
			return strings.ToUpper(r.serial)
		}
		return strings.ToUpper(r.udid)
	}
	want := map[string]bool{}
	for _, v := range values {
		want[strings.ToUpper(v)] = true
	}
	keep := func(r *record) {
		// Jamf's == may match more loosely (a wildcard): keep exact matches.
		if k := key(r); want[k] && found[k] == nil {
			found[k] = r
		}
	}
	field := "udid"
	if bySerial {
		field = "hardware.serialNumber"
	}
	// A role that may read only one of the two lists (an iPad-only fleet
	// without Read Computers) still finds what the other holds: a refusal
	// stands only for the values neither list gave.
	var denied error
	for _, batch := range batches(field, values) {
		q := url.Values{"section": computerSections, "filter": {anyOf(field, batch)}}
		got, err := list[computer](ctx, c, ComputersPath, q, inventoryLimit, privReadMacs, "computer inventory records")
		for _, x := range got {
			keep(x.record())
		}
		if errors.Is(err, server.ErrUnauthorized) {
			denied = err
			break
		}
		if err != nil {
			return found, err
		}
	}
	var rest []string
	for _, v := range values {
		if found[strings.ToUpper(v)] == nil {
			rest = append(rest, v)
		}
	}
	if bySerial {
		field = "serialNumber"
	}
	for _, batch := range batches(field, rest) {
		q := url.Values{"section": mobileSections, "filter": {anyOf(field, batch)}}
		got, err := list[mobileDevice](ctx, c, MobilePath, q, inventoryLimit, privReadMobile, "mobile device records")
		for _, x := range got {
			keep(x.record())
		}
		if errors.Is(err, server.ErrUnauthorized) && denied == nil {
			denied = err
			break
		}
		if err != nil {
			return found, err
		}
	}
	if err := c.managementIDs(ctx, found); err != nil {
		return found, err
	}
	c.remember(found)
	if denied != nil && len(found) < len(want) {
		return found, denied
	}
	return found, nil
}

// mobileWorkers bounds the mobile device requests in flight.
const mobileWorkers = MaxConnections

// managementIDs fills in the management IDs of mobile devices whose detail
// record left it out (the detail's general section carries none on some
// versions): GET /api/v2/mobile-devices/{id} has it, one device per
// request, several at once.
func (c *Client) managementIDs(ctx context.Context, found map[string]*record) error {
	var missing []*record
	for _, r := range found {
		if r.mobile && r.managementID == "" && r.jamfID != "" && !r.unmanaged() {
			missing = append(missing, r)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan *record)
	)
	for range min(mobileWorkers, len(missing)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				var v struct {
					ManagementID string `json:"managementId"`
				}
				err := c.get(ctx, MobileDevicePath+url.PathEscape(r.jamfID), 1<<20, &v, privReadMobile, "mobile device record")
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				r.managementID = v.ManagementID
				mu.Unlock()
			}
		}()
	}
	for _, r := range missing {
		next <- r
	}
	close(next)
	wg.Wait()
	return first
}

func (c *Client) remember(found map[string]*record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]*record{}
	}
	for _, r := range found {
		if r.udid != "" {
			c.known[strings.ToUpper(r.udid)] = r
		}
	}
}

// resolve returns the records of udids, from what this session already
// read where it can, asking Jamf for the rest.
func (c *Client) resolve(ctx context.Context, udids []string) (map[string]*record, error) {
	out := map[string]*record{}
	var ask []string
	c.mu.Lock()
	for _, id := range udids {
		if r := c.known[strings.ToUpper(id)]; r != nil {
			out[strings.ToUpper(id)] = r
		} else {
			ask = append(ask, id)
		}
	}
	c.mu.Unlock()
	if len(ask) == 0 {
		return out, nil
	}
	found, err := c.lookup(ctx, ask, false)
	for k, r := range found {
		out[k] = r
	}
	return out, err
}

// Devices looks udids up for the guard: the map holds the devices Jamf
// knows, by the UDID as given; err is the first failed request.
func (c *Client) Devices(ctx context.Context, udids []string) (map[string]apple.Device, error) {
	found, err := c.resolve(ctx, udids)
	out := make(map[string]apple.Device, len(found))
	for _, id := range udids {
		if r := found[strings.ToUpper(id)]; r != nil {
			out[id] = r.device
		}
	}
	return out, err
}

// Serials finds devices by serial number: the map gives each serial Jamf
// knows (as given) its device's UDID.
func (c *Client) Serials(ctx context.Context, serials []string) (map[string]string, error) {
	found, err := c.lookup(ctx, serials, true)
	out := make(map[string]string, len(found))
	for _, s := range serials {
		if r := found[strings.ToUpper(s)]; r != nil && r.udid != "" {
			out[s] = r.udid
		}
	}
	return out, err
}
