package jamf

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/webhook"
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
	answers, closeSession := watch(jc, cfg)
	return &server.Session{
		Server:  jc,
		Name:    server.Origin(cfg.BaseURL),
		Close:   closeSession,
		Answers: answers,
		Serials: jc.Serials,
		Facts: func(ctx context.Context, ids []string) map[string]apple.Device {
			known, err := jc.Devices(ctx, ids)
			if err != nil {
				warn(cfg, fmt.Sprintf("reading device facts from Jamf Pro: %v; the guard treats the devices it could not read as unknown", err))
			}
			return known
		},
	}, nil
}

func warn(cfg server.Config, msg string) {
	if cfg.Warn != nil {
		cfg.Warn(msg)
	}
}

// watch polls Jamf for answers from the moment a run starts waiting until
// the session closes; each distinct polling error is warned about once.
func watch(jc *Client, cfg server.Config) (func(*webhook.Collector), func()) {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	warned := map[string]bool{}
	onError := func(err error) { // called from the one polling goroutine
		if msg := err.Error(); !warned[msg] {
			warned[msg] = true
			warn(cfg, "polling Jamf Pro for answers: "+msg)
		}
	}
	answers := func(col *webhook.Collector) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jc.Watch(ctx, col, onError)
		}()
	}
	closeSession := func() {
		stop()
		wg.Wait()
		cfg.HTTP.CloseIdleConnections()
	}
	return answers, closeSession
}
