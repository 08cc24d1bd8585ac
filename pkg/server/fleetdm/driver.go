package fleetdm

import (
	"context"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Kind names Fleet in settings.
const Kind = "fleet"

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "Fleet: its own lock for Macs (it makes the PIN), its MDM command API otherwise; device facts from its hosts, answers polled",
		NeedsAPIKey: true,
		// The IDs go in a JSON body: no URL to keep short, only the count
		// per request is bounded.
		Limits: server.Limits{MaxIDs: 1000, MaxIDBytes: 1 << 20},
		// Fleet always pushes, and has no "already exists" answer: its
		// adapter checks for its command only on its own retries.
		Capabilities: server.Capabilities{Inventory: true, SerialNumbers: true},
		PlanLock:     planLock,
		Open:         open,
	})
}

func open(_ context.Context, cfg server.Config) (*server.Session, error) {
	fc := &Client{BaseURL: cfg.BaseURL, Token: cfg.APIKey, HTTP: cfg.HTTP, Retry: cfg.Retry}
	answers, closeSession := server.Poll(cfg, "polling Fleet for answers", fc.Watch)
	return &server.Session{
		Server:  fc,
		Name:    server.Origin(cfg.BaseURL),
		Close:   closeSession,
		Answers: answers,
		Serials: func(ctx context.Context, serials []string) (map[string]string, error) {
			return fc.Serials(ctx, serials, cfg.Concurrency)
		},
		Facts: func(ctx context.Context, ids []string) (map[string]apple.Device, error) {
			return fc.Devices(ctx, ids, cfg.Concurrency)
		},
	}, nil
}
