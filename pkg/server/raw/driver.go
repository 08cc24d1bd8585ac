package raw

import (
	"context"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Kind names the raw exchange in settings.
const Kind = "raw"

func init() {
	server.Register(server.Driver{
		Kind:     Kind,
		About:    "an endpoint of your own: each device's command plist POSTed, its answer in the reply",
		URLQuery: true,
		Limits:   server.Limits{MaxIDs: 1, MaxIDBytes: 1 << 20},
		// The answer comes in the exchange; there is no queue to skip a push
		// on, and no "already exists" to recognize a resend by.
		Capabilities: server.Capabilities{Synchronous: true},
		Open: func(_ context.Context, cfg server.Config) (*server.Session, error) {
			return cfg.HTTPSession(&Client{URL: cfg.RawURL, User: cfg.User, APIKey: cfg.APIKey, HTTP: cfg.HTTP, Retry: cfg.Retry}), nil
		},
	})
}
