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
	f.OSVersion = apple.ReportedVersion(d.Attributes.OSVersion)
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

// page fetches one page of the device list: those matching search (all
// devices when it is empty) after the device with id after.
func (c *Client) page(ctx context.Context, search, after string) (listReply, error) {
	origin := server.Origin(c.BaseURL)
	q := url.Values{"limit": {fmt.Sprint(PageSize)}}
	if search != "" {
		q.Set("search", search)
	}
	if after != "" {
		q.Set("starting_after", after)
	}
	path := DevicesPath + "?" + q.Encode()
	newReq := func(ctx context.Context, _ bool) (*http.Request, error) {
		return c.newRequest(ctx, http.MethodGet, path, "")
	}
	var r listReply
	resp, body, _, err := c.Retry.Do(ctx, c.HTTP, newReq, listLimit)
	if err != nil {
		return r, err
	}
	if err := c.checkReply(resp, body, http.StatusOK); err != nil {
		return r, err
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("the device list is not SimpleMDM's JSON: %v", err)}
	}
	for _, d := range r.Data {
		if !validID(d.ID) {
			return r, &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("the device list names a device with id %q, not a number", d.ID)}
		}
	}
	return r, nil
}

// Search returns every device SimpleMDM lists for search, following its
// pagination.
func (c *Client) Search(ctx context.Context, search string) ([]Device, error) {
	var (
		all   []Device
		after string
	)
	for range maxPages {
		r, err := c.page(ctx, search, after)
		if err != nil {
			return nil, err
		}
		all = append(all, r.Data...)
		if !r.HasMore || len(r.Data) == 0 {
			return all, nil
		}
		after = r.Data[len(r.Data)-1].ID.String()
	}
	return nil, &server.ProtocolError{Server: server.Origin(c.BaseURL), Problem: fmt.Sprintf("searching devices for %q matched more than %d pages", search, maxPages)}
}

// lookup is one cached answer: the device, or nil for none.
type lookup struct {
	device *Device
}

// find searches for key and keeps the device whose field is key.
func (c *Client) find(ctx context.Context, key string, field func(*Device) string) (*Device, error) {
	devices, err := c.Search(ctx, key)
	if err != nil {
		return nil, err
	}
	return choose(key, devices, field)
}

// choose keeps, of devices, the one whose field is key, preferring an
// enrolled one. SimpleMDM may keep an old record of a re-enrolled device:
// two enrolled ones with the same key cannot be told apart, an error.
func choose(key string, devices []Device, field func(*Device) string) (*Device, error) {
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
// client.
func (c *Client) cached(ctx context.Context, key, search string, field func(*Device) string) (*Device, error) {
	if d, ok := c.get(key); ok {
		return d, nil
	}
	d, err := c.find(ctx, search, field)
	if err != nil {
		return nil, err
	}
	c.store(key, d)
	return d, nil
}

func (c *Client) get(key string) (*Device, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.known[strings.ToUpper(key)]
	if !ok {
		return nil, false
	}
	return l.device, true
}

// store keeps d (nil: none) under key; a device is kept under its UDID too.
func (c *Client) store(key string, d *Device) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]*lookup{}
	}
	c.known[strings.ToUpper(key)] = &lookup{device: d}
	if d != nil && d.Attributes.UniqueIdentifier != "" {
		if u := strings.ToUpper(d.Attributes.UniqueIdentifier); c.known[u] == nil {
			c.known[u] = &lookup{device: d}
		}
	}
}

// bulkMin is the number of devices to look up from which mdmctl reads the
// account's device list page by page instead of searching for each: a page
// holds PageSize devices, a search answers for one.
const bulkMin = 8

// prefetch reads the whole device list for keys not yet known, while that
// costs fewer requests than a search per key still unmatched: it stops once
// it has read as many pages as keys remain unmatched, so a run costs at most
// twice the cheaper of the two. It keeps what it settles; the keys it leaves
// are searched for one by one. cacheKey names a key in the cache.
func (c *Client) prefetch(ctx context.Context, keys []string, cacheKey func(string) string, field func(*Device) string) error {
	var pending []string
	seen := map[string]bool{}
	for _, k := range keys {
		u := strings.ToUpper(k)
		if _, ok := c.get(cacheKey(k)); !ok && !seen[u] {
			seen[u] = true
			pending = append(pending, k)
		}
	}
	if len(pending) < bulkMin {
		return nil
	}
	candidates := map[string][]Device{} // by upper-case key
	after := ""
	complete := false
	for pages := 0; pages < len(pending)-len(candidates); pages++ {
		r, err := c.page(ctx, "", after)
		if err != nil {
			return err
		}
		for _, d := range r.Data {
			if u := strings.ToUpper(field(&d)); seen[u] {
				candidates[u] = append(candidates[u], d)
			}
		}
		if !r.HasMore || len(r.Data) == 0 {
			complete = true
			break
		}
		after = r.Data[len(r.Data)-1].ID.String()
	}
	for _, k := range pending {
		found := candidates[strings.ToUpper(k)]
		if len(found) == 0 && !complete {
			continue // not reached: searched for alone
		}
		// In a list read only in part, a key met may have a second record
		// further on that a search would have shown (choose refuses two
		// enrolled ones); the one met has the same UDID all the same.
		if d, err := choose(k, found, field); err == nil {
			c.store(cacheKey(k), d)
		} // else the search for it reports the error
	}
	return nil
}

func serialKey(serial string) string { return "serial:" + serial }

func byUDID(d *Device) string   { return d.Attributes.UniqueIdentifier }
func bySerial(d *Device) string { return d.Attributes.SerialNumber }

// Device finds the device with UDID udid; nil when SimpleMDM lists none.
func (c *Client) Device(ctx context.Context, udid string) (*Device, error) {
	return c.cached(ctx, udid, udid, byUDID)
}

// BySerial finds the device with a serial number; nil when SimpleMDM lists none.
func (c *Client) BySerial(ctx context.Context, serial string) (*Device, error) {
	return c.cached(ctx, serialKey(serial), serial, bySerial)
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
	if err := c.prefetch(ctx, udids, func(k string) string { return k }, byUDID); err != nil {
		return out, err
	}
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
	if err := c.prefetch(ctx, serials, serialKey, bySerial); err != nil {
		return out, err
	}
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
