package jamf

import (
	"context"
	"errors"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Kind names Jamf Pro in settings.
const Kind = "jamf"

// MaxIDs is how many devices one DEVICE_LOCK request carries: Jamf takes a
// list, and a bounded one keeps a refusal or a lost reply to a batch.
const MaxIDs = 100

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "Jamf Pro: its API client (OAuth client credentials); DEVICE_LOCK through its MDM commands API, device facts from its inventory, answers polled from its command status",
		NeedsAPIKey: true,
		// The management IDs go in a JSON body; the UDIDs in inventory
		// filters, which the adapter batches itself.
		Limits: server.Limits{MaxIDs: MaxIDs, MaxIDBytes: 1 << 20},
		// Jamf always pushes, has no "already exists" answer (its adapter
		// looks for the device's DEVICE_LOCK before any resend), and has no
		// command of the admin's own to ask DeviceInformation with.
		Capabilities: server.Capabilities{Inventory: true, SerialNumbers: true, NoInformation: true},
		PlanLock:     planLock,
		Open:         open,
	})
}

// planLock refuses what Jamf's DEVICE_LOCK cannot carry: it takes a PIN, a
// message and a phone number, nothing else.
func planLock(lock apple.DeviceLock, _ bool) (server.LockPlan, error) {
	if lock.RequestRequiresNetworkTether {
		return server.LockPlan{}, errors.New("--network-tether: the jamf kind cannot send RequestRequiresNetworkTether (Jamf Pro's DEVICE_LOCK takes only a PIN, a message and a phone number)")
	}
	return server.LockPlan{}, nil
}

func open(_ context.Context, cfg server.Config) (*server.Session, error) {
	if cfg.User == "" {
		// A setting missing, as a missing API key is: a usage error.
		return nil, exitcode.Usagef("the jamf kind needs the API client's ID: set MDMCTL_API_USER, --api-user or api-user in the context, with the client secret as the API key")
	}
	jc := New(cfg.BaseURL, cfg.User, cfg.APIKey, limitClient(cfg.HTTP, MaxConnections), cfg.Retry)
	answers, closeSession := server.Poll(cfg, "polling Jamf Pro for answers", jc.Watch)
	return &server.Session{
		Server:  jc,
		Name:    server.Origin(cfg.BaseURL),
		Close:   closeSession,
		Answers: answers,
		Serials: jc.Serials,
		Facts:   jc.Devices,
	}, nil
}
