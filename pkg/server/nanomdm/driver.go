package nanomdm

import (
	"context"
	"fmt"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Kind names NanoMDM (and NanoHUB, which mounts the same API) in settings.
const Kind = "nanomdm"

// Limits keep an enqueue URL under 8 KB, the common proxy default (nginx's
// large_client_header_buffers): NanoMDM takes the IDs in the path.
var Limits = server.Limits{MaxIDs: 1000, MaxIDBytes: 7000}

// CheckID refuses what NanoMDM's enqueue path cannot carry: the IDs go in
// the URL path, comma-separated, so a comma, slash, ? # or % in one would
// name other IDs or another route.
func CheckID(id string) error {
	if i := strings.IndexAny(id, ",/?#%"); i >= 0 {
		return fmt.Errorf("target ID %q contains %q, which NanoMDM's enqueue URL cannot carry (its IDs go in the path, comma-separated)", id, id[i])
	}
	return nil
}

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "NanoMDM or NanoHUB: PUT /v1/enqueue/{ids}, answers through its webhook",
		Default:     true,
		NeedsAPIKey: true,
		Limits:      Limits,
		CheckID:     CheckID,
		// A CommandUUID NanoMDM holds is answered as a duplicate on every
		// storage backend, so a resend is recognized (see the adapter).
		Capabilities: server.Capabilities{SkipPush: true, RecognizesResend: true},
		Open: func(_ context.Context, cfg server.Config) (*server.Session, error) {
			return cfg.HTTPSession(&Client{BaseURL: cfg.BaseURL, User: cfg.User, APIKey: cfg.APIKey, HTTP: cfg.HTTP, Retry: cfg.Retry}), nil
		},
	})
}
