package fleetdm

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// HostPath is Fleet's "Get host by identifier" under the server URL.
const HostPath = "/api/v1/fleet/hosts/identifier/"

// host is the part of Fleet's host object mdmctl needs.
type host struct {
	ID             uint   `json:"id"`   // Fleet's own
	UUID           string `json:"uuid"` // the device's UDID
	HardwareSerial string `json:"hardware_serial"`
	Platform       string `json:"platform"`       // darwin, ios, ipados, ...
	OSVersion      string `json:"os_version"`     // "macOS 14.6.1"
	HardwareModel  string `json:"hardware_model"` // "Mac14,3"
	MDM            struct {
		ConnectedToFleet *bool `json:"connected_to_fleet"`
		// DeviceStatus and PendingAction are its lock state: "locked",
		// or "unlocked" with "lock" pending, and so on.
		DeviceStatus  string `json:"device_status"`
		PendingAction string `json:"pending_action"`
	} `json:"mdm"`
}

// mdmOff: Fleet knows the host but says it is not enrolled in its MDM.
func (h host) mdmOff() bool {
	return h.MDM.ConnectedToFleet != nil && !*h.MDM.ConnectedToFleet
}

// device turns Fleet's words into the guard's facts; what does not parse
// stays unknown, so the guard warns rather than trusts it.
func (h host) device() apple.Device {
	var d apple.Device
	switch h.Platform {
	case "darwin":
		d.Platform = apple.PlatformMacOS
	case "ios":
		d.Platform = apple.PlatformIOS
	case "ipados":
		d.Platform = apple.PlatformIPadOS
	default:
		// Not an Apple host: its version numbers mean nothing to the guard.
		return d
	}
	d.OSVersion = apple.ReportedVersion(h.OSVersion)
	if apple.ValidateModel(h.HardwareModel) == nil {
		d.Model = h.HardwareModel
	}
	return d
}

// getHost fetches a host's details; nil for a host Fleet does not know.
func (c *Client) getHost(ctx context.Context, id string) (*host, error) {
	var reply struct {
		Host *host `json:"host"`
	}
	// A host object lists labels, policies and profiles: a generous bound.
	found, err := c.get(ctx, HostPath+url.PathEscape(id)+"?exclude_software=true", 4<<20, &reply, "host details")
	switch {
	case err != nil || !found:
		return nil, err
	case reply.Host == nil:
		return nil, &server.ProtocolError{Server: server.Origin(c.BaseURL), Problem: fmt.Sprintf("host %q is not Fleet's host JSON", id)}
	}
	return reply.Host, nil
}

// Host returns what Fleet knows of a host's platform, model and OS
// version; found is false for a host Fleet does not know.
func (c *Client) Host(ctx context.Context, id string) (d apple.Device, found bool, err error) {
	h, err := c.getHost(ctx, id)
	if err != nil || h == nil {
		return d, false, err
	}
	return h.device(), true, nil
}

// hosts fetches ids, workers at a time. The map holds the hosts Fleet
// knows; err is the first failed lookup, if any (the rest are left out).
func (c *Client) hosts(ctx context.Context, ids []string, workers int) (known map[string]*host, err error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan string)
	)
	known = make(map[string]*host, len(ids))
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				h, herr := c.getHost(ctx, id)
				mu.Lock()
				switch {
				case herr != nil && err == nil:
					err = herr
				case h != nil:
					known[id] = h
					// Under its UDID too: a host found by serial is sent to by UDID.
					c.seen.Store(id, h)
					c.seen.Store(h.UUID, h)
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		next <- id
	}
	close(next)
	wg.Wait()
	return known, err
}

// Serials finds hosts by serial number, workers at a time: Fleet's "get
// host by identifier" takes a serial as well as a UUID or a host name, so
// a host counts only when its hardware_serial is the one asked for. The
// map gives each known serial's UDID; err is the first failed lookup.
func (c *Client) Serials(ctx context.Context, serials []string, workers int) (map[string]string, error) {
	known, err := c.hosts(ctx, serials, workers)
	out := make(map[string]string, len(known))
	for serial, h := range known {
		if strings.EqualFold(h.HardwareSerial, serial) && h.UUID != "" {
			out[serial] = h.UUID
		}
	}
	return out, err
}

// Devices looks up ids, workers at a time, for the guard. The map holds
// the hosts Fleet knows; err is the first failed lookup, if any.
func (c *Client) Devices(ctx context.Context, ids []string, workers int) (map[string]apple.Device, error) {
	known, err := c.lookedUp(ctx, ids, workers)
	out := make(map[string]apple.Device, len(known))
	for id, h := range known {
		out[id] = h.device()
	}
	return out, err
}

// lookedUp is the hosts of ids, those this client looked up already (for
// the guard) taken as they were: a host's ID, platform and enrollment do
// not change within a run.
func (c *Client) lookedUp(ctx context.Context, ids []string, workers int) (map[string]*host, error) {
	known := make(map[string]*host, len(ids))
	var missing []string
	for _, id := range ids {
		if h, ok := c.seen.Load(id); ok {
			known[id] = h.(*host)
		} else {
			missing = append(missing, id)
		}
	}
	found, err := c.hosts(ctx, missing, workers)
	for id, h := range found {
		known[id] = h
	}
	return known, err
}
