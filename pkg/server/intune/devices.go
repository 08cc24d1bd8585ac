package intune

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// managedDevice is the part of Graph's managedDevice mdmctl reads.
type managedDevice struct {
	ID               string         `json:"id"`
	DeviceName       string         `json:"deviceName"`
	Model            string         `json:"model"`
	Manufacturer     string         `json:"manufacturer"`
	OperatingSystem  string         `json:"operatingSystem"` // "macOS", "iOS", "iPadOS", "Windows", ...
	OSVersion        string         `json:"osVersion"`       // "14.6.1"
	SerialNumber     string         `json:"serialNumber"`
	UDID             string         `json:"udid"`
	LastSyncDateTime string         `json:"lastSyncDateTime"`
	ActionResults    []actionResult `json:"deviceActionResults"`
}

// listSelect is what a listing asks for. Graph's list leaves udid empty
// whatever $select says (its schema: "To retrieve actual values GET call
// needs to be made, with device id and included in select parameter").
const listSelect = "id,deviceName,model,manufacturer,operatingSystem,osVersion,serialNumber,lastSyncDateTime"

// modelIdentifier is the shape of Apple's model identifiers (Mac14,3,
// MacBookAir10,1, iPhone11,8). Intune's model is sometimes a marketing
// name ("MacBook Air", "iPhone 12"): that says nothing the guard can use.
var modelIdentifier = regexp.MustCompile(`^[A-Za-z]+[0-9]+,[0-9]+$`)

// platform maps Intune's operatingSystem; PlatformUnknown for anything
// that is not Apple's.
func (d *managedDevice) platform() apple.Platform {
	switch strings.ToLower(d.OperatingSystem) {
	case "macos":
		return apple.PlatformMacOS
	case "ios":
		if strings.HasPrefix(d.Model, "iPad") {
			return apple.PlatformIPadOS
		}
		return apple.PlatformIOS
	case "ipados":
		return apple.PlatformIPadOS
	}
	return apple.PlatformUnknown
}

// apple reports whether Intune manages the device as an Apple device.
func (d *managedDevice) apple() bool { return d.platform() != apple.PlatformUnknown }

// mayBeMac: a lock may make a PIN for it (macOS, or no operating system
// reported).
func (d *managedDevice) mayBeMac() bool {
	return d.platform() == apple.PlatformMacOS || strings.TrimSpace(d.OperatingSystem) == ""
}

// device turns Intune's words into the guard's facts; what does not parse
// stays unknown, so the guard's rules for unknown facts apply.
func (d *managedDevice) device() apple.Device {
	var out apple.Device
	out.Platform = d.platform()
	if out.Platform == apple.PlatformUnknown {
		return out // not Apple's: its versions mean nothing to the guard
	}
	out.OSVersion = apple.ReportedVersion(d.OSVersion)
	if modelIdentifier.MatchString(d.Model) && apple.ValidateModel(d.Model) == nil {
		out.Model = d.Model
	}
	return out
}

// quote is an OData string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// list reads every page of a managedDevices query.
func (c *Client) list(ctx context.Context, query url.Values) ([]managedDevice, error) {
	u, err := c.url(ManagedDevicesPath + "?" + encodeQuery(query))
	if err != nil {
		return nil, err
	}
	var out []managedDevice
	for page := 0; u != nil; page++ {
		if page >= maxPages {
			return out, errors.New("more than " + strconv.Itoa(maxPages) + " pages of managed devices: stopped reading")
		}
		var reply struct {
			Value    []managedDevice `json:"value"`
			NextLink string          `json:"@odata.nextLink"`
		}
		if err := c.get(ctx, u, listLimit, &reply); err != nil {
			return out, err
		}
		out = append(out, reply.Value...)
		u = nil
		if reply.NextLink != "" {
			if u, err = c.sameOrigin(reply.NextLink); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// Bounds on what inventory reads take in.
const (
	maxPages  = 10000
	listLimit = 16 << 20
	oneLimit  = 1 << 20
)

// encodeQuery writes OData's $-parameters with spaces as %20, which Graph
// documents and every proxy passes.
func encodeQuery(q url.Values) string {
	return strings.ReplaceAll(q.Encode(), "+", "%20")
}

// fetch reads one managed device by its Intune ID with the fields named;
// nil when Intune has no such device.
func (c *Client) fetch(ctx context.Context, id, fields string) (*managedDevice, error) {
	u, err := c.url(ManagedDevicesPath + "/" + url.PathEscape(id) + "?" + encodeQuery(url.Values{"$select": {fields}}))
	if err != nil {
		return nil, err
	}
	var d managedDevice
	switch err := c.get(ctx, u, oneLimit, &d); {
	case errors.Is(err, errNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if d.ID == "" {
		d.ID = id
	}
	return &d, nil
}

// bySerial finds the managed devices with a serial number. $filter on
// serialNumber is what Intune's own scripts use, but Graph does not
// document which properties filter, and ignores a filter it cannot apply:
// only devices whose serialNumber is the one asked for count. A device
// enrolled more than once has a record per enrollment: the one that synced
// last is taken.
func (c *Client) bySerial(ctx context.Context, serial string) (*managedDevice, error) {
	found, err := c.list(ctx, url.Values{"$filter": {"serialNumber eq " + quote(serial)}, "$select": {listSelect}})
	var best *managedDevice
	for i := range found {
		d := &found[i]
		if !strings.EqualFold(strings.TrimSpace(d.SerialNumber), serial) {
			continue
		}
		if best == nil || d.LastSyncDateTime > best.LastSyncDateTime {
			best = d
		}
	}
	if best == nil {
		return nil, err
	}
	return best, nil
}

// guidShaped: an Intune managed device ID (and an Intel Mac's UDID) is a GUID.
var guidShaped = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// Serials resolves serial numbers to the device IDs mdmctl locks by: the
// device's UDID, read from Intune (one request per device: Graph lists no
// UDIDs), else its Intune managed device ID, which Enqueue takes too.
func (c *Client) Serials(ctx context.Context, serials []string) (map[string]string, error) {
	out := map[string]string{}
	var mu sync.Mutex
	err := c.each(ctx, serials, func(ctx context.Context, serial string) error {
		d, err := c.bySerial(ctx, serial)
		if err != nil || d == nil {
			return err
		}
		id := d.ID
		if full, err := c.fetch(ctx, d.ID, listSelect+",udid"); err != nil {
			return err
		} else if full != nil {
			d = full
			if full.UDID != "" {
				id = full.UDID
			}
		}
		c.remember(id, d)
		mu.Lock()
		out[serial] = id
		mu.Unlock()
		return nil
	})
	return out, err
}

// Devices looks ids up for the guard; ids Intune does not know are absent.
func (c *Client) Devices(ctx context.Context, ids []string) (map[string]apple.Device, error) {
	known, err := c.resolve(ctx, ids)
	out := make(map[string]apple.Device, len(known))
	for id, d := range known {
		out[id] = d.device()
	}
	return out, err
}

// remember records the device an ID names.
func (c *Client) remember(id string, d *managedDevice) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]*managedDevice{}
	}
	cp := *d
	cp.ActionResults = nil
	c.known[id] = &cp
}

func (c *Client) cached(id string) (*managedDevice, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.known[id]
	return d, ok
}

// resolve finds the managed device each ID names: one resolved before, a
// managed device ID (GUID-shaped IDs are asked for directly), else a UDID,
// from an index of the tenant's Apple devices' UDIDs built once per session
// (a list, then one request per Apple device, as Graph lists no UDIDs,
// stopping when every ID asked for is found). ids Intune does not know are
// absent; err is the first failed lookup.
func (c *Client) resolve(ctx context.Context, ids []string) (map[string]*managedDevice, error) {
	out := map[string]*managedDevice{}
	var mu sync.Mutex
	var rest []string
	for _, id := range ids {
		if d, ok := c.cached(id); ok {
			out[id] = d
		} else if !slices.Contains(rest, id) {
			rest = append(rest, id)
		}
	}
	var guids []string
	for _, id := range rest {
		if guidShaped.MatchString(id) {
			guids = append(guids, id)
		}
	}
	firstErr := c.each(ctx, guids, func(ctx context.Context, id string) error {
		d, err := c.fetch(ctx, id, listSelect+",udid")
		if err != nil || d == nil || !strings.EqualFold(d.ID, id) {
			return err
		}
		c.remember(id, d)
		mu.Lock()
		out[id] = d
		mu.Unlock()
		return nil
	})
	var udids []string
	for _, id := range rest {
		if _, ok := out[id]; !ok {
			udids = append(udids, id)
		}
	}
	if len(udids) > 0 {
		found, err := c.byUDIDs(ctx, udids)
		for id, d := range found {
			out[id] = d
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return out, firstErr
}

// byUDIDs finds devices by UDID through the session's index.
func (c *Client) byUDIDs(ctx context.Context, udids []string) (map[string]*managedDevice, error) {
	c.indexMu.Lock()
	defer c.indexMu.Unlock()
	if !c.listed {
		all, err := c.list(ctx, url.Values{"$select": {listSelect}})
		if err != nil {
			return nil, err
		}
		c.listed = true
		for i := range all {
			if all[i].apple() {
				c.unindexed = append(c.unindexed, all[i])
			}
		}
	}
	want := map[string]bool{}
	for _, u := range udids {
		want[strings.ToUpper(u)] = true
	}
	out := map[string]*managedDevice{}
	var mu sync.Mutex
	lookup := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range udids {
			if d, ok := c.index[strings.ToUpper(u)]; ok {
				out[u] = d
				c.remember(u, d)
			}
		}
	}
	lookup()
	if len(out) == len(udids) || len(c.unindexed) == 0 {
		return out, nil
	}
	// Ask the devices not yet indexed for their UDIDs, until every one
	// wanted is found.
	todo := c.unindexed
	ids := make([]string, len(todo))
	for i := range todo {
		ids[i] = todo[i].ID
	}
	var done sync.Map
	left := len(udids) - len(out)
	err := c.eachUntil(ctx, ids, func() bool { mu.Lock(); defer mu.Unlock(); return left <= 0 }, func(ctx context.Context, id string) error {
		d, err := c.fetch(ctx, id, listSelect+",udid")
		if err != nil {
			return err
		}
		done.Store(id, true)
		if d == nil || d.UDID == "" {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if c.index == nil {
			c.index = map[string]*managedDevice{}
		}
		c.index[strings.ToUpper(d.UDID)] = d
		if want[strings.ToUpper(d.UDID)] {
			left--
		}
		return nil
	})
	kept := c.unindexed[:0]
	for _, d := range c.unindexed {
		if _, ok := done.Load(d.ID); !ok {
			kept = append(kept, d)
		}
	}
	c.unindexed = kept
	lookup()
	return out, err
}

// each runs f for every item, at most Concurrency at a time; err is the
// first failure (the other items still run).
func (c *Client) each(ctx context.Context, items []string, f func(context.Context, string) error) error {
	return c.eachUntil(ctx, items, nil, f)
}

// eachUntil is each that starts no item once enough reports true.
func (c *Client) eachUntil(ctx context.Context, items []string, enough func() bool, f func(context.Context, string) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan string)
	)
	for range max(1, min(c.Concurrency, len(items))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				if err := f(ctx, it); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range items {
		if ctx.Err() != nil || (enough != nil && enough()) {
			break
		}
		next <- it
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
