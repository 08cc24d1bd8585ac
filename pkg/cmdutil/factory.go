package cmdutil

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/fleet"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Factory carries the dependencies commands take from their environment, so
// a test can give them buffers, a fake clock or an in-process server.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Getenv    func(string) string
	Now       func() time.Time
	// ConfigPath is the config file for this run (--config, MDMCTL_CONFIG, default).
	ConfigPath func(flags *pflag.FlagSet) string
	// Settings resolves flags, environment and the selected context.
	Settings func(flags *pflag.FlagSet) (config.Settings, error)
	// Connect opens the server the settings name.
	Connect func(ctx context.Context, s config.Settings, opts ConnectOptions) (*Connection, error)
	// OpenHistory opens the lock history the settings name; its errors
	// are usage errors (exit 2), since nothing was sent.
	OpenHistory func(s config.Settings) (*history.Store, error)
	// OSUser names who runs mdmctl, for the history.
	OSUser func() string
}

// ConnectOptions tune the connection to the run.
type ConnectOptions struct {
	Concurrency    int
	Timeout        time.Duration
	ConnectTimeout time.Duration
	// Retries is how often a request that got no answer is sent again.
	Retries int
	Debug   bool
}

// Connection is an opened server and what a run needs to know about it.
type Connection struct {
	Server server.Server
	// Limits bound how many devices one request may carry.
	Limits fleet.Limits
	// Synchronous servers return each device's answer with the request
	// (the raw kind): --wait has nothing more to wait for.
	Synchronous bool
	// CanSkipPush is true for servers that can queue without a push
	// (--no-push); MicroMDM always pushes, the raw exchange has no queue.
	CanSkipPush bool
	// Name identifies the server in output (scheme://host or "sandbox").
	Name string
	// Close releases what Connect started; never nil.
	Close func()
	// Answers, when set, feeds device answers straight to a collector (the
	// sandbox's, or Fleet's polled); otherwise --wait runs a webhook receiver.
	Answers func(*webhook.Collector)
	// Facts, when set, looks devices up on the server (the sandbox's fleet,
	// Fleet's hosts); the guard uses what it finds where the input gave no
	// facts. Devices it does not know are absent from the map.
	Facts func(ctx context.Context, ids []string) map[string]apple.Device
}
