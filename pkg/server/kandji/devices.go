package kandji

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// devicePage is the most devices one list request returns (Kandji's cap).
const devicePage = 300

// maxDevicePages bounds a listing: 300,000 devices.
const maxDevicePages = 1000

// listed is the part of a device list entry mdmctl needs.
type listed struct {
	DeviceID     string `json:"device_id"`
	SerialNumber string `json:"serial_number"`
	Platform     string `json:"platform"`
	OSVersion    string `json:"os_version"`
}

// details is the part of a device's details mdmctl needs.
type details struct {
	General struct {
		DeviceID  string `json:"device_id"`
		Platform  string `json:"platform"` // Mac, iPhone, iPad, AppleTV
		OSVersion string `json:"os_version"`
	} `json:"general"`
	HardwareOverview struct {
		ModelIdentifier string `json:"model_identifier"` // MacBookAir10,1
		ProcessorName   string `json:"processor_name"`   // Apple M1, or an Intel CPU
		UDID            string `json:"udid"`
		SerialNumber    string `json:"serial_number"`
	} `json:"hardware_overview"`
}

// device turns Kandji's words into the guard's facts; what does not parse
// stays unknown, so the guard warns rather than trusts it.
func (d details) device() apple.Device {
	var out apple.Device
	switch strings.ToLower(d.General.Platform) {
	case "mac":
		out.Platform = apple.PlatformMacOS
	case "iphone":
		out.Platform = apple.PlatformIOS
	case "ipad":
		out.Platform = apple.PlatformIPadOS
	default:
		// Apple TV, Android, Windows: nothing the guard weighs.
		return out
	}
	out.OSVersion = apple.ReportedVersion(d.General.OSVersion)
	if apple.ValidateModel(d.HardwareOverview.ModelIdentifier) == nil {
		out.Model = d.HardwareOverview.ModelIdentifier
	}
	return out
}

// inventory caches what the session read of the tenant's devices.
type inventory struct {
	// listMu serializes listings and UDID scans: concurrent lookups wait
	// for the one in flight and read its cache, rather than repeat it.
	listMu  sync.Mutex
	mu      sync.Mutex
	list    []listed // nil until listed
	ids     map[string]bool
	details map[string]*details // device_id -> details; nil entry: Kandji knows none
	byUDID  map[string]string   // upper-case UDID -> device_id
}

func (inv *inventory) init() {
	if inv.details == nil {
		inv.details = map[string]*details{}
		inv.byUDID = map[string]string{}
		inv.ids = map[string]bool{}
	}
}

// errNoList is a 404 for the device list itself: not Kandji's API there.
func errNoList(c *Client) error {
	return fmt.Errorf("%s answered 404 for %s: the server URL is not Kandji's API (it is the tenant's API URL from Settings > Access, https://TENANT.api.kandji.io, with no path)", server.Origin(c.BaseURL), DevicesPath)
}

// listAll reads the device list once per session, page by page.
func (c *Client) listAll(ctx context.Context) ([]listed, error) {
	c.inv.listMu.Lock()
	defer c.inv.listMu.Unlock()
	c.inv.mu.Lock()
	if c.inv.list != nil {
		defer c.inv.mu.Unlock()
		return c.inv.list, nil
	}
	c.inv.mu.Unlock()
	all := []listed{}
	for page := 0; ; page++ {
		if page == maxDevicePages {
			return nil, fmt.Errorf("the Kandji device list goes on past %d pages", maxDevicePages)
		}
		var batch []listed
		found, err := c.get(ctx, fmt.Sprintf("%s?limit=%d&offset=%d", DevicesPath, devicePage, page*devicePage), 8<<20, &batch, "device list")
		switch {
		case err != nil:
			return nil, err
		case !found:
			return nil, errNoList(c)
		}
		all = append(all, batch...)
		if len(batch) < devicePage {
			break
		}
	}
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	c.inv.init()
	c.inv.list = all
	for _, d := range all {
		c.inv.ids[strings.ToLower(d.DeviceID)] = true
	}
	return all, nil
}

// Details reads a device's details (cached); nil for a device Kandji does
// not know.
func (c *Client) Details(ctx context.Context, deviceID string) (*details, error) {
	c.inv.mu.Lock()
	c.inv.init()
	d, ok := c.inv.details[deviceID]
	c.inv.mu.Unlock()
	if ok {
		return d, nil
	}
	var got details
	found, err := c.get(ctx, DevicesPath+"/"+url.PathEscape(deviceID)+"/details", 4<<20, &got, "device details")
	if err != nil {
		return nil, err
	}
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	if !found {
		c.inv.details[deviceID] = nil
		return nil, nil
	}
	d = &got
	c.inv.details[deviceID] = d
	if u := d.HardwareOverview.UDID; u != "" {
		c.inv.byUDID[strings.ToUpper(u)] = deviceID
	}
	return d, nil
}

// forEach runs f on items, c.workers() at a time, until ctx ends or stop
// says all is found; it returns the first error.
func (c *Client) forEach(ctx context.Context, items []string, stop func() bool, f func(string) error) error {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan string)
	)
	for range c.workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				if err := f(it); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range items {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil || (stop != nil && stop()) {
			break
		}
		next <- it
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// resolve maps target IDs (UDIDs, or Kandji device IDs) to Kandji device
// IDs; IDs Kandji does not know are absent. Kandji finds no device by
// UDID, so it lists the tenant and reads details until every UDID asked
// for is found.
func (c *Client) resolve(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	c.inv.mu.Lock()
	c.inv.init()
	pending := map[string]bool{}
	for _, id := range ids {
		if d, ok := c.inv.byUDID[strings.ToUpper(id)]; ok {
			out[id] = d
		} else {
			pending[id] = true
		}
	}
	c.inv.mu.Unlock()
	if len(pending) == 0 {
		return out, nil
	}
	list, err := c.listAll(ctx)
	if err != nil {
		return nil, err
	}
	c.inv.listMu.Lock()
	defer c.inv.listMu.Unlock()
	var unread []string
	c.inv.mu.Lock()
	for id := range pending {
		for _, d := range list {
			if strings.EqualFold(d.DeviceID, id) {
				out[id] = d.DeviceID
				delete(pending, id)
				break
			}
		}
	}
	for _, d := range list {
		if _, read := c.inv.details[d.DeviceID]; !read {
			unread = append(unread, d.DeviceID)
		}
	}
	c.inv.mu.Unlock()
	allFound := func() bool {
		c.inv.mu.Lock()
		defer c.inv.mu.Unlock()
		for id := range pending {
			if _, ok := c.inv.byUDID[strings.ToUpper(id)]; !ok {
				return false
			}
		}
		return true
	}
	if len(pending) > 0 {
		if err := c.forEach(ctx, unread, allFound, func(deviceID string) error {
			_, err := c.Details(ctx, deviceID)
			return err
		}); err != nil {
			return nil, err
		}
	}
	c.inv.mu.Lock()
	defer c.inv.mu.Unlock()
	for id := range pending {
		if d, ok := c.inv.byUDID[strings.ToUpper(id)]; ok {
			out[id] = d
		}
	}
	return out, nil
}

// Devices looks ids up for the guard; the map holds those Kandji knows.
// err is the first failed lookup (the devices it concerns are left out).
func (c *Client) Devices(ctx context.Context, ids []string) (map[string]apple.Device, error) {
	resolved, err := c.resolve(ctx, ids)
	if err != nil {
		return map[string]apple.Device{}, err
	}
	var (
		mu  sync.Mutex
		out = make(map[string]apple.Device, len(resolved))
	)
	targets := make([]string, 0, len(resolved))
	for id := range resolved {
		targets = append(targets, id)
	}
	err = c.forEach(ctx, targets, nil, func(id string) error {
		d, err := c.Details(ctx, resolved[id])
		if err != nil || d == nil {
			return err
		}
		mu.Lock()
		out[id] = d.device()
		mu.Unlock()
		return nil
	})
	return out, err
}

// Serials finds devices by serial number: Kandji's list filter matches
// partial serials, so a device counts only when its serial is the one
// asked for. The map gives each known serial's UDID, in upper case (its
// Kandji device ID when Kandji shows no UDID).
func (c *Client) Serials(ctx context.Context, serials []string) (map[string]string, error) {
	var mu sync.Mutex
	out := make(map[string]string, len(serials))
	err := c.forEach(ctx, serials, nil, func(serial string) error {
		var batch []listed
		found, err := c.get(ctx, fmt.Sprintf("%s?serial_number=%s&limit=%d", DevicesPath, url.QueryEscape(serial), devicePage), 8<<20, &batch, "device list")
		switch {
		case err != nil:
			return err
		case !found:
			return errNoList(c)
		}
		for _, l := range batch {
			if !strings.EqualFold(l.SerialNumber, serial) {
				continue
			}
			d, err := c.Details(ctx, l.DeviceID)
			if err != nil || d == nil {
				return err
			}
			// Upper case, as MDM and mdmctl write UDIDs (Kandji shows them
			// in lower case), so a device given by UDID too is one target.
			id := strings.ToUpper(d.HardwareOverview.UDID)
			if id == "" {
				id = l.DeviceID
			}
			mu.Lock()
			out[serial] = id
			mu.Unlock()
			return nil
		}
		return nil
	})
	return out, err
}
