package simplemdm

import (
	"context"
	"fmt"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Kind names SimpleMDM in settings.
const Kind = "simplemdm"

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "SimpleMDM: its device lock API (API key as Basic user); device facts from its inventory, no command status",
		NeedsAPIKey: true,
		DefaultURL:  "https://a.simplemdm.com",
		// One device per lock request; the dispatcher sends them concurrently.
		Limits: server.Limits{MaxIDs: 1, MaxIDBytes: 1 << 10},
		// SimpleMDM answers a lock 202 with nothing to look up afterwards,
		// and has no command of the admin's own for DeviceInformation.
		Capabilities: server.Capabilities{Inventory: true, SerialNumbers: true, NoStatus: true, NoInformation: true},
		PlanLock:     planLock,
		Open:         open,
	})
}

// planLock refuses what SimpleMDM's lock action cannot carry.
func planLock(lock apple.DeviceLock, _ bool) (server.LockPlan, error) {
	if lock.RequestRequiresNetworkTether {
		return server.LockPlan{}, fmt.Errorf("--network-tether: the %s kind cannot carry RequestRequiresNetworkTether (its lock API takes a message, a phone number and a PIN only)", Kind)
	}
	return server.LockPlan{}, nil
}

func open(_ context.Context, cfg server.Config) (*server.Session, error) {
	c := &Client{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, HTTP: withRateLimitReset(cfg.HTTP), Retry: cfg.Retry, Workers: cfg.Concurrency, Warn: cfg.Warn}
	s := cfg.HTTPSession(c)
	s.Serials, s.Facts = c.Serials, c.Devices
	return s, nil
}
