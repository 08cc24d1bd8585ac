package micromdm

import (
	"context"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Kind names MicroMDM in settings.
const Kind = "micromdm"

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "MicroMDM: POST /v1/commands, one device per request, answers through its webhook",
		NeedsAPIKey: true,
		// Its API takes one device per request.
		Limits: server.Limits{MaxIDs: 1, MaxIDBytes: 1 << 20},
		// MicroMDM always pushes and queues a resent command a second time.
		Capabilities: server.Capabilities{},
		Open: func(_ context.Context, cfg server.Config) (*server.Session, error) {
			return cfg.HTTPSession(&Client{BaseURL: cfg.BaseURL, User: cfg.User, APIKey: cfg.APIKey, HTTP: cfg.HTTP, Retry: cfg.Retry}), nil
		},
	})
}
