package simplemdm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// PageSize is the limit mdmctl asks for: SimpleMDM's largest.
const PageSize = 100

// maxPages bounds one search: a UDID or serial matches one device, a
// search matching more than this many pages is not one mdmctl can use.
const maxPages = 20

// Device is the part of SimpleMDM's device object mdmctl reads.
type Device struct {
	Type       string      `json:"type"`
	ID         json.Number `json:"id"`
	Attributes struct {
		Name                  string `json:"name"`
		Status                string `json:"status"` // "enrolled", ...
		OSVersion             string `json:"os_version"`
		ProductName           string `json:"product_name"` // "MacBookAir10,1"
		ModelName             string `json:"model_name"`   // "MacBook Air"
		UniqueIdentifier      string `json:"unique_identifier"`
		SerialNumber          string `json:"serial_number"`
		ProcessorArchitecture string `json:"processor_architecture"` // null on iOS
	} `json:"attributes"`
}

// platform is what the model identifier says; a device with none but a
// processor architecture is a Mac (SimpleMDM reports none for iOS).
func (d *Device) platform() apple.Platform {
	if p, _, known := apple.ModelFacts(d.Attributes.ProductName); known {
		return p
	}
	if d.Attributes.ProcessorArchitecture != "" {
		return apple.PlatformMacOS
	}
	return apple.PlatformUnknown
}

// Facts turns SimpleMDM's words into the guard's; what does not parse
// stays unknown, so the guard warns rather than trusts it.
func (d *Device) Facts() apple.Device {
	f := apple.Device{Platform: d.platform()}
	if apple.ValidateModel(d.Attributes.ProductName) == nil {
		f.Model = d.Attributes.ProductName
	}
	// "13.4.1 (a)" carries a Rapid Security Response: the version is the first field.
	if fields := strings.Fields(d.Attributes.OSVersion); len(fields) > 0 {
		if v, err := apple.ParseVersion(fields[0]); err == nil {
			f.OSVersion = v
		}
	}
	return f
}

// validID: SimpleMDM's ids are numbers; anything else goes in no URL.
func validID(id json.Number) bool {
	s := id.String()
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

type listReply struct {
	Data    []Device `json:"data"`
	HasMore bool     `json:"has_more"`
}

// listLimit bounds one page of devices: each carries some 80 attributes.
const listLimit = 8 << 20

// Search returns every device SimpleMDM lists for search, following its
// pagination.
func (c *Client) Search(ctx context.Context, search string) ([]Device, error) {
	origin := server.Origin(c.BaseURL)
	var (
		all   []Device
		after string
	)
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("searching devices for %q matched more than %d pages", search, maxPages)}
		}
		q := url.Values{"search": {search}, "limit": {fmt.Sprint(PageSize)}}
		if after != "" {
			q.Set("starting_after", after)
		}
		path := DevicesPath + "?" + q.Encode()
		newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
			return c.newRequest(ctx, http.MethodGet, path, "")
		}
		resp, body, _, err := c.Retry.Do(ctx, c.HTTP, newReq, listLimit)
		if err != nil {
			return nil, err
		}
		if err := c.checkReply(resp, body, http.StatusOK); err != nil {
			return nil, err
		}
		var r listReply
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("the device list is not SimpleMDM's JSON: %v", err)}
		}
		for _, d := range r.Data {
			if !validID(d.ID) {
				return nil, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("the device list names a device with id %q, not a number", d.ID)}
			}
		}
		all = append(all, r.Data...)
		if !r.HasMore || len(r.Data) == 0 {
			return all, nil
		}
		after = r.Data[len(r.Data)-1].ID.String()
	}
}

// lookup is one cached answer: the device, or nil for none.
type lookup struct {
	device *Device
}

// find searches for key and keeps the device whose field is key, preferring
// an enrolled one. SimpleMDM may keep an old record of a re-enrolled device:
// two enrolled ones with the same key cannot be told apart, an error.
func (c *Client) find(ctx context.Context, key string, field func(*Device) string) (*Device, error) {
	devices, err := c.Search(ctx, key)
	if err != nil {
		return nil, err
	}
	var match, enrolled []*Device
	for i := range devices {
		d := &devices[i]
		if !strings.EqualFold(field(d), key) {
			continue
		}
		match = append(match, d)
		if d.Attributes.Status == "enrolled" {
			enrolled = append(enrolled, d)
		}
	}
	switch {
	case len(enrolled) == 1:
		return enrolled[0], nil
	case len(enrolled) > 1:
		return nil, fmt.Errorf("SimpleMDM lists %d enrolled devices for %s (ids %s and %s): remove the stale one in SimpleMDM", len(enrolled), key, enrolled[0].ID, enrolled[1].ID)
	case len(match) > 0:
		return match[0], nil // not enrolled: Enqueue says so
	}
	return nil, nil
}

// cached runs find for search once per cache key for the life of the
// client; a device found by serial is cached under its UDID too.
func (c *Client) cached(ctx context.Context, key, search string, field func(*Device) string) (*Device, error) {
	k := strings.ToUpper(key)
	c.mu.Lock()
	if l, ok := c.known[k]; ok {
		c.mu.Unlock()
		return l.device, nil
	}
	c.mu.Unlock()
	d, err := c.find(ctx, search, field)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]*lookup{}
	}
	c.known[k] = &lookup{device: d}
	if d != nil && d.Attributes.UniqueIdentifier != "" {
		if u := strings.ToUpper(d.Attributes.UniqueIdentifier); c.known[u] == nil {
			c.known[u] = &lookup{device: d}
		}
	}
	return d, nil
}

func byUDID(d *Device) string   { return d.Attributes.UniqueIdentifier }
func bySerial(d *Device) string { return d.Attributes.SerialNumber }

// Device finds the device with UDID udid; nil when SimpleMDM lists none.
func (c *Client) Device(ctx context.Context, udid string) (*Device, error) {
	return c.cached(ctx, udid, udid, byUDID)
}

// BySerial finds the device with a serial number; nil when SimpleMDM lists none.
func (c *Client) BySerial(ctx context.Context, serial string) (*Device, error) {
	return c.cached(ctx, "serial:"+serial, serial, bySerial)
}

// each runs f on every key, c.Workers at a time; it returns the first error.
func (c *Client) each(ctx context.Context, keys []string, f func(key string) error) error {
	var (
		mu       sync.Mutex
		firstErr error
		denied   atomic.Bool // a rejected key fails every look-up alike
		wg       sync.WaitGroup
		next     = make(chan string)
	)
	for range max(c.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				if err := f(k); err != nil {
					if errors.Is(err, server.ErrUnauthorized) {
						denied.Store(true)
					}
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, k := range keys {
		if ctx.Err() != nil || denied.Load() {
			break
		}
		next <- k
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// Devices looks up udids concurrently for the guard. The map holds the
// devices SimpleMDM lists; err is the first failed look-up, if any.
func (c *Client) Devices(ctx context.Context, udids []string) (map[string]apple.Device, error) {
	var mu sync.Mutex
	out := make(map[string]apple.Device, len(udids))
	err := c.each(ctx, udids, func(udid string) error {
		d, err := c.Device(ctx, udid)
		if d != nil {
			mu.Lock()
			out[udid] = d.Facts()
			mu.Unlock()
		}
		return err
	})
	return out, err
}

// Serials maps serial numbers to UDIDs concurrently; serials SimpleMDM does
// not list, or lists without a UDID, are absent.
func (c *Client) Serials(ctx context.Context, serials []string) (map[string]string, error) {
	var mu sync.Mutex
	out := make(map[string]string, len(serials))
	err := c.each(ctx, serials, func(serial string) error {
		d, err := c.BySerial(ctx, serial)
		if d != nil && d.Attributes.UniqueIdentifier != "" {
			mu.Lock()
			out[serial] = d.Attributes.UniqueIdentifier
			mu.Unlock()
		}
		return err
	})
	return out, err
}
